import HACore
import ManagementModel
import Store

/// A publish waiting for a standby (sync replication mode): its task, and the revision a standby must hold.
struct PendingReplication: Sendable {
    let taskID: String
    let revision: UInt64
}

extension ManagementService {
    /// Connects the HA runtime: from now on publishes go through it, changes are refused while it does
    /// not take writes, and the HA commands run on it.
    public func attachHA(_ port: any HAPort) { ha = port }

    /// The epoch of the revisions this server publishes: HA's while it is active.
    var currentEpoch: RevisionEpoch { ha?.writeEpoch ?? epoch }

    /// Appends `revision` through HA when attached (it checks writes and replicates), else directly.
    /// True when the publish must wait for a standby (sync mode). `revision` was built by
    /// `Revision(after:)` just before: its JSON is serialized once, for the journal row and the
    /// replicated payload alike.
    @discardableResult
    func commitRevision(_ revision: Revision, session: ManagementStore.SessionRecord? = nil) throws -> Bool {
        let body = revision.json.canonicalString
        try Self.checkRevisionSize(body.utf8.count, changes: revision.changes.count)
        let awaitsStandby = try append(revision, session: session, body: body)
        events.publish(
            .revisionPublished(
                RevisionPublished(
                    number: revision.number, hash: revision.hash, author: revision.author,
                    sessionName: revision.sessionName, changes: revision.changes.count,
                    bytes: body.utf8.count)))
        return awaitsStandby
    }

    private func append(_ revision: Revision, session: ManagementStore.SessionRecord?, body: String) throws -> Bool {
        guard let ha else {
            try store.append(revision, session: session, checkedBody: body)
            return false
        }
        do {
            // Committed without waiting for the disk: HA sends it to the standbys, then syncs it here.
            return try ha.commit(revision, payload: Array(body.utf8)) { try store.appendVisible(revision, session: session, checkedBody: body) }
        } catch let error as HACommitError {
            switch error {
            case .notTakingWrites(let refusal): throw ManagementError.noPermissions(refusal)
            case .notDurable(let failure): throw ManagementError.internalError(failure)
            }
        }
    }

    /// Refuses (400, before anything is committed) a revision too large to reach the standbys.
    static func checkRevisionSize(_ bytes: Int, changes: Int) throws {
        guard bytes > PublishLimits.revisionBytesMax else { return }
        throw ManagementError(
            code: "err_publish_failed",
            message: "Publish failed: the revision of \(changes) changes would be \(bytes) bytes, more than the \(PublishLimits.revisionBytesMax) "
                + "one revision may hold (it must reach the standbys in one SIC frame); nothing was published. Publish the work in smaller "
                + "parts: discard this session's changes and make them again over several publishes",
            httpStatus: 400,
            details: ["revision-bytes": .int(Int64(bytes)), "revision-bytes-max": .int(Int64(PublishLimits.revisionBytesMax))])
    }

    // MARK: sync-mode publish

    /// A publish in sync mode answers once a standby holds its revision (or the mode's timeout
    /// passed): waits outside the actor, then finishes the publish task.
    nonisolated func completeSyncPublish(_ response: APIResponse) async -> APIResponse {
        guard let pending = response.pendingReplication, let coordinator = await ha else { return response }
        let outcome = await coordinator.awaitReplication(revision: pending.revision)
        await finishSyncPublish(pending.taskID, outcome)
        return response
    }

    func finishSyncPublish(_ id: String, _ outcome: ReplicationOutcome) {
        switch outcome {
        case .acknowledged:
            tasks.update(id, status: "succeeded", comments: "held durably by a standby", nowMilliseconds: now)
        case .timedOut:
            logger.warning("sync publish not confirmed by a standby in time", metadata: ["task": "\(id)"])
            unconfirmed(
                id,
                "Published on the active, but no standby confirmed it in time: it is still being replicated and not yet protected against the loss of this server"
            )
        case .haStopped:
            unconfirmed(
                id,
                "Published on the active only: HA is stopped here, so it is not replicated and not protected against the loss of this server until `rampart ha start`"
            )
        case .noStandby:
            unconfirmed(
                id, "Published on the active only: the HA group has no standby to hold it, so it is not protected against the loss of this server")
        }
    }

    private func unconfirmed(_ id: String, _ comments: String) {
        tasks.update(id, status: "partially succeeded", comments: comments, nowMilliseconds: now)
    }

    // MARK: status

    /// show-ha-status (CHECKPOINT-API.md §3.6 plus Rampart's fields), with this node's last backup.
    func showHAStatus(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        var report = ha?.statusReport() ?? .notConfigured
        report.lastBackup = lastBackup()
        return APIResponse(body: try report.jsonValue())
    }

    // MARK: HA commands

    /// The HA port, for a command that runs on it.
    func haControl() throws -> any HAPort {
        guard let ha else { throw ManagementError(code: "err_ha_invalid_operation", message: "HA is not running on this server", httpStatus: 400) }
        return ha
    }

