import Foundation
import HACore
import Logging
import ManagementModel
import Store
import TrustCore
import ManagementAPI

/// Limits of the runtime shell (HACore's own are in `HALimits`).
public enum HARuntimeLimits {
    /// Peer messages waiting for the actor. When full the oldest are dropped: HACore retransmits
    /// (hello, append, heartbeats), so a drop costs latency, never correctness.
    public static let inboxMessagesMax = 1_024
    /// How often the core's clock moves: its timers (heartbeats, retransmits) are tens to hundreds of ms.
    public static let tickIntervalMilliseconds: UInt64 = 25
    /// Revisions loaded from the store per batch when rebuilding the core's journal at start.
    public static let journalLoadBatchRevisions = 1_000
    /// Sync-mode publish outcomes kept for a caller that has not asked yet.
    public static let syncOutcomesKeptMax = 1_024
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

/// One server's HA runtime: feeds HACore its inputs one at a time and carries out each output in the
/// order its contract demands — persist the hard state durably, then send, then effects — reporting
/// effect completions back to the core as inputs before it takes the next event.
///
/// It serializes like an actor, but with a lock instead of actor isolation, because a publish must
/// check that writes are on, commit to the store and report `revisionCommitted` with no other input
/// in between (HACore's contract), and the management service (an actor itself) must do that
/// synchronously inside its own turn: an `await` there would let other requests interleave mid-publish.
/// Every store operation is synchronous and `send` only enqueues, so the lock is never held across a
/// suspension point.
public final class HARuntime: @unchecked Sendable {
    public typealias Send = @Sendable (Envelope) -> Void

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
    private enum Work: Sendable {
        case buildSnapshot(RevisionHead, DatabaseSnapshotSource)
        case checkpoint
    }

    /// Guards every stored property below (the "actor").
    private let lock = NSLock()
    private var core: HAStateMachine
    private let store: ManagementStore
    private let hardStateStore: HardStateStore
    private let snapshots: SnapshotFiles
    /// Where divergent revisions are exported before a collision resolution drops them.
    private let exportDirectory: URL
    private let send: Send
    private let logger: Logger
    private let inbox: AsyncStream<Event>
    private let inboxContinuation: AsyncStream<Event>.Continuation
    private let work: AsyncStream<Work>
    private let workContinuation: AsyncStream<Work>.Continuation
    /// Active: chunk reads waiting for their snapshot file to be written.
    private var pendingChunkReads: [(standby: ServerID, head: RevisionHead, index: Int)] = []

    /// Guards only `queuedMessages`, so `deliver` never waits for a step in progress: a runtime whose
    /// `send` delivers straight into another runtime (in-process tests) cannot deadlock with it.
    private let inboxLock = NSLock()
    private var queuedMessages = 0
    private let clockStart = ContinuousClock.now

    /// Writes are on only between the core's `enableWrites` and `disableWrites`.
    private var writesOn = false
    /// Set when the hard state could not be made durable: the runtime then stops acting, because
    /// sending or enabling writes on a state a crash could forget is how an epoch goes backwards.
    private var isHalted = false
    private var lastErrorText: String?
    private var lastErrorAt: Date?
    /// Per peer, the last status the core reported (what `statusChanged` said).
    private var peerStatus: [ServerID: PeerSyncStatus] = [:]
    /// Standby: when revisions or a snapshot were last made durable here.
    private var lastAppliedAt: Date?
    /// Standby: the last revision applied and when it became visible (CLOCK_MONOTONIC ns, which every
    /// process on the machine shares: `rampart bench ha` compares it with the publish's start).
    private var lastApplied: (number: UInt64, monotonicNanoseconds: UInt64)?
    /// The last export of divergent revisions (collision resolution), for status and the API.
    private var lastExportPath: String?
    /// Sync mode: each publish's outcome, or who waits for it (bounded: see `rememberOutcome`).
    private var syncPublishes: [UInt64: SyncPublish] = [:]

    private enum SyncPublish {
        case waiting([CheckedContinuation<ReplicationOutcome, Never>])
        case resolved(ReplicationOutcome)
    }

