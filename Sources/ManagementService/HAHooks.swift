import ManagementModel
import Store

/// Management HA as the Web API sees it. The server's HA runtime provides it at startup
/// (`ManagementService.attachHA`); a server without HA takes every write.
public protocol HAWriteCoordinator: Sendable {
    /// Runs `append` (the store's commit of `revision`, visible but not yet synced) only while this
    /// server takes writes, tells HA about the revision before anything else can happen (it is sent to
    /// the standbys), and returns once the revision is durable here. Throws a `ManagementError`
    /// naming the active server otherwise, without calling `append`. Returns true when the publish
    /// must wait for a standby (`sync` replication mode): see `awaitReplication`.
    /// `payload`: the revision's canonical JSON, as replicated.
    func commit(_ revision: Revision, payload: [UInt8], _ append: () throws -> Void) throws -> Bool
    /// The epoch new revisions carry while this server takes writes.
    var writeEpoch: RevisionEpoch? { get }
    /// Nil when changes are accepted; otherwise a message naming the active server and its address.
    var writeRefusal: String? { get }
    var isStandby: Bool { get }
    /// The body of `show-ha-status` (CHECKPOINT-API.md §3.6 plus Rampart's fields).
    func showHAStatus() -> JSONValue
    /// Sync mode: waits until a standby holds revision `number` durably, or the mode's timeout.
    func awaitReplication(revision number: UInt64) async -> ReplicationOutcome
    /// Runs an HA command (the catalog's commands routed to HA); may wait for peers. Throws `ManagementError`.
    func haCommand(_ command: String, _ params: [String: JSONValue]) async throws -> JSONValue
}

/// What became of a publish in `sync` replication mode.
public enum ReplicationOutcome: Sendable, Equatable {
    case acknowledged
    /// No standby confirmed it in time: committed on the active and still replicating, not yet protected.
    case timedOut
}

extension ManagementService {
    /// Connects the HA runtime: from now on publishes go through it, and changes are refused while
    /// it does not take writes.
    public func attachHA(_ coordinator: any HAWriteCoordinator) { ha = coordinator }

    /// The epoch of the revisions this server publishes: HA's while it is active.
    var currentEpoch: RevisionEpoch { ha?.writeEpoch ?? epoch }

    /// Appends `revision` through HA when attached (it checks writes and replicates), else directly.
    /// True when the publish must wait for a standby (sync mode). `revision` was built by
    /// `Revision(after:)` just before: its JSON is serialized once, for the journal row and the
    /// replicated payload alike.
    @discardableResult
    func commitRevision(_ revision: Revision, session: ManagementStore.SessionRecord? = nil) throws -> Bool {
        let body = revision.json.canonicalString
        guard let ha else {
            try store.append(revision, session: session, checkedBody: body)
            return false
        }
        // Committed without waiting for the disk: HA sends it to the standbys, then syncs it here.
        return try ha.commit(revision, payload: Array(body.utf8)) { try store.appendVisible(revision, session: session, checkedBody: body) }
    }

    func showHAStatus() -> APIResponse {
        APIResponse(body: withLastBackup(ha?.showHAStatus() ?? ["uid": .string(Renderer.defaultDomain["uid"]?.stringValue ?? ""), "name": "SMC User",
                                                  "domain-type": "domain", "servers": [], "successfully-synced": true,
                                                  "rampart-ha": "not-configured"]))
    }

    // MARK: HA commands

    /// Runs an HA command for the session `sid` names: authorized here, carried out by the HA runtime
    /// outside the actor, recorded as a task for the commands Check Point answers with a task-id.
    nonisolated func handleHACommand(_ spec: CommandSpec, body: JSONValue, sid: String?) async -> APIResponse {
        do {
            guard case .object(let params) = body else { throw ManagementError(code: "generic_err_invalid_syntax", message: "The request body must be a JSON object", httpStatus: 400) }
            let (sessionUID, coordinator) = try await authorizeHACommand(spec, params, sid: sid)
            guard let coordinator else {
                throw ManagementError(code: "err_ha_invalid_operation", message: "HA is not running on this server", httpStatus: 400)
            }
            let result = try await coordinator.haCommand(spec.name, params)
            return await recordHAResult(spec.name, params, result, sessionUID: sessionUID)
        } catch let error as ManagementError {
            return APIResponse(status: error.httpStatus, body: error.body)
        } catch {
            return APIResponse(status: 500, body: ManagementError.internalError("\(error)").body)
        }
    }

    func authorizeHACommand(_ spec: CommandSpec, _ params: [String: JSONValue], sid: String?) throws -> (String, (any HAWriteCoordinator)?) {
        expireIdleSessions()
        let uid = try authenticate(sid)
        try authorize(spec, params, sessionUID: uid)
        return (uid, ha)
    }

    func recordHAResult(_ command: String, _ params: [String: JSONValue], _ result: JSONValue, sessionUID: String) -> APIResponse {
        switch command {
        case "set-ha-state", "ha-full-sync":
            let id = tasks.finished(command == "ha-full-sync" ? "HA full sync" : "Set HA state", status: "succeeded",
                                    comments: result["summary"]?.stringValue ?? "", details: [result], nowMilliseconds: now)
            // Check Point: a server that became standby ends the caller's session; it logs in again.
            let loginRequired = command == "set-ha-state" && params["new-state"]?.stringValue == "standby"
            if loginRequired { endSession(sessionUID) }
            return APIResponse.ok(["task-id": .string(id), "login-required": .bool(loginRequired)])
        default:
            return APIResponse(body: result)
        }
    }

    // MARK: sync-mode publish

    /// Publishes that wait for a standby (sync mode), by task id.
    func takeSyncPublish(_ response: APIResponse) -> (task: String, revision: UInt64)? {
        guard let id = response.body["task-id"]?.stringValue, let number = syncPublishes.removeValue(forKey: id) else { return nil }
        return (id, number)
    }

    /// Waits outside the actor for the standby's confirmation, then finishes the publish task.
    nonisolated func completeSyncPublish(_ response: APIResponse) async -> APIResponse {
        guard let (id, number) = await takeSyncPublish(response), let coordinator = await ha else { return response }
        let outcome = await coordinator.awaitReplication(revision: number)
        await finishSyncPublish(id, outcome)
        return response
    }

    func finishSyncPublish(_ id: String, _ outcome: ReplicationOutcome) {
        switch outcome {
        case .acknowledged:
            tasks.update(id, status: "succeeded", comments: "held durably by a standby", nowMilliseconds: now)
        case .timedOut:
            logger.warning("sync publish not confirmed by a standby in time", metadata: ["task": "\(id)"])
            tasks.update(id, status: "partially succeeded",
                         comments: "Published on the active, but no standby confirmed it in time: it is still being replicated and not yet protected against the loss of this server",
                         nowMilliseconds: now)
        }
    }
}
