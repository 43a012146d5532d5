import Foundation
import HARuntime
import ManagementModel
import Store
import Testing

@testable import Operations

@Suite("Backups: archive, verification and refusals on real files")
struct BackupTests {
    @Test func aBackupRestoresIntoAFreshDirectoryWithTheSameHeadAndObjects() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let (url, manifest) = try node.backup()
        #expect(url.lastPathComponent.hasPrefix("backup-primary-") && url.lastPathComponent.hasSuffix(".rampart-backup"))
        #expect(manifest.head == (try node.facts()).head)
        #expect(manifest.objectCount == 21)
        #expect(manifest.parts.map(\.path) == ["rampart.sqlite", "pki/ica.pem", "pki/ica.key"])
        #expect(manifest.parts.allSatisfy { $0.sha256.count == 64 })
        #expect(try Backups.verify(url, passphrase: nil, scratchParent: scratch.url).contentsChecked)

        let target = scratch.path("restored")
        let report = try Backups.restore(
            Backups.RestoreOptions(
                archive: url, dataDirectory: target, passphrase: nil, request: RestoreRequest(),
                nowMilliseconds: 1), raiseEpoch: raiseEpoch)
        #expect(report.setAside == nil)
        let restored = try DatabaseFacts.read(path: target.appendingPathComponent("rampart.sqlite").path, verifyJournal: true)
        #expect(restored.head == manifest.head)
        #expect(
            try ManagementStore(readOnlyPath: target.appendingPathComponent("rampart.sqlite").path).allObjects()
                == (try ManagementStore(readOnlyPath: node.databasePath).allObjects()))
        #expect(FileManager.default.contents(atPath: target.appendingPathComponent("pki/ica.key").path) != nil)
        let mode = try FileManager.default.attributesOfItem(atPath: target.appendingPathComponent("pki/ica.key").path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(Backups.list(in: node.url.appendingPathComponent("backups")).map(\.url) == [url])
    }

    @Test func anEncryptedBackupNeedsItsPassphraseAndRefusesAWrongOneCleanly() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let (url, manifest) = try node.backup(passphrase: passphraseBytes)
        #expect(manifest.encryption?.kdf == "scrypt")
        // The database is not readable in the file.
        let bytes = try Data(contentsOf: url)
        #expect(bytes.range(of: Data("SQLite format 3".utf8)) == nil)
        #expect(!(try Backups.verify(url, passphrase: nil, scratchParent: scratch.url)).contentsChecked)
        #expect(try Backups.verify(url, passphrase: passphraseBytes, scratchParent: scratch.url).contentsChecked)
        #expect(refusalCode { _ = try Backups.verify(url, passphrase: Array("wrong passphrase!!".utf8), scratchParent: scratch.url) } == "wrong-passphrase")

        let target = scratch.path("target")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for (given, code) in [(Array("wrong passphrase!!".utf8), "wrong-passphrase"), (nil, "passphrase-required")] as [([UInt8]?, String)] {
            #expect(
                refusalCode {
                    _ = try Backups.restore(
                        Backups.RestoreOptions(
                            archive: url, dataDirectory: target, passphrase: given, request: RestoreRequest(),
                            nowMilliseconds: 1), raiseEpoch: raiseEpoch)
                } == code)
            #expect(fingerprint(target).isEmpty, "a refused restore changes nothing")
        }
        _ = try Backups.restore(
            Backups.RestoreOptions(
                archive: url, dataDirectory: target, passphrase: passphraseBytes, request: RestoreRequest(),
                nowMilliseconds: 1), raiseEpoch: raiseEpoch)
        #expect(try DatabaseFacts.read(path: target.appendingPathComponent("rampart.sqlite").path, verifyJournal: true).head == manifest.head)
    }

    @Test(arguments: [false, true])
    func everyDamagedFileIsRefusedWithItsReasonAndChangesNothing(encrypted: Bool) throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let (url, _) = try node.backup(passphrase: encrypted ? passphraseBytes : nil)
        let good = try Data(contentsOf: url)
        let databaseOffset = 16 + 200
        var cases: [(String, Data, String)] = [
            ("cut in the middle", good.prefix(good.count / 2), "truncated"),
            ("cut before the end marker", good.dropLast(1), "truncated"),
            ("cut inside the header", good.prefix(7), "truncated"),
            ("empty", Data(), "truncated"),
            (
                "not an archive", Data("SQLite format 3\u{0}and more bytes here to pass the length checks of the footer".utf8) + Data(count: 100),
                "not-an-archive"
            ),
        ]
        var flipped = good
        flipped[databaseOffset] ^= 0xFF
        cases.append(("a flipped byte in the database", flipped, "corrupt"))
        var manifestFlip = good
        manifestFlip[good.count - 64 - 10] ^= 0x01
        cases.append(("a flipped byte in the manifest", manifestFlip, "corrupt"))

        let target = scratch.path("target")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        for (what, bytes, code) in cases {
            let bad = scratch.path("bad.rampart-backup")
            try bytes.write(to: bad)
            let passphrase = encrypted ? passphraseBytes : nil
            #expect(refusalCode { _ = try Backups.verify(bad, passphrase: passphrase, scratchParent: scratch.url) } == code, "\(what)")
            #expect(
                refusalCode {
                    _ = try Backups.restore(
                        Backups.RestoreOptions(
                            archive: bad, dataDirectory: target, passphrase: passphrase, request: RestoreRequest(),
                            nowMilliseconds: 1), raiseEpoch: raiseEpoch)
                } == code, "\(what)")
            #expect(fingerprint(target).isEmpty, "\(what): nothing changed")
        }
    }

    @Test func anArchiveFromANewerRampartIsRefusedAsIncompatible() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let copy = scratch.path("copy.sqlite")
        try DatabaseFiles.consistentCopy(of: node.databasePath, to: copy.path)
        for (schema, version) in [(["v1", "v2-from-the-future"], 1), (["v1"], 2)] {
            var manifest = ArchiveManifest(
                kind: .backup, archiveID: UUID().uuidString, createdAtMilliseconds: 1, server: "primary", schema: schema,
                head: nil, epochTerm: 1, objectCount: 0, groupPeers: [], includesLogs: false)
            manifest.formatVersion = version
            let url = scratch.path("future-\(version).rampart-backup")
            _ = try ArchiveFile.write(
                manifest, inputs: [ArchiveInput(name: "rampart.sqlite", path: "rampart.sqlite", kind: .sqlite, mode: 0o600, source: copy)],
                passphrase: nil, to: url)
            #expect(refusalCode { _ = try Backups.verify(url, passphrase: nil, scratchParent: scratch.url) } == "incompatible")
        }
    }

    @Test func aPartialArchiveIsNeverListedAndNeverTakesTheFinalName() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let (url, _) = try node.backup()
        let directory = url.deletingLastPathComponent()
        // What a kill -9 mid-write leaves: a hidden temporary file.
        try Data(try Data(contentsOf: url).prefix(1000)).write(to: directory.appendingPathComponent(".backup-x.rampart-backup.partial-abc"))
        #expect(Backups.list(in: directory).map(\.url.lastPathComponent) == [url.lastPathComponent])
        // A write that fails midway (its source vanished) leaves nothing behind.
        let missing = scratch.path("missing.sqlite")
        #expect(throws: (any Error).self) {
            _ = try ArchiveFile.write(
                ArchiveManifest(
                    kind: .backup, archiveID: "x", createdAtMilliseconds: 1, server: "p", schema: ["v1"], head: nil,
                    epochTerm: nil, objectCount: 0, groupPeers: [], includesLogs: false),
                inputs: [ArchiveInput(name: "db", path: "rampart.sqlite", kind: .sqlite, mode: 0o600, source: missing)],
                passphrase: nil, to: directory.appendingPathComponent("never.rampart-backup"))
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("never.rampart-backup").path))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains("never") }.isEmpty)
    }

    @Test func aBackupTakenDuringContinuousPublishingIsConsistentAndItsHeadVerifies() async throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"), objects: (0..<2_000).map(host), revisionsOf: 100)
        async let published = publishContinuously(node, revisions: 400)
        var manifests: [ArchiveManifest] = []
        let reader = try ManagementStore(readOnlyPath: node.databasePath)
        for index in 0..<5 {
            // Each backup starts after the writer moved on, so they see different heads while it runs.
            let seen = manifests.last?.head?.number ?? 21
            var waited = 0
            while try reader.head()?.number ?? 0 <= seen, waited < 1_000 {
                try await Task.sleep(for: .milliseconds(10))
                waited += 1
            }
            manifests.append(try node.backup(now: 1_700_000_000_000 + Int64(index)).manifest)
        }
        let count = try await published
        #expect(count == 400)
        #expect(Set(manifests.compactMap { $0.head?.number }).count > 1, "backups saw different heads: they ran while publishing")
        for (index, backup) in Backups.list(in: node.url.appendingPathComponent("backups")).enumerated() {
            let target = scratch.path("restore-\(index)")
            _ = try Backups.restore(
                Backups.RestoreOptions(
                    archive: backup.url, dataDirectory: target, passphrase: nil, request: RestoreRequest(),
                    nowMilliseconds: 1), raiseEpoch: raiseEpoch)
            let facts = try DatabaseFacts.read(path: target.appendingPathComponent("rampart.sqlite").path, verifyJournal: true)
            #expect(facts.head == backup.manifest?.head)
            // Objects and journal agree: every published host up to the head is there, none after.
            let revisions = Int(facts.head!.number)
            #expect(facts.objectCount == 2_001 + (revisions - 21))
        }
    }
}

