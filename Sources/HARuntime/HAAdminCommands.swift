import Foundation
import HACore
import ManagementModel
import ManagementService

/// The HA commands (`HAControl`), carried out on the runtime. The management service parses the Web
/// API's parameters and renders the answers; here they are typed calls and typed refusals.
extension HAManagementBridge {
    /// How long a promotion may take before the command reports it did not complete (a switchover
    /// needs the active to flush and answer; a failover poll needs every other standby).
    static let promotionTimeoutMilliseconds: UInt64 = 15_000

    /// The kind of refusal a core (or runtime) refusal code is: the one place its codes are read.
    static func refusalKind(_ refusal: HARefusal) -> HACommandRefusal.Kind {
        refusal == .mayLoseRevisions ? .mayLoseRevisions : .invalidOperation
    }

    /// Runs `command` on the core; its decision in words, or why it refused.
    func decide(_ command: AdminCommand) throws(HACommandRefusal) -> HACommandSummary {
        let outcome = runtime.admin(command)
        if let refusal = outcome.refusal { throw HACommandRefusal(Self.refusalKind(refusal), "\(outcome.reason)") }
        return HACommandSummary("\(outcome.reason)")
    }

    public func serverStates() -> [HAServerState] {
        let status = runtime.status
        return ([status.serverID] + status.peers.map(\.serverID)).map { id in
            HAServerState(name: id.name, address: activeAddress(id), isActive: id == status.activeServer)
        }
    }

    // MARK: promotion

    /// Switchover when the active answers, failover otherwise; returns once this server takes writes.
    public func promote(dryRun: Bool, force: Bool) async throws(HACommandRefusal) -> PromotionOutcome {
        if dryRun {
            return PromotionOutcome(report: runtime.admin(.promote(dryRun: true, force: false)).report, checks: promotionChecks(), completion: .dryRun)
        }
        if runtime.writesEnabled {
            return PromotionOutcome(report: nil, checks: [], completion: .alreadyActive(epoch: runtime.status.epoch))
        }
        let checks = promotionChecks()
        if !force, let clock = checks.first(where: { $0.name == "clock" && $0.status == .problem }) {
            let threshold = Double(facts.thresholds.problemMilliseconds) / 1000
            throw HACommandRefusal(
                .clockSkew, "refused: a peer's clock is off by more than the problem threshold (\(threshold) s): \(clock.detail).")
        }
        let started = ContinuousClock.now
        let outcome = runtime.admin(.promote(dryRun: false, force: force))
        if let refusal = outcome.refusal { throw HACommandRefusal(Self.refusalKind(refusal), "\(outcome.reason).") }
        guard await runtime.awaitWritesEnabled(timeoutMilliseconds: Self.promotionTimeoutMilliseconds) else {
            let status = runtime.snapshot
            throw HACommandRefusal(
                .invalidOperation,
                "the promotion did not complete within \(Self.promotionTimeoutMilliseconds / 1000) s (\(outcome.reason)); mode now \(status.core.role), last error: \(status.lastError ?? "none")"
            )
        }
        return PromotionOutcome(
            report: outcome.report, checks: checks,
            completion: .promoted(epoch: runtime.status.epoch, elapsed: ContinuousClock.now - started, decision: "\(outcome.reason)"))
    }

    public func demote() throws(HACommandRefusal) -> HACommandSummary {
        if runtime.status.role == .standby { return HACommandSummary("already a standby") }
        return try decide(.demote)
    }

    // MARK: sync and collisions

    public func stop() throws(HACommandRefusal) -> HACommandSummary { try decide(.haStop) }
    public func start() throws(HACommandRefusal) -> HACommandSummary { try decide(.haStart) }

    public func requestFullSync(standby name: String) throws(HACommandRefusal) -> HACommandSummary {
        let status = runtime.status
        guard status.role == .active else {
            throw HACommandRefusal(.invalidOperation, "ha-full-sync runs on the active server (\(status.activeServer)); this server is a standby")
        }
        guard status.peers.contains(where: { $0.serverID.name == name }) else {
            throw HACommandRefusal(.unknownServer(name), "no server \(name) in the HA group")
        }
        return try decide(.requestFullSync(standby: ServerID(name)))
    }

    public func resolveCollision(keep side: CollisionSide) throws(HACommandRefusal) -> CollisionResolution {
        let summary = try decide(.resolveCollision(keep: side))
        return CollisionResolution(summary: summary.summary, exportedTo: side == .peer ? runtime.lastExport : nil)
    }

    public func divergentRevisions() throws(HACommandRefusal) -> DivergentRevisions {
        let found: (commonNumber: UInt64, payloads: [[UInt8]])?
        do {
            found = try runtime.divergentRevisions()
        } catch {
            throw HACommandRefusal(.invalidOperation, "the divergent revisions could not be read from the journal: \(error)")
        }
        guard let divergent = found else {
            throw HACommandRefusal(.invalidOperation, "this server is not in collision: there are no divergent revisions to export")
        }
        return DivergentRevisions(
            commonNumber: divergent.commonNumber, payloads: divergent.payloads,
            server: runtime.status.serverID.name)
    }

    public func setReplicationMode(_ mode: ReplicationMode) throws(HACommandRefusal) -> HACommandSummary {
        try decide(.setReplicationMode(mode))
    }
}
