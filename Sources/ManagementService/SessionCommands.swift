import ManagementModel
import Store

extension ManagementService {
    func logout(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        guard var session = sessions[sessionUID] else { return .okMessage }
        if session.pending.isEmpty {
            endSession(sessionUID)
        } else {
            // As on Check Point, unpublished work survives logout as a disconnected session until it
            // is published or discarded by uid, or its timeout passes.
            session.state = .disconnected
            sessions[sessionUID] = session
            sessionUIDBySID[session.sid] = nil
            try store.saveSession(uid: sessionUID, body: session.json)
        }
        return .okMessage
    }

    /// The session a command acts on: the caller's, or another one named by `uid` (the dispatcher has
    /// checked that the caller may: its own administrator's, or any for a super-user).
    func targetSession(_ params: [String: JSONValue], _ sessionUID: String) throws -> Session {
        let caller = try session(sessionUID)
        return try otherSession(params, caller: caller) ?? caller
    }

    func discard(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        var target = try targetSession(params, sessionUID)
        let count = target.pending.count
        for uid in target.pending.keys where lockOwner[uid] == target.uid { lockOwner[uid] = nil }
        target.pending = PendingChanges()
        try store.clearPendingChanges(session: target.uid)
        if target.state == .disconnected { endSession(target.uid) } else { sessions[target.uid] = target }
        return APIResponse.ok(["message": .string("OK"), "number-of-discarded-changes": .int(Int64(count))])
    }

    func publish(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        var target = try targetSession(params, sessionUID)
        try requireWritable(try session(sessionUID))
        let changes = target.orderedChanges
        var details: [JSONValue] = []
        var awaitsStandby = false
        var syncRevision: UInt64 = 0
        if !changes.isEmpty {
            try validateForPublish(target)
            let head = try store.head()
            let revision = Revision(
                after: head, epoch: currentEpoch, publishedAtMilliseconds: now, author: target.user,
                sessionUID: target.uid, sessionName: target.name, changes: changes)
            // One transaction: journal row, object rows, the session's pending rows and its record together.
            awaitsStandby = try commitRevision(revision, session: .init(uid: target.uid, body: target.json))
            syncRevision = revision.number
            for uid in target.pending.keys where lockOwner[uid] == target.uid { lockOwner[uid] = nil }
            target.pending = PendingChanges()
            details = [
                .object([
                    "publishResponse": .object(["numberOfPublishedChanges": .int(Int64(changes.count)), "mode": .string(awaitsStandby ? "sync" : "async")]),
                    "revision": .string(revision.hash), "revision-number": .int(Int64(revision.number)),
                ])
            ]
        } else {
            details = [.object(["publishResponse": .object(["numberOfPublishedChanges": .int(0), "mode": .string("async")])])]
        }
        if target.state == .disconnected {
            endSession(target.uid)
        } else {
            sessions[target.uid] = target
            if changes.isEmpty { try store.saveSession(uid: target.uid, body: target.json) }
        }
        guard awaitsStandby else {
            let id = tasks.finished("Publish operation", status: "succeeded", details: details, nowMilliseconds: now)
            return APIResponse.ok(["task-id": .string(id)])
        }
        // Sync mode: the request returns once a standby holds the revision (completeSyncPublish).
        let id = tasks.started("Publish operation", details: details, nowMilliseconds: now)
        var response = APIResponse.ok(["task-id": .string(id)])
        response.pendingReplication = PendingReplication(taskID: id, revision: syncRevision)
        return response
    }

    /// What must hold for the whole change set at publish time: unique names against what others
    /// published meanwhile, and references that still resolve.
    func validateForPublish(_ target: Session) throws {
        do { try checkManagementServerBound(target.pending) } catch let error as ManagementError {
            throw ManagementError(code: "err_publish_failed", message: "Publish failed: \(error.message)", httpStatus: 500)
        }
        let reader = SessionView(published: store.reader, pending: target.pending)
        for change in target.orderedChanges {
            guard case .upsert(let object) = change else { continue }
            if object.type.hasUniqueName, reader.objects(named: object.name).contains(where: { $0.type.hasUniqueName && $0.uid != object.uid }) {
                throw ManagementError(
                    code: "err_publish_failed", message: "Publish failed: the name [\(object.name)] is already used by another object", httpStatus: 500)
            }
            for uid in object.referencedUIDs where reader.lookup(uid: uid) == nil {
                throw ManagementError(
                    code: "err_publish_failed", message: "Publish failed: [\(object.name)] refers to an object that no longer exists (\(uid))", httpStatus: 500)
            }
        }
    }

    func renderSession(_ session: Session, viewer: String) -> JSONValue {
        .object([
            "uid": .string(session.uid), "name": .string(session.name), "type": .string("session"),
            "state": .string(session.state == .open ? "open" : "disconnected"), "user-name": .string(session.user),
            "application": .string("WEB_API"), "changes": .int(Int64(session.pending.count)), "locks": .int(Int64(session.pending.count)),
            "in-work": .bool(!session.pending.isEmpty), "ip-address": .string(session.ipAddress),
            "last-login-time": Renderer.timestamp(session.loginMilliseconds), "session-timeout": .int(Int64(session.timeoutSeconds)),
            "last-activity-time": Renderer.timestamp(session.lastActivityMilliseconds), "read-only": .bool(session.readOnly),
            "connection-mode": .string(session.readOnly ? "read only" : "read write"),
            "expired-session": .bool(false), "description": .string(session.description),
            "current-session": .bool(session.uid == viewer), "domain": Renderer.defaultDomain,
        ])
    }