/// Publishes one-host revisions back to back on a connection of its own (the server's, in effect).
func publishContinuously(_ node: NodeDirectory, revisions: Int) async throws -> Int {
    let store = node.store
    for round in 0..<revisions {
        try store.append(
            Revision(
                after: try store.head(), epoch: RevisionEpoch(term: 1, server: node.serverName), publishedAtMilliseconds: 10,
                author: "admin", sessionUID: "s", sessionName: "", changes: [.upsert(host(10_000 + round))]))
        if round % 20 == 0 { await Task.yield() }
    }
    return revisions
}

@Suite("Backups: logs")
struct BackupLogsTests {
    @Test func includeLogsCopiesTheNodesLogDatabaseConsistentlyAndRestoresIt() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        // A gateway log database as the gateways' LogStore keeps it: SQLite in WAL mode, in use.
        let logs = try ManagementStore(path: node.url.appendingPathComponent("logs.sqlite").path)
        try logs.setSetting("log-marker", "kept")
        let withoutLogs = try node.backup()
        #expect(!withoutLogs.manifest.includesLogs && !withoutLogs.manifest.parts.contains { $0.path == "logs.sqlite" })
        let made = try Backups.create(
            Backups.CreateOptions(dataDirectory: node.url, includeLogs: true, serverName: "primary", nowMilliseconds: 1_800_000_000_000))
        #expect(made.manifest.includesLogs && made.manifest.parts.contains { $0.path == "logs.sqlite" && $0.kind == .sqlite })
        let target = scratch.path("restored")
        _ = try Backups.restore(
            Backups.RestoreOptions(
                archive: made.url, dataDirectory: target, passphrase: nil, request: RestoreRequest(),
                nowMilliseconds: 1), raiseEpoch: raiseEpoch)
        #expect(try ManagementStore(readOnlyPath: target.appendingPathComponent("logs.sqlite").path).setting("log-marker") == "kept")
        withExtendedLifetime(logs) {}
    }
}
