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
}
