import Logging
import ManagementModel
import Store

extension ManagementService {
    // MARK: reads for the SmartTasks engine (never rendered: they carry the shared secrets)

    /// The enabled tasks of the published head that `trigger` fires, by name, secrets included.
    public nonisolated func smartTasks(for trigger: SmartTaskTrigger) throws -> [SmartTaskDefinition] {
        try publishedSmartTasks().filter { $0.enabled && $0.trigger == trigger }
    }

    /// A published smart-task by uid, enabled or not (nil: deleted, or it does not parse).
    public nonisolated func smartTask(uid: String) throws -> SmartTaskDefinition? {
        try publishedSmartTasks().first { $0.uid == uid }
    }

    /// Every published smart-task, by name. The engine asks for every revision it derives and every
    /// delivery it makes, and a publish asks for its Before Publish tasks: they are read again only
    /// after a commit that changed smart-tasks. A stored task that no longer parses (written by another
    /// version) is skipped and logged.
    nonisolated func publishedSmartTasks() throws -> [SmartTaskDefinition] {
        let changes = store.changeCount(of: .smartTask)
        if let cached = smartTasksRead.withLock({ $0 }), cached.changes == changes { return cached.tasks }
        var tasks: [SmartTaskDefinition] = []
        for object in try store.objects(types: [.smartTask], offset: 0, limit: Int.max, nameFilter: nil).objects {
            do {
                tasks.append(try SmartTaskDefinition(object))
            } catch let error as ManagementError {
                logger.warning("smart-task skipped: it does not parse", metadata: ["uid": "\(object.uid)", "error": "\(error.code)"])
            }
        }
        smartTasksRead.withLock { $0 = (changes, tasks) }
        return tasks
    }

    /// A published repository script by uid, or else by name.
    public nonisolated func repositoryScript(_ uidOrName: String) -> RepositoryScript? {
        let reader = store.reader
        let object =
            reader.object(uid: uidOrName).flatMap { $0.type == .repositoryScript ? $0 : nil }
            ?? reader.objects(named: uidOrName).first { $0.type == .repositoryScript }
        return object.flatMap { try? RepositoryScript($0) }
    }
}

extension ManagementService {
    // MARK: permissions

    /// A run-script task runs a repository script on this server as the server's user: adding,
    /// changing or deleting one (or turning a task into one) needs a super-user. Web-request and
    /// send-mail tasks are for read-write administrators as well.
    func requireSmartTaskProfile(_ plan: Planner.Plan, verb: ObjectCommand.Verb, session: Session) throws {
        guard let primary = plan.primary else { return }
        let before =
            store.reader.object(uid: primary.uid)
            ?? sessions[session.uid]?.pending[primary.uid].flatMap {
                if case .upsert(let object) = $0.change { return object }
                return nil
            }
        let touched = [before, verb == .delete ? nil : primary].compactMap { $0 }
        guard touched.contains(where: { $0.fields["action"]?[SmartTaskDefinition.runScriptKey] != nil }) else { return }
        let profile = profile(of: session)
        guard profile >= .superUser else {
            throw ManagementError.noPermissions(
                "Administrator [\(session.user)] has the \(profile.rawValue) profile; a run-script smart-task runs a repository script as the server's user, so \(verb.rawValue)-smart-task on one needs a super-user"
            )
        }
    }

    // MARK: triggers

    func showSmartTaskTrigger(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        guard let key = params["uid"]?.stringValue ?? params["name"]?.scalarText else { throw ManagementError.missing(["uid or name"]) }
        guard Limits.fits(key, characters: Limits.nameLengthMax), let trigger = SmartTaskTrigger.named(key) else {
            throw ManagementError.notFound(String(key.prefix(Limits.nameLengthMax)))
        }
        return APIResponse(body: trigger.json)
    }

    func showSmartTaskTriggers(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let (offset, limit) = try page(params)
        let level = try DetailsLevel.parse(params["details-level"])
        let filter = try Self.nameFilter(params)
        let all = SmartTaskTrigger.allCases.sorted().filter { filter.map($0.name.localizedCaseInsensitiveContains) ?? true }
        let slice = all.dropFirst(offset).prefix(limit).map { level == .uid ? .string($0.uid) : $0.json }
        return Self.listReply(Array(slice), offset: offset, total: all.count)
    }

    // MARK: export and import

