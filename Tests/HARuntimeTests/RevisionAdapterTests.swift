import Foundation
import HACore
import ManagementModel
import Store
import Testing

@testable import HARuntime

@Suite("HARuntime: revision adapter")
struct RevisionAdapterTests {
    @Test func roundTripKeepsTheRevisionAndMapsGenesisToTheEmptyHead() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let first = try publishHost(store, name: "a")
        let second = try publishHost(store, name: "b")

        let replicatedFirst = RevisionAdapter.replicated(first)
        #expect(replicatedFirst.number == 1)
        #expect(replicatedFirst.previousHash == RevisionHead.empty.hash)
        #expect(replicatedFirst.epoch == Epoch(term: 1, server: "primary"))
        #expect(replicatedFirst.payload == .bytes(first.json.canonicalBytes))
        #expect(RevisionAdapter.revision(replicatedFirst) == first)

        let replicatedSecond = RevisionAdapter.replicated(second)
        #expect(replicatedSecond.previousHash == first.hash)
        #expect(RevisionAdapter.revision(replicatedSecond) == second)

        // HACore's journal accepts the chain exactly as the store built it.
        var journal = Journal.empty
        journal.append(replicatedFirst)
        journal.append(replicatedSecond)
        #expect(journal.head == RevisionHead(number: 2, hash: second.hash))
    }

    @Test func aPayloadThatDoesNotMatchItsEnvelopeOrHashIsRefused() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let revision = try publishHost(store, name: "a")
        var replicated = RevisionAdapter.replicated(revision)

        var renumbered = replicated
        renumbered.number = 2
        #expect(RevisionAdapter.revision(renumbered) == nil)

        var tampered = revision
        tampered.author = "mallory"  // content changed, hash kept: must never reach the store
        replicated.payload = .bytes(tampered.json.canonicalBytes)
        #expect(RevisionAdapter.revision(replicated) == nil)

        replicated.payload = .bytes(Array("not json".utf8))
        #expect(RevisionAdapter.revision(replicated) == nil)
    }

    @Test("the journal HA loads at start lists sizes, not payloads; the bodies it sends are the store's, under the hashes it lists")
    func theLoadedJournalKeepsNoPayloads() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let published = try (0..<3).map { try publishHost(store, name: "h\($0)") }
        let journal = try HARuntime.loadJournal(store, holdingAtMost: HALimits().journalRevisionsHeldMax)
        #expect(journal.head == RevisionHead(number: 3, hash: published[2].hash))
        #expect(journal.revisions.map(\.payload) == published.map { .stored(byteCount: $0.json.canonicalBytes.count) })
        let bodies = try store.revisionBodies(from: 2, through: 3)
        #expect(bodies.map(\.body) == published[1...].map(\.json.canonicalBytes))
        #expect(bodies.map(\.hash) == published[1...].map(\.hash))
    }

    @Test("a long journal is compacted as it loads: the core holds at most journalRevisionsHeldMax revisions, the spans still cover all")
    func aLongJournalIsCompactedAsItLoads() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let published = try (0..<20).map { try publishHost(store, name: "h\($0)") }
        let journal = try HARuntime.loadJournal(store, holdingAtMost: 6)
        #expect(journal.head == RevisionHead(number: 20, hash: published[19].hash))
        #expect(journal.revisionCount <= 6 && journal.revisionCount >= 3, "held \(journal.revisionCount)")
        let base = Int(journal.base.number)
        #expect(journal.base.hash == published[base - 1].hash)
        #expect(journal.spans.first?.firstNumber == 1 && journal.spans.last?.lastNumber == 20)
        #expect(journal.contains(RevisionHead(number: 2, hash: published[1].hash)) == nil, "under the base: unknown, never matching")
        #expect(journal.revisions.map(\.hash) == published[base...].map(\.hash))
    }
}
