import Foundation
import HACore
import HADriverKit
import Logging
import ManagementModel
import ManagementService
import Store
import TrustCore

/// A failure that halts HA: the message says what could not be made durable or dropped.
struct HAHaltingFailure: Error, CustomStringConvertible {
    let description: String
    /// The hard state itself (the epoch) could not be made durable.
    var isHardState = false
}

/// The runtime's side of the HA driver: the store (hard state, journal, snapshots, exports), the SIC
/// channels, and what the server shows (writes on or off, sync status, publish outcomes, errors).
/// Used only under `HARuntime`'s lock.
final class HARuntimeShell: HAStorage, HATransport, HAHost {
    let serverID: ServerID
    let store: ManagementStore
    let hardStateStore: HardStateStore
    let snapshots: SnapshotFiles
    /// Where divergent revisions are exported before a collision resolution drops them.
    let exportDirectory: URL
    let sendEnvelope: HARuntime.Send
    let logger: Logger
    /// Where HA state and sync status changes go as typed events (the node's bus).
    let events: EventBus<ManagementEvent>
    /// The HA state last published on `events`, to publish only changes.
    var announcedState: HAStateChanged?
    /// When this server took its present mode (active or standby): set as the mode is first announced
    /// and at each change of it.
    var modeSince = Date()
    /// Slow store work for the runtime's worker (a snapshot copy).
    let work: AsyncStream<HARuntime.Work>.Continuation

    /// Writes are on only between the core's `enableWrites` and `disableWrites`.
    var writesOn = false
    var lastErrorText: String?
    var lastErrorAt: Date?
    /// Per peer, the last status the core reported (what `statusChanged` said).
    var peerStatus: [ServerID: PeerSyncStatus] = [:]
    /// Standby: when revisions or a snapshot were last made durable here.
    var lastAppliedAt: Date?
    /// Standby: the last revision applied and when it became visible (CLOCK_MONOTONIC ns, which every
    /// process on the machine shares: `rampart bench ha` compares it with the publish's start).
    var lastApplied: (number: UInt64, monotonicNanoseconds: UInt64)?
    /// The last export of divergent revisions (collision resolution), for status and the API.
    var lastExportPath: String?
    /// Sync mode: each publish's outcome, or who waits for it (bounded: see `resolveSyncPublish`).
    var syncPublishes: [UInt64: SyncPublish] = [:]
    /// Active: chunk reads waiting for their snapshot file to be written.
    var pendingChunkReads: [(standby: ServerID, head: RevisionHead, index: Int)] = []
    /// Halted: when the runtime next tries to start HA again (its clock, ms); nil until it noticed the halt.
    var recoveryDueMilliseconds: UInt64?

    /// Before a core rebuilt from durable state takes over: writes are off until it enables them, and
    /// what the halted core had in flight is forgotten (a sync publish still waiting gets no protection).
    func resetAfterHalt() {
        writesOn = false
        pendingChunkReads = []
        for (number, publish) in syncPublishes {
            if case .waiting(let continuations) = publish {
                for continuation in continuations { continuation.resume(returning: .timedOut) }
                syncPublishes[number] = nil
            }
        }
    }

    enum SyncPublish {
        case waiting([CheckedContinuation<ReplicationOutcome, Never>])
        case resolved(ReplicationOutcome)
    }

    init(
        serverID: ServerID, store: ManagementStore, hardStateStore: HardStateStore, snapshots: SnapshotFiles, exportDirectory: URL,
        logger: Logger, events: EventBus<ManagementEvent>, work: AsyncStream<HARuntime.Work>.Continuation, send: @escaping HARuntime.Send
    ) {
        self.serverID = serverID
        self.store = store
        self.hardStateStore = hardStateStore
        self.snapshots = snapshots
        self.exportDirectory = exportDirectory
        self.logger = logger
        self.events = events
        self.work = work
        self.sendEnvelope = send
    }

    // MARK: HAStorage