    /// Loads the hard state and the journal. `bootstrapActive` makes a server that never ran HA the
    /// group's first active (the primary at installation); its hard state is durable before it acts.
    public init(configuration: HAConfiguration, store: ManagementStore, bootstrapActive: Bool,
                snapshotDirectory: URL, exportDirectory: URL, logger: Logger, send: @escaping Send) throws {
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
        self.core = HAStateMachine(configuration: configuration, hardState: hardState, journal: try Self.loadJournal(store))
        self.store = store
        self.hardStateStore = hardStateStore
        self.snapshots = snapshots
        self.exportDirectory = exportDirectory
        self.send = send
        self.logger = logger
        // Unbounded as a stream, bounded by `deliver`, which drops peer messages past the limit.
        (inbox, inboxContinuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .unbounded)
        (work, workContinuation) = AsyncStream.makeStream(of: Work.self, bufferingPolicy: .unbounded)
        // The first timer check now, not one tick later: an active without peers restarts with writes
        // enabled before the API takes its first request (one with peers waits to hear from them;
        // messages sent now are dropped, and the core retransmits).
        locked { handle(.tick(now: nowMilliseconds)) }
    }

    /// The whole store journal as HACore sees it (revision 1 links to the empty head).
    static func loadJournal(_ store: ManagementStore) throws -> Journal {
        var journal = Journal.empty
        var next: UInt64 = 1
        while true {
            let batch = try store.revisions(from: next, limit: HARuntimeLimits.journalLoadBatchRevisions)
            for revision in batch { journal.append(RevisionAdapter.replicated(revision)) }
            guard let last = batch.last else { return journal }
            next = last.number + 1
        }
    }

    // MARK: inputs

    /// A message from a peer's SIC channel. Never blocks the caller: handled at once when the runtime is
    /// free and no message waits before it (a replicated revision is applied without another task in
    /// between), queued otherwise, in order; past `inboxMessagesMax` queued messages it is dropped
    /// (HACore retransmits what matters).
    public func deliver(from sender: ServerID, _ message: HAMessage) {
        if inboxLock.withLock({ queuedMessages == 0 }), lock.try() {
            defer { lock.unlock() }
            // Queued messages count until handled, so nothing queued meanwhile can be overtaken.
            if inboxLock.withLock({ queuedMessages == 0 }) {
                handle(.receive(from: sender, message: message))
                return
            }
        }
        let accepted = inboxLock.withLock {
            guard queuedMessages < HARuntimeLimits.inboxMessagesMax else { return false }
            queuedMessages += 1
            return true
        }
        if accepted { inboxContinuation.yield(.message(from: sender, message)) }
    }

    /// A new channel to `peer` is up: the core resends what the old one may have lost (after the
    /// messages queued before it, in order).
    public func linkRestored(_ peer: ServerID) {
        inboxContinuation.yield(.linkRestored(peer))
    }

    /// Runs the clock and the inbox until the calling task is cancelled.
    public func run() async {
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
                    locked { handle(.tick(now: nowMilliseconds)) }
                case .message(let sender, let message):
                    locked {
                        handle(.receive(from: sender, message: message))
                        inboxLock.withLock { queuedMessages -= 1 }
                    }
                case .linkRestored(let peer):
                    locked { handle(.linkRestored(peer: peer)) }
                case .snapshotBuilt(let head, let error):
                    locked { snapshotBuilt(head, error: error) }
                }
                if Task.isCancelled { break }
            }
            workContinuation.finish()
            group.cancelAll()
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

