import HACore
import HADriverKit

/// A write to the simulated disk that completes later (and is lost if the server crashes first).
enum DiskOperation {
    case applyRevisions([ReplicatedRevision])
    case stageSnapshotChunk(snapshotHead: RevisionHead, index: Int)
    case installSnapshot(snapshotHead: RevisionHead, spans: [EpochSpan], source: ServerID)
}

/// The HA driver as the simulator runs it: the same code as the server's runtime, over a fake disk
/// and a seeded network.
typealias SimulatedDriver = HADriver<SimulatedRuntime, SimulatedLink, SimulatedRuntime>

/// One server: its driver and core (stale while crashed), its runtime, and what the invariant checks
/// remember. A class so that reading a field of its core never copies the whole core (this runs on
/// every step).
final class SimulatedServer {
    let configuration: HAConfiguration
    let runtime: SimulatedRuntime
    /// Meaningful only while `isUp`; a crash keeps the stale value (not optional, so that stepping it
    /// mutates in place instead of copying it out and back).
    var driver: SimulatedDriver
    var isUp = true
    var restartAtTick: Int?
    var highestEpochSeen = Epoch.initial
    /// The last (epoch, head, active's head) found to satisfy the prefix invariant: unchanged, it still does.
    var prefixCheckedFor: (epoch: Epoch, head: RevisionHead, activeHead: RevisionHead)?

    init(configuration: HAConfiguration, index: Int, cluster: SimulatedCluster) {
        self.configuration = configuration
        runtime = SimulatedRuntime(id: configuration.serverID, index: index, cluster: cluster)
        driver = SimulatedDriver(
            core: HAStateMachine(configuration: configuration), storage: runtime,
            transport: SimulatedLink(index: index, cluster: cluster), host: runtime)
    }

    var id: ServerID { configuration.serverID }

    /// A new process: a core rebuilt from what the disk holds, driven by a new driver.
    func start() {
        let core = HAStateMachine(configuration: configuration, hardState: runtime.diskHardState, journal: runtime.diskJournal)
        driver = SimulatedDriver(core: core, storage: runtime, transport: driver.transport, host: runtime)
        isUp = true
        restartAtTick = nil
    }
}

/// A server's messages onto the simulated network.
struct SimulatedLink: HATransport {
    let index: Int
    /// The cluster owns its servers and outlives them (unsafe: no reference count on every call).
    unowned(unsafe) let cluster: SimulatedCluster

    func send(_ envelope: Envelope) { cluster.send(envelope, from: index) }
}

/// A simulated storage read of something no server ever wrote.
struct SimulatedStorageFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One server's runtime as the simulator fakes it: its disk (what survives a crash, and writes still
/// on their way, completing a few ticks later in order) and what the real runtime would show (writes
/// on, publishes awaiting their answer). It is the driver's storage and host; its completions go
/// through the cluster's inbox, in order, as an asynchronous disk's would.
final class SimulatedRuntime: HAStorage, HAHost {
    let id: ServerID
    let index: Int
    /// The cluster owns its servers and outlives them (unsafe: no reference count on every call).
    unowned(unsafe) let cluster: SimulatedCluster
    /// What survives a crash.
    var diskHardState: HardState?
    var diskJournal = Journal.empty
    var diskQueue: [DiskWrite] = []
    /// A write on its way to the disk (a struct: arrays of tuples go through generic runtime witnesses).
    struct DiskWrite {
        var dueTick: Int
        var operation: DiskOperation
    }
    /// The runtime enables writes only when the core says so.
    var writesEpoch: Epoch? { didSet { writesEpochSets &+= 1 } }
    /// Counts the times `writesEpoch` was set: a step that set it is checked (comparing the epoch
    /// before and after every step was a measurable share of the time).
    var writesEpochSets: UInt64 = 0
    /// Since when this incarnation has held writes in its current epoch (through pauses and aborted
    /// hand-overs), and whether it entered that epoch by promotion (rather than a restart in it).
    var writesHeld: (epoch: Epoch, sinceStep: Int, newEpoch: Bool)?
    /// When this incarnation, the active of `epoch` with writes off (a restart in it, or promoted again
    /// after a pause), began waiting for every peer to answer in no higher epoch.
    var askingPeersSince: (epoch: Epoch, step: Int)?
    /// Its publishes answered once durable here (async mode): revision hash → revision.
    var awaitingDurableAnswer: [String: ReplicatedRevision] = [:]
    /// Its publishes waiting for a standby (sync mode), oldest first: the check every tick reads the
    /// first only (a scan of a dictionary was a measurable share of the time).
    var awaitingSyncAnswer: [AwaitingAnswer] = []
    struct AwaitingAnswer {
        var number: UInt64
        var committedMilliseconds: UInt64
    }

