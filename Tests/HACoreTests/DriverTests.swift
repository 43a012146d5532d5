import HACore
import HADriverKit
import Testing

// The HA driver is the one executor of HACore's output contract, shared by the runtime and the
// simulator: persist before send before effects, completions stepped in order, and a storage
// failure stops everything after it.

/// Storage, transport and host in one, writing down what the driver asks in order.
final class RecordingShell: HAStorage, HATransport, HAHost {
    var events: [String] = []
    var failHardState = false
    var failExport = false
    var haltedBecause: String?
    /// The journal on "disk": payloads by revision hash, as `loadPayloads` reads them.
    var payloads: [String: [UInt8]] = [:]
    /// Every envelope sent, as it left.
    var sent: [Envelope] = []

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    func saveHardState(_ hardState: HardState) throws {
        if failHardState { throw Failure(description: "disk full") }
        events.append("persist epoch \(hardState.epoch)")
    }

    func applyRevisions(_ revisions: [ReplicatedRevision], core: HAStateMachine, completions: inout [HAInput]) throws {
        events.append("apply #\(revisions.map(\.number))")
        if let last = revisions.last { completions.append(.persistedUpTo(last.head)) }
    }

    func readSnapshotChunk(standby: ServerID, snapshotHead: RevisionHead, index: Int, core: HAStateMachine, completions: inout [HAInput]) throws {
        events.append("read chunk \(index)")
    }

    func stageSnapshotChunk(snapshotHead: RevisionHead, index: Int, bytes: [UInt8], core: HAStateMachine, completions: inout [HAInput]) throws {
        events.append("stage chunk \(index)")
    }

    func installSnapshot(snapshotHead: RevisionHead, spans: [EpochSpan], core: HAStateMachine, completions: inout [HAInput]) throws {
        events.append("install \(snapshotHead)")
    }

    func exportDivergent(after: UInt64, _ revisions: [ReplicatedRevision], snapshotBase: RevisionHead?, core: HAStateMachine) throws {
        if failExport { throw Failure(description: "export failed") }
        events.append("export \(revisions.count)")
    }

    func truncateJournal(after number: UInt64, unsynced: Bool, core: HAStateMachine) throws {
        events.append("truncate after #\(number)")
    }

    func loadPayloads(_ revisions: [ReplicatedRevision], core: HAStateMachine) throws -> [[UInt8]] {
        events.append("load #\(revisions.map(\.number))")
        return try revisions.map { revision in
            guard let payload = payloads[revision.hash] else { throw Failure(description: "#\(revision.number) is not on disk") }
            return payload
        }
    }

    func send(_ envelope: Envelope) {
        events.append("send \(envelope.message.kindName) to \(envelope.to)")
        sent.append(envelope)
    }

    func willCarryOut(_ output: HAOutput, for input: HAInput, core: HAStateMachine) {}
    func enableWrites(epoch: Epoch, forced: Bool, core: HAStateMachine) { events.append("enable writes \(epoch)") }
    func disableWrites() { events.append("disable writes") }
    func publishResolved(revision: UInt64, acknowledged: Bool, core: HAStateMachine) {}
    func statusChanged(peer: ServerID, status: PeerSyncStatus) {}
    func promotionReported(_ report: PromotionReport) { events.append("report") }
    func commandRefused(_ refusal: HARefusal) { events.append("refused \(refusal)") }
    func didCarryOut(_ output: HAOutput, core: HAStateMachine) { events.append("done: \(output.reason)") }
    func halted(because error: any Error) { haltedBecause = "\(error)" }
}

@Suite("HA driver")
struct DriverTests {
    static func driver(_ shell: RecordingShell, server: ServerID = "B") -> HADriver<RecordingShell, RecordingShell, RecordingShell> {
        HADriver(
            core: HAStateMachine(configuration: HAConfiguration(serverID: server, peers: ["A", "C"].filter { $0 != server })),
            storage: shell, transport: shell, host: shell)
    }

    @Test("a tick with no timer due only moves the clock, as stepping it would; with one due, nothing moves and the tick is stepped")
    func clockOnlyTicks() {
        let shell = RecordingShell()
        var stepped = Self.driver(shell)
        var moved = Self.driver(shell)
        stepped.handle(.tick(now: 1_000))
        moved.handle(.tick(now: 1_000))
        shell.events = []
        var now: UInt64 = 1_000
        var movedOnly = 0
        // A standby's timers come every few ticks: in between, both drivers see the same core.
        for _ in 0..<200 {
            now += 10
            let output = stepped.handle(.tick(now: now))
            if moved.moveClockIfNoTimerDue(to: now) {
                movedOnly += 1
                #expect(output?.messages.isEmpty == true && output?.effects.isEmpty == true && output?.persist == nil)
            } else {
                #expect(moved.core.nowMilliseconds == now - 10, "a due timer moves nothing")
                moved.handle(.tick(now: now))
            }
            #expect(moved.core.nowMilliseconds == stepped.core.nowMilliseconds && moved.core.status == stepped.core.status)
        }
        #expect(movedOnly > 100 && movedOnly < 200, "\(movedOnly) of 200 ticks moved the clock only")
    }

