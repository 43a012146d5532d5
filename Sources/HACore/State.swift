/// What this server knows about one peer (volatile except what `PeerRecord` keeps).
struct PeerState: Sendable {
    let id: ServerID
    var lastHeardAtMilliseconds: UInt64?
    var knownHead: RevisionHead
    var haStopped = false
    /// The peer's last heartbeat said it is active (in whatever epoch it was in).
    var actsAsActive = false
    var everSynchronized: Bool
    var synchronizedAtMilliseconds: UInt64?
    var reportedStatusKind: String?
    /// The replication mode its last heartbeat carried (what it would act on in a failover).
    var reportedMode: ReplicationMode?
    /// Active only: how this standby is being synchronized.
    var replication: PeerReplication = .awaitingHello

    init(record: PeerRecord) {
        id = record.serverID
        knownHead = record.lastKnownHead
        everSynchronized = record.everSynchronized
    }
}

/// Active side: the synchronization of one standby.
enum PeerReplication: Equatable, Sendable {
    /// No hello in this epoch yet: its journal is unchecked, nothing is sent.
    case awaitingHello
    case delta(DeltaProgress)
    // The two large states are boxed (`indirect`): every peer's replication state is read on most
    // steps, and copying a 200-byte enum each time cost more than a rare allocation.
    indirect case fullSync(FullSyncSender)
    /// Its hello's checkpoints only bound where its journal parts from ours: asking for its hashes
    /// in between (`forkProbe`) before deciding delta sync, discard or collision.
    indirect case probingFork(ForkProbe)
    /// Its journal holds revisions after `common` that this active lacks.
    case collision(common: UInt64, divergent: UInt64)
    /// Different schema version: no synchronization.
    case incompatible

}

/// Active side: where a standby's journal parts from ours, narrowed round by round.
struct ForkProbe: Equatable, Sendable {
    /// The hello being answered.
    var hello: HAMessage.Hello
    /// The last revision known to be the same on both sides.
    var shared: UInt64
    /// The first revision known to differ (held by only one side, or with another hash).
    var firstDiffering: UInt64
    /// A full sync of this standby that was under way when its hello came: resumed if it still fits.
    var fullSyncUnderWay: FullSyncSender?

    /// Nothing left between the bounds (or a peer's checkpoints out of order left them crossed).
    var isExact: Bool { firstDiffering <= shared + 1 }

    /// Up to `limit` numbers strictly between the bounds, evenly spread.
    func numbersToAsk(limit: Int) -> [UInt64] {
        guard !isExact else { return [] }
        let gap = firstDiffering - shared - 1
        guard gap > UInt64(limit) else { return Array((shared + 1)..<firstDiffering) }
        let step = gap / UInt64(limit + 1)
        return (1...UInt64(limit)).map { shared + step * $0 }
    }
}

struct DeltaProgress: Equatable, Sendable {
    /// The standby's durable head (acknowledged).
    var matched: RevisionHead
    /// Revisions up to this number have been sent.
    var sentUpTo: UInt64
    var lastSentAtMilliseconds: UInt64
    /// Payload bytes of the last append sent: a large one waits longer before it is sent again.
    var lastSentPayloadBytes: Int = 0
}

struct FullSyncSender: Equatable, Sendable {
    var snapshotHead: RevisionHead
    var spans: [EpochSpan]
    /// Known once the runtime answered the first read (the snapshot is built).
    var chunkCount: Int?
    var offerAcknowledged = false
    /// Chunks the standby holds durably: `0 ..< acknowledgedChunks`.
    var acknowledgedChunks = 0
    /// Chunks `acknowledgedChunks ..< nextToSend` are on their way (at most `snapshotChunksInFlightMax`).
    var nextToSend = 0
    /// A chunk read asked of the runtime and not answered yet (one at a time).
    var readRequested: Int?
    var lastSentAtMilliseconds: UInt64

    init(snapshotHead: RevisionHead, spans: [EpochSpan], chunkCount: Int?, lastSentAtMilliseconds: UInt64) {
        self.snapshotHead = snapshotHead
        self.spans = spans
        self.chunkCount = chunkCount
        self.lastSentAtMilliseconds = lastSentAtMilliseconds
    }
}