    /// A sync-mode publish of revision `number`, committed now: it waits for its answer (replacing
    /// a publish of the same number that lost its revision and still waited).
    func awaitSyncAnswer(_ number: UInt64, committedMilliseconds: UInt64) {
        awaitingSyncAnswer.removeAll { $0.number == number }
        awaitingSyncAnswer.append(AwaitingAnswer(number: number, committedMilliseconds: committedMilliseconds))
    }
    /// The core's publish mode while some publish waits, and since when it is seen so (ms): the core
    /// answers by the mode of the moment, so a change restarts the clock of those waiting. Left stale
    /// while none waits: a change before a publish's commit never delays its answer.
    var waitingInMode: (mode: ReplicationMode, sinceMilliseconds: UInt64)?
    /// Full-sync snapshots the runtime has built (newest last): as the real runtime, it builds one only
    /// at the current head, keeps `snapshotsKeptMax`, and forgets them all in a crash.
    var builtSnapshots: [RevisionHead] = []
    static let snapshotsKeptMax = 2
    /// Hashes of revisions exported for an administrator (durable).
    var exported: Set<String> = []

    init(id: ServerID, index: Int, cluster: SimulatedCluster) {
        self.id = id
        self.index = index
        self.cluster = cluster
    }

    /// A crash: what was not on disk yet is lost, and so is what the process knew.
    func crash() {
        diskQueue = []
        builtSnapshots = []
        writesEpoch = nil
        writesHeld = nil
        askingPeersSince = nil
        awaitingDurableAnswer = [:]
        awaitingSyncAnswer = []
        waitingInMode = nil
    }

    // MARK: HAStorage

    func saveHardState(_ hardState: HardState) { diskHardState = hardState }

    func applyRevisions(_ revisions: [ReplicatedRevision], core: HAStateMachine, completions: inout [HAInput]) {
        // As the runtime, which verifies each revision's hash against its payload before applying it.
        for revision in revisions
        where simulatedHash(previous: revision.previousHash, epoch: revision.epoch, number: revision.number, payload: revision.payload.bytes ?? [])
            != revision.hash
        {
            cluster.fail("a standby applies only revisions whose payload matches their hash", "\(id) got #\(revision.number) with another payload")
        }
        queue(.applyRevisions(revisions))
    }

    func loadPayloads(_ revisions: [ReplicatedRevision], core: HAStateMachine) throws -> [[UInt8]] {
        try revisions.map { revision in
            guard let payload = cluster.published[revision.hash]?.payload else { throw SimulatedStorageFailure("#\(revision.number) was never published") }
            return payload
        }
    }

    func readSnapshotChunk(
        standby: ServerID, snapshotHead: RevisionHead, index chunk: Int, core: HAStateMachine,
        completions: inout [HAInput]
    ) {
        guard snapshotAvailable(snapshotHead, core: core) else {
            cluster.post(.snapshotUnavailable(standby: standby, snapshotHead: snapshotHead), to: index)
            return
        }
        let chunkCount = 1 + Int(snapshotHead.number / 16)
        let bytes = Array(simulatedHash(previous: snapshotHead.hash, epoch: .initial, number: UInt64(chunk), payload: []).utf8)
        cluster.post(
            .snapshotChunkRead(
                SnapshotChunkRead(
                    standby: standby, snapshotHead: snapshotHead, index: chunk, chunkCount: chunkCount,
                    bytes: bytes)), to: index)
    }

    func stageSnapshotChunk(snapshotHead: RevisionHead, index chunk: Int, bytes: [UInt8], core: HAStateMachine, completions: inout [HAInput]) {
        queue(.stageSnapshotChunk(snapshotHead: snapshotHead, index: chunk))
    }

    func installSnapshot(snapshotHead: RevisionHead, spans: [EpochSpan], core: HAStateMachine, completions: inout [HAInput]) {
        queue(.installSnapshot(snapshotHead: snapshotHead, spans: spans, source: core.epoch.server))
    }

    /// As the runtime: every revision the disk holds after `after`, and a database backup (which holds
    /// the disk's base) when the disk lacks one of them (under its snapshot base).
    func exportDivergent(after: UInt64, _ revisions: [ReplicatedRevision], snapshotBase: RevisionHead?, core: HAStateMachine) {
        flushDisk()
        for revision in diskJournal.revisions(after: max(after, diskJournal.base.number), limit: Int.max) { exported.insert(revision.hash) }
        for revision in revisions where diskJournal.contains(revision.head) != true {
            cluster.fail("divergent revisions are never deleted without an export", "\(id)'s core listed #\(revision.number), which its disk does not hold")
        }
        if after < diskJournal.base.number { exported.insert(diskJournal.base.hash) }
        cluster.counters.exports += 1
    }

