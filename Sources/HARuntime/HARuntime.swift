import Foundation
import HACore
import HADriverKit
import Logging
import ManagementModel
import ManagementService
import Store
import Synchronization
import TrustCore

/// Limits of the runtime shell (HACore's own are in `HALimits`).
public enum HARuntimeLimits {
    /// Peer messages waiting for the actor. When full the oldest are dropped: HACore retransmits
    /// (hello, append, heartbeats), so a drop costs latency, never correctness.
    public static let inboxMessagesMax = 1_024
    /// Revision and chunk bytes in those waiting messages: the active resends an unacknowledged append
    /// every few hundred ms, and one append may carry a 64 MiB revision, so a count alone would let a
    /// busy standby queue gigabytes of resends. Two of the group's largest frames; past this a message is
    /// dropped (and resent), as past the count.
    public static let inboxPayloadBytesMax = 128 * 1024 * 1024
    /// A peer message carrying more revision or chunk bytes than this is never handled on the caller's
    /// thread (a SIC channel's task, on Swift concurrency's threads): applying a large revision is
    /// seconds of SQLite work, done on the runtime's own thread.
    public static let inlinePayloadBytesMax = 256 * 1024
    /// How often the core's clock moves: its timers (heartbeats, retransmits) are tens to hundreds of ms.
    public static let tickIntervalMilliseconds: UInt64 = 25
    /// Revisions loaded from the store per batch when rebuilding the core's journal at start.
    public static let journalLoadBatchRevisions = 1_000
    /// Sync-mode publish outcomes kept for a caller that has not asked yet.
    public static let syncOutcomesKeptMax = 1_024
    /// After a halt (storage failed: a full disk, an I/O error), how often the runtime tries to start
    /// HA again from what is durable, as a restart would: a disk freed again must not need an operator.
    public static let haltRecoveryIntervalMilliseconds: UInt64 = 5_000
}

/// What the core made of an administrator command.
public struct AdminOutcome: Sendable {
    /// Set when refused: a stable code (`.mayLoseRevisions`, `.notActive`, ...; `.halted` from the runtime).
    public var refusal: HARefusal?
    /// The core's decision in words (or why the runtime took no command).
    public var reason: String
    public var report: PromotionReport?

    /// The refusal's code as the Web API shows it.
    public var refusedCode: String? { refusal?.rawValue }
}

/// One server's HA runtime: feeds HACore its inputs one at a time through the HA driver, which carries
/// out each output in the order its contract demands — persist the hard state durably, then send,
/// then effects — and reports effect completions back to the core as inputs before it takes the next
/// event. `HARuntimeShell` is what it drives: the store, the SIC channels and what the server shows.
///
/// It serializes like an actor, but with a lock instead of actor isolation, because a publish must
/// check that writes are on, commit to the store and report `revisionCommitted` with no other input
/// in between (HACore's contract), and the management service (an actor itself) must do that
/// synchronously inside its own turn: an `await` there would let other requests interleave mid-publish.
/// Every store operation is synchronous and `send` only enqueues, so the lock is never held across a
/// suspension point.
public final class HARuntime: Sendable {
    /// Sends a core message; throws when it cannot travel at all (`HAFrameTooLarge`): that becomes the
    /// runtime's last error. A message merely lost is not an error (the core retransmits).
    public typealias Send = @Sendable (Envelope) throws -> Void
    typealias Driver = HADriver<HARuntimeShell, HARuntimeShell, HARuntimeShell>

    private enum Event: Sendable {
        case tick
        case message(from: ServerID, HAMessage)
        case linkRestored(ServerID)
        /// Background work finished (`Work`): the error, if it failed.
        case snapshotBuilt(RevisionHead, error: String?)
    }

