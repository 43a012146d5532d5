import Foundation
import Testing

@testable import ManagementModel
@testable import Store

/// The store on values from a request or a damaged file (issue 18, items 19 and 11).
@Suite("Store: hostile values")
struct HostileStoreTests {
    /// A name filter matches literally: `%`, `_` and `\` were SQL LIKE patterns.
    @Test func nameFiltersMatchLiterally() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let names = ["100%", "1000", "a_b", "axb", #"back\slash"#, "backslash", #"x\%y"#, "x%y", "xy", "Mixed", "e\u{301}"]
        try store.append(try revision(after: store, names.enumerated().map { .upsert(host($1, uid: "u\($0)")) }))
        func matches(_ filter: String) throws -> [String] {
            try store.objects(types: [.host], offset: 0, limit: 100, nameFilter: filter).objects.map(\.name)
        }
        #expect(try matches("%") == ["100%", "x%y", #"x\%y"#])
        #expect(try matches("_") == ["a_b"])
        #expect(try matches("a_b") == ["a_b"])
        #expect(try matches(#"\"#) == [#"back\slash"#, #"x\%y"#])
        #expect(try matches(#"\%"#) == [#"x\%y"#])
        #expect(try matches(#"k\s"#) == [#"back\slash"#])
        #expect(try matches("0%") == ["100%"])
        #expect(try matches("mixed") == ["Mixed"])
        #expect(try matches("\u{301}") == ["e\u{301}"])
        #expect(try matches(#"\"# + "\u{301}") == [])
        #expect(try store.objects(types: [.host], offset: 0, limit: 100, nameFilter: "%").total == 3)
    }

    /// SQLite reads LIMIT -1 as "everything": a negative limit or offset returns nothing more than 0 would.
    @Test func negativePagingIsEmptyNotEverything() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        try store.append(try revision(after: store, [.upsert(host("a", uid: "u1")), .upsert(host("b", uid: "u2"))]))
        #expect(try store.objects(types: [.host], offset: 0, limit: -1, nameFilter: nil).objects.isEmpty)
        #expect(try store.objects(types: [.host], offset: -5, limit: 1, nameFilter: nil).objects.map(\.name) == ["a"])
        #expect(try store.revisions(from: 1, limit: -1).isEmpty)
        #expect(try store.revisions(from: .max, limit: 10).isEmpty)
        #expect(try store.revisions(from: UInt64(Int64.max) + 1, limit: 10).isEmpty)
    }

    /// A damaged or crafted file (a restored backup, a full-sync snapshot from a peer) is an error,
    /// never a trap: negative numbers and values of the wrong type in columns the server reads.
    @Test func damagedRowsThrowInsteadOfTrapping() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let genesis = Revision.genesisHash
        try store.write { db in
            try db.execute(sql: "INSERT INTO revisions VALUES (-3, 'h', ?, 1, 's', 0, 'a', '{}')", arguments: [genesis])
        }
        #expect(throws: StoreError.self) { try store.head() }
        try store.write { db in
            try db.execute(sql: "DELETE FROM revisions")
            try db.execute(sql: "INSERT INTO revisions VALUES (1, 'h', ?, -1, 's', 0, 'a', '{}')", arguments: [genesis])
        }
        #expect(throws: StoreError.self) { try store.read { db in try SnapshotFacts(db) } }
        try store.write { db in
            try db.execute(sql: "UPDATE revisions SET epoch_term = 1, previous_hash = 42")
        }
        #expect(try store.read { db in try ManagementStore.journalLinkProblem(db) } != nil)
        let logs = try LogStore(directory: directory)
        try logs.queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO logs (gateway, sequence, time, received_at, rule_uid, rule_number, rule_name, action, source, destination, proto,
                        dport, origin, policy_revision, hit_count) VALUES ('g', 1, 0, 0, 'u', 'not a number', 'r', 'drop', '', '', 'tcp', NULL, 'x', 1, NULL)
                    """)
        }
        #expect(throws: StoreError.self) { try logs.query(LogQuery(), offset: 0, limit: 10) }
        #expect(throws: StoreError.self) { try logs.records(gateway: "g", after: 0, limit: 10) }
    }
}