    /// Check Point's show-ha-state: every server, this one included.
    nonisolated func showHAState(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let servers: [JSONValue] = try await haControl().serverStates().map { server in
            [
                "name": .string(server.name), "ip-address": .string(server.address ?? ""),
                "ha-state": .string(server.isActive ? "active" : "standby"), "multi-domain-server": false,
            ]
        }
        return APIResponse(body: [
            "domains": [
                [
                    "uid": .string(HAStatusReport.domainUID), "name": "SMC User", "domain-type": "domain",
                    "servers": .array(servers),
                ]
            ]
        ])
    }

    /// set-ha-state: `active` promotes this standby, `standby` stops this active's writes. Answered
    /// as a task; a server that became standby ends the caller's session (Check Point: log in again).
    nonisolated func setHAState(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        let result: JSONValue
        switch params["new-state"]?.stringValue?.lowercased() {
        case "active":
            result = try await promote(
                ha, force: params.flag("ignore-errors", default: false),
                forceHint: "ignore-errors: true in set-ha-state, or rampart ha promote --force")
        case "standby":
            result = Self.summary(try await Self.carryOut { () throws(HACommandRefusal) in try ha.demote() })
        case nil: throw ManagementError.missing(["new-state"])
        default: throw ManagementError.invalid("new-state", "expected active or standby")
        }
        let endsSession = params["new-state"]?.stringValue == "standby"
        return await recordHATask("Set HA state", result, endingSession: endsSession ? sessionUID : nil)
    }

    /// ha-promote: the dry run's report, or the promotion (switchover, or failover when the active is gone).
    nonisolated func haPromote(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        if try params.flag("dry-run", default: false) {
            return APIResponse(
                body: Self.promotionJSON(
                    try await Self.carryOut { () async throws(HACommandRefusal) in
                        try await ha.promote(dryRun: true, force: false)
                    }))
        }
        return APIResponse(
            body: try await promote(
                ha, force: params.flag("force", default: false),
                forceHint: "rampart ha promote --force, or force: true in ha-promote"))
    }

    /// `forceHint` names how the caller forces (each command has its own field; the CLI a flag).
    nonisolated func promote(_ ha: any HAPort, force: Bool, forceHint: String) async throws -> JSONValue {
        Self.promotionJSON(
            try await Self.carryOut(forceHint: forceHint) { () async throws(HACommandRefusal) in
                try await ha.promote(dryRun: false, force: force)
            })
    }

    nonisolated func haStop(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        return APIResponse(body: Self.summary(try await Self.carryOut { () throws(HACommandRefusal) in try ha.stop() }))
    }

    nonisolated func haStart(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        return APIResponse(body: Self.summary(try await Self.carryOut { () throws(HACommandRefusal) in try ha.start() }))
    }

    /// ha-full-sync (run on the active): answered as a task.
    nonisolated func haFullSync(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        guard let name = params["name"]?.stringValue else { throw ManagementError.missing(["name"]) }
        let result = Self.summary(try await Self.carryOut { () throws(HACommandRefusal) in try ha.requestFullSync(standby: name) })
        return await recordHATask("HA full sync", result, endingSession: nil)
    }

    nonisolated func haResolveCollision(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        guard let keep = params["keep"]?.stringValue else { throw ManagementError.missing(["keep"]) }
        guard let side = CollisionSide(rawValue: keep) else { throw ManagementError.invalid("keep", "expected local or peer") }
        let resolution = try await Self.carryOut { () throws(HACommandRefusal) in try ha.resolveCollision(keep: side) }
        var result: [String: JSONValue] = ["summary": .string(resolution.summary)]
        if let file = resolution.exportedTo { result["exported-to"] = .string(file) }
        return APIResponse(body: .object(result))
    }

    nonisolated func haExportDivergent(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        let divergent = try await Self.carryOut { () throws(HACommandRefusal) in try ha.divergentRevisions() }
        let revisions = divergent.payloads.map { (try? JSONValue.parse($0)) ?? .null }
        return APIResponse(body: [
            "common-revision": .int(Int64(clamping: divergent.commonNumber)), "revisions": .array(revisions),
            "server": .string(divergent.server),
        ])
    }

    nonisolated func haSetReplicationMode(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let ha = try await haControl()
        let mode: ReplicationMode
        switch params["mode"]?.stringValue {
        case "async": mode = .async
        case "sync":
            let timeout =
                try params["timeout-ms"]?.integer("timeout-ms", in: 1...HACommandLimits.syncTimeoutMillisecondsMax)
                ?? HACommandLimits.syncTimeoutMillisecondsDefault
            mode = .sync(timeoutMilliseconds: UInt64(timeout))
        case nil: throw ManagementError.missing(["mode"])
        default: throw ManagementError.invalid("mode", "expected async or sync")
        }
        return APIResponse(body: Self.summary(try await Self.carryOut { () throws(HACommandRefusal) in try ha.setReplicationMode(mode) }))
    }

    // MARK: answers

