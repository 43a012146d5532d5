import Foundation
import Testing

/// `rampart time` between a real primary and standby: a row per peer with NTP's offset and delay, the
/// skew in `ha status`, and a promotion refused above the problem threshold unless forced. The standby's
/// skew is injected (RAMPART_TEST_CLOCK_OFFSET_MS shifts the clock it shows its peers; the machine's
/// clock is not touched).
@Suite("End to end: rampart time and clock skew", .serialized, .endToEndSlot)
struct TimeEndToEndTests {
    static let skewMilliseconds = 120_000

    @Test("a row per peer with offset, delay and when measured; above the problem threshold ha promote refuses unless --force")
    func offsetsAndRefusal() async throws {
        let group = try await HAGroup()
        try await group.join(
            "mgmt-b", extra: ["--clock-warning-ms", "1000", "--clock-problem-ms", "60000"],
            environment: ["RAMPART_TEST_CLOCK_OFFSET_MS": String(Self.skewMilliseconds)])

        // Each side measures the other once both have sent an ha-clock (every second) and echoed one.
        func peerRow(on name: String) async throws -> [String: Any]? {
            let time = try await group.fixture.rampart(["time", "--data", group.data(name), "--json"])
            let rows = (try? time.json())?.objects("peers") ?? []
            guard rows.count == 1, let row = rows.first, row["delay-ms"] is NSNumber else { return nil }
            return row
        }
        var seenFromPrimary: [String: Any]?
        #expect(
            try await group.eventually {
                seenFromPrimary = try await peerRow(on: "primary")
                return seenFromPrimary != nil
            })
        let fromPrimary = try #require(seenFromPrimary, "\(group.haLog("primary"))")
        #expect(fromPrimary.string("name") == "mgmt-b" && fromPrimary.string("kind") == "management-server")
        let offset = try #require(fromPrimary.int("offset-ms"))
        #expect(abs(offset - Self.skewMilliseconds) < 5_000, "mgmt-b is \(Self.skewMilliseconds) ms ahead: \(fromPrimary)")
        #expect((fromPrimary.int("delay-ms") ?? -1) >= 0 && fromPrimary.string("measured-at")?.hasSuffix("Z") == true)
        #expect(fromPrimary.string("level") == "warning", "120 s is within the primary's default problem threshold (300 s)")

        var seenFromStandby: [String: Any]?
        #expect(
            try await group.eventually {
                seenFromStandby = try await peerRow(on: "mgmt-b")
                return seenFromStandby != nil
            })
        let fromStandby = try #require(seenFromStandby)
        #expect(fromStandby.string("name") == "primary" && abs((fromStandby.int("offset-ms") ?? 0) + Self.skewMilliseconds) < 5_000)
        #expect(fromStandby.string("level") == "problem", "mgmt-b's --clock-problem-ms is 60 s: \(fromStandby)")
        let time = try await group.fixture.rampart(["time", "--data", group.data("mgmt-b"), "--json"])
        #expect(time.status == 1, "a peer at problem level: exit 1")
        let localClock = try #require((try? time.json())?.object("local-clock"))
        #expect(["chrony", "systemd-timesyncd", "none"].contains(localClock.string("source") ?? ""), "\(localClock)")
        let text = try await group.fixture.rampart(["time", "--data", group.data("mgmt-b")])
        #expect(text.stdout.contains("primary") && text.stdout.contains("-12") && text.stdout.contains("local clock:"), "\(text)")

        // ha status shows the skew and how long each server has held its mode.
        let status = try await group.status("mgmt-b")
        let primaryEntry = try #require(status.objects("servers").first)
        #expect(abs((primaryEntry.int("clock-offset-ms") ?? 0) + Self.skewMilliseconds) < 5_000, "\(status)")
        #expect(primaryEntry.object("mode-since")?.int("posix") != nil && status.object("mode-since")?.int("posix") != nil, "\(status)")

        // Above the problem threshold a promotion is refused, naming the skew and the fix; --force goes ahead.
        let refused = try await group.ha(["promote"], on: "mgmt-b")
        let said = refused.stdout + refused.stderr
        #expect(refused.status != 0 && said.contains("primary -1") && said.contains("s (behind)"), "\(refused)")
        #expect(said.contains("NTP") && said.contains("--force") && said.contains("(60.0 s)"), "\(refused)")
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["primary"], "nothing was promoted")
        let forced = try await group.ha(["promote", "--force"], on: "mgmt-b")
        #expect(forced.status == 0 && forced.stdout.contains("done: active in epoch"), "\(forced)\n\(group.haLog("mgmt-b"))")
        #expect(try await group.eventually { try await group.writers(["primary", "mgmt-b"]) == ["mgmt-b"] })
        // A new mode, a new mode-since: on the promoted server, and in what the old active says of it.
        let standbySince = try #require(status.object("mode-since")?.int("posix"))
        let promoted = try await group.status("mgmt-b")
        #expect(promoted.string("mode") == "active" && (promoted.object("mode-since")?.int("posix") ?? 0) > standbySince, "\(promoted)")
        #expect(
            try await group.eventually {
                let entry = try await group.status("primary").objects("servers").first
                return entry?.string("ha-state") == "active" && (entry?.object("mode-since")?.int("posix") ?? 0) > standbySince
            }, "the old active learns mgmt-b's new mode-since from its ha-clock messages")
    }
}
