import Foundation
import HACore
import Logging
import ManagementModel
import ManagementService
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

    /// A core that compacted its journal lists only the divergent revisions it still holds: the export
    /// is every revision the store holds after the common one, each listed one checked against the store.
    @Test("a collision's export holds every stored revision after the common one, also those the core no longer lists")
    func theExportComesFromTheStore() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let published = try (0..<10).map { try publishHost(store, name: "h\($0)") }
        let (_, work) = AsyncStream<HARuntime.Work>.makeStream()
        let shell = HARuntimeShell(
            serverID: "secondary", store: store, hardStateStore: HardStateStore(store: store),
            snapshots: SnapshotFiles(directory: directory.appendingPathComponent("snapshots"), chunkBytesMax: 1 << 20),
            exportDirectory: directory.appendingPathComponent("exports"), logger: Logger(label: "test"), events: EventBus<ManagementEvent>(),
            work: work, send: { _ in })
        let journal = try HARuntime.loadJournal(store, holdingAtMost: 4)
        let core = HAStateMachine(configuration: HAConfiguration(serverID: "secondary", peers: ["primary"]), journal: journal)
        let listed = journal.revisions
        #expect(listed.count < 7, "the core lists fewer than the 7 divergent revisions")
        try shell.exportDivergent(after: 3, listed, snapshotBase: journal.base, core: core)
        let file = try #require(shell.lastExportPath)
        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        #expect(lines.map { Array($0.utf8) } == published[3...].map(\.json.canonicalBytes))
        #expect(!FileManager.default.fileExists(atPath: file.replacingOccurrences(of: ".jsonl", with: ".sqlite")), "every revision stored: no database copy")
        var forged = listed
        forged[0].hash = "not-the-stored-one"
        #expect(throws: (any Error).self) { try shell.exportDivergent(after: 3, forged, snapshotBase: nil, core: core) }
    }
}