    /// Slow store work done outside the lock by `run`'s worker, so heartbeats and publishes go on
    /// meanwhile: copying the database for a snapshot (its read transaction was begun under the lock,
    /// at the head the core asked for), and the checkpoint after a snapshot install. (The install itself
    /// stays inside: the core counts the snapshot as its journal at once, and must not hear anything
    /// until it is durable.)
    enum Work: Sendable {
        case buildSnapshot(RevisionHead, DatabaseSnapshotSource)
        case checkpoint
    }

    /// The driver, and through it the core and the shell (its storage, transport and host: one object,
    /// which the status commands read): one step or read at a time (the "actor").
    private let serialized: Mutex<Driver>
    private let configuration: HAConfiguration
    private let store: ManagementStore
    private let hardStateStore: HardStateStore
    private let snapshots: SnapshotFiles
    private let logger: Logger
    private let inbox: AsyncStream<Event>
    private let inboxContinuation: AsyncStream<Event>.Continuation
    private let work: AsyncStream<Work>
    private let workContinuation: AsyncStream<Work>.Continuation

    /// Peer messages queued and not yet handled, in a lock of its own, so `deliver` never waits for a
    /// step in progress: a runtime whose `send` delivers straight into another runtime (in-process
    /// tests) cannot deadlock with it.
    private let queued = Mutex<(messages: Int, payloadBytes: Int)>((0, 0))
    private let clockStart = ContinuousClock.now
    /// Where `run` handles the inbox (see `StoreThread`).
    private let thread = StoreThread(name: "rampart-ha")

