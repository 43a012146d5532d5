import Foundation
import HACore
import ManagementService
import ManagementModel

/// The Web API's HA commands (CHECKPOINT-API.md §3.6 and Rampart's `ha-*`), carried out on the runtime.
struct HAAdminCommands {
    let runtime: HARuntime
    let links: HAPeerLinks
    let activeAddress: @Sendable (ServerID) -> String?
    var promotionChecks: @Sendable () -> [PromotionCheck] = { [] }

    /// How long a promotion may take before the command reports it did not complete (a switchover
    /// needs the active to flush and answer; a failover poll needs every other standby).
    static let promotionTimeoutMilliseconds: UInt64 = 15_000
    static let syncTimeoutMillisecondsDefault: Int64 = 2_000

    func run(_ command: String, _ params: [String: JSONValue]) async throws -> JSONValue {
        switch command {
        case "show-ha-state": return showHAState()
        case "set-ha-state": return try await setHAState(params)
        case "ha-promote":
            if try params.flag("dry-run", default: false) { return reportJSON(runtime.admin(.promote(dryRun: true, force: false)).report) }
            return try await promote(force: params.flag("force", default: false),
                                     forceHint: "rampart ha promote --force, or force: true in ha-promote")
        case "ha-stop": return try simple(.haStop)
        case "ha-start": return try simple(.haStart)
        case "ha-full-sync": return try fullSync(params)
        case "ha-resolve-collision": return try resolveCollision(params)
        case "ha-export-divergent": return try exportDivergent()
        case "ha-set-replication-mode": return try setReplicationMode(params)
        default: throw ManagementError(code: "generic_err_command_not_found", message: "Command '\(command)' not found", httpStatus: 404)
        }
    }

    static func invalidOperation(_ message: String) -> ManagementError {
        ManagementError(code: "err_ha_invalid_operation", message: message, httpStatus: 400)
    }

    func simple(_ command: AdminCommand) throws -> JSONValue {
        let outcome = runtime.admin(command)
        if outcome.refusedCode != nil { throw Self.invalidOperation(outcome.reason) }
        return ["summary": .string(outcome.reason)]
    }

    // MARK: promotion

    func setHAState(_ params: [String: JSONValue]) async throws -> JSONValue {
        switch params["new-state"]?.stringValue?.lowercased() {
        case "active":
            return try await promote(force: params.flag("ignore-errors", default: false),
                                     forceHint: "ignore-errors: true in set-ha-state, or rampart ha promote --force")
        case "standby":
            if runtime.status.role == .standby { return ["summary": "already a standby"] }
            return try simple(.demote)
        case nil: throw ManagementError.missing(["new-state"])
        default: throw ManagementError.invalid("new-state", "expected active or standby")
        }
    }

