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
    ManagedObject(uid: uid, type: .host, name: name, fields: ["ipv4-address": "192.0.2.1"],
                  meta: MetaInfo(creator: "a", creationTimeMilliseconds: 1, lastModifier: "a", lastModifyTimeMilliseconds: 1))
}

func revision(after store: ManagementStore, _ changes: [ObjectChange]) throws -> Revision {
    Revision(after: try store.head(), epoch: .init(term: 1, server: "primary"), publishedAtMilliseconds: 10, author: "alice",
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
                try db.execute(sql: "INSERT INTO revisions (number, hash, previous_hash, epoch_term, epoch_server, published_at, author, body) VALUES (2, ?, ?, 1, 'p', 1, 'a', ?)",
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
}