    private func snapshotBuilt(_ head: RevisionHead, error: String?) {
        let ready = pendingChunkReads.filter { $0.head == head }
        pendingChunkReads.removeAll { $0.head == head }
        if let error { record(error: "full sync snapshot at \(head) could not be written: \(error)") }
        for read in ready {
            handle(error == nil ? readChunk(read.standby, read.head, read.index) : .snapshotUnavailable(standby: read.standby, snapshotHead: head))
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
        try locked {
            if let refusal = currentWriteRefusal { throw HAWriteRefused(message: refusal) }
            let replicated = RevisionAdapter.replicated(revision, payload: payload)
            guard replicated.epoch == core.epoch else {
                throw HAWriteRefused(message: "revision epoch \(replicated.epoch) is not this server's epoch \(core.epoch)")
            }
            try append()
            let waitsForStandby = if case .sync = core.publishMode { true } else { false }
            if waitsForStandby { syncPublishes[revision.number] = .waiting([]) }
            handle(.revisionCommitted(replicated))
            do {
                try store.syncToDisk()
            } catch {
                isHalted = true
                record(error: "published revision #\(revision.number) could not be made durable (\(error)); HA halted until restart")
                throw HARuntimeError.notDurable("revision \(revision.number) could not be made durable: \(error)")
            }
            handle(.persistedUpTo(replicated.head))
            return waitsForStandby
        }
    }

    /// Sync mode: returns once a standby holds revision `number` durably, or the mode's timeout passed.
    public func awaitReplication(revision number: UInt64) async -> ReplicationOutcome {
        await withCheckedContinuation { continuation in
            let ready: ReplicationOutcome? = locked {
                switch syncPublishes[number] {
                case .resolved(let outcome):
                    syncPublishes[number] = nil
                    return outcome
                case .waiting(let waiters):
                    syncPublishes[number] = .waiting(waiters + [continuation])
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
        locked {
            guard let output = handle(.admin(command)) else {
                return AdminOutcome(refusal: .halted, reason: "HA is halted: \(lastErrorText ?? "unknown error")", report: nil)
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
            let (enabled, promoting, role) = locked { (writesOn && !isHalted && core.writesEnabled, core.status.promotionInProgress, core.role) }
            if enabled { return true }
            if !promoting, role == .standby { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return writesEnabled
    }

    /// In collision: the common revision and the revisions after it that the active lacks.
    public var divergentRevisions: (commonNumber: UInt64, revisions: [ReplicatedRevision])? {
        locked {
            guard let collision = core.collision else { return nil }
            return (collision.commonNumber, Array(core.journal.revisions(after: collision.commonNumber, limit: Int(collision.divergentRevisions))))
        }
    }

    public var lastExport: String? { locked { lastExportPath } }

    /// Everything `ha status` and `show-ha-status` show, read in one critical section.
    public var snapshot: HARuntimeSnapshot {
        locked {
            // A standby in delta sync is synchronized now; otherwise the last time revisions were applied.
            let status = core.status
            let lastSync = core.role == .standby && status.link == .delta ? Date() : lastAppliedAt
            return HARuntimeSnapshot(core: status, writesEnabled: writesOn && !isHalted, halted: isHalted, lastError: lastErrorText,
                              lastErrorAt: lastErrorAt, lastAppliedAt: lastSync, peerStatus: peerStatus,
                              lastAppliedRevision: lastApplied?.number, lastAppliedMonotonicNanoseconds: lastApplied?.monotonicNanoseconds)
        }
    }

    public var status: HAStatus { locked { core.status } }
    /// This server's epoch and role (cheaper than `status`, which describes every peer).
    public var epochAndRole: (epoch: Epoch, role: HARole) { locked { (core.epoch, core.role) } }
    public var writesEnabled: Bool { locked { writesOn && !isHalted } }
    /// Nil when this server takes writes; otherwise why not, naming the active.
    public var writeRefusal: String? { locked { currentWriteRefusal } }

    private var currentWriteRefusal: String? {
        if isHalted { return "HA is halted: \(lastErrorText ?? "unknown error")" }
        if writesOn, core.writesEnabled { return nil }
        return core.writeRefusal ?? "writes are not enabled yet"
    }

    /// CLOCK_MONOTONIC in nanoseconds: one clock for every process of the machine.
    public static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    @discardableResult
    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    private var nowMilliseconds: UInt64 {
        let elapsed = ContinuousClock.now - clockStart
        return UInt64(elapsed.components.seconds) * 1_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000_000_000)
    }

    // MARK: outputs

    /// Steps the core with `input`, then with every completion its effects report, in order.
    /// Returns the output of `input` itself (nil when halted).
    @discardableResult
    private func handle(_ input: HAInput) -> HAOutput? {
        var queue = [input]
        var first: HAOutput?
        while !queue.isEmpty, !isHalted {
            let output = core.step(queue.removeFirst())
            if first == nil { first = output }
            carryOut(output, followUps: &queue)
        }
        return first
    }

    private func carryOut(_ output: HAOutput, followUps: inout [HAInput]) {
        if let state = output.persist {
            do {
                try hardStateStore.save(state)
            } catch {
                isHalted = true
                record(error: "HA hard state not persisted (\(error)); HA halted until restart")
                logger.critical("HA halted: hard state not durable", metadata: ["error": "\(error)"])
                return
            }
        }
        for envelope in output.messages { send(envelope) }
        // An effect that fails halts the runtime: the effects after it (a truncation after a failed
        // export) must not run.
        for effect in output.effects where !isHalted { carryOut(effect, followUps: &followUps) }
        if output.persist != nil || output.effects.contains(where: { !$0.isRoutine }) {
            logger.info("ha: \(output.reason)")
        } else if !output.effects.isEmpty {
            logger.debug("ha: \(output.reason)")
        } else if !output.reason.isClockOnly {
            logger.trace("ha: \(output.reason)")
        }
    }

    private func carryOut(_ effect: HAEffect, followUps: inout [HAInput]) {
        switch effect {
        case .enableWrites(let epoch, let forced):
            writesOn = true
            logger.notice("writes enabled", metadata: ["epoch": "\(epoch)", "forced": "\(forced)"])
        case .disableWrites:
            writesOn = false
            logger.notice("writes disabled")
        case .applyRevisions(let revisions):
            applyRevisions(revisions, followUps: &followUps)
        case .readSnapshotChunk(let standby, let head, let index):
            if snapshots.isBuilt(head) {
                followUps.append(readChunk(standby, head, index))
            } else if pendingChunkReads.contains(where: { $0.head == head }) {
                // Being built: a chunk asked again meanwhile waits once.
                if !pendingChunkReads.contains(where: { $0 == (standby, head, index) }) { pendingChunkReads.append((standby, head, index)) }
            } else if let source = openSnapshotSource(at: head) {
                pendingChunkReads.append((standby, head, index))
                workContinuation.yield(.buildSnapshot(head, source))
            } else {
                followUps.append(.snapshotUnavailable(standby: standby, snapshotHead: head))
            }
        case .applySnapshotChunk(let head, let index, let bytes):
            do {
                try snapshots.stageChunk(head: head, index: index, bytes: bytes)
                followUps.append(.snapshotChunkApplied(snapshotHead: head, index: index))
            } catch {
                record(error: "full sync: staging chunk \(index) failed: \(error)")
            }
        case .completeFullSync(let head, let spans):
            let started = ContinuousClock.now
            do {
                let how = try snapshots.install(head: head, spans: spans, into: store)
                snapshots.discardStaged()
                lastAppliedAt = Date()
                logger.notice("full-sync snapshot installed", metadata: ["head": "\(head)", "took": "\(ContinuousClock.now - started)", "how": "\(how)"])
                if how == .pagesCopied { workContinuation.yield(.checkpoint) }
                followUps.append(.persistedUpTo(head))
            } catch {
                record(error: "full sync at \(head) could not be installed: \(error)")
                snapshots.discardStaged()
                followUps.append(.admin(.requestFullSync(standby: core.serverID)))
            }
        case .statusChanged(let peer, let status):
            peerStatus[peer] = status
            logger.notice("sync status", metadata: ["peer": "\(peer)", "status": "\(status)"])
        case .promotionReport(let report):
            logger.notice("promotion: \(report.summary)")
        case .commandRefused(let code):
            record(error: "command refused: \(code)")
        case .publishAcknowledged(let number):
            resolveSyncPublish(number, .acknowledged)
        case .publishTimedOut(let number):
            resolveSyncPublish(number, .timedOut)
        case .exportDivergent(let revisions, let snapshotBase):
            do {
                lastExportPath = try exportDivergent(revisions, wholeDatabase: snapshotBase != nil)
                logger.notice("divergent revisions exported", metadata: ["file": "\(lastExportPath ?? "")", "revisions": "\(revisions.count)"])
            } catch {
                isHalted = true
                record(error: "divergent revisions could not be exported (\(error)); HA halted, nothing dropped")
            }
        case .truncateJournal(let number), .discardUnsyncedRevisions(let number):
            do {
                try store.truncateJournal(after: number)
            } catch {
                isHalted = true
                record(error: "journal truncation after #\(number) failed (\(error)); HA halted until restart")
            }
        }
    }

    /// Standby: each revision in its own transaction, chain checked by the store, visible as soon as it
    /// commits; then one fsync for the batch before the core hears it is durable (and acknowledges it).
    /// Anything that does not verify is never applied; the core is asked for a full sync.
    private func applyRevisions(_ revisions: [ReplicatedRevision], followUps: inout [HAInput]) {
        var applied: RevisionHead?
        var failure: String?
        for replicated in revisions {
            do {
                guard let revision = RevisionAdapter.revision(replicated) else {
                    throw HARuntimeError.revisionRejected("revision \(replicated.number) does not match its hash")
                }
                try store.appendVisible(revision, checkedBody: String(decoding: replicated.payload, as: UTF8.self))
                applied = replicated.head
                lastApplied = (replicated.number, Self.monotonicNanoseconds())
            } catch {
                failure = "delta sync stopped at revision \(replicated.number): \(error); asking for a full sync"
                break
            }
        }
        if let applied {
            do {
                try store.syncToDisk()
                lastAppliedAt = Date()
                followUps.append(.persistedUpTo(applied))
            } catch {
                // Not durable: never reported so (a sync-mode publish is not acknowledged on it).
                isHalted = true
                record(error: "applied revisions could not be made durable (\(error)); HA halted until restart")
                return
            }
        }
        if let failure {
            record(error: failure)
            followUps.append(.admin(.requestFullSync(standby: core.serverID)))
        }
    }

    /// Chunk `index` of a built snapshot for `standby`, as the core's input: read, or unavailable (the
    /// error recorded).
    private func readChunk(_ standby: ServerID, _ head: RevisionHead, _ index: Int) -> HAInput {
        do {
            let chunk = try snapshots.readChunk(head: head, index: index)
            return .snapshotChunkRead(SnapshotChunkRead(standby: standby, snapshotHead: head, index: index, chunkCount: chunk.count, bytes: chunk.bytes))
        } catch {
            record(error: "full sync of \(standby): \(error)")
            return .snapshotUnavailable(standby: standby, snapshotHead: head)
        }
    }

    /// A read transaction at `head`, to copy the database from: only while the store is at that head
    /// (under the lock, nothing commits meanwhile). Nil otherwise, or when it cannot be opened.
    private func openSnapshotSource(at head: RevisionHead) -> DatabaseSnapshotSource? {
        do {
            let source = try store.openSnapshotSource()
            guard RevisionAdapter.head(source.head) == head else {
                source.close()
                return nil
            }
            return source
        } catch {
            record(error: "full sync snapshot at \(head) could not be begun: \(error)")
            return nil
        }
    }

    private func resolveSyncPublish(_ number: UInt64, _ outcome: ReplicationOutcome) {
        if case .waiting(let waiters)? = syncPublishes[number], !waiters.isEmpty {
            syncPublishes[number] = nil
            for waiter in waiters { waiter.resume(returning: outcome) }
            return
        }
        syncPublishes[number] = .resolved(outcome)
        // Outcomes nobody collected (system changes) are forgotten past a bound, oldest first.
        if syncPublishes.count > HARuntimeLimits.syncOutcomesKeptMax, let oldest = syncPublishes.keys.min() {
            if case .waiting(let waiters)? = syncPublishes.removeValue(forKey: oldest) {
                for waiter in waiters { waiter.resume(returning: .timedOut) }
            }
        }
    }

    /// Writes the revisions about to be dropped (one canonical JSON revision per line) durably, and
    /// with `wholeDatabase` a copy of the whole database beside them. Returns the file's path.
    private func exportDivergent(_ revisions: [ReplicatedRevision], wholeDatabase: Bool) throws -> String {
        try DurableFile.ensureDirectory(exportDirectory, mode: 0o700)
        let stamp = Int64(Date().timeIntervalSince1970 * 1000)
        let base = exportDirectory.appendingPathComponent("divergent-\(core.serverID.name)-\(stamp)")
        var bytes: [UInt8] = []
        for revision in revisions { bytes += revision.payload + [UInt8(ascii: "\n")] }
        let file = base.appendingPathExtension("jsonl")
        try DurableFile.write(bytes, to: file, mode: 0o600)
        if wholeDatabase { try store.copyDatabase(to: base.appendingPathExtension("sqlite").path) }
        return file.path
    }

    private func record(error: String) {
        lastErrorText = error
        lastErrorAt = Date()
        logger.error("ha: \(error)")
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
}