    /// Keys of a task (and of a script) that export writes and import reads: the add parameters.
    static let exportedTaskKeys = ["trigger", "custom-data", "description", "enabled", "fail-open", "color", "comments", "tags"]
    static let exportedScriptKeys = ["script-body", "color", "comments", "tags"]

    /// The task as add-smart-task parameters (references by name), with its repository script. The
    /// shared secret is never exported: `left-out` says so, and the importer sets it again.
    func exportSmartTask(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        if params["file-path"] != nil {
            throw ManagementError.invalid("file-path", "Rampart returns the export in the reply; give it to import-smart-task as it is")
        }
        let reader = view(of: sessionUID)
        let object = try Planner(reader: reader, passwords: passwords).find(.smartTask, params)
        _ = try SmartTaskDefinition(object)
        var task: [String: JSONValue] = ["name": .string(object.name)]
        for key in Self.exportedTaskKeys { if let value = object.fields[key] { task[key] = value } }
        var reply: [String: JSONValue] = [:]
        var leftOut: [JSONValue] = []
        guard let action = object.fields["action"]?.objectValue, let only = action.first, var settings = only.value.objectValue else {
            throw ManagementError.internalError("smart-task [\(object.name)] has no action")
        }
        if only.key == SmartTaskDefinition.runScriptKey {
            let scriptUID = settings["repository-script"]?.stringValue ?? ""
            guard let script = reader.object(uid: scriptUID) else { throw ManagementError.notFound(scriptUID) }
            settings["repository-script"] = .string(script.name)
            settings["targets"] = .array(targetNames(settings["targets"], reader))
            var exported: [String: JSONValue] = ["name": .string(script.name)]
            for key in Self.exportedScriptKeys { if let value = script.fields[key] { exported[key] = value } }
            reply["repository-script"] = .object(exported)
        }
        if only.key == SmartTaskDefinition.webRequestKey, !(object.fields[ManagedObject.smartTaskSecretField]?.stringValue ?? "").isEmpty {
            leftOut.append("action.send-web-request.shared-secret")
        }
        task["action"] = .object([only.key: .object(settings)])
        reply["smart-task"] = .object(task)
        reply["left-out"] = .array(leftOut)
        return APIResponse.ok(reply)
    }

    func targetNames(_ value: JSONValue?, _ reader: any ObjectReader) -> [JSONValue] {
        (value?.arrayValue ?? []).compactMap(\.stringValue).map { .string(reader.object(uid: $0)?.name ?? $0) }
    }

    /// Adds export-smart-task's task (and script) to the caller's session. A script of the same name
    /// and body is reused; one with another body is a name clash. Nothing is recorded when the task
    /// is refused after its script was added: the script's change is discarded with it.
    func importSmartTask(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        if params["file-path"] != nil {
            throw ManagementError.invalid("file-path", "give the export itself: smart-task (and repository-script) as export-smart-task returned them")
        }
        guard let task = params["smart-task"]?.objectValue else { throw ManagementError.missing(["smart-task"]) }
        let caller = try session(sessionUID)
        var addedScript: String?
        if let script = params["repository-script"]?.objectValue {
            let profile = profile(of: caller)
            guard profile >= .superUser else {
                throw ManagementError.noPermissions(
                    "Administrator [\(caller.user)] has the \(profile.rawValue) profile; importing a repository script needs a super-user")
            }
            addedScript = try importScript(script, sessionUID: sessionUID)
        }
        do {
            return try objectCommand(
                .add, .smartTask, task.filter { $0.key == "name" || $0.key == "action" || Self.exportedTaskKeys.contains($0.key) }, sessionUID: sessionUID)
        } catch {
            if let addedScript { _ = try? objectCommand(.delete, .repositoryScript, ["uid": .string(addedScript)], sessionUID: sessionUID) }
            throw error
        }
    }

    /// The uid of the script added, or nil when the same script already exists.
    func importScript(_ script: [String: JSONValue], sessionUID: String) throws -> String? {
        guard let name = script["name"]?.scalarText else { throw ManagementError.missing(["repository-script.name"]) }
        let existing = view(of: sessionUID).objects(named: name).first { $0.type == .repositoryScript }
        if let existing {
            guard existing.fields["script-body"] == script["script-body"] else {
                throw ManagementError.notUnique("name", name)
            }
            return nil
        }
        let reply = try objectCommand(
            .add, .repositoryScript, script.filter { $0.key == "name" || Self.exportedScriptKeys.contains($0.key) }, sessionUID: sessionUID)
        return reply.body["uid"]?.stringValue
    }
}
