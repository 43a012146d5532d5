import HACore
import Testing

// Where two journals part, found exactly (issue 18, item 2): a hello's checkpoints are sparse (head -1,
// -2, -4 …), so they only bound the fork; the active then asks the standby for its hashes in between.
// A collision counts and exports exactly the revisions the active lacks, never one it holds.

/// A journal built from (epoch, tag) pairs: same tags at the same numbers give the same hashes.
struct JournalBuilder {
    var journal = Journal.empty

    mutating func append(_ count: Int, in epoch: Epoch, tag: String) {
        for _ in 0..<count {
            let head = journal.head
            let number = head.number + 1
            journal.append(
                ReplicatedRevision(
                    number: number, epoch: epoch, previousHash: head.hash,
                    hash: "\(tag)-\(epoch)-\(number)-\(head.hash.prefix(12))", payload: []))
        }
    }
}

@Suite("Fork point")
struct ForkPointTests {
    /// Written by a third server: which of two revisions under one number of it C kept, the active
    /// cannot tell (a collision). The active's own older epoch is `ownOld`.
    static let old = Epoch(term: 1, server: "C")
    static let ownOld = Epoch(term: 1, server: "A")
    static let current = Epoch(term: 2, server: "A")

    /// The active's answer to the standby's hello after every fork probe it asks has been answered
    /// from `standby`; also how many probe rounds that took.
    static func answer(
        active: Journal, in epoch: Epoch, standby: Journal, journalReplacedFrom: UInt64? = nil
    ) -> (message: HAMessage.Body?, rounds: Int) {
        var core = HAStateMachine(
            configuration: HAConfiguration(serverID: "A", peers: ["B"]),
            hardState: HardState(epoch: epoch, role: .active, peers: [PeerRecord(serverID: "B")], journalReplacedFrom: journalReplacedFrom),
            journal: active)
        _ = core.step(.tick(now: 1_000))
        let hello = HAMessage.Hello(
            serverID: "B", head: standby.head, durableHead: standby.head, spans: standby.spans,
            softwareVersion: "0.1.0", schemaVersion: 1, wantsFullSync: false, checkpoints: standby.checkpoints)
        var output = core.step(.receive(from: "B", message: HAMessage(epoch: epoch, body: .hello(hello))))
        var rounds = 0
        while rounds < 20 {
            let bodies = output.messages.filter { $0.to == "B" }.map(\.message.body)
            guard let probe = bodies.first(where: { if case .forkProbe = $0 { true } else { false } }),
                case .forkProbe(let numbers) = probe
            else {
                return (bodies.first { if case .heartbeat = $0 { false } else { true } }, rounds)
            }
            rounds += 1
            #expect(numbers.count <= HALimits.forkProbeNumbersMax)
            let heads = numbers.compactMap { number in standby.hash(at: number).map { RevisionHead(number: number, hash: $0) } }
            output = core.step(.receive(from: "B", message: HAMessage(epoch: epoch, body: .forkProbeReply(head: standby.head, heads: heads))))
        }
        return (nil, rounds)
    }