    /// Switchover when the active answers, failover otherwise; returns once this server takes writes.
    /// `forceHint` names how the caller forces (each command has its own field; the CLI a flag).
    func promote(force: Bool, forceHint: String) async throws -> JSONValue {
        if runtime.writesEnabled { return ["summary": .string("already active in epoch \(runtime.status.epoch)"), "path": "already-active"] }
        let started = ContinuousClock.now
        let outcome = runtime.admin(.promote(dryRun: false, force: force))
        var result = reportFields(outcome.report)
        if outcome.refusedCode != nil {
            let hint = outcome.refusedCode == "may-lose-revisions" ? " To promote anyway, force it: \(forceHint)." : ""
            throw Self.invalidOperation("\(outcome.reason).\(hint)")
        }
        guard await runtime.awaitWritesEnabled(timeoutMilliseconds: Self.promotionTimeoutMilliseconds) else {
            let status = runtime.snapshot
            throw Self.invalidOperation("the promotion did not complete within \(Self.promotionTimeoutMilliseconds / 1000) s (\(outcome.reason)); mode now \(status.core.role), last error: \(status.lastError ?? "none")")
        }
        let elapsed = ContinuousClock.now - started
        result["result"] = .string("active in epoch \(runtime.status.epoch)")
        result["elapsed-ms"] = .double(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
        result["decision"] = .string(outcome.reason)
        return .object(result)
    }

    func reportJSON(_ report: PromotionReport?) -> JSONValue { .object(reportFields(report)) }

    /// The core's report, with this server's trust, clock and version checks: each in `checks`, and
    /// those that are not ok in the summary too.
    func reportFields(_ report: PromotionReport?) -> [String: JSONValue] {
        guard let report else { return ["summary": "no promotion report"] }
        let checks = promotionChecks()
        let concerns = checks.filter { $0.status != .ok }.map { "\($0.status.rawValue) \($0.name): \($0.detail)" }
        var fields: [String: JSONValue] = [
            "path": .string(report.path.rawValue), "summary": .string(([report.summary] + concerns).joined(separator: "; ")),
            "checks": .array(checks.map { ["name": .string($0.name), "status": .string($0.status.rawValue), "detail": .string($0.detail)] }),
            "active-server": .string(report.activeServer.name), "active-reachable": .bool(report.activeReachable),
            "local-head": .int(Int64(report.localHead.number)), "replication-mode": .string("\(report.replicationMode)"),
            "may-lose-revisions": .bool(report.mayLoseRevisions),
        ]
        if let ago = report.lastContactMillisecondsAgo { fields["last-contact-ms-ago"] = .int(Int64(ago)) }
        if let known = report.activeKnownHead { fields["active-known-head"] = .int(Int64(known.number)) }
        if let lag = report.knownLagRevisions { fields["known-lag-revisions"] = .int(Int64(lag)) }
        return fields
    }

    // MARK: sync and collisions

    func fullSync(_ params: [String: JSONValue]) throws -> JSONValue {
        guard let name = params["name"]?.stringValue else { throw ManagementError.missing(["name"]) }
        let status = runtime.status
        guard status.role == .active else {
            throw Self.invalidOperation("ha-full-sync runs on the active server (\(status.activeServer)); this server is a standby")
        }
        guard status.peers.contains(where: { $0.serverID.name == name }) else { throw ManagementError.notFound(name) }
        return try simple(.requestFullSync(standby: ServerID(name)))
    }

    func resolveCollision(_ params: [String: JSONValue]) throws -> JSONValue {
        guard let keep = params["keep"]?.stringValue else { throw ManagementError.missing(["keep"]) }
        guard let side = CollisionSide(rawValue: keep) else { throw ManagementError.invalid("keep", "expected local or peer") }
        var result = try simple(.resolveCollision(keep: side)).objectValue ?? [:]
        if side == .peer, let file = runtime.lastExport { result["exported-to"] = .string(file) }
        return .object(result)
    }

    func exportDivergent() throws -> JSONValue {
        guard let divergent = runtime.divergentRevisions else {
            throw Self.invalidOperation("this server is not in collision: there are no divergent revisions to export")
        }
        let revisions = divergent.revisions.map { (try? JSONValue.parse($0.payload)) ?? .null }
        return ["common-revision": .int(Int64(divergent.commonNumber)), "revisions": .array(revisions),
                "server": .string(runtime.status.serverID.name)]
    }

    func setReplicationMode(_ params: [String: JSONValue]) throws -> JSONValue {
        switch params["mode"]?.stringValue {
        case "async": return try simple(.setReplicationMode(.async))
        case "sync":
            let timeout = try params["timeout-ms"]?.integer("timeout-ms", in: 1...600_000) ?? Self.syncTimeoutMillisecondsDefault
            return try simple(.setReplicationMode(.sync(timeoutMilliseconds: UInt64(timeout))))
        case nil: throw ManagementError.missing(["mode"])
        default: throw ManagementError.invalid("mode", "expected async or sync")
        }
    }

    // MARK: state

    /// Check Point's show-ha-state: every server, this one included.
    func showHAState() -> JSONValue {
        let status = runtime.status
        let ids = [status.serverID] + status.peers.map(\.serverID)
        let servers: [JSONValue] = ids.map { id in
            ["name": .string(id.name), "ip-address": .string(activeAddress(id) ?? ""),
             "ha-state": .string(id == status.activeServer ? "active" : "standby"), "multi-domain-server": false]
        }
        return ["domains": [["uid": Renderer.defaultDomain["uid"] ?? "", "name": "SMC User", "domain-type": "domain",
                             "servers": .array(servers)]]]
    }
}
