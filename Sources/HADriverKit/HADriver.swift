import HACore

// One executor of HACore's output contract (as etcd raft's `Ready`), shared by the server's runtime
// (HARuntime: SQLite and SIC channels) and the simulator (SimulationKit: a fake disk and a seeded
// network), so the code that orders persist, send and effects is the code that runs under faults.

/// Where one server keeps what must survive a crash, and its journal. What a method makes durable is
/// durable when it returns. A method that throws halts the driver: nothing after it runs, and no
/// input is stepped again until the server restarts (sending or acting on a state a crash could
/// forget is how an epoch goes backwards). Failures the core can recover from are reported as
/// completions instead (`requestFullSync`, `snapshotUnavailable`).
///
/// Completions are the inputs an effect reports back (`persistedUpTo`, `snapshotChunkRead`, ...):
/// appended to `completions` they are stepped right after this output, in order; a storage that
/// completes later (an asynchronous disk) feeds them itself.
///
/// A reference type, as is the host: a driver calls it while it reads its core, and calling a value
/// stored beside the core (a mutating call) copied the whole core for every call.
public protocol HAStorage: AnyObject {
    /// Makes `hardState` durable (fsync) before anything of the same output is sent or done.
    func saveHardState(_ hardState: HardState) throws
    /// Standby: applies `revisions` in order, verifying them, makes them durable, then reports
    /// `persistedUpTo`; one that does not verify asks for a full sync instead.
    func applyRevisions(_ revisions: [ReplicatedRevision], core: HAStateMachine, completions: inout [HAInput]) throws
    /// Active: reads chunk `index` of a snapshot at `snapshotHead` for `standby`; reports
    /// `snapshotChunkRead`, or `snapshotUnavailable` when it cannot.
    func readSnapshotChunk(
        standby: ServerID, snapshotHead: RevisionHead, index: Int, core: HAStateMachine,
        completions: inout [HAInput]) throws
    /// Standby: stages a verified chunk durably; reports `snapshotChunkApplied`.
    func stageSnapshotChunk(
        snapshotHead: RevisionHead, index: Int, bytes: [UInt8], core: HAStateMachine,
        completions: inout [HAInput]) throws
    /// Standby: replaces the database and journal by the staged snapshot atomically; reports `persistedUpTo`.
    func installSnapshot(
        snapshotHead: RevisionHead, spans: [EpochSpan], core: HAStateMachine,
        completions: inout [HAInput]) throws
    /// The payloads of `revisions` (consecutive revisions of the core's journal, payloads `.stored`) as
    /// this server's journal holds them, in order. The driver calls it before a message carrying them is
    /// sent: the core keeps no payloads in memory.
    func loadPayloads(_ revisions: [ReplicatedRevision], core: HAStateMachine) throws -> [[UInt8]]
    /// Writes every revision after `after` where an administrator can take them, durably: `revisions`
    /// (the core's) and any the storage holds before them (the core compacted its journal), with a copy
    /// of the whole database when the storage lacks one of them.
    func exportDivergent(after: UInt64, _ revisions: [ReplicatedRevision], snapshotBase: RevisionHead?, core: HAStateMachine) throws
    /// Drops every revision after `number` (exported just before, or, with `unsynced`, revisions its
    /// active lost before their fsync and never answered).
    func truncateJournal(after number: UInt64, unsynced: Bool, core: HAStateMachine) throws
}

/// How one server's messages reach its peers: best effort (the core retransmits what matters).
public protocol HATransport {
    mutating func send(_ envelope: Envelope)
}

/// The rest of the server: what it does when writes go on or off, a publish is answered, a status
/// changes, and what it logs (or checks) around each output.
public protocol HAHost: AnyObject {
    /// Before anything of `output` (the answer to `input`) is carried out.
    func willCarryOut(_ output: HAOutput, for input: HAInput, core: HAStateMachine)
    func enableWrites(epoch: Epoch, forced: Bool, core: HAStateMachine)
    func disableWrites()
    /// Sync mode: a publish's outcome (`acknowledged`: a standby holds it durably; otherwise timed out).
    func publishResolved(revision: UInt64, acknowledged: Bool, core: HAStateMachine)
    func statusChanged(peer: ServerID, status: PeerSyncStatus)
    func promotionReported(_ report: PromotionReport)
    func commandRefused(_ refusal: HARefusal)
    /// After `output` was carried out (or as far as it got before a halt).
    func didCarryOut(_ output: HAOutput, core: HAStateMachine)
    /// Storage failed: the driver stopped acting (its owner may start a new driver from durable state).
    func halted(because error: any Error)
}

/// Drives one server's HACore: steps it with one input at a time and carries out each output in the
/// order its contract demands — the hard state durable, then messages sent, then effects in order —
/// and steps the completions those effects report before the next input.
public struct HADriver<Storage: HAStorage, Transport: HATransport, Host: HAHost> {
    public private(set) var core: HAStateMachine
    public let storage: Storage
    public var transport: Transport
    public let host: Host
    /// Set once storage failed (or the owner called `halt`): no input is stepped any more.
    public private(set) var isHalted = false

    public init(core: HAStateMachine, storage: Storage, transport: Transport, host: Host) {
        self.core = core
        self.storage = storage
        self.transport = transport
        self.host = host
    }

