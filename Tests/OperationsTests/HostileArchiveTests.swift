import Crypto
import Foundation
import HACore
import ManagementModel
import Testing

@testable import Operations

/// Archives are files anyone can craft: the footer and manifest numbers are read without sums that
/// overflow, and a manifest's encryption parameters are checked before use (issue 18, item 11).
@Suite("Archives: crafted footers and manifests")
struct HostileArchiveTests {
    /// A small archive (one part), then the same archive with its manifest edited and its checksum redone.
    static func archive(in scratch: Scratch, passphrase: [UInt8]? = nil) throws -> URL {
        let source = scratch.path("part.bin")
        try Data(repeating: 7, count: 5_000).write(to: source)
        let manifest = ArchiveManifest(
            kind: .backup, archiveID: UUID().uuidString, createdAtMilliseconds: 1, server: "primary", schema: ["v1"],
            head: nil, epochTerm: 1, objectCount: 0, groupPeers: [], includesLogs: false)
        let url = scratch.path("a.rampart-backup")
        _ = try ArchiveFile.write(
            manifest, inputs: [ArchiveInput(name: "part.bin", path: "part.bin", kind: .file, mode: 0o600, source: source)],
            passphrase: passphrase, to: url)
        return url
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }

    /// `url` rewritten with `edit` applied to its manifest's JSON text, with a valid footer.
    static func withManifest(_ url: URL, to destination: URL, _ edit: (String) -> String) throws {
        let bytes = [UInt8](try Data(contentsOf: url))
        let footer = bytes.suffix(64)
        let offset = footer.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        let text = String(decoding: bytes[Int(offset)..<(bytes.count - 64)], as: UTF8.self)
        let edited = edit(text)
        #expect(edited != text, "the edit changed the manifest")
        let manifestBytes = Array(edited.utf8)
        var out = Array(bytes[..<Int(offset)]) + manifestBytes
        out += bigEndian(offset) + bigEndian(UInt64(manifestBytes.count)) + Array(SHA256.hash(data: manifestBytes)) + Array("RAMPART-ARCHEND1".utf8)
        try Data(out).write(to: destination)
    }

    @Test func footerNumbersNearUInt64MaxAreCorrupt() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        var bytes = [UInt8](try Data(contentsOf: try Self.archive(in: scratch)))
        let footerStart = bytes.count - 64
        for (offset, length) in [(UInt64.max - 10, UInt64(100)), (UInt64.max, UInt64.max), (UInt64(16), UInt64.max - 100), (UInt64(0), UInt64(0))] {
            bytes.replaceSubrange(footerStart..<(footerStart + 16), with: Self.bigEndian(offset) + Self.bigEndian(length))
            let bad = scratch.path("bad.rampart-backup")
            try Data(bytes).write(to: bad)
            #expect(refusalCode { _ = try ArchiveFile.readManifest(bad) } == "corrupt", "offset \(offset) length \(length)")
        }
    }

    @Test func partSizesThatOverflowAreCorrupt() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let url = try Self.archive(in: scratch)
        let bad = scratch.path("bad.rampart-backup")
        for size in [UInt64.max, UInt64.max - 10, UInt64(Int64.max)] {
            try Self.withManifest(url, to: bad) { $0.replacingOccurrences(of: #""stored-size":5000"#, with: #""stored-size":\#(size)"#) }
            #expect(refusalCode { _ = try ArchiveFile.readManifest(bad) } == "corrupt", "stored-size \(size)")
        }
    }

    /// A part's name is a file name in the staging directory: `../` would write outside it.
    @Test func partNamesAndModesMustBeSafe() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let url = try Self.archive(in: scratch)
        let bad = scratch.path("bad.rampart-backup")
        for (from, to) in [
            (#""name":"part.bin""#, #""name":"..\/..\/escaped""#), (#""name":"part.bin""#, #""name":"a\/b""#),
            (#""name":"part.bin""#, #""name":"..""#), (#""mode":384"#, #""mode":2541"#),
        ] {
            try Self.withManifest(url, to: bad) { $0.replacingOccurrences(of: from, with: to) }
            #expect(refusalCode { _ = try ArchiveFile.readManifest(bad) } == "corrupt", "\(to)")
        }
        #expect(!FileManager.default.fileExists(atPath: scratch.url.deletingLastPathComponent().appendingPathComponent("escaped").path))
    }

    @Test func encryptionChunkSizesOutOfRangeAreCorrupt() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let url = try Self.archive(in: scratch, passphrase: Array("a long enough passphrase".utf8))
        let bad = scratch.path("bad.rampart-backup")
        for chunk: Int64 in [-100, -16, 0, 15, .max, .max - 15, 1 << 40] {
            try Self.withManifest(url, to: bad) {
                $0.replacingOccurrences(of: #""chunk-bytes":\#(OperationsLimits.encryptionChunkBytes)"#, with: #""chunk-bytes":\#(chunk)"#)
            }
            #expect(refusalCode { _ = try ArchiveFile.verify(bad, passphrase: nil, knownSchema: ["v1"]) } == "corrupt", "chunk-bytes \(chunk)")
        }
    }

    /// A migrate export's epoch term is raised by one on import: Int64.max trapped there.
    @Test func anExportWithAnEpochTermAtTheEndIsRefused() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        for term: JSONValue in [.int(.max), -1, "many", .double(1e300)] {
            let file = scratch.path("export.json")
            _ = try Migration.write(objects: [host(1)], source: ["server": "old", "epoch-term": term], to: file, nowMilliseconds: 1)
            let target = scratch.path("target")
            #expect(
                refusalCode {
                    _ = try Migration.importExport(
                        Migration.ImportOptions(file: file, dataDirectory: target, serverName: "p", nowMilliseconds: 1),
                        raiseEpoch: raiseEpoch)
                } == "corrupt", "\(term)")
            #expect(!FileManager.default.fileExists(atPath: target.appendingPathComponent("rampart.sqlite").path))
        }
        // An operator's --epoch-term beyond any real history is refused, not raised by one into a trap.
        let file = scratch.path("export.json")
        _ = try Migration.write(objects: [host(1)], source: ["server": "old", "epoch-term": 3], to: file, nowMilliseconds: 1)
        #expect(
            refusalCode {
                _ = try Migration.importExport(
                    Migration.ImportOptions(
                        file: file, dataDirectory: scratch.path("huge"), serverName: "p",
                        minimumEpochTerm: UInt64.max, nowMilliseconds: 1), raiseEpoch: raiseEpoch)
            } == "epoch-term-out-of-range")
        #expect(OperationsLimits.epochTermMax == Epoch.termMax, "the same bound as HACore's")
    }
}
