import Foundation
import GRDB
import Testing

@testable import ManagementModel
@testable import Store

func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-store-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func host(_ name: String, uid: String) -> ManagedObject {
    ManagedObject(
        uid: uid, type: .host, name: name, fields: ["ipv4-address": "192.0.2.1"],
        meta: MetaInfo(creator: "a", creationTimeMilliseconds: 1, lastModifier: "a", lastModifyTimeMilliseconds: 1))
}

func revision(after store: ManagementStore, _ changes: [ObjectChange]) throws -> Revision {
    Revision(
        after: try store.head(), epoch: .init(term: 1, server: "primary"), publishedAtMilliseconds: 10, author: "alice",
        sessionUID: "s", sessionName: "", changes: changes)
}

@Suite("Store: real SQLite files")
struct StoreTests {
    @Test func publishedRevisionsSurviveReopening() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("rampart.sqlite").path
        do {
            let store = try ManagementStore(path: path)
            try store.append(try revision(after: store, [.upsert(host("a", uid: "u1"))]))
            try store.append(try revision(after: store, [.upsert(host("b", uid: "u2")), .delete(uid: "u1", type: .host, name: "a")]))
        }
        let reopened = try ManagementStore(path: path)
        #expect(try reopened.head()?.number == 2)
        #expect(reopened.reader.object(uid: "u1") == nil)
        #expect(reopened.reader.objects(named: "b").first?.uid == "u2")
        #expect(try reopened.verifyJournal() == nil)
        #expect(try reopened.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") } == "wal")
    }

    @Test func aRevisionThatDoesNotFollowTheHeadIsRefused() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("db.sqlite").path)
        let first = try revision(after: store, [.upsert(host("a", uid: "u1"))])
        try store.append(first)
        #expect(throws: StoreError.self) { try store.append(first) }
        var forged = try revision(after: store, [.upsert(host("b", uid: "u2"))])
        forged.author = "mallory"
        #expect(throws: StoreError.self) { try store.append(forged) }
        #expect(try store.head()?.number == 1)
        #expect(store.reader.object(uid: "u2") == nil)
    }

    @Test func referencesAreIndexedForWhereUsed() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("db.sqlite").path)
        var group = host("g", uid: "g1")
        group.type = .group
        group.fields = ["members": ["u1"]]
        try store.append(try revision(after: store, [.upsert(host("a", uid: "u1")), .upsert(group)]))
        #expect(store.reader.referrers(of: "u1").map(\.uid) == ["g1"])
    }

    @Test func aTamperedJournalIsReportedAtStart() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db.sqlite").path
        let store = try ManagementStore(path: path)
        for index in 0..<3 { try store.append(try revision(after: store, [.upsert(host("h\(index)", uid: "u\(index)"))])) }
        try store.write { db in
            try db.execute(sql: "UPDATE revisions SET body = replace(body, '\"alice\"', '\"mallory\"') WHERE number = 2")
        }
        let problem = try ManagementStore(path: path).verifyJournal()
        #expect(problem?.revision == 2)
    }

    @Test func anUncommittedPublishLeavesNoTrace() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db.sqlite").path
        do {
            let store = try ManagementStore(path: path)
            try store.append(try revision(after: store, [.upsert(host("a", uid: "u1"))]))
            let next = try revision(after: store, [.upsert(host("b", uid: "u2"))])
            // A crash between write and commit: the rows are written inside a transaction that never commits.
            var unsafe = Configuration()
            unsafe.allowsUnsafeTransactions = true
            let crashing = try DatabaseQueue(path: path, configuration: unsafe)
            try crashing.inDatabase { db in
                try db.execute(sql: "BEGIN IMMEDIATE")
                try db.execute(
                    sql:
                        "INSERT INTO revisions (number, hash, previous_hash, epoch_term, epoch_server, published_at, author, body) VALUES (2, ?, ?, 1, 'p', 1, 'a', ?)",
                    arguments: [next.hash, next.previousHash, next.json.canonicalString])
                try db.execute(sql: "INSERT INTO objects (uid, type, name, body) VALUES ('u2', 'host', 'b', '{}')")
            }
            _ = store
        }
        let reopened = try ManagementStore(path: path)
        #expect(try reopened.head()?.number == 1)
        #expect(reopened.reader.object(uid: "u2") == nil)
        #expect(try reopened.verifyJournal() == nil)
    }

    @Test func sessionsAndPendingChangesArePersisted() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db.sqlite").path
        do {
            let store = try ManagementStore(path: path)
            try store.saveSession(uid: "s1", body: ["uid": "s1", "sid": "x"])
            try store.savePendingChanges(session: "s1", [(1, .upsert(host("a", uid: "u1"))), (2, .delete(uid: "u9", type: .host, name: "z"))])
        }
        let sessions = try ManagementStore(path: path).loadSessions()
        #expect(sessions.count == 1)
        #expect(sessions[0].changes.map(\.change.uid) == ["u1", "u9"])
    }

    /// A publish waits for the fsync of every page its transaction wrote: rows are updated in place,
    /// so a page is written only where something changed. With `INSERT OR REPLACE` (a delete and an
    /// insert under a new rowid, a page of every index rewritten) this test counted 12 pages for the new
    /// host and 10 for the changed one.
    @Test func aPublishWritesOnlyThePagesItChanges() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("db.sqlite").path
        let store = try ManagementStore(path: path)
        for index in 0..<300 { try store.append(try revision(after: store, [.upsert(host("h\(index)", uid: "u\(index)"))])) }
        try store.saveSession(uid: "s1", body: ["uid": "s1", "changes": 0])

        func pagesWritten(publishing change: ObjectChange) throws -> Int {
            try store.savePendingChanges(session: "s1", [(1, change)])
            try store.checkpoint()  // the log starts empty: it grows by exactly the pages written
            let before = try walFrames(path)
            try store.append(try revision(after: store, [change]), session: .init(uid: "s1", body: ["uid": "s1", "changes": 1]))
            return try walFrames(path) - before
        }
        var changed = host("h7", uid: "u7")
        changed.fields["comments"] = "moved to the DMZ"
        let newHostPages = try pagesWritten(publishing: .upsert(host("fresh", uid: "u-new")))
        let changedHostPages = try pagesWritten(publishing: .upsert(changed))
        #expect(newHostPages <= 11, "a new host's publish wrote \(newHostPages) pages")
        #expect(changedHostPages <= 6, "a changed host's publish wrote \(changedHostPages) pages")

        let reopened = try ManagementStore(path: path)
        #expect(reopened.reader.object(uid: "u7")?.fields["comments"] == "moved to the DMZ")
        #expect(reopened.reader.objects(named: "h7").map(\.uid) == ["u7"])
        #expect(reopened.reader.objects(named: "fresh").map(\.uid) == ["u-new"])
        let sessions = try reopened.loadSessions()
        #expect(sessions.count == 1 && sessions[0].changes.isEmpty)
        #expect(sessions.first?.body["changes"] == 1)
        #expect(try reopened.verifyJournal() == nil)
    }
}