    /// Stops acting: something the core was told is durable is not (e.g. a publish's fsync failed).
    public mutating func halt(because error: any Error) {
        isHalted = true
        host.halted(because: error)
    }

    /// A tick that only moves the clock (no timer due by `now`): done, nothing to carry out, true.
    /// False when a timer is due (or the driver halted): step `.tick(now)` instead.
    public mutating func moveClockIfNoTimerDue(to now: UInt64) -> Bool {
        !isHalted && core.moveClockIfNoTimerDue(to: now)
    }

    /// Steps `input`, then every completion its effects report (and theirs), in order. Returns the
    /// output of `input` itself; nil when halted before it.
    @discardableResult
    public mutating func handle(_ input: HAInput) -> HAOutput? {
        var queue = [input]
        var next = 0
        var first: HAOutput?
        while next < queue.count, !isHalted {
            let output = step(queue[next], completions: &queue)
            if next == 0 { first = output }
            next += 1
        }
        return first
    }

    /// Steps `input` and carries out its output; completions reported at once are appended to
    /// `completions` for the caller to step next. Nil when halted.
    public mutating func step(_ input: HAInput, completions: inout [HAInput]) -> HAOutput? {
        guard !isHalted else { return nil }
        let output = core.step(input)
        host.willCarryOut(output, for: input, core: core)
        if let hardState = output.persist {
            do {
                try storage.saveHardState(hardState)
            } catch {
                // Nothing of this output happens: it may rest on an epoch a crash would forget.
                halt(because: error)
                return output
            }
        }
        // By index: each message is handed to the transport borrowed from the output, not copied first.
        for index in output.messages.indices {
            // Only an append carries revisions whose payloads wait in storage; the rest leave as they are.
            guard case .append = output.messages[index].message.body else {
                transport.send(output.messages[index])
                continue
            }
            do {
                transport.send(try withPayloads(output.messages[index]))
            } catch {
                // The journal does not hold what the core lists: nothing is sent or done on top of it.
                halt(because: error)
                return output
            }
        }
        for effect in output.effects {
            do {
                try carryOut(effect, completions: &completions)
            } catch {
                // The effects after it (a truncation after a failed export) must not run.
                halt(because: error)
                break
            }
        }
        host.didCarryOut(output, core: core)
        return output
    }

    /// `envelope` with every revision it carries loaded from storage (an `append` from the journal).
    mutating func withPayloads(_ envelope: Envelope) throws -> Envelope {
        guard case .append(let previous, let revisions, let activeHead) = envelope.message.body,
            revisions.contains(where: { $0.payload.bytes == nil })
        else { return envelope }
        let payloads = try storage.loadPayloads(revisions, core: core)
        guard payloads.count == revisions.count,
            zip(revisions, payloads).allSatisfy({ $0.payload.byteCount == $1.count })
        else { throw PayloadsDisagree(first: revisions.first?.number ?? 0, count: revisions.count, loaded: payloads.count) }
        var loaded = envelope
        loaded.message.body = .append(previous: previous, revisions: zip(revisions, payloads).map { $0.withPayload($1) }, activeHead: activeHead)
        return loaded
    }

    mutating func carryOut(_ effect: HAEffect, completions: inout [HAInput]) throws {
        switch effect {
        case .enableWrites(let epoch, let forced): host.enableWrites(epoch: epoch, forced: forced, core: core)
        case .disableWrites: host.disableWrites()
        case .applyRevisions(let revisions): try storage.applyRevisions(revisions, core: core, completions: &completions)
        case .readSnapshotChunk(let standby, let snapshotHead, let index):
            try storage.readSnapshotChunk(standby: standby, snapshotHead: snapshotHead, index: index, core: core, completions: &completions)
        case .applySnapshotChunk(let snapshotHead, let index, let bytes):
            try storage.stageSnapshotChunk(snapshotHead: snapshotHead, index: index, bytes: bytes, core: core, completions: &completions)
        case .completeFullSync(let snapshotHead, let spans):
            try storage.installSnapshot(snapshotHead: snapshotHead, spans: spans, core: core, completions: &completions)
        case .exportDivergent(let after, let revisions, let snapshotBase):
            try storage.exportDivergent(after: after, revisions, snapshotBase: snapshotBase, core: core)
        case .truncateJournal(let number): try storage.truncateJournal(after: number, unsynced: false, core: core)
        case .discardUnsyncedRevisions(let number): try storage.truncateJournal(after: number, unsynced: true, core: core)
        case .publishAcknowledged(let number): host.publishResolved(revision: number, acknowledged: true, core: core)
        case .publishTimedOut(let number): host.publishResolved(revision: number, acknowledged: false, core: core)
        case .statusChanged(let peer, let status): host.statusChanged(peer: peer, status: status)
        case .promotionReport(let report): host.promotionReported(report)
        case .commandRefused(let refusal): host.commandRefused(refusal)
        }
    }
}

/// The storage's journal returned other payloads than the core's journal lists (another count, or
/// another size): they are not the revisions the core decided to send.
public struct PayloadsDisagree: Error, CustomStringConvertible {
    public let first: UInt64
    public let count: Int
    public let loaded: Int

    public var description: String {
        "the journal on disk does not match the HA core's for revisions \(first) and the \(count - 1) after it (\(loaded) payloads read)"
    }
}
