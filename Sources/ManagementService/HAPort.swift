import HACore
import ManagementModel

/// Management HA as the service drives it: the publish path (`HAWriteCoordinator`) and the
/// administrator's commands and status (`HAControl`). The server's HA runtime provides it at startup
/// (`ManagementService.attachHA`, HARuntime's `HAManagementBridge`); a server without HA takes every write.
public typealias HAPort = HAWriteCoordinator & HAControl

/// The publish path through HA.
public protocol HAWriteCoordinator: Sendable {
    /// Runs `append` (the store's commit of `revision`, visible but not yet synced) only while this
    /// server takes writes, tells HA about the revision before anything else can happen (it is sent to
    /// the standbys), and returns once the revision is durable here. Throws `HACommitError` (or what
    /// `append` threw): `.notTakingWrites` without calling `append`. Returns true when the publish
    /// must wait for a standby (`sync` replication mode): see `awaitReplication`.
    /// `payload`: the revision's canonical JSON, as replicated.
    func commit(_ revision: Revision, payload: [UInt8], _ append: () throws -> Void) throws -> Bool
    /// The epoch new revisions carry while this server takes writes.
    var writeEpoch: RevisionEpoch? { get }
    /// Nil when changes are accepted; otherwise a message naming the active server and its address.
    var writeRefusal: String? { get }
    var isStandby: Bool { get }
    /// Sync mode: waits until a standby holds revision `number` durably, or the mode's timeout.
    func awaitReplication(revision number: UInt64) async -> ReplicationOutcome
}

/// Why HA did not commit a publish.
public enum HACommitError: Error, Sendable, Equatable {
    /// This server does not take writes; the message names the active server and its address.
    case notTakingWrites(String)
    /// Committed here but not made durable: HA halted, and the publish is not confirmed.
    case notDurable(String)
}

/// What became of a publish in `sync` replication mode.
public enum ReplicationOutcome: Sendable, Equatable {
    case acknowledged
    /// No standby confirmed it in time: committed on the active and still replicating, not yet protected.
    case timedOut
    /// HA is stopped on the active: committed there only, replicated once HA starts again.
    case haStopped
    /// The HA group has no standby: committed on the active only.
    case noStandby
}

/// The HA commands (CHECKPOINT-API.md §3.6 and Rampart's `ha-*`), typed: the service parses the Web
/// API's parameters and renders the answers; the HA runtime carries them out. A command that does not
/// fit the server's HA state throws an `HACommandRefusal` saying why.
public protocol HAControl: Sendable {
    /// `show-ha-status` and `rampart ha status`.
    func statusReport() -> HAStatusReport
    /// Every server of the group, this one first (`show-ha-state`).
    func serverStates() -> [HAServerState]
    /// `dryRun`: only what a promotion would do. Otherwise a switchover when the active answers, a
    /// failover when it does not (refused when revisions may be lost unless `force`); returns once this
    /// server takes writes. May wait for peers.
    func promote(dryRun: Bool, force: Bool) async throws(HACommandRefusal) -> PromotionOutcome
    /// The active stops taking writes (a standby answers that it already is one).
    func demote() throws(HACommandRefusal) -> HACommandSummary
    func stop() throws(HACommandRefusal) -> HACommandSummary
    func start() throws(HACommandRefusal) -> HACommandSummary
    /// On the active: send standby `name` a full copy of the database.
    func requestFullSync(standby name: String) throws(HACommandRefusal) -> HACommandSummary
    /// After a collision: keep this server's data (`local`) or the active's (`peer`, exporting ours first).
    func resolveCollision(keep side: CollisionSide) throws(HACommandRefusal) -> CollisionResolution
    /// In collision: the revisions this server holds that the active lacks.
    func divergentRevisions() throws(HACommandRefusal) -> DivergentRevisions
    /// On the active; standbys follow it.
    func setReplicationMode(_ mode: ReplicationMode) throws(HACommandRefusal) -> HACommandSummary
}

/// Why HA did not carry out a command.
public struct HACommandRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The command does not fit this server's HA state (or the promotion did not complete).
        case invalidOperation
        /// A failover refused because revisions may be lost: forcing it would go ahead.
        case mayLoseRevisions
        /// A promotion refused because a peer's clock is off beyond the problem threshold: forcing it would go ahead.
        case clockSkew
        /// No server of the HA group has the name given.
        case unknownServer(String)
    }

    public let kind: Kind
    /// What happened, as the HA runtime puts it.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// What a command did, in one sentence (the HA core's decision).
public struct HACommandSummary: Sendable, Equatable {
    public let summary: String
    public init(_ summary: String) { self.summary = summary }
}

/// One server of the HA group as `show-ha-state` lists it.
public struct HAServerState: Sendable, Equatable {
    public let name: String
    /// Where it is reachable, as this server knows it; nil when unknown.
    public let address: String?
    public let isActive: Bool

    public init(name: String, address: String?, isActive: Bool) {
        self.name = name
        self.address = address
        self.isActive = isActive
    }
}

/// What a promotion did or would do.
public struct PromotionOutcome: Sendable, Equatable {
    public enum Completion: Sendable, Equatable {
        /// Only reported (`dryRun`).
        case dryRun
        /// This server already took writes; nothing was done.
        case alreadyActive(epoch: Epoch)
        /// This server takes writes in `epoch` after `elapsed`; `decision` is the core's.
        case promoted(epoch: Epoch, elapsed: Duration, decision: String)
    }

    /// The core's report (path, lag, loss); nil when it made none.
    public let report: PromotionReport?
    /// This server's trust, clock and version checks (never a refusal: they say what to fix).
    public let checks: [PromotionCheck]
    public let completion: Completion

    public init(report: PromotionReport?, checks: [PromotionCheck], completion: Completion) {
        self.report = report
        self.checks = checks
        self.completion = completion
    }
}

/// What `resolveCollision` did.
public struct CollisionResolution: Sendable, Equatable {
    public let summary: String
    /// Keeping the peer's data: where this server's divergent revisions were exported first.
    public let exportedTo: String?

    public init(summary: String, exportedTo: String?) {
        self.summary = summary
        self.exportedTo = exportedTo
    }
}

/// The revisions only this server holds, after a collision.
public struct DivergentRevisions: Sendable, Equatable {
    /// The last revision both sides hold.
    public let commonNumber: UInt64
    /// Each divergent revision's canonical JSON, in order.
    public let payloads: [[UInt8]]
    public let server: String

    public init(commonNumber: UInt64, payloads: [[UInt8]], server: String) {
        self.commonNumber = commonNumber
        self.payloads = payloads
        self.server = server
    }
}
