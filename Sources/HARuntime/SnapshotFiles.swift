import Foundation
import HACore
import ManagementModel
import Store
import TrustCore

/// Full-sync snapshots as files. The active writes the journal's revisions 1...r (one canonical JSON
/// revision per line) once per snapshot head: the journal is append-only, so that prefix is a
/// consistent copy of the database at r while publishes go on. Chunks are fixed byte ranges of the file,
/// so re-reading chunk i after a broken connection gives the same bytes. The standby stages each chunk
/// as its own durable file and, when all are there, replaces its database in one transaction.
struct SnapshotFiles {
    let directory: URL
    let chunkBytesMax: Int
    /// Revisions read from the store per batch while writing a snapshot (bounds memory).
    static let readBatchRevisions = 1_000

    private var outgoing: URL { directory.appendingPathComponent("outgoing") }
    private var incoming: URL { directory.appendingPathComponent("incoming") }

    static func name(_ head: RevisionHead) -> String { "\(head.number)-\(head.hash.isEmpty ? "empty" : head.hash)" }

    // MARK: active

    /// Whether the snapshot file at `head` is written (reading its chunks is then quick).
    func isBuilt(_ head: RevisionHead) -> Bool {
        FileManager.default.fileExists(atPath: outgoing.appendingPathComponent(Self.name(head) + ".jsonl").path)
    }

    /// Writes the snapshot file at `head` (seconds for a large journal: done outside the runtime's lock).
    func build(store: ManagementStore, head: RevisionHead) throws {
        _ = try snapshotFile(store: store, head: head)
    }

    /// Chunk `index` of the snapshot at `head`, and how many chunks it has.
    func readChunk(store: ManagementStore, head: RevisionHead, index: Int) throws -> (bytes: [UInt8], count: Int) {
        let file = try snapshotFile(store: store, head: head)
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        let size = Int(try handle.seekToEnd())
        let count = max(1, (size + chunkBytesMax - 1) / chunkBytesMax)
        guard index < count else { throw HARuntimeError.snapshotUnavailable("chunk \(index) of \(count)") }
        try handle.seek(toOffset: UInt64(index * chunkBytesMax))
        let bytes = try handle.read(upToCount: chunkBytesMax).map(Array.init) ?? []
        return (bytes, count)
    }

    private func snapshotFile(store: ManagementStore, head: RevisionHead) throws -> URL {
        let file = outgoing.appendingPathComponent(Self.name(head) + ".jsonl")
        if FileManager.default.fileExists(atPath: file.path) { return file }
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        // One snapshot at a time on disk: an older head is of no use to anyone once a newer one is asked for.
        try? FileManager.default.removeItem(at: outgoing)
        try DurableFile.ensureDirectory(outgoing, mode: 0o700)
        let partial = outgoing.appendingPathComponent(Self.name(head) + ".partial")
        _ = FileManager.default.createFile(atPath: partial.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: partial)
        var next: UInt64 = 1
        var last: (number: UInt64, hash: String)?
        while next <= head.number {
            // Stored bodies are canonical JSON already: copied as they are (the standby verifies them).
            let batch = try store.revisionBodies(from: next, limit: Int(min(UInt64(Self.readBatchRevisions), head.number - next + 1)))
            guard let tail = batch.last, batch.first?.number == next else {
                try? handle.close()
                throw HARuntimeError.snapshotUnavailable("revision \(next) missing from the journal")
            }
            var bytes: [UInt8] = []
            for revision in batch {
                bytes += Array(revision.body.utf8)
                bytes.append(UInt8(ascii: "\n"))
            }
            try handle.write(contentsOf: bytes)
            last = (tail.number, tail.hash)
            next = tail.number + 1
        }
        try handle.synchronize()
        try handle.close()
        guard RevisionAdapter.head(last) == head else {
            throw HARuntimeError.snapshotUnavailable("the journal does not hold \(head)")
        }
        try FileManager.default.moveItem(at: partial, to: file)
        return file
    }

    // MARK: standby

    func stageChunk(head: RevisionHead, index: Int, bytes: [UInt8]) throws {
        let folder = incoming.appendingPathComponent(Self.name(head))
        // Staged chunks of another snapshot can never complete: drop them first (bounded disk).
        if let others = try? FileManager.default.contentsOfDirectory(atPath: incoming.path) {
            for other in others where other != Self.name(head) { try? FileManager.default.removeItem(at: incoming.appendingPathComponent(other)) }
        }
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        try DurableFile.ensureDirectory(incoming, mode: 0o700)
        try DurableFile.ensureDirectory(folder, mode: 0o700)
        // Written atomically but not fsynced, one fsync a chunk would be most of a full sync's time. The
        // install verifies every revision and the head, so a chunk a power loss damaged is caught there
        // (and the full sync starts over); the installed database itself is committed durably.
        try Data(bytes).write(to: folder.appendingPathComponent("chunk-\(index)"), options: .atomic)
    }

    /// The staged snapshot's revisions, in order, each with its line (its canonical JSON as the active
    /// stored it). Throws if a chunk is missing or a line is not a revision.
    func stagedRevisions(head: RevisionHead) throws -> [VerifiedRevision] {
        let folder = incoming.appendingPathComponent(Self.name(head))
        var bytes: [UInt8] = []
        var index = 0
        while let chunk = FileManager.default.contents(atPath: folder.appendingPathComponent("chunk-\(index)").path) {
            bytes += chunk
            index += 1
        }
        guard index > 0 else { throw HARuntimeError.snapshotUnavailable("no staged chunks for \(head)") }
        let lines = bytes.split(separator: UInt8(ascii: "\n"))
        // Parsing and hashing are most of an install's time: done on every core, in order-keeping slots.
        var parsed = [VerifiedRevision?](repeating: nil, count: lines.count)
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        parsed.withUnsafeMutableBufferPointer { slots in
            // Each worker writes only its own indexes: no two threads touch the same slot.
            nonisolated(unsafe) let output = slots
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for index in stride(from: worker, to: lines.count, by: workers) {
                    output[index] = (try? JSONValue.parse(lines[index])).flatMap(Revision.init(json:)).flatMap {
                        VerifiedRevision($0, body: String(decoding: lines[index], as: UTF8.self))
                    }
                }
            }
        }
        var revisions: [VerifiedRevision] = []
        revisions.reserveCapacity(lines.count)
        for verified in parsed {
            guard let verified else { throw HARuntimeError.snapshotUnavailable("a staged line is not a revision that matches its hash") }
            revisions.append(verified)
        }
        guard RevisionAdapter.head(revisions.last.map { ($0.revision.number, $0.revision.hash) }) == head else {
            throw HARuntimeError.snapshotUnavailable("staged snapshot does not end at \(head)")
        }
        return revisions
    }

    func discardStaged() {
        try? FileManager.default.removeItem(at: incoming)
    }
}
