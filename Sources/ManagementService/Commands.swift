import ManagementModel
import Store

/// What an object command does with its type (`add-host`, `show-hosts`…: the command table names each).
enum ObjectCommand {
    enum Verb: String { case add, set, show, delete, list }
}

extension ManagementService {
    func session(_ uid: String) throws -> Session {
        guard let session = sessions[uid] else { throw ManagementError.internalError("session vanished") }
        return session
    }

    func renderer(_ sessionUID: String) -> Renderer { Renderer(reader: view(of: sessionUID)) }

    /// `limit` and `offset` of a list. A value given must be an integer in range (a JSON integer or a
    /// decimal string): anything else is refused naming the field, never replaced by the default.
    func page(_ params: [String: JSONValue], defaultLimit: Int = Limits.pageSizeDefault, allowZero: Bool = false) throws -> (offset: Int, limit: Int) {
        let limit = try params["limit"].map { Int(try $0.integer("limit", in: (allowZero ? 0 : 1)...Int64(Limits.pageSizeMax))) } ?? defaultLimit
        let offset = try params["offset"].map { Int(try $0.integer("offset", in: 0...Limits.pageOffsetMax)) } ?? 0
        return (offset, limit)
    }

    /// The `filter` of a list: text a name contains, so never longer than a name may be (a 200 KB one
    /// reached SQLite as a LIKE pattern "too complex", a 500).
    static func nameFilter(_ params: [String: JSONValue]) throws -> String? {
        guard let filter = params["filter"]?.scalarText else { return nil }
        guard filter.utf8.count <= Limits.nameBytesMax else {
            throw ManagementError.invalid("filter", "At most \(Limits.nameBytesMax) bytes: a name is never longer.")
        }
        return filter
    }

    static func listReply(_ objects: [JSONValue], offset: Int, total: Int, key: String = "objects") -> APIResponse {
        APIResponse.ok([
            key: .array(objects), "from": .int(objects.isEmpty ? 0 : Int64(offset + 1)),
            "to": .int(objects.isEmpty ? 0 : Int64(offset + objects.count)), "total": .int(Int64(total)),
        ])
    }

    // MARK: objects

    func objectCommand(_ verb: ObjectCommand.Verb, _ type: ObjectType, _ params: [String: JSONValue], sessionUID: String) throws -> APIResponse {
        let level = try DetailsLevel.parse(params["details-level"])
        switch verb {
        case .show:
            let reader = view(of: sessionUID)
            let object = try Planner(reader: reader, passwords: passwords).find(type, params)
            return APIResponse(body: render(object, level: level == .uid ? .standard : level, sessionUID: sessionUID, reader: reader))
        case .list:
            return try listObjects([type], params, sessionUID: sessionUID, level: level)
        case .add, .set, .delete:
            if verb == .add, type == .checkpointHost { try checkManagementServerBound(try session(sessionUID).pending, adding: 1) }
            let plan = try planChange(verb, type, params, sessionUID: sessionUID)
            try record(plan, in: sessionUID)
            if verb == .delete { return .okMessage }
            let after = view(of: sessionUID)
            let reply = render(after.object(uid: plan.primary!.uid)!, level: .full, sessionUID: sessionUID, reader: after)
            if type == .simpleCluster {
                // Check Point runs add/set-simple-cluster as a task; the client waits for it.
                let id = tasks.finished("\(verb.rawValue)-simple-cluster", status: "succeeded", details: [reply], nowMilliseconds: now)
                return APIResponse.ok(["task-id": .string(id)])
            }
            return APIResponse(body: reply)
        }
    }

    /// Plans a change in its own scope, so no view of the session outlives it into `record`.
    func planChange(_ verb: ObjectCommand.Verb, _ type: ObjectType, _ params: [String: JSONValue], sessionUID: String) throws -> Planner.Plan {
        let current = try session(sessionUID)
        try requireWritable(current)
        let planner = Planner(reader: view(of: sessionUID), passwords: passwords)
        let context = changeContext(current)
        let plan: Planner.Plan
        switch verb {
        case .add: plan = try planner.add(type, params, context: context)
        case .set: plan = try planner.set(type, params, context: context)
        default: plan = try planner.delete(type, params, context: context)
        }
        if type == .smartTask { try requireSmartTaskProfile(plan, verb: verb, session: current) }
        return plan
    }

    func render(_ object: ManagedObject, level: DetailsLevel, sessionUID: String, reader: any ObjectReader, useDictionary: Bool = false) -> JSONValue {
        var extra: [String: JSONValue] = [:]
        if object.type == .accessRule, let layerUID = object.fields[ManagedObject.layerField]?.stringValue, let layer = reader.object(uid: layerUID) {
            extra["rule-number"] = Rulebase(layer: layer, reader: reader).ruleNumber(of: object.uid).map { .int(Int64($0)) } ?? .null
        }
        extra.merge(gatewayStatusFields(object, reader: reader)) { _, live in live }
        if ObjectType.sicNodes.contains(object.type) { extra["sic-state"] = .string(sicNodeStatus(object).sicState) }
        return Renderer(reader: reader).render(object, level: level, lock: lockText(object.uid, viewer: sessionUID), extra: extra)
    }

