/// Runtime HA mode of a server. Exactly one server is active per epoch.
public enum HARole: String, Hashable, Sendable {
    case active
    case standby
}

/// When a publish counts as done.
public enum ReplicationMode: Hashable, Sendable, CustomStringConvertible {
    /// Publish returns once the active committed it (the default, as in Check Point).
    case async
    /// Publish is acknowledged (`publishAcknowledged`) only once at least one standby holds it durably.
    /// After `timeoutMilliseconds` without that, the core reports `publishTimedOut`: the revision stays
    /// committed on the active and keeps replicating, but the caller is told it is not yet protected.
    case sync(timeoutMilliseconds: UInt64)

    public var description: String {
        switch self {
        case .async: "async"
        case .sync(let timeout): "sync(\(timeout)ms)"
        }
    }
}

/// Which side's data an administrator keeps when resolving a collision.
public enum CollisionSide: String, Hashable, Sendable {
    /// Keep this server's revisions: it is promoted (a forced promotion); the other side then reports
    /// the collision and exports its own divergent revisions when resolved there.
    case local
    /// Keep the active's revisions: this server exports its divergent revisions, then drops them and syncs.
    case peer
}

/// Full-sync progress a standby persists so that an interrupted full sync resumes where it stopped.
public struct FullSyncProgress: Hashable, Sendable {
    public var snapshotHead: RevisionHead
    public var chunkCount: Int
    public var chunksApplied: Int

    public init(snapshotHead: RevisionHead, chunkCount: Int, chunksApplied: Int) {
        self.snapshotHead = snapshotHead
        self.chunkCount = chunkCount
        self.chunksApplied = chunksApplied
    }
}

/// An active that stopped writes to hand over to `target` at `finalHead`. Persisted before the hand-over
/// is sent: an active that crashes and restarts must not take writes again while `target` may take over.
public struct HandoverRecord: Hashable, Sendable {
    public var target: ServerID
    public var switchoverID: UInt64
    public var finalHead: RevisionHead

    public init(target: ServerID, switchoverID: UInt64, finalHead: RevisionHead) {
        self.target = target
        self.switchoverID = switchoverID
        self.finalHead = finalHead
    }
}

/// Active only: the epoch this server took over by a switchover, and its author's final head. The
/// author had stopped writes and this server held every revision it kept: a standby's other revisions of
/// that epoch were lost by their author before their fsync (no publish of them was answered).
public struct TakeoverRecord: Hashable, Sendable {
    /// The epoch handed over, and the head its author handed over at.
    public var epoch: Epoch
    public var finalHead: RevisionHead
    /// The epoch this server became active in by that switchover.
    public var takenInEpoch: Epoch

    public init(epoch: Epoch, finalHead: RevisionHead, takenInEpoch: Epoch) {
        self.epoch = epoch
        self.finalHead = finalHead
        self.takenInEpoch = takenInEpoch
    }
}

/// What a peer was last known to hold. Advisory: refreshed whenever other hard state is persisted.
public struct PeerRecord: Hashable, Sendable {
    public var serverID: ServerID
    public var lastKnownHead: RevisionHead
    public var everSynchronized: Bool

    public init(serverID: ServerID, lastKnownHead: RevisionHead = .empty, everSynchronized: Bool = false) {
        self.serverID = serverID
        self.lastKnownHead = lastKnownHead
        self.everSynchronized = everSynchronized
    }
}

/// The state that must survive a crash. `HAOutput.persist` carries it whenever it changed, and it must be
/// durable (fsync) before that output's messages are sent or its effects carried out.
public struct HardState: Hashable, Sendable {
    /// The highest epoch this server has seen. Never goes backwards.
    public var epoch: Epoch
    public var role: HARole
    public var replicationMode: ReplicationMode
    public var haStopped: Bool
    /// The HA group's other servers, sorted.
    public var peers: [PeerRecord]
    public var fullSyncProgress: FullSyncProgress?
    /// Active only: an administrator demoted it (writes stay off across restarts until promoted again).
    public var writesPaused: Bool
    /// Active only: a switchover in progress (writes stay off across restarts until it is aborted).
    public var handover: HandoverRecord?
    /// Active only: this epoch was just created by installing the group's first server, or by a
    /// restore whose operator checked that no other server of the group answers; its first start
    /// takes writes without waiting to hear from the peers. Cleared once writes are enabled: every
    /// later start waits (a standby may have been promoted while this server was down).
    public var takesWritesAtFirstStart: Bool
    /// Active only: the switchover that made it active, if one did.
    public var takeover: TakeoverRecord?
    /// The lowest revision number from which this server ever dropped revisions from its journal or
    /// installed a snapshot over it (a collision resolved, an unsynced tail discarded, a full sync):
    /// from there on its journal may hold copies of others in place of what it wrote. Nil: never.
    public var journalReplacedFrom: UInt64?

