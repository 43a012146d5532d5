import Foundation
import HACore
import ManagementModel
import Store
import TrustCore

/// Full-sync snapshots as files of database pages.
///
/// Active: a snapshot at head H is a copy of the management database at H without this server's own
/// tables (`ManagementStore.nodeLocalTables`). The copy's read transaction is begun while the runtime
/// holds its lock, when the store is exactly at H; the pages are written by the runtime's worker, while
/// publishes go on. Chunks are fixed byte ranges of that file, so re-reading chunk i after a broken
/// connection gives the same bytes. A snapshot is a cache: the ones left by an earlier run are deleted
/// at start, and at most `keptMax` are kept (the newest).
///
/// Standby: each chunk is written at its place in one staging file, without an fsync each (one fsync
/// of the whole file comes before the install). Staged chunks are therefore trusted only within the
/// boot that wrote them: after a process crash they are in the page cache, after a power loss they may
/// not be, so a staging file from an earlier boot is discarded (and the full sync starts over).
struct SnapshotFiles {
    let directory: URL
    let chunkBytesMax: Int
    /// Built snapshots kept on the active: a second one lets two standbys that need different heads go on.
    static let keptMax = 2

    private var outgoing: URL { directory.appendingPathComponent("outgoing") }
    private var incoming: URL { directory.appendingPathComponent("incoming") }
    private var bootMarker: URL { incoming.appendingPathComponent("boot-id") }

    static func name(_ head: RevisionHead) -> String { "\(head.number)-\(head.hash.isEmpty ? "empty" : head.hash)" }
    private func outgoingFile(_ head: RevisionHead) -> URL { outgoing.appendingPathComponent(Self.name(head) + ".sqlite") }
    private func stagingFile(_ head: RevisionHead) -> URL { incoming.appendingPathComponent(Self.name(head) + ".sqlite") }

    /// At start: drops the snapshots of an earlier run (the active rebuilds what it needs, so a file an
    /// unclean shutdown left half-written is never served), and says whether the staged chunks of the
    /// full sync at `staged` can be resumed (written in this boot); if not, they are deleted.
    func start(resuming staged: RevisionHead?) -> Bool {
        try? FileManager.default.removeItem(at: outgoing)
        guard let staged, FileManager.default.fileExists(atPath: stagingFile(staged).path),
            let marker = try? String(contentsOf: bootMarker, encoding: .utf8), marker == Self.bootID
        else {
            discardStaged()
            return false
        }
        return true
    }

    // MARK: active

    /// Whether the snapshot file at `head` is written (reading its chunks is then quick).
    func isBuilt(_ head: RevisionHead) -> Bool {
        FileManager.default.fileExists(atPath: outgoingFile(head).path)
    }

    /// Writes the snapshot at `source`'s head (seconds for a large database: done outside the runtime's
    /// lock), then deletes all but the newest `keptMax` snapshots.
    func build(from source: DatabaseSnapshotSource, head: RevisionHead) throws {
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        try DurableFile.ensureDirectory(outgoing, mode: 0o700)
        let partial = outgoing.appendingPathComponent(Self.name(head) + ".partial")
        try? FileManager.default.removeItem(at: partial)
        try source.copy(to: partial.path)
        try FileManager.default.moveItem(at: partial, to: outgoingFile(head))
        let built = (try? FileManager.default.contentsOfDirectory(at: outgoing, includingPropertiesForKeys: [.contentModificationDateKey])) ?? []
        let older = built.filter { $0.pathExtension == "sqlite" && $0 != outgoingFile(head) }
            .sorted { Self.modified($0) > Self.modified($1) }
        for stale in older.dropFirst(Self.keptMax - 1) { try? FileManager.default.removeItem(at: stale) }
    }

    /// Chunk `index` of the snapshot at `head`, and how many chunks it has.
    func readChunk(head: RevisionHead, index: Int) throws -> (bytes: [UInt8], count: Int) {
        let handle = try FileHandle(forReadingFrom: outgoingFile(head))
        defer { try? handle.close() }
        let size = Int(try handle.seekToEnd())
        let count = max(1, (size + chunkBytesMax - 1) / chunkBytesMax)
        guard index < count else { throw HARuntimeError.snapshotUnavailable("chunk \(index) of \(count)") }
        try handle.seek(toOffset: UInt64(index * chunkBytesMax))
        let bytes = try handle.read(upToCount: chunkBytesMax).map(Array.init) ?? []
        return (bytes, count)
    }

