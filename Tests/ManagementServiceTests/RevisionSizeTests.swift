import Foundation
import ManagementModel
import ManagementService
import Testing

/// A revision must reach the standbys in one SIC frame: publish refuses a larger one before anything
/// is committed, and the session keeps its changes.
@Suite("Publish: a revision fits one SIC frame")
struct RevisionSizeTests {
    /// Each host carries three opaque fields of 65,000 characters (each under the 64 KiB a field takes).
    static let fieldLength = 65_000

    func field(_ length: Int = fieldLength) -> JSONValue { .string(String(repeating: "x", count: length)) }

    func name(_ index: Int) -> JSONValue { .string("big-" + String(format: "%03d", index)) }

    @Test func aRevisionJustOverTheLimitIsRefusedAndOneAtTheLimitPublishes() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let before = try #require(try h.store.head())
        let limit = PublishLimits.revisionBytesMax
        let hosts = limit / (3 * Self.fieldLength) + 1
        for index in 0..<hosts {
            try await h.ok(
                "add-host",
                [
                    "name": name(index), "ip-address": "192.0.2.1", "interfaces": field(), "nat-settings": field(),
                    "host-servers": field(),
                ], sid: sid)
        }
        // Far over: refused, saying how large it would be; nothing published.
        var refused = await h.call("publish", sid: sid)
        #expect(refused.status == 400 && refused.body["code"] == "err_publish_failed", "\(refused.body.canonicalString.prefix(300))")
        let size = try #require(refused.body["revision-bytes"]?.intValue)
        #expect(Int(size) > limit && refused.body["revision-bytes-max"]?.intValue == Int64(limit))
        #expect(try h.store.head()?.number == before.number)

        // Shrink host fields until the revision is one byte over the limit.
        var excess = Int(size) - limit - 1
        var index = 0
        while excess > 0 {
            let cut = min(excess, Self.fieldLength - 1)
            try await h.ok("set-host", ["name": name(index), "nat-settings": field(Self.fieldLength - cut)], sid: sid)
            excess -= cut
            index += 1
        }
        refused = await h.call("publish", sid: sid)
        #expect(refused.status == 400 && refused.body["revision-bytes"]?.intValue == Int64(limit + 1), "\(refused.body.canonicalString.prefix(300))")
        #expect(refused.body["message"]?.stringValue?.contains("SIC frame") == true)
        #expect(try h.store.head()?.number == before.number, "nothing published")
        #expect(try await h.ok("show-session", sid: sid)["changes"]?.intValue == Int64(hosts), "the session keeps its changes")

        // One byte less: at the limit, it publishes, and the journal holds exactly that many bytes.
        try await h.ok("set-host", ["name": name(index), "interfaces": field(Self.fieldLength - 1)], sid: sid)
        let task = try await h.publish(sid: sid)
        #expect(task["status"] == "succeeded", "\(task.canonicalString.prefix(300))")
        let published = try #require(try h.store.revisions(from: before.number + 1, limit: 1).first)
        #expect(published.json.canonicalBytes.count == limit)
    }
}
