import HACore
import Testing

// The core holds each revision's hash and size for the delta-sync, collision and promotion decisions.
// Without a bound that list grew 48 bytes a revision for the server's life (the 30-minute soak's only
// unbounded growth); `HALimits.journalRevisionsHeldMax` bounds it, as a snapshot base would.
@Suite("Journal compaction") struct JournalCompactionTests {
    static let epoch = Epoch(term: 1, server: "A")

    static func revision(after head: RevisionHead, epoch: Epoch = epoch) -> ReplicatedRevision {
        let number = head.number + 1
        return ReplicatedRevision(number: number, epoch: epoch, previousHash: head.hash, hash: "h\(number)", payload: [UInt8(truncatingIfNeeded: number)])
    }

    static func journal(_ count: Int) -> Journal {
        var journal = Journal()
        for _ in 0..<count { journal.append(revision(after: journal.head)) }
        return journal
    }

    @Test("compacting keeps the head, the spans and the last revisions; what lies under the base is unknown, never matching")
    func compactKeepsTheTail() {
        var journal = Self.journal(10)
        journal.compact(keepingLast: 3)
        #expect(journal.base == RevisionHead(number: 7, hash: "h7"))
        #expect(journal.head == RevisionHead(number: 10, hash: "h10"))
        #expect(journal.revisions.map(\.number) == [8, 9, 10])
        #expect(journal.revisions.first?.previousHash == "h7")
        #expect(journal.spans == [EpochSpan(epoch: Self.epoch, firstNumber: 1, lastNumber: 10)])
        #expect(journal.contains(RevisionHead(number: 5, hash: "h5")) == nil)
        #expect(journal.contains(RevisionHead(number: 5, hash: "other")) == nil)
        #expect(journal.contains(RevisionHead(number: 8, hash: "h8")) == true)
        #expect(journal.epoch(at: 2) == Self.epoch, "the spans still cover what lies under the base")
        #expect(journal.checkpoints.last == journal.base)
    }

    @Test("past the limit the journal forgets the older half: however many revisions, it never holds more than the limit")
    func compactIfLongerBoundsTheJournal() {
        var journal = Journal()
        var compactions = 0
        for _ in 0..<1_000 {
            journal.append(Self.revision(after: journal.head))
            if journal.compactIfLonger(than: 64) { compactions += 1 }
            #expect(journal.revisionCount <= 64)
        }
        #expect(journal.head.number == 1_000)
        #expect(compactions == 29, "at the 65th append, then once every 33")
        var tiny = Self.journal(3)
        #expect(tiny.compactIfLonger(than: 1) && tiny.revisionCount == 1, "at least one revision is kept")
    }

    @Test("truncating under a compacted base: with the active's hash of the revision kept, it becomes the base; without, the journal empties")
    func truncateUnderTheBase() {
        var journal = Self.journal(10)
        journal.compact(keepingLast: 2)
        var known = journal
        let dropped = known.truncate(after: 4, hashAtNumber: "h4")
        #expect(dropped.map(\.number) == [9, 10], "only what the core held is listed; the storage exports the rest")
        #expect(known.head == RevisionHead(number: 4, hash: "h4") && known.base == known.head && known.revisionCount == 0)
        #expect(known.spans == [EpochSpan(epoch: Self.epoch, firstNumber: 1, lastNumber: 4)])
        known.append(Self.revision(after: known.head))
        #expect(known.head.number == 5, "appends link to the hash given")
        var unknown = journal
        _ = unknown.truncate(after: 4)
        #expect(unknown == Journal(), "a full sync follows")
    }

    @Test("an active's core holds at most journalRevisionsHeldMax revisions over many publishes, and says so when it compacts")
    func theCoreBoundsItsJournal() {
        var limits = HALimits()
        limits.journalRevisionsHeldMax = 16
        let configuration = HAConfiguration(serverID: "A", peers: [], limits: limits)
        var core = HAStateMachine(configuration: configuration, hardState: HAStateMachine.bootstrapActive(configuration: configuration))
        _ = core.step(.tick(now: 0))
        #expect(core.writesEnabled)
        var compactions = 0
        for _ in 0..<200 {
            let output = core.step(.revisionCommitted(Self.revision(after: core.journal.head, epoch: core.epoch)))
            if case .decided(let decisions) = output.reason, decisions.contains(where: { if case .journalCompacted = $0 { true } else { false } }) {
                compactions += 1
                #expect(output.reason.description.contains("journal compacted"))
            }
            #expect(core.journal.revisionCount <= 16)
        }
        #expect(core.journal.head.number == 200 && compactions == 21, "at the 17th publish, then once every 9")
        // A core started from a longer journal (as the runtime loads one) holds no more either.
        let restarted = HAStateMachine(configuration: configuration, hardState: nil, journal: Self.journal(100))
        #expect(restarted.journal.revisionCount <= 16 && restarted.journal.head.number == 100)
    }
}