    public init(
        epoch: Epoch = .initial, role: HARole, replicationMode: ReplicationMode = .async,
        haStopped: Bool = false, peers: [PeerRecord], fullSyncProgress: FullSyncProgress? = nil,
        writesPaused: Bool = false, handover: HandoverRecord? = nil, takesWritesAtFirstStart: Bool = false, takeover: TakeoverRecord? = nil,
        journalReplacedFrom: UInt64? = nil
    ) {
        self.epoch = epoch
        self.role = role
        self.replicationMode = replicationMode
        self.haStopped = haStopped
        self.peers = peers
        self.fullSyncProgress = fullSyncProgress
        self.writesPaused = writesPaused
        self.handover = handover
        self.takesWritesAtFirstStart = takesWritesAtFirstStart
        self.takeover = takeover
        self.journalReplacedFrom = journalReplacedFrom
    }
}

/// Administrator commands (`rampart ha ...`, `set-ha-state`, `ha-full-sync`, ...).
public enum AdminCommand: Hashable, Sendable {
    /// Make this standby active: switchover when the active is reachable, failover otherwise.
    /// `dryRun` only reports; `force` fails over even when revisions may be lost.
    case promote(dryRun: Bool, force: Bool)
    /// On the active: stop taking writes (stay the epoch's owner so a standby can switch over without loss).
    case demote
    case haStop
    case haStart
    /// On the active: resend everything to `standby` as a snapshot. On a standby naming itself: ask for one.
    case requestFullSync(standby: ServerID)
    case resolveCollision(keep: CollisionSide)
    case addPeer(ServerID)
    case removePeer(ServerID)
    /// On the active; standbys learn the mode from its heartbeats.
    case setReplicationMode(ReplicationMode)
}

/// A full-sync chunk the runtime read from its snapshot for a standby (answer to `readSnapshotChunk`).
public struct SnapshotChunkRead: Hashable, Sendable {
    public var standby: ServerID
    public var snapshotHead: RevisionHead
    public var index: Int
    public var chunkCount: Int
    public var bytes: [UInt8]

    public init(standby: ServerID, snapshotHead: RevisionHead, index: Int, chunkCount: Int, bytes: [UInt8]) {
        self.standby = standby
        self.snapshotHead = snapshotHead
        self.index = index
        self.chunkCount = chunkCount
        self.bytes = bytes
    }
}

/// Everything that can happen to the core.
public enum HAInput: Hashable, Sendable {
    /// Time passes. `now` is milliseconds on a monotonic clock; it never goes backwards.
    case tick(now: UInt64)
    case receive(from: ServerID, message: HAMessage)
    case admin(AdminCommand)
    /// On the active: the runtime committed this publish (the next revision, in this epoch), visibly but
    /// not necessarily durably yet: the core sends it to the standbys at once, and the runtime makes it
    /// durable after that send and reports `persistedUpTo`. A publish is answered only after that report
    /// (and in sync mode after `publishAcknowledged`, which also waits for it). The runtime checks
    /// `writesEnabled`, commits and reports without feeding any other input in between (one actor
    /// turn), so a demotion can never slip between the check and the report.
    case revisionCommitted(ReplicatedRevision)
    /// The runtime made the journal durable up to `head` (after `applyRevisions`, `completeFullSync`, or
    /// on the active after `revisionCommitted`).
    case persistedUpTo(RevisionHead)
    case snapshotChunkRead(SnapshotChunkRead)
    /// On the active: the snapshot at `snapshotHead` cannot be read for `standby` (the runtime builds a
    /// snapshot only at its current head, and keeps few; or building or reading it failed).
    case snapshotUnavailable(standby: ServerID, snapshotHead: RevisionHead)
    /// The runtime durably applied a snapshot chunk (after `applySnapshotChunk`).
    case snapshotChunkApplied(snapshotHead: RevisionHead, index: Int)
    /// A new channel to `peer` is up (opened or accepted): what was on its way over the old one is
    /// lost with it. The active sends it again at once rather than when its retransmit timer fires
    /// (10 s for snapshot chunks over a network). Harmless at any time: at worst a resend.
    case linkRestored(peer: ServerID)
}

/// Per-standby synchronization status, as DESIGN.md §1 names it.
public enum PeerSyncStatus: Hashable, Sendable, CustomStringConvertible {
    case neverSynchronized
    case fullSync(chunksApplied: Int, chunkCount: Int)
    case synchronized
    case lagging(revisions: UInt64, milliseconds: UInt64)
    case communicationError
    case collision(divergentRevisions: UInt64)
    case haStopped