    @Test("the hard state is durable before any message is sent, and messages go before effects")
    func persistThenSendThenEffects() {
        let shell = RecordingShell()
        var driver = Self.driver(shell)
        driver.handle(.tick(now: 5_000))
        shell.events = []
        let output = driver.handle(.admin(.promote(dryRun: false, force: true)))
        #expect(output?.persist?.role == .active)
        let persist = shell.events.firstIndex { $0.hasPrefix("persist") }
        let firstSend = shell.events.firstIndex { $0.hasPrefix("send") }
        let enable = shell.events.firstIndex { $0.hasPrefix("enable writes") }
        #expect(persist != nil && firstSend != nil && enable != nil)
        if let persist, let firstSend, let enable { #expect(persist < firstSend && firstSend < enable) }
        #expect(shell.events.last?.hasPrefix("done: forced promotion") == true)
    }

    @Test("completions an effect reports are stepped right after its output, in order")
    func completionsAreStepped() {
        let shell = RecordingShell()
        var driver = Self.driver(shell)
        let epoch = Epoch(term: 1, server: "A")
        let revision = ReplicatedRevision(number: 1, epoch: epoch, previousHash: "", hash: "r1", payload: [1])
        driver.handle(.receive(from: "A", message: HAMessage(epoch: epoch, body: .epochAnnouncement(head: revision.head))))
        driver.handle(.receive(from: "A", message: HAMessage(epoch: epoch, body: .append(previous: .empty, revisions: [], activeHead: revision.head))))
        shell.events = []
        driver.handle(.receive(from: "A", message: HAMessage(epoch: epoch, body: .append(previous: .empty, revisions: [revision], activeHead: revision.head))))
        // The apply reports the revision durable; that completion is stepped before handle returns:
        // the standby acknowledges it to the active.
        #expect(shell.events.prefix(2) == ["apply #[1]", "done: append applied"])
        #expect(shell.events.contains("send ack to A"))
        #expect(driver.core.durableHead == revision.head)
    }

    @Test("a hard state that cannot be made durable halts the driver: nothing of that output is sent or done, no input is taken after")
    func persistFailureHalts() {
        let shell = RecordingShell()
        var driver = Self.driver(shell)
        driver.handle(.tick(now: 5_000))
        shell.events = []
        shell.failHardState = true
        let output = driver.handle(.admin(.promote(dryRun: false, force: true)))
        #expect(output?.persist != nil)
        #expect(driver.isHalted)
        #expect(shell.haltedBecause == "disk full")
        #expect(!shell.events.contains { $0.hasPrefix("send") || $0.hasPrefix("enable writes") }, "\(shell.events)")
        #expect(driver.handle(.tick(now: 6_000)) == nil)
    }

    static let higher = Epoch(term: 2, server: "A")

    /// Standby B holding one revision of its own epoch 1/B, following A in the higher epoch 2/A.
    static func standbyWithOneRevisionOfItsOwn(_ shell: RecordingShell) -> HADriver<RecordingShell, RecordingShell, RecordingShell> {
        var journal = Journal()
        journal.append(ReplicatedRevision(number: 1, epoch: Epoch(term: 1, server: "B"), previousHash: "", hash: "b1", payload: []))
        let hardState = HardState(epoch: Epoch(term: 1, server: "B"), role: .standby, peers: [PeerRecord(serverID: "A")])
        var standby = HADriver(
            core: HAStateMachine(configuration: HAConfiguration(serverID: "B", peers: ["A"]), hardState: hardState, journal: journal),
            storage: shell, transport: shell, host: shell)
        standby.handle(.receive(from: "A", message: HAMessage(epoch: higher, body: .epochAnnouncement(head: .empty))))
        return standby
    }

    @Test("a collision report that does not describe the standby's journal (an answer to an older hello) is no collision: it says hello again")
    func staleCollisionReport() {
        let shell = RecordingShell()
        var standby = Self.standbyWithOneRevisionOfItsOwn(shell)
        let higher = Self.higher
        // Nothing after the common revision, or another count of divergent revisions than we hold.
        for (common, divergent): (UInt64, UInt64) in [(1, 0), (0, 2)] {
            shell.events = []
            standby.handle(
                .receive(from: "A", message: HAMessage(epoch: higher, body: .collision(commonNumber: common, divergentCount: divergent, activeHead: .empty))))
            #expect(standby.core.collision == nil, "common #\(common), \(divergent) divergent")
            #expect(shell.events.contains("send hello to A"), "\(shell.events)")
        }
        standby.handle(.receive(from: "A", message: HAMessage(epoch: higher, body: .collision(commonNumber: 0, divergentCount: 1, activeHead: .empty))))
        #expect(standby.core.collision?.divergentRevisions == 1)
    }

    @Test("an effect that fails halts the driver before the effects after it (no truncation after a failed export)")
    func effectFailureStopsTheRest() throws {
        let shell = RecordingShell()
        // B holds a revision of its own epoch that the active A, in a higher epoch, lacks: A reports a
        // collision, which an administrator resolves keeping A's data (export, then truncate).
        var standby = Self.standbyWithOneRevisionOfItsOwn(shell)
        let higher = Self.higher
        standby.handle(.receive(from: "A", message: HAMessage(epoch: higher, body: .collision(commonNumber: 0, divergentCount: 1, activeHead: .empty))))
        try #require(standby.core.collision != nil)
        shell.events = []
        shell.failExport = true
        standby.handle(.admin(.resolveCollision(keep: .peer)))
        #expect(standby.isHalted)
        #expect(!shell.events.contains { $0.hasPrefix("truncate") }, "\(shell.events)")
        #expect(shell.haltedBecause == "export failed")
    }

    /// B, active by a forced promotion, commits revisions 1 and 2 (payload 7, 7, 7); A, holding
    /// revision 1, says hello: B sends it revision 2.
    static func activeSendingItsSecondRevision(_ shell: RecordingShell) -> (
        driver: HADriver<RecordingShell, RecordingShell, RecordingShell>, revision: ReplicatedRevision
    ) {
        var active = Self.driver(shell)
        active.handle(.tick(now: 5_000))
        active.handle(.admin(.promote(dryRun: false, force: true)))
        let epoch = active.core.epoch
        let first = ReplicatedRevision(number: 1, epoch: epoch, previousHash: "", hash: "b1", payload: [1])
        let second = ReplicatedRevision(number: 2, epoch: epoch, previousHash: "b1", hash: "b2", payload: [7, 7, 7])
        active.handle(.revisionCommitted(first))
        active.handle(.revisionCommitted(second))
        active.handle(.persistedUpTo(second.head))
        shell.events = []
        shell.sent = []
        let hello = HAMessage.Hello(
            serverID: "A", head: first.head, durableHead: first.head, spans: [EpochSpan(epoch: epoch, firstNumber: 1, lastNumber: 1)],
            softwareVersion: "0.1.0", schemaVersion: 1, wantsFullSync: false, checkpoints: [.empty])
        active.handle(.receive(from: "A", message: HAMessage(epoch: epoch, body: .hello(hello))))
        return (active, second)
    }

    @Test("the core's journal keeps no payload; an append leaves with the bytes the storage's journal holds, read as it is sent")
    func appendsCarryThePayloadsReadFromStorage() throws {
        let shell = RecordingShell()
        shell.payloads = ["b1": [1], "b2": [7, 7, 7]]
        let (active, revision) = Self.activeSendingItsSecondRevision(shell)
        #expect(
            active.core.journal.revision(2)
                == ReplicatedRevision(number: 2, epoch: revision.epoch, previousHash: "b1", hash: "b2", payload: .stored(byteCount: 3)))
        let appends = shell.sent.compactMap { envelope -> [ReplicatedRevision]? in
            if case .append(_, let revisions, _) = envelope.message.body, !revisions.isEmpty { return revisions }
            return nil
        }
        #expect(appends == [[revision]], "sent with its bytes: \(shell.events)")
        #expect(shell.events.firstIndex(of: "load #[2]").map { $0 < (shell.events.firstIndex(of: "send append to A") ?? 0) } == true, "\(shell.events)")
        #expect(!active.isHalted)
    }

    @Test("a payload the storage does not hold, or holds at another size, halts the driver: no append leaves without it")
    func aMissingPayloadHalts() {
        for stored: [UInt8]? in [nil, [7, 7]] {
            let shell = RecordingShell()
            shell.payloads = ["b1": [1], "b2": stored].compactMapValues { $0 }
            let (active, _) = Self.activeSendingItsSecondRevision(shell)
            #expect(active.isHalted)
            #expect(!shell.events.contains("send append to A"), "\(shell.events)")
        }
    }
}
