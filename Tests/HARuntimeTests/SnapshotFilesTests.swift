import Foundation
import HACore
import Logging
import ManagementModel
import Store
import Testing

@testable import HARuntime

/// Full-sync snapshot files on real disks: built on one side, staged chunk by chunk on the other,
/// installed; and what a restart trusts of what was staged.
@Suite("HARuntime: snapshot files")
struct SnapshotFilesTests {
    static let chunkBytes = 4_096

    /// A primary store with `hosts` hosts, its snapshot built at its head, and the head.
    static func builtSnapshot(_ directory: URL, hosts: Int) throws -> (SnapshotFiles, RevisionHead, [EpochSpan]) {
        let store = try ManagementStore(path: directory.appendingPathComponent("primary.sqlite").path)
        for index in 0..<hosts { try publishHost(store, name: "h\(index)") }
        let files = SnapshotFiles(directory: directory.appendingPathComponent("primary-snapshots"), chunkBytesMax: chunkBytes)
        let source = try store.openSnapshotSource()
        let head = RevisionAdapter.head(source.head)
        try files.build(from: source, head: head)
        let spans = [EpochSpan(epoch: Epoch(term: 1, server: "primary"), firstNumber: 1, lastNumber: head.number)]
        return (files, head, spans)
    }

    /// Stages every chunk of `head` from `source` into `target`, in order.
    static func stageAll(from source: SnapshotFiles, into target: SnapshotFiles, head: RevisionHead) throws -> Int {
        var index = 0
        var count = 1
        while index < count {
            let chunk = try source.readChunk(head: head, index: index)
            count = chunk.count
            try target.stageChunk(head: head, index: index, bytes: chunk.bytes)
            index += 1
        }
        return count
    }

    @Test("chunks staged in order install as the primary's database")
    func stagedChunksInstall() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (primary, head, spans) = try Self.builtSnapshot(directory, hosts: 40)
        let standbyFiles = SnapshotFiles(directory: directory.appendingPathComponent("standby-snapshots"), chunkBytesMax: Self.chunkBytes)
        let chunks = try Self.stageAll(from: primary, into: standbyFiles, head: head)
        #expect(chunks > 2, "several chunks: \(chunks)")
        let standby = try ManagementStore(path: directory.appendingPathComponent("standby.sqlite").path)
        try standbyFiles.install(head: head, spans: spans, into: standby)
        #expect(RevisionAdapter.head(try standby.head()) == head)
        #expect(standby.reader.objects(named: "h39").count == 1)
    }

    @Test("a missing chunk, an offered head or epochs the file does not hold: refused, nothing installed")
    func badStagingIsRefused() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (primary, head, spans) = try Self.builtSnapshot(directory, hosts: 40)
        let standby = try ManagementStore(path: directory.appendingPathComponent("standby.sqlite").path)
        try publishHost(standby, name: "mine")
        let otherEpoch = [EpochSpan(epoch: Epoch(term: 2, server: "primary"), firstNumber: 1, lastNumber: head.number)]
        let cases: [(String, RevisionHead, [EpochSpan], skippedChunk: Int?)] = [
            ("a missing chunk", head, spans, 1),
            ("another head", RevisionHead(number: head.number, hash: "not-the-hash"), spans, nil),
            ("other epochs", head, otherEpoch, nil),
        ]
        for (name, offered, offeredSpans, skipped) in cases {
            let files = SnapshotFiles(directory: directory.appendingPathComponent("standby-\(name.count)"), chunkBytesMax: Self.chunkBytes)
            var index = 0
            var count = 1
            while index < count {
                let chunk = try primary.readChunk(head: head, index: index)
                count = chunk.count
                if index != skipped { try files.stageChunk(head: offered, index: index, bytes: chunk.bytes) }
                index += 1
            }
            #expect(throws: (any Error).self, "\(name)") { try files.install(head: offered, spans: offeredSpans, into: standby) }
            #expect(try standby.head()?.number == 1, "\(name)")
            #expect(standby.reader.objects(named: "mine").count == 1, "\(name)")
        }
    }

    @Test("staged chunks are resumed after a restart in the same boot, and dropped when written in another boot")
    func stagingIsTrustedWithinOneBoot() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (primary, head, _) = try Self.builtSnapshot(directory, hosts: 20)
        let standbyDirectory = directory.appendingPathComponent("standby-snapshots")
        let standby = SnapshotFiles(directory: standbyDirectory, chunkBytesMax: Self.chunkBytes)
        try standby.stageChunk(head: head, index: 0, bytes: try primary.readChunk(head: head, index: 0).bytes)
        #expect(standby.start(resuming: head), "same boot: resumed")
        let marker = standbyDirectory.appendingPathComponent("incoming/boot-id")
        try Data("an-earlier-boot".utf8).write(to: marker)
        #expect(!standby.start(resuming: head), "another boot: not trusted")
        #expect(!FileManager.default.fileExists(atPath: standbyDirectory.appendingPathComponent("incoming").path), "and deleted")
    }

    @Test("a restarted standby forgets full-sync progress whose staged chunks it does not trust")
    func runtimeStartsOverOnUntrustedStaging() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("standby.sqlite").path)
        let head = RevisionHead(number: 9, hash: "abc")
        try HardStateStore(store: store).save(
            HardState(
                epoch: Epoch(term: 1, server: "primary"), role: .standby,
                peers: [PeerRecord(serverID: "primary")],
                fullSyncProgress: FullSyncProgress(snapshotHead: head, chunkCount: 4, chunksApplied: 2)))
        // Nothing staged at all (a power loss before the writes reached the disk, or a wiped directory).
        _ = try HARuntime(
            configuration: HAConfiguration(serverID: "standby", peers: ["primary"]), store: store, bootstrapActive: false,
            snapshotDirectory: directory.appendingPathComponent("snapshots"), exportDirectory: directory.appendingPathComponent("exports"),
            logger: Logger(label: "test"), send: { _ in })
        #expect(try HardStateStore(store: store).load()?.fullSyncProgress == nil)
        #expect(try HardStateStore(store: store).load()?.epoch == Epoch(term: 1, server: "primary"), "the rest of the hard state is kept")
    }
}