    func showSession(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        var target = try session(sessionUID)
        if let uid = params["uid"]?.stringValue {
            guard let other = sessions[uid] else { throw ManagementError.notFound(uid) }
            target = other
        }
        return APIResponse(body: renderSession(target, viewer: sessionUID))
    }

    func showSessions(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let (offset, limit) = try page(params)
        let all = sessions.values.sorted { $0.loginMilliseconds != $1.loginMilliseconds ? $0.loginMilliseconds < $1.loginMilliseconds : $0.uid < $1.uid }
        let level = try DetailsLevel.parse(params["details-level"])
        let items = all.dropFirst(offset).prefix(limit).map { level == .uid ? .string($0.uid) : renderSession($0, viewer: sessionUID) }
        return Self.listReply(Array(items), offset: offset, total: all.count)
    }

    func showTask(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        guard let given = params["task-id"] else { throw ManagementError.missing(["task-id"]) }
        let ids = given.arrayValue?.compactMap(\.stringValue) ?? [given.stringValue].compactMap { $0 }
        let full = (try DetailsLevel.parse(params["details-level"])) == .full
        var out: [JSONValue] = []
        for id in ids {
            guard let task = tasks.tasks[id] else { throw ManagementError.notFound(id) }
            out.append(TaskList.render(task, full: full))
        }
        return APIResponse.ok(["tasks": .array(out)])
    }

    func showTasks(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let (offset, limit) = try page(params)
        let all = tasks.newestFirst
        return Self.listReply(all.dropFirst(offset).prefix(limit).map { TaskList.render($0, full: false) }, offset: offset, total: all.count, key: "tasks")
    }

    // MARK: revisions

    func revisionSummary(_ revision: Revision) -> JSONValue {
        let deleted = revision.changes.filter {
            if case .delete = $0 { return true }
            return false
        }.count
        return .object([
            "number": .int(Int64(revision.number)), "hash": .string(revision.hash), "previous-hash": .string(revision.previousHash),
            "author": .string(revision.author), "session-uid": .string(revision.sessionUID), "session-name": .string(revision.sessionName),
            "publish-time": Renderer.timestamp(revision.publishedAtMilliseconds),
            "epoch": .object(["term": .int(Int64(revision.epoch.term)), "server": .string(revision.epoch.server)]),
            "changes": .int(Int64(revision.changes.count)), "deleted-objects": .int(Int64(deleted)),
            "added-or-modified-objects": .int(Int64(revision.changes.count - deleted)),
        ])
    }

    func revisionOperations(_ revision: Revision) -> JSONValue {
        var upserts: [JSONValue] = []
        var deletes: [JSONValue] = []
        for change in revision.changes {
            switch change {
            case .upsert(let object): upserts.append(object.jsonWithoutSecrets)
            case .delete(let uid, let type, let name): deletes.append(.object(["uid": .string(uid), "type": .string(type.rawValue), "name": .string(name)]))
            }
        }
        return .object(["added-or-modified-objects": .array(upserts), "deleted-objects": .array(deletes)])
    }

    /// Rampart's journal listing: newest first, with `number` to see one revision's changes.
    func showRevisions(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        if let given = params["number"] {
            let number = try given.integer("number", in: 1...Int64.max)
            guard let revision = try store.revisions(from: UInt64(number), limit: 1).first, revision.number == UInt64(number) else {
                throw ManagementError.notFound("revision \(number)")
            }
            guard case .object(var fields) = revisionSummary(revision) else { preconditionFailure("summary is an object") }
            fields["operations"] = revisionOperations(revision)
            return APIResponse(body: .object(fields))
        }
        let (offset, limit) = try page(params)
        let count = try store.revisionCount()
        let newest = count - offset
        let first = max(1, newest - limit + 1)
        let slice = newest >= 1 ? try store.revisions(from: UInt64(first), limit: newest - first + 1).reversed() : []
        return Self.listReply(slice.map(revisionSummary), offset: offset, total: count)
    }

    /// Check Point's show-changes: a task whose details list each published revision's operations.
    func showChanges(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let (offset, limit) = try page(params, defaultLimit: 10)
        let count = try store.revisionCount()
        let slice = try store.revisions(from: UInt64(offset + 1), limit: limit).filter { Int($0.number) <= count }
        let changes: [JSONValue] = slice.map { revision in
            .object([
                "session": .object([
                    "session-uid": .string(revision.sessionUID), "session-name": .string(revision.sessionName),
                    "user-name": .string(revision.author), "publish-time": Renderer.timestamp(revision.publishedAtMilliseconds),
                    "revision-number": .int(Int64(revision.number)),
                ]),
                "operations": revisionOperations(revision),
            ])
        }
        let id = tasks.finished("Show changes", status: "succeeded", details: [.object(["changes": .array(changes)])], nowMilliseconds: now)
        return APIResponse.ok(["task-id": .string(id)])
    }
}