    /// Loads the hard state and the journal. `bootstrapActive` makes a server that never ran HA the
    /// group's first active (the primary at installation); its hard state is durable before it acts.
    public init(
        configuration: HAConfiguration, store: ManagementStore, bootstrapActive: Bool,
        snapshotDirectory: URL, exportDirectory: URL, logger: Logger, events: EventBus<ManagementEvent> = EventBus(),
        send: @escaping Send
    ) throws {
        // A standby applies revisions visibly and fsyncs them per batch: what an earlier process left in
        // the page cache is made durable now, before this one reports its journal as durable.
        try store.syncToDisk()
        let hardStateStore = HardStateStore(store: store)
        var hardState = try hardStateStore.load()
        if hardState == nil, bootstrapActive {
            let initial = HAStateMachine.bootstrapActive(configuration: configuration)
            try hardStateStore.save(initial)
            hardState = initial
        }
        let snapshots = SnapshotFiles(directory: snapshotDirectory, chunkBytesMax: configuration.limits.snapshotChunkBytesMax)
        if !snapshots.start(resuming: hardState?.fullSyncProgress?.snapshotHead), var stale = hardState, stale.fullSyncProgress != nil {
            // The staged chunks this progress counts are gone or not trusted: the full sync starts over.
            stale.fullSyncProgress = nil
            try hardStateStore.save(stale)
            hardState = stale
        }
        self.configuration = configuration
        self.store = store
        self.hardStateStore = hardStateStore
        self.snapshots = snapshots
        self.logger = logger
        // Unbounded as a stream, bounded by `deliver`, which drops peer messages past the limit.
        (inbox, inboxContinuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        (work, workContinuation) = AsyncStream.makeStream(of: Work.self, bufferingPolicy: .unbounded)
        let shell = HARuntimeShell(
            serverID: configuration.serverID, store: store, hardStateStore: hardStateStore, snapshots: snapshots,
            exportDirectory: exportDirectory, logger: logger, events: events, work: workContinuation, send: send)
        let core = HAStateMachine(
            configuration: configuration, hardState: hardState,
            journal: try Self.loadJournal(store, holdingAtMost: configuration.limits.journalRevisionsHeldMax))
        serialized = Mutex(HADriver(core: core, storage: shell, transport: shell, host: shell))
        // The first timer check now, not one tick later: an active without peers restarts with writes
        // enabled before the API takes its first request (one with peers waits to hear from them;
        // messages sent now are dropped, and the core retransmits).
        let now = nowMilliseconds
        locked { $0.handle(.tick(now: now)) }
    }

    /// The whole store journal as HACore sees it (revision 1 links to the empty head): hashes, epochs and
    /// sizes, without the bodies, which the driver reads when it sends them.
    /// The store's journal as the core holds it: compacted as it loads (`HALimits.journalRevisionsHeldMax`),
    /// so a long journal never sits in memory whole.
    static func loadJournal(_ store: ManagementStore, holdingAtMost revisionsMax: Int) throws -> Journal {
        var journal = Journal.empty
        var next: UInt64 = 1
        while true {
            let batch = try store.journalEntries(from: next, limit: HARuntimeLimits.journalLoadBatchRevisions)
            for entry in batch {
                let revision = try RevisionAdapter.replicated(entry)
                // The store checked the chain as it took each revision; a file edited since must not trap.
                guard revision.number == journal.head.number + 1, revision.previousHash == journal.head.hash,
                    journal.lastEpoch.map({ revision.epoch >= $0 }) ?? true
                else { throw StoreError.journal(JournalBreak(revision: revision.number, reason: "not the next revision of the chain")) }
                journal.append(revision)
                journal.compactIfLonger(than: revisionsMax)
            }
            guard let last = batch.last else { return journal }
            next = last.number + 1
        }
    }

    // MARK: inputs

    /// A message from a peer's SIC channel. Never blocks the caller: handled at once when the runtime is
    /// free, no message waits before it and it carries at most `inlinePayloadBytesMax` (a small
    /// replicated revision is applied without another task in between), queued otherwise, in order;
    /// past `inboxMessagesMax` queued messages it is dropped (HACore retransmits what matters).
    public func deliver(from sender: ServerID, _ message: HAMessage) {
        let bytes = message.payloadBytes
        if bytes <= HARuntimeLimits.inlinePayloadBytesMax, queued.withLock({ $0.messages == 0 }) {
            let handled = serialized.withLockIfAvailable { driver in
                // Queued messages count until handled, so nothing queued meanwhile can be overtaken.
                guard queued.withLock({ $0.messages == 0 }) else { return false }
                driver.handle(.receive(from: sender, message: message))
                return true
            }
            if handled == true { return }
        }
        let accepted = queued.withLock { queued in
            guard queued.messages < HARuntimeLimits.inboxMessagesMax,
                queued.payloadBytes <= HARuntimeLimits.inboxPayloadBytesMax - bytes
            else { return false }
            queued.messages += 1
            queued.payloadBytes += bytes
            return true
        }
        if accepted { inboxContinuation.yield(.message(from: sender, message)) }
    }

    /// A new channel to `peer` is up: the core resends what the old one may have lost (after the
    /// messages queued before it, in order).
    public func linkRestored(_ peer: ServerID) {
        inboxContinuation.yield(.linkRestored(peer))
    }

    /// Runs the clock and the inbox, on the runtime's own thread, until the calling task is cancelled.
    public func run() async {
        await withTaskExecutorPreference(thread) { await runInbox() }
    }

    deinit { thread.stop() }

    private func runInbox() async {
        let ticks = inboxContinuation
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                // The core's clock: its timers decide what is late; this only lets time pass.
                while !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(HARuntimeLimits.tickIntervalMilliseconds))
                    ticks.yield(.tick)
                }
            }
            group.addTask { await self.runWork() }
            for await event in inbox {
                switch event {
                case .tick:
                    let now = nowMilliseconds
                    locked { driver in
                        if driver.isHalted {
                            recoverIfDue(&driver, now: now)
                        } else {
                            driver.handle(.tick(now: now))
                        }
                    }
                case .message(let sender, let message):
                    locked { driver in
                        driver.handle(.receive(from: sender, message: message))
                        queued.withLock { queued in
                            queued.messages -= 1
                            queued.payloadBytes -= message.payloadBytes
                        }
                    }
                case .linkRestored(let peer):
                    locked { $0.handle(.linkRestored(peer: peer)) }
                case .snapshotBuilt(let head, let error):
                    locked { Self.snapshotBuilt(head, error: error, driver: &$0) }
                }
                if Task.isCancelled { break }
            }
            workContinuation.finish()
            group.cancelAll()
        }
    }

    /// A halted runtime starts again from what is durable, as a restart of the process would (the same
    /// loading, the same rules: an active takes no write until its peers answered), every
    /// `haltRecoveryIntervalMilliseconds`. While storage still fails, the first step that persists halts
    /// it again, and the next attempt waits its turn.
    private func recoverIfDue(_ driver: inout Driver, now: UInt64) {
        let shell = driver.shell
        guard let due = shell.recoveryDueMilliseconds else {
            shell.recoveryDueMilliseconds = now + HARuntimeLimits.haltRecoveryIntervalMilliseconds
            return
        }
        guard now >= due else { return }
        shell.recoveryDueMilliseconds = now + HARuntimeLimits.haltRecoveryIntervalMilliseconds
        do {
            try store.syncToDisk()
            let core = HAStateMachine(
                configuration: configuration, hardState: try hardStateStore.load(),
                journal: try Self.loadJournal(store, holdingAtMost: configuration.limits.journalRevisionsHeldMax))
            shell.resetAfterHalt()
            shell.recoveryDueMilliseconds = nil
            driver = Driver(core: core, storage: shell, transport: shell, host: shell)
            logger.notice("HA resumed from its durable state after a halt", metadata: ["halted-by": "\(shell.lastErrorText ?? "unknown")"])
            driver.handle(.tick(now: now))
        } catch {
            logger.warning("HA is still halted: its durable state cannot be read", metadata: ["error": "\(error)"])
        }
    }

    /// The worker: one slow job at a time, outside the lock; a snapshot's result goes back through the inbox.
    private func runWork() async {
        for await job in work {
            switch job {
            case .buildSnapshot(let head, let source):
                let started = ContinuousClock.now
                let error = await offloadedError { [snapshots] in try snapshots.build(from: source, head: head) }
                if error == nil { logger.notice("full-sync snapshot written", metadata: ["head": "\(head)", "took": "\(ContinuousClock.now - started)"]) }
                inboxContinuation.yield(.snapshotBuilt(head, error: error))
            case .checkpoint:
                if let error = await offloadedError({ [store] in try store.checkpoint() }) {
                    logger.warning("checkpoint after the snapshot install did not finish; SQLite finishes it later", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// The error's description, nil on success, of `work` run off the task's thread.
    private func offloadedError(_ work: @escaping @Sendable () throws -> Void) async -> String? {
        do {
            try await offloaded(work)
            return nil
        } catch {
            return "\(error)"
        }
    }

    private static func snapshotBuilt(_ head: RevisionHead, error: String?, driver: inout Driver) {
        let shell = driver.shell
        let ready = shell.pendingChunkReads.filter { $0.head == head }
        shell.pendingChunkReads.removeAll { $0.head == head }
        if let error { shell.record(error: "full sync snapshot at \(head) could not be written: \(error)") }
        for read in ready {
            driver.handle(error == nil ? shell.readChunk(read.standby, read.head, read.index) : .snapshotUnavailable(standby: read.standby, snapshotHead: head))
        }
    }

    /// The active's publish path: runs `append` (the store's commit of `revision`, visible but not yet
    /// synced: `ManagementStore.appendVisible`) only while this server takes writes, reports it to the
    /// core (which sends it to the standbys), then makes it durable and reports that, with no other
    /// input in between. The standbys apply it while this fsync runs. Returns once it is durable here.
    /// Throws `HAWriteRefused` without calling `append` when writes are off, and halts HA (and throws)
    /// when the revision cannot be made durable: it is then never answered as published.
    /// Returns true in sync mode: the publish then waits for `awaitReplication`. `payload`: the
    /// revision's canonical JSON (nil: made here).
    public func commit(_ revision: Revision, payload: [UInt8]? = nil, _ append: () throws -> Void) throws -> Bool {
        try locked { driver in
            if let refusal = driver.writeRefusal { throw HAWriteRefused(message: refusal) }
            let replicated = RevisionAdapter.replicated(revision, payload: payload)
            guard replicated.epoch == driver.core.epoch else {
                throw HAWriteRefused(message: "revision epoch \(replicated.epoch) is not this server's epoch \(driver.core.epoch)")
            }
            try append()
            let waitsForStandby = if case .sync = driver.core.publishMode { true } else { false }
            if waitsForStandby { driver.shell.syncPublishes[revision.number] = .waiting([]) }
            driver.handle(.revisionCommitted(replicated))
            do {
                try store.syncToDisk()
            } catch {
                driver.halt(
                    because: HAHaltingFailure(
                        description:
                            "published revision #\(revision.number) could not be made durable (\(error)); HA halted until storage works again (retried every 5 s, or at a restart)"
                    ))
                throw HARuntimeError.notDurable("revision \(revision.number) could not be made durable: \(error)")
            }
            driver.handle(.persistedUpTo(replicated.head))
            return waitsForStandby
        }
    }

    /// Sync mode: returns once a standby holds revision `number` durably, or the mode's timeout passed.
    public func awaitReplication(revision number: UInt64) async -> ReplicationOutcome {
        await withCheckedContinuation { continuation in
            let ready: ReplicationOutcome? = locked { driver in
                let shell = driver.shell
                switch shell.syncPublishes[number] {
                case .resolved(let outcome):
                    shell.syncPublishes[number] = nil
                    return outcome
                case .waiting(let waiters):
                    shell.syncPublishes[number] = .waiting(waiters + [continuation])
                    return nil
                case nil:
                    return .timedOut  // never registered, or long forgotten: claim no protection
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Runs an administrator command; says whether the core refused it and why.
    @discardableResult
    public func admin(_ command: AdminCommand) -> AdminOutcome {
        locked { driver in
            guard let output = driver.handle(.admin(command)) else {
                return AdminOutcome(refusal: .halted, reason: "HA is halted: \(driver.shell.lastErrorText ?? "unknown error")", report: nil)
            }
            var outcome = AdminOutcome(refusal: nil, reason: output.reason.description, report: nil)
            for effect in output.effects {
                switch effect {
                case .commandRefused(let refusal): outcome.refusal = refusal
                case .promotionReport(let report): outcome.report = report
                default: break
                }
            }
            return outcome
        }
    }

    /// Waits (bounded) until this server takes writes; false when it did not within the time or the
    /// promotion it started ended without it (a switchover the active aborted or never answered).
    public func awaitWritesEnabled(timeoutMilliseconds: UInt64) async -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeoutMilliseconds))
        while ContinuousClock.now < deadline {
            let (enabled, promoting, role) = locked { ($0.takesWrites && $0.core.writesEnabled, $0.core.status.promotionInProgress, $0.core.role) }
            if enabled { return true }
            if !promoting, role == .standby { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return writesEnabled
    }

    /// In collision: the common revision and the bodies of the revisions after it that the active lacks,
    /// read from the store (all of them, also those under a base the core compacted its journal to);
    /// nil when not in collision.
    public func divergentRevisions() throws -> (commonNumber: UInt64, payloads: [[UInt8]])? {
        try locked { driver in
            guard let collision = driver.core.collision else { return nil }
            let journal = driver.core.journal
            // The core lists only what lies above its base (asking below it was a trap).
            let held = journal.revisions(after: max(collision.commonNumber, journal.base.number), limit: journal.revisionCount)
            return (collision.commonNumber, try driver.shell.storedRevisions(after: collision.commonNumber, listed: held).revisions)
        }
    }

    public var lastExport: String? { locked { $0.shell.lastExportPath } }

    /// Everything `ha status` and `show-ha-status` show, read in one critical section.
    public var snapshot: HARuntimeSnapshot {
        locked { driver in
            // A standby in delta sync is synchronized now; otherwise the last time revisions were applied.
            let status = driver.core.status
            let shell = driver.shell
            let lastSync = driver.core.role == .standby && status.link == .delta ? Date() : shell.lastAppliedAt
            return HARuntimeSnapshot(
                core: status, writesEnabled: driver.takesWrites, halted: driver.isHalted, lastError: shell.lastErrorText,
                lastErrorAt: shell.lastErrorAt, lastAppliedAt: lastSync, peerStatus: shell.peerStatus,
                lastAppliedRevision: shell.lastApplied?.number,
                lastAppliedMonotonicNanoseconds: shell.lastApplied?.monotonicNanoseconds, modeSince: shell.modeSince)
        }
    }

    public var status: HAStatus { locked { $0.core.status } }
    /// This server's epoch and role (cheaper than `status`, which describes every peer).
    public var epochAndRole: (epoch: Epoch, role: HARole) { locked { ($0.core.epoch, $0.core.role) } }
    /// This server's mode and when it took it.
    public var modeSince: (role: HARole, since: Date) { locked { ($0.core.role, $0.shell.modeSince) } }
    public var writesEnabled: Bool { locked { $0.takesWrites } }
    /// Nil when this server takes writes; otherwise why not, naming the active.
    public var writeRefusal: String? { locked { $0.writeRefusal } }

    /// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the machine.
    public static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// Runs `body` with the driver, alone. Never across a suspension point (a `Mutex` cannot be).
    @discardableResult
    private func locked<T: Sendable, E: Error>(_ body: (inout Driver) throws(E) -> T) throws(E) -> T {
        try serialized.withLock { (driver) throws(E) -> T in try body(&driver) }
    }

    private var nowMilliseconds: UInt64 {
        let elapsed = ContinuousClock.now - clockStart
        return UInt64(elapsed.components.seconds) * 1_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000_000_000)
    }
}

extension HADriver where Storage == HARuntimeShell, Transport == HARuntimeShell, Host == HARuntimeShell {
    /// The driver's storage, transport and host (one object).
    var shell: HARuntimeShell { host }

    /// The shell enabled writes and HA is not halted. (Set halted when the hard state or the journal
    /// could not be made durable: sending or enabling writes on a state a crash could forget is how an
    /// epoch goes backwards.)
    var takesWrites: Bool { host.writesOn && !isHalted }

    /// Nil when this server takes writes; otherwise why not, naming the active.
    var writeRefusal: String? {
        if isHalted { return "HA is halted: \(host.lastErrorText ?? "unknown error")" }
        if host.writesOn, core.writesEnabled { return nil }
        return core.writeRefusal ?? "writes are not enabled yet"
    }
}

/// A publish refused because this server does not take writes (a standby, or an active not enabled).
public struct HAWriteRefused: Error, Sendable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// What the runtime knows, for status commands.
public struct HARuntimeSnapshot: Sendable {
    public var core: HAStatus
    public var writesEnabled: Bool
    public var halted: Bool
    public var lastError: String?
    public var lastErrorAt: Date?
    public var lastAppliedAt: Date?
    public var peerStatus: [ServerID: PeerSyncStatus]
    public var lastAppliedRevision: UInt64?
    public var lastAppliedMonotonicNanoseconds: UInt64?
    /// When this server took its present mode.
    public var modeSince: Date
}

extension HAMessage {
    /// The revision or database bytes this message carries (what makes a message large). A decoded
    /// message came in one frame, so the sum is bounded by the frame limit.
    var payloadBytes: Int {
        switch body {
        case .append(_, let revisions, _): revisions.reduce(0) { $0 + $1.payload.byteCount }
        case .snapshotChunk(_, _, let bytes, _): bytes.count
        default: 0
        }
    }
}