    func saveHardState(_ hardState: HardState) throws {
        do {
            try hardStateStore.save(hardState)
        } catch {
            throw HAHaltingFailure(
                description: "HA hard state not persisted (\(error)); HA halted until storage works again (retried every 5 s, or at a restart)",
                isHardState: true)
        }
    }

    /// Standby: each revision in its own transaction, chain checked by the store, visible as soon as it
    /// commits; then one fsync for the batch before the core hears it is durable (and acknowledges it).
    /// Anything that does not verify is never applied; the core is asked for a full sync.
    func applyRevisions(_ revisions: [ReplicatedRevision], core: HAStateMachine, completions: inout [HAInput]) throws {
        var applied: RevisionHead?
        var failure: String?
        for replicated in revisions {
            do {
                guard let revision = RevisionAdapter.revision(replicated) else {
                    throw HARuntimeError.revisionRejected("revision \(replicated.number) does not match its hash")
                }
                try store.appendVisible(revision, checkedBody: String(decoding: replicated.payload.bytes ?? [], as: UTF8.self))
                applied = replicated.head
                lastApplied = (replicated.number, HARuntime.monotonicNanoseconds())
            } catch {
                failure = "delta sync stopped at revision \(replicated.number): \(error); asking for a full sync"
                break
            }
        }
        if let applied {
            do {
                try store.syncToDisk()
            } catch {
                // Not durable: never reported so (a sync-mode publish is not acknowledged on it).
                throw HAHaltingFailure(
                    description:
                        "applied revisions could not be made durable (\(error)); HA halted until storage works again (retried every 5 s, or at a restart)")
            }
            lastAppliedAt = Date()
            completions.append(.persistedUpTo(applied))
        }
        if let failure {
            record(error: failure)
            completions.append(.admin(.requestFullSync(standby: serverID)))
        }
    }

    func readSnapshotChunk(
        standby: ServerID, snapshotHead head: RevisionHead, index: Int, core: HAStateMachine,
        completions: inout [HAInput]
    ) throws {
        if snapshots.isBuilt(head) {
            completions.append(readChunk(standby, head, index))
        } else if pendingChunkReads.contains(where: { $0.head == head }) {
            // Being built: a chunk asked again meanwhile waits once.
            if !pendingChunkReads.contains(where: { $0 == (standby, head, index) }) { pendingChunkReads.append((standby, head, index)) }
        } else if let source = openSnapshotSource(at: head) {
            pendingChunkReads.append((standby, head, index))
            work.yield(.buildSnapshot(head, source))
        } else {
            completions.append(.snapshotUnavailable(standby: standby, snapshotHead: head))
        }
    }

    func stageSnapshotChunk(
        snapshotHead head: RevisionHead, index: Int, bytes: [UInt8], core: HAStateMachine,
        completions: inout [HAInput]
    ) throws {
        do {
            try snapshots.stageChunk(head: head, index: index, bytes: bytes)
            completions.append(.snapshotChunkApplied(snapshotHead: head, index: index))
        } catch {
            record(error: "full sync: staging chunk \(index) failed: \(error)")
        }
    }

    func installSnapshot(snapshotHead head: RevisionHead, spans: [EpochSpan], core: HAStateMachine, completions: inout [HAInput]) throws {
        let started = ContinuousClock.now
        do {
            let how = try snapshots.install(head: head, spans: spans, into: store)
            snapshots.discardStaged()
            lastAppliedAt = Date()
            logger.notice("full-sync snapshot installed", metadata: ["head": "\(head)", "took": "\(ContinuousClock.now - started)", "how": "\(how)"])
            if how == .pagesCopied { work.yield(.checkpoint) }
            completions.append(.persistedUpTo(head))
        } catch {
            record(error: "full sync at \(head) could not be installed: \(error)")
            snapshots.discardStaged()
            completions.append(.admin(.requestFullSync(standby: serverID)))
        }
    }