    /// The status without its figures: a change of kind is what `statusChanged` reports.
    public var kind: String {
        switch self {
        case .neverSynchronized: "never-synchronized"
        case .fullSync: "full-sync"
        case .synchronized: "synchronized"
        case .lagging: "lagging"
        case .communicationError: "communication-error"
        case .collision: "collision"
        case .haStopped: "ha-stopped"
        }
    }

    public var description: String {
        switch self {
        case .fullSync(let applied, let count): "full-sync (\(applied)/\(count) chunks)"
        case .lagging(let revisions, let milliseconds): "lagging (\(revisions) revisions, \(milliseconds / 1000) s)"
        case .collision(let divergent): "collision (\(divergent) divergent revisions)"
        default: kind
        }
    }
}

/// What a promotion would do, or did: the dry run's answer.
public struct PromotionReport: Hashable, Sendable, CustomStringConvertible {
    public enum Path: String, Hashable, Sendable {
        case alreadyActive = "already-active"
        case switchover
        case failover
        case refused
    }

    public var path: Path
    public var activeServer: ServerID
    public var activeReachable: Bool
    /// Milliseconds since the active was last heard from, nil if never.
    public var lastContactMillisecondsAgo: UInt64?
    public var localHead: RevisionHead
    /// The active's head when last heard from, nil if unknown.
    public var activeKnownHead: RevisionHead?
    public var replicationMode: ReplicationMode
    /// Revisions known to be missing here; nil when unknown.
    public var knownLagRevisions: UInt64?
    /// True when revisions may be lost (the failover needs `force`).
    public var mayLoseRevisions: Bool
    public var summary: String

    public var description: String { summary }
}

/// Something the runtime must do, in order, after persisting `HAOutput.persist`.
public enum HAEffect: Hashable, Sendable {
    /// Accept publishes in `epoch` (this server is its active). `forced` marks a promotion that may have
    /// lost revisions (forced failover, or a collision resolved in this server's favour).
    case enableWrites(epoch: Epoch, forced: Bool)
    /// Refuse publishes from now on (fenced, demoted, or handing over).
    case disableWrites
    /// Standby: apply these revisions in order, one transaction each, verifying their hashes; then report
    /// `persistedUpTo`.
    case applyRevisions([ReplicatedRevision])
    /// Active: read chunk `index` of a snapshot at `snapshotHead` for `standby`; answer `snapshotChunkRead`,
    /// or `snapshotUnavailable` when there is no such snapshot and it cannot be built (only the current
    /// head can be). The first read of a head is asked while the journal is still at that head.
    case readSnapshotChunk(standby: ServerID, snapshotHead: RevisionHead, index: Int)
    /// Standby: stage this verified chunk durably; answer `snapshotChunkApplied`.
    case applySnapshotChunk(snapshotHead: RevisionHead, index: Int, bytes: [UInt8])
    /// Standby: atomically replace the database and journal by the staged snapshot; then `persistedUpTo`.
    case completeFullSync(snapshotHead: RevisionHead, spans: [EpochSpan])
    /// Write every revision after `after` somewhere an administrator can take them: they are about to be
    /// dropped. `revisions` are those the core holds individually; the storage exports every one it holds
    /// after `after` (more when the core compacted its journal), and a backup of the whole database when
    /// it lacks one of them. `snapshotBase` is set when the divergence reaches under the core's base.
    /// Must be durable before the next effect.
    case exportDivergent(after: UInt64, revisions: [ReplicatedRevision], snapshotBase: RevisionHead?)
    /// Drop every revision after `number` (only ever right after `exportDivergent` of exactly those).
    /// A `number` under the core's base leaves the core's journal empty (a full sync follows) unless the
    /// active gave its hash of revision `number`; the storage keeps what it holds up to `number`.
    case truncateJournal(after: UInt64)
    /// Standby: drop every revision after `number` without an export. Only revisions of the active's
    /// epoch that the active itself no longer holds: lost in its crash before its fsync, never answered
    /// to anyone (the active answers a publish only once it holds it durably). What the active does
    /// hold comes back by delta sync.
    case discardUnsyncedRevisions(after: UInt64)
    /// Sync mode: the publish of revision `number` is now held durably by a standby.
    case publishAcknowledged(revision: UInt64)
    /// Sync mode: no standby confirmed revision `number` in time (or this server was demoted first).
    case publishTimedOut(revision: UInt64)
    case statusChanged(peer: ServerID, status: PeerSyncStatus)
    /// Boxed (`indirect`): by far the largest effect, and a rare one.
    indirect case promotionReport(PromotionReport)
    /// An administrator command was refused: a stable code; the output's reason explains.
    case commandRefused(HARefusal)

