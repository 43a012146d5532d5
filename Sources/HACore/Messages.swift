/// A protocol message between management servers. Every message carries the sender's epoch: a receiver
/// adopts a higher one at once (an active demotes) and answers a lower one with its own.
public struct HAMessage: Hashable, Sendable {
    public var epoch: Epoch
    public var body: Body

    public init(epoch: Epoch, body: Body) {
        self.epoch = epoch
        self.body = body
    }

    public enum Body: Hashable, Sendable {
        /// Standby → active: who I am and what I hold, so the active picks delta sync, full sync or collision.
        /// Boxed (`indirect`): the largest body by far and a rare one, so every other message is smaller.
        indirect case hello(Hello)
        /// Active → standby: revisions after `previous`, at most `HALimits.appendBatchRevisionsMax` and
        /// `appendBatchPayloadBytesMax` payload bytes (at least one revision when there is one to send).
        case append(previous: RevisionHead, revisions: [ReplicatedRevision], activeHead: RevisionHead)
        /// Standby → active: what I hold durably (and in memory). `gap` asks to resend from my head.
        case ack(durableHead: RevisionHead, head: RevisionHead, gap: Bool)
        /// Everyone → everyone, every `heartbeatIntervalMilliseconds`.
        case heartbeat(Heartbeat)
        /// Active → standby: a snapshot at `snapshotHead` in `chunkCount` chunks follows.
        case snapshotOffer(snapshotHead: RevisionHead, chunkCount: Int, spans: [EpochSpan])
        case snapshotChunk(snapshotHead: RevisionHead, index: Int, bytes: [UInt8], checksum: UInt64)
        /// Standby → active: chunks before `nextIndex` are applied durably. `resend`: what the active sent
        /// after that is lost or unusable, send again from `nextIndex` (the standby starts or restarts
        /// receiving, or a chunk failed its checksum); otherwise the chunks in flight are still coming.
        case snapshotAck(snapshotHead: RevisionHead, nextIndex: Int, resend: Bool)
        case snapshotDone(snapshotHead: RevisionHead)
        /// Standby → active: please stop writes and hand over to me. The id ties the answers to this
        /// request, so a late answer to an older one is never taken for it.
        case switchoverRequest(switchoverID: UInt64)
        /// Active → standby: writes are stopped; this is my final head. Take over once you hold it.
        case handover(switchoverID: UInt64, finalHead: RevisionHead)
        /// Either way: the switchover will not happen (`reason` says why).
        case switchoverAbort(switchoverID: UInt64, reason: SwitchoverAbortReason)
        /// A server that became active (or restarted as active) tells everyone its epoch.
        case epochAnnouncement(head: RevisionHead)
        /// A failover candidate, already in its new epoch, asks what everyone holds before enabling writes.
        case promotionPoll
        case pollReply(durableHead: RevisionHead, spans: [EpochSpan])
        /// Active → standby: your journal holds `divergentCount` revisions after `commonNumber` that I lack.
        /// `commonHash`: my hash of revision `commonNumber` (nil when I no longer hold it individually),
        /// so that a standby whose core compacted its journal past it can still drop what follows it.
        case collision(commonNumber: UInt64, divergentCount: UInt64, activeHead: RevisionHead, commonHash: String? = nil)
        /// Active → standby: your revisions after `number` are all of `epoch` (nil: my own), and I do not
        /// hold them all: their author (I, or the active that handed `epoch` over to me) lost them in a
        /// crash before its fsync, so no publish of them was ever answered. Drop them all (what I still
        /// hold comes back by delta sync) and say hello again. `afterHash`: my hash of revision `number`
        /// (nil when I no longer hold it individually), as in `collision`. `standbyHead`: the head of the
        /// hello this answers; a standby whose journal has moved on since ignores it (a delayed or
        /// duplicated hello answered late would drop revisions it received after; nil from an older sender).
        case discardUnsyncedTail(after: UInt64, epoch: Epoch?, afterHash: String? = nil, standbyHead: RevisionHead? = nil)
        /// Active → standby, answering a hello whose checkpoints only bound where our journals part:
        /// your hashes at these numbers, please (at most `HALimits.forkProbeNumbersMax`).
        case forkProbe(numbers: [UInt64])
        /// Standby → active: the hashes it holds at the numbers asked, from its journal at `head`.
        case forkProbeReply(head: RevisionHead, heads: [RevisionHead])
    }

    public struct Hello: Hashable, Sendable {
        public var serverID: ServerID
        public var head: RevisionHead
        public var durableHead: RevisionHead
        public var spans: [EpochSpan]
        public var softwareVersion: String
        public var schemaVersion: UInt32
        public var wantsFullSync: Bool
        /// Earlier heads of the journal, newest first: `head` - 1, - 2, - 4, ... and the snapshot base, so
        /// that an active that lost revisions it had sent finds the last one it still shares.
        public var checkpoints: [RevisionHead]

        public init(
            serverID: ServerID, head: RevisionHead, durableHead: RevisionHead, spans: [EpochSpan],
            softwareVersion: String, schemaVersion: UInt32, wantsFullSync: Bool, checkpoints: [RevisionHead] = []
        ) {
            self.checkpoints = checkpoints
            self.serverID = serverID
            self.head = head
            self.durableHead = durableHead
            self.spans = spans
            self.softwareVersion = softwareVersion
            self.schemaVersion = schemaVersion
            self.wantsFullSync = wantsFullSync
        }
    }

    public struct Heartbeat: Hashable, Sendable {
        public var head: RevisionHead
        public var durableHead: RevisionHead
        public var role: HARole
        public var writesEnabled: Bool
        public var haStopped: Bool
        public var replicationMode: ReplicationMode
        /// Active → standby: I have no replication state for you (I restarted): say hello.
        public var expectingHello: Bool

        public init(
            head: RevisionHead, durableHead: RevisionHead, role: HARole, writesEnabled: Bool,
            haStopped: Bool, replicationMode: ReplicationMode, expectingHello: Bool
        ) {
            self.head = head
            self.durableHead = durableHead
            self.role = role
            self.writesEnabled = writesEnabled
            self.haStopped = haStopped
            self.replicationMode = replicationMode
            self.expectingHello = expectingHello
        }
    }

    /// A short name for traces and logs.
    public var kindName: String {
        switch body {
        case .hello: "hello"
        case .append: "append"
        case .ack: "ack"
        case .heartbeat: "heartbeat"
        case .snapshotOffer: "snapshot-offer"
        case .snapshotChunk: "snapshot-chunk"
        case .snapshotAck: "snapshot-ack"
        case .snapshotDone: "snapshot-done"
        case .switchoverRequest: "switchover-request"
        case .handover: "handover"
        case .switchoverAbort: "switchover-abort"
        case .epochAnnouncement: "epoch-announcement"
        case .promotionPoll: "promotion-poll"
        case .pollReply: "poll-reply"
        case .collision: "collision"
        case .discardUnsyncedTail: "discard-unsynced-tail"
        case .forkProbe: "fork-probe"
        case .forkProbeReply: "fork-probe-reply"
        }
    }
}

/// A message to send to one peer.
public struct Envelope: Hashable, Sendable {
    public var to: ServerID
    public var message: HAMessage

    public init(to: ServerID, message: HAMessage) {
        self.to = to
        self.message = message
    }
}
