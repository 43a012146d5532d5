import HACore

/// A write to the simulated disk that completes later (and is lost if the server crashes first).
enum DiskOperation {
    case applyRevisions([ReplicatedRevision])
    case stageSnapshotChunk(snapshotHead: RevisionHead, index: Int)
    case installSnapshot(snapshotHead: RevisionHead, spans: [EpochSpan], source: ServerID)
}

/// One server: its core (nil while crashed), its disk, and the runtime's view of its effects.
/// A class so that reading a field of its core never copies the whole core (this runs on every step).
final class SimulatedServer {
    let configuration: HAConfiguration
    /// Meaningful only while `isUp`; a crash keeps the stale value (not optional, so that stepping it
    /// mutates in place instead of copying it out and back).
    var core: HAStateMachine
    var isUp = true
    /// What survives a crash.
    var diskHardState: HardState?
    var diskJournal = Journal.empty
    var diskQueue: [(dueTick: Int, operation: DiskOperation)] = []
    /// The runtime enables writes only when the core says so.
    var writesEpoch: Epoch?
    var restartAtTick: Int?
    /// Raised by every crash: messages sent to an earlier incarnation are never delivered.
    var incarnation = 0
    /// Since when this incarnation has held writes in its current epoch (through pauses and aborted
    /// hand-overs), and whether it entered that epoch by promotion (rather than a restart in it).
    var writesHeld: (epoch: Epoch, sinceStep: Int, newEpoch: Bool)?
    /// Its publishes answered once durable here (async mode): revision hash → revision.
    var awaitingDurableAnswer: [String: ReplicatedRevision] = [:]
    /// Full-sync snapshots the runtime has built (newest last): as the real runtime, it builds one only
    /// at the current head, keeps `snapshotsKeptMax`, and forgets them all in a crash.
    var builtSnapshots: [RevisionHead] = []
    static let snapshotsKeptMax = 2
    /// Hashes of revisions exported for an administrator (durable).
    var exported: Set<String> = []
    var highestEpochSeen = Epoch.initial
    /// The last (epoch, head, active's head) found to satisfy the prefix invariant: unchanged, it still does.
    var prefixCheckedFor: (epoch: Epoch, head: RevisionHead, activeHead: RevisionHead)?

    init(configuration: HAConfiguration) {
        self.configuration = configuration
        core = HAStateMachine(configuration: configuration)
    }

    var id: ServerID { configuration.serverID }
}

/// A broken invariant: the seed reproduces it.
public struct SimulationViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var tick: Int
    public var invariant: String
    public var detail: String

    public var description: String {
        "invariant violated: \(invariant) at tick \(tick) (seed \(seed)): \(detail) — replay with: rampart sim --seed \(seed) --trace"
    }
}

/// A deterministic fake hash: chained like SHA-256 in the product, short enough to stay a small string.
func simulatedHash(previous: String, epoch: Epoch, number: UInt64, payload: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ value: UInt64) {
        hash = (hash ^ value) &* 0x0000_0100_0000_01b3
        hash ^= hash >> 29
    }
    for byte in previous.utf8 { mix(UInt64(byte)) }
    mix(epoch.term)
    for byte in epoch.server.name.utf8 { mix(UInt64(byte)) }
    mix(number)
    for byte in payload { mix(UInt64(byte)) }
    let digits = Array("0123456789abcdef".utf8)
    var text: [UInt8] = []
    text.reserveCapacity(15)
    for shift in stride(from: 56, through: 0, by: -4) { text.append(digits[Int((hash >> UInt64(shift)) & 0xf)]) }
    return String(decoding: text, as: UTF8.self)
}