extension StoreTests {
    /// What a cache of one type of objects (the management-server list) keys on: it must grow with
    /// every commit that touched that type, however the revision arrived, and with every replacement of
    /// the whole database; other types' commits leave it alone.
    @Test func theChangeCountOfATypeGrowsWithEveryCommitThatTouchedIt() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("db.sqlite").path)
        var counts: [UInt64] = [store.changeCount(of: .checkpointHost)]
        func counted() -> UInt64 {
            counts.append(store.changeCount(of: .checkpointHost))
            return counts.last!
        }
        var server = host("mgmt-b", uid: "cp1")
        server.type = .checkpointHost
        try store.append(try revision(after: store, [.upsert(host("h1", uid: "u1"))]))
        #expect(counted() == counts[0], "a host's publish changed the servers' count")
        try store.append(try revision(after: store, [.upsert(server)]))
        #expect(counted() > counts[1], "published by this server")
        try store.appendVisible(try revision(after: store, [.upsert(server)]))
        #expect(counted() > counts[2], "replicated from the active")
        try store.appendVisible(try revision(after: store, [.delete(uid: "cp1", type: .checkpointHost, name: "mgmt-b")]))
        #expect(counted() > counts[3], "deleted")
        try store.truncateJournal(after: 1)
        #expect(counted() > counts[4], "the journal cut back (collision resolution)")
        #expect(store.reader.object(uid: "cp1") == nil && store.reader.object(uid: "u1") != nil)
    }
}

/// Frames in the write-ahead log of the database at `path` (it only grows between checkpoints).
func walFrames(_ path: String) throws -> Int {
    let bytes = try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int ?? 0
    return max(0, bytes - 32) / (4096 + 24)
}
