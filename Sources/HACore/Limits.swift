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
    /// Timers are looked at no more often than this; a tick in between only records the time.
    public var timerResolutionMilliseconds: UInt64 = 50
    /// Revisions in one `append` message.
    public var appendBatchRevisionsMax: Int = 64
    /// Revisions sent to one standby and not yet acknowledged.
    public var inFlightRevisionsMax: UInt64 = 256
    /// Sync-mode publishes waiting for a standby; the oldest times out early past this.
    public var pendingSyncPublishesMax: Int = 1_024
    /// How long a switchover may take before the standby gives up and the active resumes writes.
    public var switchoverTimeoutMilliseconds: UInt64 = 3_000
    /// How long a failover waits for every other standby to report its head.
    public var promotionPollTimeoutMilliseconds: UInt64 = 1_000
    /// Servers in one HA group, this one included.
    public var serversMax: Int = 8
    /// Bytes in one full-sync snapshot chunk (the runtime reads chunks no larger than this).
    public var snapshotChunkBytesMax: Int = 1 << 20
    /// An unacknowledged snapshot chunk is sent again after this long.
    public var snapshotRetransmitMilliseconds: UInt64 = 300
    /// A standby whose full sync made no progress this long says hello again (applied chunks are kept).
    public var fullSyncStallMilliseconds: UInt64 = 1_000

    public init() {}

    /// The limits of real servers over TCP. The channel is reliable, so a chunk is only lost with its
    /// connection: resending it early only competes with it for a slow link, and a chunk must be able
    /// to take seconds (a 256 KiB chunk at 1 Mbit/s takes 2 s). The defaults stay tight for simulation.
    public static var overNetwork: HALimits {
        var limits = HALimits()
        limits.snapshotChunkBytesMax = 256 << 10
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

    public init(serverID: ServerID, peers: [ServerID], softwareVersion: String = "0.1.0",
                schemaVersion: UInt32 = 1, limits: HALimits = HALimits()) {
        precondition(!peers.contains(serverID), "a server is not its own peer")
        precondition(peers.count + 1 <= limits.serversMax, "more servers than HALimits.serversMax")
        self.serverID = serverID
        self.peers = peers.sorted()
        self.softwareVersion = softwareVersion
        self.schemaVersion = schemaVersion
        self.limits = limits
    }
}

/// FNV-1a, 64 bit: the checksum of a full-sync chunk. It catches corruption in transit, not attackers
/// (the channel is mutual TLS); it keeps HACore free of crypto dependencies.
public func snapshotChunkChecksum(_ bytes: [UInt8]) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    return hash
}