    func truncateJournal(after number: UInt64, unsynced: Bool, core: HAStateMachine) {
        // The runtime carries out effects in order: what is still on its way to the disk lands first.
        flushDisk()
        if unsynced {
            cluster.counters.unsyncedDiscards += 1
            cluster.checkUnsyncedDiscard(diskJournal.truncate(after: number), by: index, active: core.epoch.server)
            return
        }
        let base = diskJournal.base
        if number < base.number, !exported.contains(base.hash) {
            cluster.fail("divergent revisions are never deleted without an export", "\(id) dropped its snapshot at \(base) without a backup")
        }
        for revision in diskJournal.truncate(after: number) where !exported.contains(revision.hash) {
            cluster.fail("divergent revisions are never deleted without an export", "\(id) dropped #\(revision.number) without exporting it")
        }
    }

    /// Whether the runtime can read a snapshot at `head`: built already, or buildable now (the head).
    func snapshotAvailable(_ head: RevisionHead, core: HAStateMachine) -> Bool {
        if builtSnapshots.contains(head) { return true }
        // As the runtime, which builds one only at its head, where every commit is synced already.
        guard head == core.journal.head, head == diskJournal.head else { return false }
        builtSnapshots.append(head)
        if builtSnapshots.count > Self.snapshotsKeptMax { builtSnapshots.removeFirst() }
        return true
    }

    // MARK: the disk

    /// A write that completes in 0 to 2 ticks.
    func queue(_ operation: DiskOperation) {
        diskQueue.append(DiskWrite(dueTick: cluster.tick + cluster.random.below(3), operation: operation))
    }

    /// Completes the writes due by now.
    func completeDue() {
        while !diskQueue.isEmpty, diskQueue[0].dueTick <= cluster.tick {
            perform(diskQueue.removeFirst().operation)
        }
    }

    /// Completes every pending disk write now (the runtime executes effects in order).
    func flushDisk() {
        let operations = diskQueue
        diskQueue = []
        for write in operations { perform(write.operation) }
    }

    func perform(_ operation: DiskOperation) {
        switch operation {
        case .applyRevisions(let revisions):
            for revision in revisions {
                diskJournal.append(revision)
                cluster.madeDurable(revision, on: index)
                if awaitingDurableAnswer.removeValue(forKey: revision.hash) != nil {
                    cluster.checkAnswerNotStale(revision, answeredBy: index)
                }
            }
            cluster.post(.persistedUpTo(diskJournal.head), to: index)
        case .stageSnapshotChunk(let snapshotHead, let chunk):
            cluster.post(.snapshotChunkApplied(snapshotHead: snapshotHead, index: chunk), to: index)
        case .installSnapshot(let snapshotHead, let spans, let source):
            cluster.checkSnapshotKeepsDurableRevisions(
                diskJournal, exported: exported, on: index, snapshotHead: snapshotHead, snapshotSpans: spans, source: source)
            diskJournal.installSnapshot(at: snapshotHead, spans: spans)
            cluster.counters.fullSyncsCompleted += 1
            cluster.post(.persistedUpTo(snapshotHead), to: index)
        }
    }

    // MARK: HAHost

    func willCarryOut(_ output: HAOutput, for input: HAInput, core: HAStateMachine) {
        cluster.record(output, for: input, on: index)
    }

    func enableWrites(epoch: Epoch, forced: Bool, core: HAStateMachine) {
        cluster.enableWrites(index, epoch: epoch, forced: forced, journal: core.journal)
    }

    func disableWrites() { writesEpoch = nil }

    func publishResolved(revision number: UInt64, acknowledged: Bool, core: HAStateMachine) {
        if let index = awaitingSyncAnswer.firstIndex(where: { $0.number == number }) { awaitingSyncAnswer.remove(at: index) }
        guard acknowledged else {
            cluster.counters.syncTimedOut += 1
            return
        }
        cluster.counters.syncAcknowledged += 1
        // A core that compacted its journal no longer holds an older revision: the disk does (every
        // revision before a publish is flushed before it).
        guard let revision = core.journal.revision(number) ?? diskJournal.revision(number) else {
            return cluster.fail("an acknowledged publish is held", "\(id) acknowledged #\(number), which neither its core nor its disk holds")
        }
        cluster.syncAcknowledged(revision, by: index)
    }

    func statusChanged(peer: ServerID, status: PeerSyncStatus) {
        if case .collision = status { cluster.counters.collisions += 1 }
    }

    func promotionReported(_ report: PromotionReport) {}

    func commandRefused(_ refusal: HARefusal) { cluster.counters.refusals += 1 }

    // The cluster follows a step's decisions once the driver returns (`SimulatedCluster.stepAndApply`):
    // reading the core here had the driver copy the whole core (a kilobyte) for every step.
    @inline(__always)
    func didCarryOut(_ output: HAOutput, core: HAStateMachine) {}

    func halted(because error: any Error) {
        preconditionFailure("the simulated disk never fails: \(error)")
    }
}