    func loadPayloads(_ revisions: [ReplicatedRevision], core: HAStateMachine) throws -> [[UInt8]] {
        try withPayloads(revisions).map { $0.payload.bytes ?? [] }
    }

    /// `revisions` (consecutive) with their payloads: the bodies the store holds under their hashes.
    func withPayloads(_ revisions: [ReplicatedRevision]) throws -> [ReplicatedRevision] {
        guard let first = revisions.first, let last = revisions.last else { return [] }
        if revisions.allSatisfy({ $0.payload.bytes != nil }) { return revisions }
        let stored = try store.revisionBodies(from: first.number, through: last.number)
        guard stored.count == revisions.count else {
            throw HARuntimeError.journalMismatch("the store holds \(stored.count) of revisions \(first.number)...\(last.number)")
        }
        return try zip(revisions, stored).map { revision, row in
            guard row.number == revision.number, row.hash == revision.hash else {
                throw HARuntimeError.journalMismatch("revision \(revision.number) in the store is not the one the HA core lists")
            }
            return revision.withPayload(row.body)
        }
    }

    func exportDivergent(after: UInt64, _ revisions: [ReplicatedRevision], snapshotBase: RevisionHead?, core: HAStateMachine) throws {
        do {
            let exported = try storedRevisions(after: after, listed: revisions)
            lastExportPath = try writeExport(exported.revisions, wholeDatabase: !exported.complete)
            logger.notice("divergent revisions exported", metadata: ["file": "\(lastExportPath ?? "")", "revisions": "\(exported.revisions.count)"])
        } catch {
            throw HAHaltingFailure(description: "divergent revisions could not be exported (\(error)); HA halted, nothing dropped")
        }
    }

    func truncateJournal(after number: UInt64, unsynced: Bool, core: HAStateMachine) throws {
        do {
            try store.truncateJournal(after: number)
        } catch {
            throw HAHaltingFailure(
                description: "journal truncation after #\(number) failed (\(error)); HA halted until storage works again (retried every 5 s, or at a restart)")
        }
    }

