import Foundation
import ManagementModel
import Testing

@Suite("rampart gateway test-packet", .endToEndSlot)
struct GatewayTestPacketEndToEndTests {
    /// An installed policy as the agent stores it: 443 to the web server accepted and logged, the rest dropped.
    static func installedPolicy() -> CompiledPolicy {
        let web = CompiledRule(
            number: 1, uid: "rule-web", name: "web", layer: "Network", action: .accept, source: AddressMatch(any: true),
            destination: AddressMatch(any: false, ranges: [AddressRange(first: "10.2.0.10", last: "10.2.0.10")]),
            service: ServiceMatch(any: false, entries: [ServiceEntry(proto: "tcp", portFirst: 443, portLast: 443)]), log: true)
        let cleanup = CompiledRule(
            number: 2, uid: CompiledRule.implicitCleanupUID, name: "Implicit cleanup rule", layer: "Network", action: .drop,
            source: AddressMatch(any: true), destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false)
        return CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "gw-1", targetUID: "g", revision: 12, revisionHash: "h",
            epochTerm: 2, epochServer: "primary", compiledAtMilliseconds: 0, rules: [web, cleanup])
    }

    @Test func answersWithTheDecisionAndTheRuleAndLogsTheHit() async throws {
        let scratch = try TemporaryDirectory()
        let data = scratch.path("gw1")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let missing = try await CLI.run(
            ["gateway", "test-packet", "--data", data, "src=10.1.0.5", "dst=10.2.0.10", "proto=tcp", "dport=443"], scratch: scratch)
        #expect(missing.status == 1 && missing.stderr.contains("No installed policy"), "\(missing)")

        try JSONEncoder().encode(Self.installedPolicy()).write(to: URL(fileURLWithPath: data + "/installed-policy.json"))
        let accepted = try await CLI.run(
            ["gateway", "test-packet", "--data", data, "src=10.1.0.5", "dst=10.2.0.10", "proto=tcp", "dport=443", "--json"], scratch: scratch)
        #expect(accepted.status == 0, "\(accepted)")
        let json = try accepted.json()
        #expect(json["decision"] as? String == "accept")
        #expect((json["rule"] as? [String: Any])?["name"] as? String == "web")
        #expect((json["logged"] as? [String: Any])?["sequence"] as? Int == 1)

        let dropped = try await CLI.run(
            ["gateway", "test-packet", "--data", data, "src=10.1.0.5", "dst=10.2.0.10", "proto=udp", "dport=443"], scratch: scratch)
        #expect(dropped.status == 0 && dropped.stdout.hasPrefix("DROP") && dropped.stdout.contains("Implicit cleanup rule"), "\(dropped)")
        // The second logged hit gets the next outbox sequence: the first is on disk.
        let again = try await CLI.run(
            ["gateway", "test-packet", "--data", data, "src=10.1.0.6", "dst=10.2.0.10", "proto=tcp", "dport=443", "--json"], scratch: scratch)
        #expect((try again.json()["logged"] as? [String: Any])?["sequence"] as? Int == 2)
        #expect(FileManager.default.fileExists(atPath: data + "/logs.sqlite"))

        let bad = try await CLI.run(["gateway", "test-packet", "--data", data, "src=10.1.0.5", "dst=10.2.0.999", "proto=tcp", "dport=443"], scratch: scratch)
        #expect(bad.status != 0 && bad.stderr.contains("Invalid dst"), "\(bad)")
    }
}