    /// Lists published objects plus the session's own pending ones, ordered by name.
    func listObjects(_ types: [ObjectType], _ params: [String: JSONValue], sessionUID: String, level: DetailsLevel) throws -> APIResponse {
        let (offset, limit) = try page(params)
        let filter = try Self.nameFilter(params)
        let pending = sessions[sessionUID]?.pending ?? PendingChanges()
        let reader = view(of: sessionUID)
        if pending.isEmpty {
            let (objects, total) = try store.objects(types: types, offset: offset, limit: limit, nameFilter: filter)
            return Self.listReply(objects.map { render($0, level: level, sessionUID: sessionUID, reader: reader) }, offset: offset, total: total)
        }
        // With pending changes the merged list is built in memory (bounded by the session's size).
        var all = try store.objects(types: types, offset: 0, limit: Int.max, nameFilter: filter).objects.filter { pending[$0.uid] == nil }
        for item in pending.values {
            if case .upsert(let object) = item.change, types.contains(object.type),
                filter.map({ object.name.localizedCaseInsensitiveContains($0) }) ?? true
            {
                all.append(object)
            }
        }
        all.sort { ($0.name, $0.uid) < ($1.name, $1.uid) }
        let slice = all.dropFirst(offset).prefix(limit)
        return Self.listReply(slice.map { render($0, level: level, sessionUID: sessionUID, reader: reader) }, offset: offset, total: all.count)
    }

    func showObjects(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        var types = ObjectType.creatable.filter { $0 != .accessRule && $0 != .accessSection }
        if let wanted = params["type"]?.stringValue, wanted != "object" {
            guard let type = ObjectType(rawValue: wanted) else { throw ManagementError.invalid("type", "unknown object type '\(wanted)'") }
            types = [type]
        }
        return try listObjects(types, params, sessionUID: sessionUID, level: try DetailsLevel.parse(params["details-level"]))
    }

    func showObject(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        guard let uid = params["uid"]?.stringValue else { throw ManagementError.missing(["uid"]) }
        let reader = view(of: sessionUID)
        guard let object = reader.lookup(uid: uid) else { throw ManagementError.notFound(uid) }
        return APIResponse.ok(["object": render(object, level: try DetailsLevel.parse(params["details-level"]), sessionUID: sessionUID, reader: reader)])
    }

    func whereUsed(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let reader = view(of: sessionUID)
        let target: ManagedObject
        if let uid = params["uid"]?.stringValue {
            guard let found = reader.lookup(uid: uid) else { throw ManagementError.notFound(uid) }
            target = found
        } else if let name = params["name"]?.scalarText {
            let found = reader.objects(named: name).filter { $0.type.hasUniqueName }
            guard found.count <= 1 else { throw ManagementError.notUnique("name", name) }
            guard let only = found.first ?? Predefined.named(name) else { throw ManagementError.notFound(name) }
            target = only
        } else {
            throw ManagementError.missing(["uid or name"])
        }
        let users = reader.referrers(of: target.uid)
        let renderer = Renderer(reader: reader)
        let rules = users.filter { $0.type == .accessRule }.map { rule -> JSONValue in
            let layer = rule.fields[ManagedObject.layerField]?.stringValue.flatMap { reader.object(uid: $0) }
            let columns = ["source", "destination", "service", "install-on", "action"].filter {
                rule.uids($0).contains(target.uid) || rule.fields[$0]?.stringValue == target.uid
            }
            return .object([
                "rule": renderer.summary(rule), "layer": layer.map { renderer.summary($0) } ?? .null,
                "rule-columns": .array(columns.map(JSONValue.string)),
                "position": .string(layer.flatMap { Rulebase(layer: $0, reader: reader).ruleNumber(of: rule.uid) }.map(String.init) ?? ""),
            ])
        }
        let objects = users.filter { $0.type != .accessRule }.map { renderer.summary($0) }
        return APIResponse.ok([
            "used-directly": .object([
                "total": .int(Int64(users.count)), "objects": .array(objects), "access-control-rules": .array(rules),
                "threat-prevention-rules": .array([]), "nat-rules": .array([]),
            ])
        ])
    }

    func equals(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        guard let typeName = params["type"]?.stringValue else { throw ManagementError.missing(["type"]) }
        guard let type = ObjectType(rawValue: typeName), ObjectType.creatable.contains(type) else {
            throw ManagementError.invalid("type", "unknown object type '\(typeName)'")
        }
        guard case .object(let given)? = params["params"] else { throw ManagementError.missing(["params"]) }
        guard given["uid"] != nil || given["name"] != nil || given["rule-number"] != nil else {
            throw ManagementError.invalid("params", "name or uid is needed to identify the object")
        }
        // Comparing a password would be an unthrottled password oracle (and a PBKDF2 per call).
        if type == .administrator, given["password"] != nil || given["password-hash"] != nil, profile(of: try session(sessionUID)) < .superUser {
            throw ManagementError(code: "generic_err_no_permissions", message: "Comparing an administrator's password needs a super-user", httpStatus: 400)
        }
        let planner = Planner(reader: view(of: sessionUID), passwords: passwords)
        let object = try planner.find(type, given)
        do {
            return APIResponse.ok(["equals": .bool(try Equality(planner: planner).equals(object, params: given))])
        } catch let error as ManagementError where error.httpStatus == 404 {
            // A reference that does not exist yet means the object differs, not that it is absent.
            return APIResponse.ok(["equals": .bool(false)])
        } catch let error as ManagementError where error.httpStatus != 400 && error.httpStatus != 500 {
            throw ManagementError(code: error.code, message: error.message, httpStatus: 400)
        }
    }
}
