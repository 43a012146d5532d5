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
    case fullSync(FullSyncSender)
    /// Its journal holds revisions after `common` that this active lacks.
    case collision(common: UInt64, divergent: UInt64)
    /// Different schema version: no synchronization.
    case incompatible

    var isFullSync: Bool {
        if case .fullSync = self { return true }
        return false
    }
}

struct DeltaProgress: Equatable, Sendable {
    /// The standby's durable head (acknowledged).
    var matched: RevisionHead
    /// Revisions up to this number have been sent.
    var sentUpTo: UInt64
    var lastSentAtMilliseconds: UInt64
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
        /// Just started or restarted as active: writes are enabled on the first timer check.
        case awaitingStart
        case enabled
        /// Promoted while applied revisions are still being made durable.
        case awaitingDurable
        /// `ha demote`: still the epoch's owner, read-only, replicating, ready to hand over.
        case paused
        case handingOver(HandoverRecord)

        var description: String {
            switch self {
            case .awaitingStart: "starting"
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
    /// The promotion that made this server active was forced (reported with the first `enableWrites`).
    var forcedPromotion: Bool
    /// The epoch was announced to every peer since this server (re)started as active.
    var announced = false
    var pendingSyncPublishes: [PendingPublish] = []
}

/// Standby side.
struct StandbyState: Sendable {
    var link: StandbyLink = .connecting
    var lastHelloAtMilliseconds: UInt64?
    var wantsFullSync = false
    var activeKnownHead: RevisionHead?
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

    var name: String {
        switch self {
        case .connecting: "connecting"
        case .delta: "delta"
        case .fullSync: "full-sync"
        case .collision: "collision"
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
