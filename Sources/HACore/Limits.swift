/// Every bound and timer of the HA core, in one place. Times are milliseconds of the `tick(now:)` clock.
public struct HALimits: Hashable, Sendable {
    /// How often every server tells every peer its epoch, head and role.
    public var heartbeatIntervalMilliseconds: UInt64 = 100
    /// Silence after which a peer counts as unreachable (`communication-error`, failover instead of switchover).
    public var peerTimeoutMilliseconds: UInt64 = 1_000
    /// A standby that has not been answered says hello again after this long.
    public var helloRetryMilliseconds: UInt64 = 300
    /// Unacknowledged appends and snapshot chunks are sent again after this long.
    public var retransmitMilliseconds: UInt64 = 300
    /// An append is given this many payload bytes per millisecond more before it is sent again: a
    /// standby applies a 32 MB revision for seconds, and resending it every `retransmitMilliseconds`
    /// meanwhile would only fill the channel. Conservative (1 MB/s): small appends keep the short timer.
    public var retransmitAllowanceBytesPerMillisecond: UInt64 = 1_000
    /// Timers are looked at no more often than this; a tick in between only records the time.
    public var timerResolutionMilliseconds: UInt64 = 50
    /// Revisions in one `append` message.
    public var appendBatchRevisionsMax: Int = 64
    /// Payload bytes in one `append` message (their sum): a batch of large revisions stops short of
    /// `appendBatchRevisionsMax`. On the wire a payload grows by a third (base64) plus its fields, so
    /// 4 MiB leaves a wide margin under PeerTransport's 16 MiB frame limit. A batch always carries
    /// at least one revision: one larger than this travels alone.
    public var appendBatchPayloadBytesMax: Int = 4 << 20
    /// Revisions sent to one standby and not yet acknowledged.
    public var inFlightRevisionsMax: UInt64 = 256
    /// Sync-mode publishes waiting for a standby; the oldest times out early past this.
    public var pendingSyncPublishesMax: Int = 1_024
    /// After a switch to async mode, publishes wait for a standby (as in sync mode) until every peer
    /// holds the async mode, at most this long each.
    public var asyncUnconfirmedTimeoutMilliseconds: UInt64 = 2_000
    /// How long a switchover may take before the standby gives up and the active resumes writes.
    public var switchoverTimeoutMilliseconds: UInt64 = 3_000
    /// How long a failover waits for every other standby to report its head.
    public var promotionPollTimeoutMilliseconds: UInt64 = 1_000
    /// Servers in one HA group, this one included.
    public var serversMax: Int = 8
    /// Bytes in one full-sync snapshot chunk (the runtime reads chunks no larger than this).
    public var snapshotChunkBytesMax: Int = 1 << 20
    /// Snapshot chunks sent to one standby and not yet acknowledged: the next ones travel while the
    /// standby stages the first, so a full sync is not one round trip per chunk.
    public var snapshotChunksInFlightMax: Int = 4
    /// Chunks in one snapshot offer: 16 TiB at 1 MiB a chunk. A larger count is refused (it would only
    /// come from a broken or hostile peer, and chunk offsets must fit in 64 bits).
    public var snapshotChunkCountMax: Int = 1 << 24
    /// An unacknowledged snapshot chunk is sent again after this long.
    public var snapshotRetransmitMilliseconds: UInt64 = 300
    /// A standby whose full sync made no progress this long says hello again (applied chunks are kept).
    public var fullSyncStallMilliseconds: UInt64 = 1_000
    /// Revisions the core holds individually (hash and size, 48 bytes each): past this it forgets the
    /// older half, as after a snapshot (`Journal.compact`), so its memory stays bounded over a server's
    /// life (at one publish a minute 100,000 is about 70 days). The payloads stay in the store; a
    /// standby that far behind gets a full sync instead of a delta, and a divergence reaching that far
    /// back is exported by the runtime from the store.
    public var journalRevisionsHeldMax: Int = 100_000

    /// Checkpoints in a hello: one per doubling of the distance from the head (a 64-bit revision
    /// number), and the base.
    public static let helloCheckpointsMax = 65

    /// Numbers asked in one fork probe: each round narrows the range where two journals part by this
    /// factor (plus one), so even a 64-bit range takes at most 11 rounds.
    public static let forkProbeNumbersMax = 64

    public init() {}

    /// The limits of real servers over TCP. The channel is reliable, so a chunk is only lost with its
    /// connection: resending it early only competes with it for a slow link, and the chunks in flight
    /// must be able to take seconds (4 chunks of 1 MiB at 640 KB/s take 6.5 s). The defaults stay
    /// tight for simulation.
    public static var overNetwork: HALimits {
        var limits = HALimits()
        limits.snapshotChunkBytesMax = 1 << 20
        limits.snapshotChunksInFlightMax = 4
        limits.snapshotRetransmitMilliseconds = 10_000
        limits.fullSyncStallMilliseconds = 30_000
        return limits
    }
}

/// How a server is set up: who it is, who its peers are, what it runs.
public struct HAConfiguration: Hashable, Sendable {
    public var serverID: ServerID
    /// The other servers of the HA group (not this one), in any order; the core keeps them sorted.
    public var peers: [ServerID]
    public var softwareVersion: String
    /// Servers with different schema versions refuse to synchronize.
    public var schemaVersion: UInt32
    public var limits: HALimits

    public init(
        serverID: ServerID, peers: [ServerID], softwareVersion: String = "0.1.0",
        schemaVersion: UInt32 = 1, limits: HALimits = HALimits()
    ) {
        precondition(!peers.contains(serverID), "a server is not its own peer")
        precondition(peers.count + 1 <= limits.serversMax, "more servers than HALimits.serversMax")
        self.serverID = serverID
        self.peers = peers.sorted()
        self.softwareVersion = softwareVersion
        self.schemaVersion = schemaVersion
        self.limits = limits
    }
}

/// The checksum of a full-sync chunk. It catches corruption in transit, not attackers (the channel is
/// mutual TLS); it keeps HACore free of crypto dependencies. It reads 8 bytes a step (a chunk is a
/// megabyte): each step (xor, multiply by an odd constant, rotate) is a bijection of the running
/// value, so any one changed word, or byte of the tail, always changes the result.
public func snapshotChunkChecksum(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ value: UInt64) {
        let product = (hash ^ value) &* 0x9e37_79b9_7f4a_7c15
        hash = (product << 31) | (product >> 33)
    }
    bytes.withUnsafeBytes { raw in
        let words = raw.count / 8
        for word in 0..<words { mix(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: word * 8, as: UInt64.self))) }
        for byte in raw[(words * 8)...] { mix(UInt64(byte)) }
    }
    return hash
}