    /// Chunk `index` of a built snapshot for `standby`, as the core's input: read, or unavailable (the
    /// error recorded).
    func readChunk(_ standby: ServerID, _ head: RevisionHead, _ index: Int) -> HAInput {
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
    func openSnapshotSource(at head: RevisionHead) -> DatabaseSnapshotSource? {
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

    /// Writes the revisions about to be dropped (one canonical JSON revision per line) durably, and
    /// with `wholeDatabase` a copy of the whole database beside them. Returns the file's path.
    /// The bodies the store holds of the revisions after `after` up to its head (more than the core lists
    /// when it compacted its journal, or none after a snapshot install), and whether it holds every one
    /// of them (if not, the export takes a copy of the whole database). Each one listed must be the
    /// store's revision of that number.
    func storedRevisions(after: UInt64, listed: [ReplicatedRevision]) throws -> (revisions: [[UInt8]], complete: Bool) {
        let last = max(try store.head()?.number ?? 0, listed.last?.number ?? 0)
        guard last > after else { return ([], true) }
        let rows = try store.revisionBodies(from: after + 1, through: last)
        let hashes = Dictionary(rows.map { ($0.number, $0.hash) }) { first, _ in first }
        for revision in listed where hashes[revision.number] != revision.hash {
            throw HARuntimeError.journalMismatch("revision \(revision.number) in the store is not the one the HA core lists")
        }
        return (rows.map(\.body), UInt64(rows.count) == last - after)
    }

    func writeExport(_ bodies: [[UInt8]], wholeDatabase: Bool) throws -> String {
        try DurableFile.ensureDirectory(exportDirectory, mode: 0o700)
        let stamp = Int64(Date().timeIntervalSince1970 * 1000)
        let base = exportDirectory.appendingPathComponent("divergent-\(serverID.name)-\(stamp)")
        var bytes: [UInt8] = []
        for body in bodies { bytes += body + [UInt8(ascii: "\n")] }
        let file = base.appendingPathExtension("jsonl")
        try DurableFile.write(bytes, to: file, mode: 0o600)
        if wholeDatabase { try store.copyDatabase(to: base.appendingPathExtension("sqlite").path) }
        return file.path
    }

    // MARK: HATransport

    func send(_ envelope: Envelope) {
        do {
            try sendEnvelope(envelope)
        } catch {
            // The core resends every few hundred ms and would fail alike: said once until the error changes.
            if lastErrorText != "\(error)" { record(error: "\(error)") }
        }
    }

    // MARK: HAHost

    func willCarryOut(_ output: HAOutput, for input: HAInput, core: HAStateMachine) {}

    func enableWrites(epoch: Epoch, forced: Bool, core: HAStateMachine) {
        writesOn = true
        logger.notice("writes enabled", metadata: ["epoch": "\(epoch)", "forced": "\(forced)"])
    }

    func disableWrites() {
        writesOn = false
        logger.notice("writes disabled")
    }

    func publishResolved(revision number: UInt64, acknowledged: Bool, core: HAStateMachine) {
        let unconfirmed: ReplicationOutcome =
            core.hardState.haStopped ? .haStopped : core.hardState.peers.isEmpty ? .noStandby : .timedOut
        resolveSyncPublish(number, acknowledged ? .acknowledged : unconfirmed)
    }

    func statusChanged(peer: ServerID, status: PeerSyncStatus) {
        peerStatus[peer] = status
        events.publish(.syncStatusChanged(SyncStatusChanged(peer: peer, status: status)))
        if case .collision(let divergent) = status {
            events.publish(.collision(Collision(peer: peer, divergentRevisions: divergent)))
        }
    }

    func promotionReported(_ report: PromotionReport) {
        logger.notice("promotion: \(report.summary)")
    }

    func commandRefused(_ refusal: HARefusal) {
        record(error: "command refused: \(refusal)")
    }

    /// Logs the output's reason: decisions that persist or act at info, routine effects (publishes,
    /// chunks) at debug, the rest at trace, a tick that only moved the clock never.
    func didCarryOut(_ output: HAOutput, core: HAStateMachine) {
        announceStateChange(core: core, reason: output.reason)
        if output.persist != nil || output.effects.contains(where: { !$0.isRoutine }) {
            logger.info("ha: \(output.reason)")
        } else if !output.effects.isEmpty {
            logger.debug("ha: \(output.reason)")
        } else if !output.reason.isClockOnly {
            logger.trace("ha: \(output.reason)")
        }
    }

    func halted(because error: any Error) {
        record(error: "\(error)")
        if let failure = error as? HAHaltingFailure, failure.isHardState {
            logger.critical("HA halted: hard state not durable", metadata: ["error": "\(failure)"])
        }
    }

    /// Publishes `haStateChanged` when the role, epoch, active server or writes differ from the last
    /// state published (the first step publishes the state the server starts in).
    func announceStateChange(core: HAStateMachine, reason: HAReason) {
        // The four fields straight from the core: its whole status (a view per peer) is not built on every step.
        var state = HAStateChanged(
            server: serverID, role: core.role, epoch: core.epoch, activeServer: core.epoch.server,
            writesEnabled: writesOn && core.writesEnabled, reason: "")
        if announcedState?.role != state.role { modeSince = Date() }
        guard var announced = announcedState else {
            state.reason = "HA started: \(reason)"
            announcedState = state
            events.publish(.haStateChanged(state))
            return
        }
        announced.reason = ""
        guard announced != state else { return }
        state.reason = "\(reason)"
        announcedState = state
        events.publish(.haStateChanged(state))
    }

    // MARK: outcomes and errors

    func resolveSyncPublish(_ number: UInt64, _ outcome: ReplicationOutcome) {
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

    func record(error: String) {
        lastErrorText = error
        lastErrorAt = Date()
        logger.error("ha: \(error)")
    }
}