    /// Effects of every publish or snapshot chunk: not worth a log line each at the default level.
    public var isRoutine: Bool {
        switch self {
        case .applyRevisions, .readSnapshotChunk, .applySnapshotChunk, .publishAcknowledged: true
        default: false
        }
    }
}

/// The result of one `step`.
///
/// Contract (as etcd raft's `Ready`): the runtime first makes `persist` durable (if not nil), then sends
/// `messages`, then carries out `effects` in order. A crash in between is safe because nothing was sent
/// or done that the persisted state does not already account for.
public struct HAOutput: Hashable, Sendable {
    /// The hard state to make durable first; nil when it did not change (most steps).
    public var persist: HardState? {
        get { persistBox?.hardState }
        set { persistBox = newValue.map(HardStateBox.init) }
    }
    /// Boxed: a hard state is over 200 bytes, and an output is returned and passed on by every step.
    private var persistBox: HardStateBox?
    public var messages: [Envelope]
    public var effects: [HAEffect]
    /// Why: the decisions taken (printable as prose), for the log, the simulator and tests.
    public var reason: HAReason

    public init(persist: HardState? = nil, messages: [Envelope] = [], effects: [HAEffect] = [], reason: HAReason) {
        self.init(persistBox: persist.map(HardStateBox.init), messages: messages, effects: effects, reason: reason)
    }

    init(persistBox: HardStateBox?, messages: [Envelope], effects: [HAEffect], reason: HAReason) {
        self.persistBox = persistBox
        self.messages = messages
        self.effects = effects
        self.reason = reason
    }
}

/// An immutable hard state behind a reference, compared by value.
final class HardStateBox: Hashable, Sendable {
    let hardState: HardState
    init(_ hardState: HardState) { self.hardState = hardState }
    static func == (left: HardStateBox, right: HardStateBox) -> Bool { left.hardState == right.hardState }
    func hash(into hasher: inout Hasher) { hasher.combine(hardState) }
}

/// A peer as this server sees it.
public struct PeerView: Hashable, Sendable {
    public var serverID: ServerID
    public var status: PeerSyncStatus
    public var knownHead: RevisionHead
    public var lastContactMillisecondsAgo: UInt64?
    /// On the active: revisions the peer lacks. On a standby, for the active: revisions this server
    /// lacks of the last head the active reported (nil if it never did). The same figure the
    /// promotion dry run gives.
    public var lagRevisions: UInt64?
    /// On the active: since the peer last held every revision. On a standby, for the active: since we did.
    public var synchronizedMillisecondsAgo: UInt64?

    public init(
        serverID: ServerID, status: PeerSyncStatus, knownHead: RevisionHead, lastContactMillisecondsAgo: UInt64? = nil,
        lagRevisions: UInt64? = nil, synchronizedMillisecondsAgo: UInt64? = nil
    ) {
        self.serverID = serverID
        self.status = status
        self.knownHead = knownHead
        self.lastContactMillisecondsAgo = lastContactMillisecondsAgo
        self.lagRevisions = lagRevisions
        self.synchronizedMillisecondsAgo = synchronizedMillisecondsAgo
    }
}

/// A standby's own link to the active, as `HAStatus.link` shows it.
public enum StandbyLinkState: String, Hashable, Sendable, CustomStringConvertible {
    /// Saying hello until the active answers.
    case connecting
    /// Verified by the active: receiving revisions.
    case delta
    case fullSync = "full-sync"
    /// Its journal holds revisions the active lacks: nothing is synchronized until resolved.
    case collision

    public var description: String { rawValue }
}

/// What `rampart ha status` shows.
public struct HAStatus: Hashable, Sendable {
    public var serverID: ServerID
    public var role: HARole
    public var epoch: Epoch
    public var writesEnabled: Bool
    public var activeServer: ServerID
    public var head: RevisionHead
    public var durableHead: RevisionHead
    public var replicationMode: ReplicationMode
    public var haStopped: Bool
    /// Standby only (nil on the active): its own link to the active.
    public var link: StandbyLinkState?
    public var divergentRevisions: UInt64
    public var peers: [PeerView]
    /// Standby: a promotion (switchover or failover poll) it started is still under way.
    public var promotionInProgress: Bool = false
    /// Nil when writes are taken here; otherwise why not.
    public var writesRefusal: String?

    /// Standby: its own synchronization with the active, as it reports it for the active.
    public var activePeer: PeerView? { peers.first { $0.serverID == activeServer } }
}
