import Foundation
import Testing

/// Gateways' clocks against a real server: enrolment refuses a gateway whose clock is off by more than
/// the server's --clock-problem-ms unless the agent is started with --force, and `rampart time` shows
/// a row per gateway with NTP's offset and delay from the gw-welcome / gw-status stamps. The agents'
/// skew is injected (RAMPART_TEST_CLOCK_OFFSET_MS shifts the clock a process shows its peers).
@Suite("End to end: gateway clocks", .serialized, .endToEndSlot)
struct GatewayClockEndToEndTests {
    static let problemMilliseconds = 60_000

    /// `rampart time --json` rows of kind gateway on the primary, by name.
    static func gatewayRows(_ group: HAGroup) async throws -> [String: [String: Any]] {
        let time = try await group.fixture.rampart(["time", "--data", group.data("primary"), "--json"])
        var rows: [String: [String: Any]] = [:]
        for row in (try? time.json())?.objects("peers") ?? [] where row.string("kind") == "gateway" { rows[row.string("name") ?? "?"] = row }
        return rows
    }

    @Test(
        "enrolment: refused above --clock-problem-ms naming skew, limit and fix; accepted with --force and below; rampart time has each gateway's row",
        .timeLimit(.minutes(10)))
    func enrolmentAndTimeRows() async throws {
        let group = try await HAGroup(primaryArguments: ["--clock-problem-ms", String(Self.problemMilliseconds)])
        let skewedKey = try await group.addGateway("gw-skewed")
        let closeKey = try await group.addGateway("gw-close")
        _ = try await group.addGateway("gw-never-started")
        let twoMinutesAhead = ["RAMPART_TEST_CLOCK_OFFSET_MS": "120000"]

        // 120 s ahead with a 60 s limit: the agent's first start fails, saying why and what to do.
        let refused = try group.startAgent("gw-skewed", keyFile: skewedKey, environment: twoMinutesAhead)
        defer { refused.kill() }
        let exit = try await refused.record.wait(seconds: 60)
        #expect(exit != nil && exit?.status != 0, "\(refused.logTail)")
        let said = refused.log
        #expect(said.contains("clock skew too large") && said.contains("120 seconds ahead of"), "\(said)")
        #expect(said.contains("at most 60 seconds") && said.contains("--clock-problem-ms"), "\(said)")
        #expect(said.contains("NTP") && said.contains("rampart time") && said.contains("--force"), "\(said)")

        // --force: enrolled with the same (unused) key; its row shows +120 s, a problem at 60 s.
        let forced = try group.startAgent("gw-skewed", keyFile: skewedKey, attempt: 2, extra: ["--force"], environment: twoMinutesAhead)
        defer { forced.kill() }
        // 30 s ahead, under the limit: enrolled without --force.
        let close = try group.startAgent("gw-close", keyFile: closeKey, environment: ["RAMPART_TEST_CLOCK_OFFSET_MS": "30000"])
        defer { close.kill() }
        var rows: [String: [String: Any]] = [:]
        #expect(
            try await group.eventually(seconds: 90) {
                rows = try await Self.gatewayRows(group)
                return rows["gw-skewed"]?["delay-ms"] is NSNumber && rows["gw-close"]?["delay-ms"] is NSNumber
            }, "\(rows)\n\(forced.logTail)\n\(close.logTail)")
        let skewed = try #require(rows["gw-skewed"])
        #expect(abs((skewed.int("offset-ms") ?? 0) - 120_000) < 5_000, "\(skewed)")
        #expect(skewed.string("level") == "problem" && skewed.string("measured-at")?.hasSuffix("Z") == true, "\(skewed)")
        #expect((skewed.int("delay-ms") ?? -1) >= 0 && (skewed.int("delay-ms") ?? .max) < 5_000, "the welcome's hold is not transit: \(skewed)")
        let closeRow = try #require(rows["gw-close"])
        #expect(abs((closeRow.int("offset-ms") ?? 0) - 30_000) < 5_000 && closeRow.string("level") == "warning", "\(closeRow)")
        // A gateway never heard from: a row, not measured.
        let never = try #require(rows["gw-never-started"])
        #expect(never.string("level") == "not measured" && never["offset-ms"] is NSNull, "\(never)")

        // The same gateways in rampart view (and /metrics' rampart_gateway_state): each with its state.
        let view = try await group.fixture.rampart(["view", "--data", group.data("primary"), "--json", "--interval", "0.2"]).json()
        let states = Dictionary(view.objects("gateways").map { ($0.string("name") ?? "?", $0.string("state") ?? "?") }) { first, _ in first }
        #expect(states == ["gw-close": "ok", "gw-skewed": "ok", "gw-never-started": "untrusted"], "\(view)")

        let time = try await group.fixture.rampart(["time", "--data", group.data("primary")])
        #expect(time.status == 1, "a gateway at problem level: exit 1\n\(time)")
        #expect(time.stdout.contains("gw-skewed") && time.stdout.contains("gateway") && time.stdout.contains("problem"), "\(time)")
        print("rampart time with two skewed gateways:\n\(time.stdout)")
    }

    @Test("a server joining with its clock beyond the active's --clock-problem-ms is refused, naming the skew; --force joins", .timeLimit(.minutes(10)))
    func serverJoinSkew() async throws {
        let group = try await HAGroup(primaryArguments: ["--clock-problem-ms", String(Self.problemMilliseconds)])
        let keyFile = secretFile("activate-mgmt-b-2026", in: group.fixture.scratch)
        try await group.fixture.mgmtJSON(
            ["add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1", "one-time-password-file=\(keyFile)"] + group.asRoot("primary"))
        try FileManager.default.createDirectory(atPath: group.data("mgmt-b"), withIntermediateDirectories: true)
        let join = ["--join", "127.0.0.1:\(try #require(group.server("primary").sicPort))", "--activation-key-file", keyFile]
        let twoMinutesAhead = ["RAMPART_TEST_CLOCK_OFFSET_MS": "120000"]
        let refused = try await group.fixture.rampart(
            ["server", "--data", group.data("mgmt-b"), "--server-name", "mgmt-b", "--api-port", "0", "--sic-port", "0", "--listen", "127.0.0.1"] + join,
            environment: twoMinutesAhead)
        let said = refused.stdout + refused.stderr
        #expect(refused.status != 0 && said.contains("120 seconds ahead of") && said.contains("at most 60 seconds"), "\(refused)")
        #expect(said.contains("--force"), "\(refused)")
        try await group.start("mgmt-b", join + ["--force"], environment: twoMinutesAhead)
        #expect(try await group.eventually(seconds: 60) { try await group.isHealthy("mgmt-b") }, "\(group.server("mgmt-b").logTail)")
    }
}