    @Test(
        "a collision found by hash counts and exports exactly the divergent revisions, for forks 1 to 70 revisions deep",
        arguments: [1, 37, 300])
    func collisionAtEveryDistance(sharedPrefix: Int) {
        for divergent in 1...70 {
            var active = JournalBuilder()
            var standby = JournalBuilder()
            active.append(sharedPrefix, in: Self.old, tag: "shared")
            standby.append(sharedPrefix, in: Self.old, tag: "shared")
            // Same epoch spans on both sides: only the hashes tell the standby's revisions apart.
            active.append(divergent + 3, in: Self.old, tag: "active")
            active.append(1, in: Self.current, tag: "active")
            standby.append(divergent, in: Self.old, tag: "standby")
            let (answer, rounds) = Self.answer(active: active.journal, in: Self.current, standby: standby.journal)
            let expectedCommon = UInt64(sharedPrefix)
            guard case .collision(let common, let count, _, _)? = answer else {
                Issue.record("fork \(divergent) deep after #\(sharedPrefix): expected a collision, got \(String(describing: answer))")
                continue
            }
            #expect(
                common == expectedCommon && count == UInt64(divergent),
                "fork \(divergent) deep after #\(sharedPrefix): collision after #\(common), \(count) divergent")
            #expect(rounds <= 2, "\(rounds) probe rounds")

            // The standby exports exactly its own revisions, none the active holds.
            var core = HAStateMachine(
                configuration: HAConfiguration(serverID: "B", peers: ["A"]),
                hardState: HardState(epoch: Self.current, role: .standby, peers: [PeerRecord(serverID: "A")]),
                journal: standby.journal)
            _ = core.step(.tick(now: 1_000))
            _ = core.step(
                .receive(
                    from: "A",
                    message: HAMessage(
                        epoch: Self.current,
                        body: .collision(
                            commonNumber: common, divergentCount: count, activeHead: active.journal.head))))
            #expect(core.collision?.divergentRevisions == UInt64(divergent))
            let resolved = core.step(.admin(.resolveCollision(keep: .peer)))
            let exported =
                resolved.effects.compactMap { effect -> [ReplicatedRevision]? in
                    if case .exportDivergent(_, let revisions, _) = effect { revisions } else { nil }
                }.first ?? []
            #expect(exported.count == divergent)
            #expect(exported.allSatisfy { active.journal.contains($0.head) == false }, "an exported revision is held by the active")
        }
    }

    @Test("revisions of the active's own epoch that it lost before its fsync are dropped exactly, at every distance")
    func discardAtEveryDistance() {
        for divergent in 1...70 {
            var active = JournalBuilder()
            var standby = JournalBuilder()
            active.append(20, in: Self.current, tag: "shared")
            standby.append(20, in: Self.current, tag: "shared")
            active.append(divergent + 5, in: Self.current, tag: "rewritten")
            standby.append(divergent, in: Self.current, tag: "lost")
            let (answer, _) = Self.answer(active: active.journal, in: Self.current, standby: standby.journal)
            guard case .discardUnsyncedTail(let after, nil, _, _)? = answer else {
                Issue.record("fork \(divergent) deep: expected a discard, got \(String(describing: answer))")
                continue
            }
            #expect(after == 20, "fork \(divergent) deep: discard after #\(after)")
        }
    }

    @Test(
        "revisions of an older epoch of the active's own that it lost are dropped, unless its journal was replaced from the fork on",
        arguments: [nil, 30, 20, 1] as [UInt64?])
    func ownOlderEpochLosses(journalReplacedFrom: UInt64?) {
        var active = JournalBuilder()
        var standby = JournalBuilder()
        active.append(20, in: Self.ownOld, tag: "shared")
        standby.append(20, in: Self.ownOld, tag: "shared")
        active.append(5, in: Self.ownOld, tag: "kept")
        active.append(2, in: Self.current, tag: "kept")
        standby.append(3, in: Self.ownOld, tag: "lost")
        let (answer, _) = Self.answer(active: active.journal, in: Self.current, standby: standby.journal, journalReplacedFrom: journalReplacedFrom)
        // Replaced from #21 or earlier: the active's #21 of 1/A may be a copy of another's, not the one it kept.
        let collides = journalReplacedFrom.map { $0 <= 21 } ?? false
        switch answer {
        case .collision(20, 3, _, _)? where collides: break
        case .discardUnsyncedTail(after: 20, epoch: Self.ownOld, _, _)? where !collides: break
        default: Issue.record("replaced from \(String(describing: journalReplacedFrom)): \(String(describing: answer))")
        }
    }

    @Test("revisions of an older epoch of the active's own, beyond a standby's snapshot base, collide when the active replaced its journal")
    func ownOlderEpochBeyondASnapshotBase() {
        // Found by `rampart sim` (seed 60627): the active, A, had dropped #50-#65 of 1/A on purpose
        // (a collision resolved keeping B's data, after an export), and answered publishes of them
        // before. A standby full-synced at #52 of 1/A cannot show its hashes under #52, so the fork
        // probe finds nothing shared after #0: the active took the standby's revisions for ones it
        // lost before its fsync and had them dropped without an export. It is a collision.
        var active = JournalBuilder()
        var standby = JournalBuilder()
        active.append(49, in: Self.ownOld, tag: "shared")
        standby.append(52, in: Self.ownOld, tag: "shared")
        active.append(5, in: Epoch(term: 1, server: "B"), tag: "peer")
        active.append(2, in: Self.current, tag: "kept")
        var snapshotted = Journal.empty
        snapshotted.installSnapshot(at: standby.journal.head, spans: standby.journal.spans)
        standby.journal = snapshotted
        standby.append(13, in: Self.ownOld, tag: "dropped")
        let (answer, _) = Self.answer(active: active.journal, in: Self.current, standby: standby.journal, journalReplacedFrom: 50)
        guard case .collision? = answer else {
            Issue.record("expected a collision, got \(String(describing: answer))")
            return
        }
    }

    @Test("a standby drops an unsynced tail only while its head is the one the active answered")
    func staleDiscardIsIgnored() {
        // Found by `rampart sim` (seed 67907): a hello delayed on the way was answered with a discard
        // after the standby had received the active's new revisions under the same numbers, which
        // the active held durably; the standby dropped them.
        var journal = JournalBuilder()
        journal.append(20, in: Self.current, tag: "shared")
        journal.append(3, in: Self.current, tag: "lost")
        var standby = HAStateMachine(
            configuration: HAConfiguration(serverID: "B", peers: ["A"]),
            hardState: HardState(epoch: Self.current, role: .standby, peers: [PeerRecord(serverID: "A")]),
            journal: journal.journal)
        _ = standby.step(.tick(now: 1_000))
        func discard(answering head: RevisionHead) -> HAOutput {
            standby.step(
                .receive(
                    from: "A",
                    message: HAMessage(epoch: Self.current, body: .discardUnsyncedTail(after: 20, epoch: nil, standbyHead: head))))
        }
        let stale = discard(answering: RevisionHead(number: 21, hash: "an older head"))
        #expect(!stale.effects.contains(.discardUnsyncedRevisions(after: 20)))
        #expect(standby.journal.head == journal.journal.head)
        let current = discard(answering: journal.journal.head)
        #expect(current.effects.contains(.discardUnsyncedRevisions(after: 20)))
        #expect(standby.journal.head.number == 20)
    }

    @Test("a standby whose journal is a prefix gets delta sync at once, without a probe")
    func prefixNeedsNoProbe() {
        var active = JournalBuilder()
        var standby = JournalBuilder()
        active.append(100, in: Self.current, tag: "shared")
        standby.append(60, in: Self.current, tag: "shared")
        let (answer, rounds) = Self.answer(active: active.journal, in: Self.current, standby: standby.journal)
        #expect(rounds == 0)
        if case .append(let previous, let revisions, _)? = answer {
            #expect(previous.number == 60 && revisions.first?.number == 61)
        } else {
            Issue.record("expected an append, got \(String(describing: answer))")
        }
    }

    @Test("a probe reply from a journal that changed meanwhile, or that crosses the bounds, never traps")
    func hostileProbeReplies() {
        var active = JournalBuilder()
        var standby = JournalBuilder()
        active.append(10, in: Self.old, tag: "shared")
        standby.append(10, in: Self.old, tag: "shared")
        active.append(40, in: Self.old, tag: "active")
        active.append(1, in: Self.current, tag: "active")
        standby.append(30, in: Self.old, tag: "standby")
        var core = HAStateMachine(
            configuration: HAConfiguration(serverID: "A", peers: ["B"]),
            hardState: HardState(epoch: Self.current, role: .active, peers: [PeerRecord(serverID: "B")]),
            journal: active.journal)
        _ = core.step(.tick(now: 1_000))
        // Checkpoints out of order and a head it does not hold: bounds that cross.
        let hello = HAMessage.Hello(
            serverID: "B", head: standby.journal.head, durableHead: .empty, spans: standby.journal.spans,
            softwareVersion: "0.1.0", schemaVersion: 1, wantsFullSync: false,
            checkpoints: [RevisionHead(number: 2, hash: "nonsense"), active.journal.headAt(9), active.journal.headAt(11)])
        _ = core.step(.receive(from: "B", message: HAMessage(epoch: Self.current, body: .hello(hello))))
        let replies: [HAMessage.Body] = [
            .forkProbeReply(head: RevisionHead(number: 99, hash: "other"), heads: []),
            .forkProbeReply(head: standby.journal.head, heads: [RevisionHead(number: UInt64.max, hash: "x"), RevisionHead(number: 0, hash: "")]),
            .forkProbeReply(head: standby.journal.head, heads: (0..<64).map { RevisionHead(number: UInt64($0) * 1_000_003, hash: "y") }),
        ]
        for reply in replies { _ = core.step(.receive(from: "B", message: HAMessage(epoch: Self.current, body: reply))) }
        #expect(core.role == .active)
    }
}
