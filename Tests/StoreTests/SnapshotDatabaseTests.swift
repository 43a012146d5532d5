import Foundation
import GRDB
import Testing

@testable import ManagementModel
@testable import Store

/// Full-sync snapshots as database pages, on real files: what a copy holds, and what an install keeps.
@Suite("Store: full-sync snapshots")
struct SnapshotDatabaseTests {
    /// An active's database with two published revisions, its own settings and an open session.
    static func active(_ directory: URL) throws -> ManagementStore {
        let store = try ManagementStore(path: directory.appendingPathComponent("active.sqlite").path)
        try store.append(try revision(after: store, [.upsert(host("a", uid: "u1"))]))
        try store.append(try revision(after: store, [.upsert(host("b", uid: "u2"))]))
        try store.setSetting("ha-hard-state", "the active's own")
        try store.saveSession(uid: "s1", body: ["uid": "s1", "sid": "secret-sid-of-the-active"])
        try store.savePendingChanges(session: "s1", [(1, .upsert(host("draft", uid: "u9")))])
        return store
    }

    static func rows(_ path: String, _ table: String) throws -> Int {
        try DatabaseQueue(path: path).read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }

    @Test("a copy is the database as of its source's transaction, without the node-local tables")
    func copyHoldsTheHeadOfItsTransaction() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Self.active(directory)
        let source = try store.openSnapshotSource()
        #expect(source.head?.number == 2)
        // Committed after the source began: not in the copy.
        try store.append(try revision(after: store, [.upsert(host("c", uid: "u3"))]))
        let copy = directory.appendingPathComponent("copy.sqlite").path
        try source.copy(to: copy)
        let copied = try ManagementStore(readOnlyPath: copy)
        #expect(try copied.head()?.number == 2)
        #expect(copied.reader.object(uid: "u2") != nil)
        #expect(copied.reader.object(uid: "u3") == nil)
        for table in ManagementStore.nodeLocalTables { #expect(try Self.rows(copy, table) == 0, "\(table) travelled") }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: copy))
        #expect(bytes.range(of: Data("secret-sid-of-the-active".utf8)) == nil, "a deleted session's bytes stayed in the file")
        #expect(!FileManager.default.fileExists(atPath: copy + "-wal"), "the copy is one file")
    }

    // Drafts are never synchronized, not even as the bytes of deleted rows: the pages a discarded
    // session freed on the active (its free list) and the cells deleted inside pages still in use are
    // zero in a snapshot.
    @Test("a copy carries no bytes of drafts deleted on the active before it")
    func copyCarriesNoDeletedDrafts() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try Self.active(directory)
        let marker = "unpublished-draft-of-another-administrator"
        let drafts: [(seq: Int64, change: ObjectChange)] = (0..<400).map { index in
            (Int64(index), .upsert(host("\(marker)-\(index)", uid: "draft-\(index)")))
        }
        try store.saveSession(uid: "s2", body: ["uid": "s2"])
        try store.savePendingChanges(session: "s2", drafts)
        try store.deleteSession(uid: "s2")
        let copy = directory.appendingPathComponent("copy.sqlite").path
        try store.openSnapshotSource().copy(to: copy)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: copy))
        #expect(bytes.range(of: Data("\(marker)-1".utf8)) == nil, "a deleted draft's bytes travelled in the snapshot")
        let copied = try ManagementStore(readOnlyPath: copy)
        #expect(try copied.head()?.number == 2)
        #expect(copied.reader.object(uid: "u2")?.name == "b")
        #expect(DatabaseFiles.integrityProblem(path: copy) == nil)
    }

    @Test("an install puts the snapshot in place, keeps this server's settings and drops its sessions")
    func installReplacesTheFile() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("copy.sqlite").path
        try Self.active(directory).openSnapshotSource().copy(to: copy)
        let standby = try ManagementStore(path: directory.appendingPathComponent("standby.sqlite").path)
        try standby.append(try revision(after: standby, [.upsert(host("old", uid: "old"))]))
        try standby.setSetting("ha-hard-state", "the standby's own")
        try standby.saveSession(uid: "reader", body: ["uid": "reader"])
        var seen: SnapshotFacts?
        let hostChangesBefore = standby.changeCount(of: .checkpointHost)
        let how = try standby.installSnapshot(at: copy) { seen = $0 }
        #expect(how == .fileReplaced)
        #expect(standby.changeCount(of: .checkpointHost) > hostChangesBefore, "a cache of any type survived a whole new database")
        #expect(seen?.head?.number == 2)
        #expect(seen?.epochRuns == [SnapshotFacts.EpochRun(term: 1, server: "primary", firstNumber: 1, lastNumber: 2)])
        #expect(try standby.head()?.number == 2)
        #expect(standby.reader.object(uid: "old") == nil)
        #expect(standby.reader.object(uid: "u1") != nil)
        #expect(try standby.setting("ha-hard-state") == "the standby's own")
        #expect(try standby.loadSessions().isEmpty)
        // The store goes on on the new file, in WAL mode, and the chain checks.
        try standby.append(try revision(after: standby, [.upsert(host("c", uid: "u3"))]))
        #expect(try standby.verifyJournal() == nil)
        #expect(try standby.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
        #expect(try ManagementStore(path: standby.path).head()?.number == 3, "durable on the new file")
    }

    @Test("with another connection open on the database, the pages are copied in instead, to the same result")
    func installCopiesPagesWhenTheFileIsInUse() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("copy.sqlite").path
        try Self.active(directory).openSnapshotSource().copy(to: copy)
        let standby = try ManagementStore(path: directory.appendingPathComponent("standby.sqlite").path)
        try standby.setSetting("ha-hard-state", "the standby's own")
        var configuration = Configuration()
        configuration.readonly = true
        let other = try DatabaseQueue(path: standby.path, configuration: configuration)
        defer { try? other.close() }
        _ = try other.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM objects") }
        let how = try standby.installSnapshot(at: copy) { _ in }
        #expect(how == .pagesCopied)
        #expect(try standby.head()?.number == 2)
        #expect(try standby.setting("ha-hard-state") == "the standby's own")
        #expect(try other.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM revisions") } == 2, "the other connection sees the new content")
        try standby.checkpoint()
        #expect(try ManagementStore(path: standby.path).head()?.number == 2)
    }

    @Test("a snapshot that fails a check changes nothing: broken links, another schema, or the caller's own check")
    func refusedInstallChangesNothing() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let active = try Self.active(directory)
        let standby = try ManagementStore(path: directory.appendingPathComponent("standby.sqlite").path)
        try standby.append(try revision(after: standby, [.upsert(host("old", uid: "old"))]))
        let damages: [(String, String)] = [
            ("links", "UPDATE revisions SET previous_hash = 'forged' WHERE number = 2"),
            ("schema", "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')"),
            ("check", ""),
        ]
        for (name, damage) in damages {
            let copy = directory.appendingPathComponent("copy-\(name).sqlite").path
            try active.openSnapshotSource().copy(to: copy)
            if !damage.isEmpty { try DatabaseQueue(path: copy).write { try $0.execute(sql: damage) } }
            #expect(throws: (any Error).self, "\(name)") {
                try standby.installSnapshot(at: copy) { _ in if name == "check" { throw StoreError.undecodable("not the offered head") } }
            }
            #expect(try standby.head()?.number == 1, "\(name)")
            #expect(standby.reader.object(uid: "old") != nil, "\(name)")
        }
        try standby.append(try revision(after: standby, [.upsert(host("still", uid: "u5"))]))
    }
}