struct ActiveState: Sendable {
    enum Writes: Equatable, Sendable, CustomStringConvertible {
        /// Started or restarted as the active, or resuming after a pause or an aborted hand-over that
        /// began before a restart: writes come on once `unconfirmedPeers` is empty.
        case awaitingPeers
        case enabled
        /// Promoted while applied revisions are still being made durable.
        case awaitingDurable
        /// `ha demote`: still the epoch's owner, read-only, replicating, ready to hand over.
        case paused
        case handingOver(HandoverRecord)

        var description: String {
            switch self {
            case .awaitingPeers: "waiting for every peer to answer with no higher epoch"
            case .enabled: "writes enabled"
            case .awaitingDurable: "waiting for applied revisions to become durable"
            case .paused: "demoted by an administrator"
            case .handingOver(let handover): "handing over to \(handover.target) at \(handover.finalHead)"
            }
        }
    }

    struct PendingPublish: Sendable {
        var number: UInt64
        var committedAtMilliseconds: UInt64
    }

    var writes: Writes
    /// Peers not heard from, in no higher epoch, since this server (re)started as the active or was
    /// promoted again after a pause: one of them may have been promoted while it was down or its writes
    /// were off, so it takes no writes until this is empty (or an operator forces a promotion). Empty
    /// after a promotion, which itself heard from the others.
    var unconfirmedPeers: [ServerID] = []
    /// The promotion that made this server active was forced (reported with the first `enableWrites`).
    var forcedPromotion: Bool
    /// The epoch was announced to every peer since this server (re)started as active.
    var announced = false
    var pendingSyncPublishes: [PendingPublish] = []
    /// When the hand-over under way was last sent to its target (volatile: a restart sends it at once).
    var handoverSentAtMilliseconds: UInt64?

    /// What a standby holds as its (unused) active state.
    static let idle = ActiveState(writes: .awaitingPeers, forcedPromotion: false)

    /// Why writes are off, in words (for refusals and status).
    var writesDescription: String {
        guard writes == .awaitingPeers, !unconfirmedPeers.isEmpty else { return writes.description }
        return
            "waiting for \(unconfirmedPeers.map(\.name).joined(separator: ", ")) to answer with no higher epoch, since one may have been promoted while this server was down or its writes were off (ha promote --force takes writes now)"
    }
}

/// Standby side.
struct StandbyState: Sendable {
    var link: StandbyLink = .connecting
    var lastHelloAtMilliseconds: UInt64?
    var wantsFullSync = false
    var activeKnownHead: RevisionHead?
    /// In a collision: the active's hash of the common revision, when it holds it (see `collision`).
    var collisionCommonHash: String?
    var activeLastHeardAtMilliseconds: UInt64?
    var synchronizedAtMilliseconds: UInt64?
    var promotion: PendingPromotion?
}

enum StandbyLink: Equatable, Sendable {
    /// Saying hello until the active answers.
    case connecting
    /// Verified by the active: receiving revisions.
    case delta
    case fullSync(FullSyncReceiver)
    case collision(common: UInt64, divergent: UInt64)

    var state: StandbyLinkState {
        switch self {
        case .connecting: .connecting
        case .delta: .delta
        case .fullSync: .fullSync
        case .collision: .collision
        }
    }
}

struct FullSyncReceiver: Equatable, Sendable {
    var snapshotHead: RevisionHead
    var chunkCount: Int
    var spans: [EpochSpan]
    var nextIndex: Int
    var applying: Int?
    /// A chunk arrived while another was being applied and was dropped: the next ack asks for a resend.
    var droppedWhileApplying = false
    var lastProgressAtMilliseconds: UInt64
}

enum PendingPromotion: Sendable {
    case switchover(switchoverID: UInt64, startedAtMilliseconds: UInt64, finalHead: RevisionHead?)
    case poll(CandidatePoll)
}

struct CandidatePoll: Sendable {
    var oldActive: ServerID
    var startedAtMilliseconds: UInt64
    var answered: [ServerID] = []

    func required(among peers: [PeerState]) -> [ServerID] {
        peers.map(\.id).filter { $0 != oldActive }
    }
}