    // MARK: standby

    /// Writes chunk `index` at its place in the staging file of the snapshot at `head`. Every chunk but
    /// the last is `chunkBytesMax` long (both servers run the same limits); the install checks the
    /// file's size against what SQLite says it holds.
    func stageChunk(head: RevisionHead, index: Int, bytes: [UInt8]) throws {
        guard bytes.count <= chunkBytesMax else {
            throw HARuntimeError.snapshotRejected("chunk \(index) has \(bytes.count) bytes, more than this server's \(chunkBytesMax)")
        }
        let file = stagingFile(head)
        if !FileManager.default.fileExists(atPath: file.path) {
            // Staged chunks of another snapshot can never complete: drop them first (bounded disk).
            discardStaged()
            try DurableFile.ensureDirectory(directory, mode: 0o700)
            try DurableFile.ensureDirectory(incoming, mode: 0o700)
            try Data(Self.bootID.utf8).write(to: bootMarker)
            guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw HARuntimeError.snapshotRejected("cannot create \(file.path)")
            }
        }
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(index) * UInt64(chunkBytesMax))
        try handle.write(contentsOf: bytes)
    }

    /// Makes the staged snapshot durable, then has the store check it (schema, links, head, epochs)
    /// and put it in place of the published database.
    func install(head: RevisionHead, spans: [EpochSpan], into store: ManagementStore) throws -> ManagementStore.SnapshotInstall {
        let file = stagingFile(head)
        let handle = try FileHandle(forUpdating: file)
        defer { try? handle.close() }
        try handle.synchronize()
        try Self.checkSize(handle)
        return try store.installSnapshot(at: file.path) { facts in
            guard RevisionAdapter.head(facts.head) == head else {
                throw HARuntimeError.snapshotRejected("the staged snapshot ends at \(RevisionAdapter.head(facts.head)), not at the offered \(head)")
            }
            let runs = spans.map {
                SnapshotFacts.EpochRun(term: $0.epoch.term, server: $0.epoch.server.name, firstNumber: $0.firstNumber, lastNumber: $0.lastNumber)
            }
            guard facts.epochRuns == runs else {
                throw HARuntimeError.snapshotRejected("the staged snapshot's epochs \(facts.epochRuns) are not the offered \(runs)")
            }
        }
    }

    /// The file is as long as its SQLite header says (page size × page count): a chunk written at the
    /// wrong place, or missing, is named here rather than found as a damaged page later.
    static func checkSize(_ handle: FileHandle) throws {
        let size = try handle.seekToEnd()
        try handle.seek(toOffset: 0)
        let header = try handle.read(upToCount: 100).map(Array.init) ?? []
        guard header.count == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else {
            throw HARuntimeError.snapshotRejected("the staged snapshot is not an SQLite database")
        }
        let pageSizeField = UInt64(header[16]) << 8 | UInt64(header[17])
        let pageSize = pageSizeField == 1 ? 65_536 : pageSizeField
        let pageCount = header[28..<32].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        guard pageSize * pageCount == size else {
            throw HARuntimeError.snapshotRejected(
                "the staged snapshot has \(size) bytes, its header says \(pageCount) pages of \(pageSize) (chunks of another size?)")
        }
    }

    func discardStaged() {
        try? FileManager.default.removeItem(at: incoming)
    }

    /// This boot of the machine (Linux); staged chunks from another boot are not trusted.
    static let bootID: String = {
        let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? ""
        // Where the kernel does not say, every start counts as a new boot: nothing staged is resumed.
        return text.isEmpty ? "unknown-\(SecureRandom.uuid())" : text.trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    private static func modified(_ url: URL) -> Date {
        (try? url.resourceValues(forKeys: [.contentModificationDateKey]).contentModificationDate) ?? .distantPast
    }
}