    /// Records a finished HA command as a task (Check Point answers set-ha-state and ha-full-sync with a
    /// task-id), ending the caller's session when the server became a standby.
    func recordHATask(_ name: String, _ result: JSONValue, endingSession sessionUID: String?) -> APIResponse {
        let id = tasks.finished(name, status: "succeeded", comments: result["summary"]?.stringValue ?? "", details: [result], nowMilliseconds: now)
        if let sessionUID { endSession(sessionUID) }
        return APIResponse.ok(["task-id": .string(id), "login-required": .bool(sessionUID != nil)])
    }

    /// Runs an HA port call; a refusal becomes the Web API's error: 400 `err_ha_invalid_operation`
    /// saying why (with how to force a failover that may lose revisions), 404 for an unknown server.
    static func carryOut<T>(forceHint: String? = nil, _ call: () async throws(HACommandRefusal) -> T) async throws(ManagementError) -> T {
        do {
            return try await call()
        } catch {
            switch error.kind {
            case .unknownServer(let name): throw ManagementError.notFound(name)
            case .mayLoseRevisions, .clockSkew:
                let hint = forceHint.map { " To promote anyway, force it: \($0)." } ?? ""
                throw ManagementError(code: "err_ha_invalid_operation", message: error.message + hint, httpStatus: 400)
            case .invalidOperation:
                throw ManagementError(code: "err_ha_invalid_operation", message: error.message, httpStatus: 400)
            }
        }
    }

    static func summary(_ summary: HACommandSummary) -> JSONValue { ["summary": .string(summary.summary)] }

    /// A promotion's answer: the core's report with this server's checks (each in `checks`, those not ok
    /// in the summary too), and once promoted the epoch it took writes in and how long it took.
    static func promotionJSON(_ outcome: PromotionOutcome) -> JSONValue {
        switch outcome.completion {
        case .alreadyActive(let epoch):
            return ["summary": .string("already active in epoch \(epoch)"), "path": "already-active"]
        case .dryRun:
            return .object(reportFields(outcome.report, checks: outcome.checks))
        case .promoted(let epoch, let elapsed, let decision):
            var result = reportFields(outcome.report, checks: outcome.checks)
            result["result"] = .string("active in epoch \(epoch)")
            result["elapsed-ms"] = .double(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
            result["decision"] = .string(decision)
            return .object(result)
        }
    }

    static func reportFields(_ report: PromotionReport?, checks: [PromotionCheck]) -> [String: JSONValue] {
        guard let report else { return ["summary": "no promotion report"] }
        let concerns = checks.filter { $0.status != .ok }.map { "\($0.status.rawValue) \($0.name): \($0.detail)" }
        var fields: [String: JSONValue] = [
            "path": .string(report.path.rawValue), "summary": .string(([report.summary] + concerns).joined(separator: "; ")),
            "checks": .array(checks.map { ["name": .string($0.name), "status": .string($0.status.rawValue), "detail": .string($0.detail)] }),
            "active-server": .string(report.activeServer.name), "active-reachable": .bool(report.activeReachable),
            "local-head": .int(Int64(clamping: report.localHead.number)), "replication-mode": .string("\(report.replicationMode)"),
            "may-lose-revisions": .bool(report.mayLoseRevisions),
        ]
        if let ago = report.lastContactMillisecondsAgo { fields["last-contact-ms-ago"] = .int(Int64(clamping: ago)) }
        if let known = report.activeKnownHead { fields["active-known-head"] = .int(Int64(clamping: known.number)) }
        if let lag = report.knownLagRevisions { fields["known-lag-revisions"] = .int(Int64(clamping: lag)) }
        return fields
    }
}

/// Bounds of a publish.
public enum PublishLimits {
    /// The frame limit between the HA group's servers (PeerTransport's `PeerLimits.groupFrameBytesMax`;
    /// this module does not depend on PeerTransport: `LimitRelations.validate` checks the two agree
    /// when a server starts).
    public static let haFrameBytesMax = 64 * 1024 * 1024
    /// Room left in a frame for an HA append message's envelope around one revision (its JSON header:
    /// epochs, heads, hashes, server names: well under 2 KiB).
    public static let appendEnvelopeBytesMax = 64 * 1024
    /// The largest revision a publish may make, in bytes of its canonical JSON. The active sends every
    /// revision to the standbys in an HA append message, its bytes after the envelope, in one SIC frame:
    /// a larger one could never reach them. 67,043,328 bytes: a session's `changesPerSessionMax`
    /// changes of up to `ordinaryChangeBytesMax` each.
    public static let revisionBytesMax = haFrameBytesMax - appendEnvelopeBytesMax
    /// An ordinary change in a revision: an added host with a name, an address, a comment and a few tags
    /// is about 320 bytes. Not enforced per change (one change may be far larger): the relation
    /// `changesPerSessionMax × ordinaryChangeBytesMax ≤ revisionBytesMax`, checked at start, promises
    /// that a full session of ordinary changes publishes in one revision.
    public static let ordinaryChangeBytesMax = 640
}

/// Bounds of the HA commands' parameters.
enum HACommandLimits {
    /// ha-set-replication-mode's `timeout-ms` when none is given, and the longest it takes.
    static let syncTimeoutMillisecondsDefault: Int64 = 2_000
    static let syncTimeoutMillisecondsMax: Int64 = 600_000
}
