import Foundation
import Gateway
import ManagementModel
import Store
import Testing

@Suite("Installed policy file and test-packet")
struct PacketTestTests {
    func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-gw-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func thePolicyFileRoundTripsAndRefusesWhatItCannotRead() throws {
        let directory = try temporaryDirectory()
        #expect(try InstalledPolicyFile.load(dataDirectory: directory) == nil)
        let policy = try PacketMatcherTests().policy()
        try InstalledPolicyFile.save(policy, dataDirectory: directory)
        #expect(try InstalledPolicyFile.load(dataDirectory: directory) == policy)
        // Saving again replaces it whole, keeping the one before for a cluster's rollback; no temporary
        // file is left beside them.
        var newer = policy
        newer.revision = 4
        try InstalledPolicyFile.save(newer, dataDirectory: directory)
        #expect(try InstalledPolicyFile.load(dataDirectory: directory)?.revision == 4)
        #expect(
            try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
                == [InstalledPolicyFile.fileName, InstalledPolicyFile.previousFileName].sorted())

        let file = InstalledPolicyFile.url(dataDirectory: directory)
        try Data(#"{"formatVersion": 99}"#.utf8).write(to: file)
        #expect(throws: InstalledPolicyError.unsupportedFormat(path: file.path, version: 99)) { try InstalledPolicyFile.load(dataDirectory: directory) }
        try Data("{\"formatVersion\": 1, \"rules\": [".utf8).write(to: file)
        #expect(throws: InstalledPolicyError.self) { try InstalledPolicyFile.load(dataDirectory: directory) }

        // An unusable policy is refused on save (the stored one stays) and on load.
        try InstalledPolicyFile.save(policy, dataDirectory: directory)
        var bad = policy
        bad.rules[0].uid = "x\" accept; flush ruleset"
        bad.rules[1].source.ranges = [AddressRange(first: "10.0.0.9", last: "10.0.0.1")]
        bad.rules[2].service.entries = [ServiceEntry(proto: "sctp", portFirst: 1, portLast: 2)]
        #expect(bad.validationErrors.count == 3)
        #expect(bad.validationErrors[0].hasPrefix("rules[0]") && bad.validationErrors[0].contains(".uid"))
        #expect(throws: InstalledPolicyError.self) { try InstalledPolicyFile.save(bad, dataDirectory: directory) }
        #expect(try InstalledPolicyFile.load(dataDirectory: directory) == policy)
        try JSONEncoder().encode(bad).write(to: file)
        #expect(throws: InstalledPolicyError.self) { try InstalledPolicyFile.load(dataDirectory: directory) }
        var open = policy
        open.rules.removeLast(2)
        #expect(open.validationErrors == ["rules: the last rule of layer [Standard Network] must match every packet (its implicit cleanup rule)"])
    }

    @Test func aHitOnALoggingRuleGoesToTheOutbox() throws {
        let directory = try temporaryDirectory()
        #expect(throws: PacketTestError.self) {
            try PacketTestResult.run(dataDirectory: directory, packet: try packet("10.1.0.1", "10.2.0.10", "tcp", 80), nowMilliseconds: 1)
        }
        try InstalledPolicyFile.save(try PacketMatcherTests().policy(), dataDirectory: directory)
        let web = try PacketTestResult.run(dataDirectory: directory, packet: try packet("10.1.0.1", "10.2.0.10", "tcp", 80), nowMilliseconds: 7)
        #expect(web.decision.action == .accept && web.decision.rule?.name == "web" && web.logged?.sequence == 1)
        #expect(web.json["rule"]?["name"] == "web" && web.json["decision"] == "accept" && web.json["logged"]?["sequence"] == .int(1))
        #expect(web.text.hasPrefix("ACCEPT  tcp 10.1.0.1 -> 10.2.0.10 port 80"))
        // The Cleanup rule does not log: nothing is added.
        let other = try PacketTestResult.run(dataDirectory: directory, packet: try packet("10.1.0.1", "10.2.0.10", "tcp", 81), nowMilliseconds: 8)
        #expect(other.decision.action == .drop && other.logged == nil && other.json["logged"] == .bool(false))
        let outbox = try LogStore(directory: directory).records(gateway: "gw", after: 0, limit: 10)
        #expect(outbox.count == 1)
        let record = try #require(outbox.first?.record)
        #expect(record.ruleName == "web" && record.source == "10.1.0.1" && record.destination == "10.2.0.10" && record.destinationPort == 80)
        #expect(record.origin == "matcher" && record.policyRevision == 3 && record.timeMilliseconds == 7 && record.action == .accept)
    }
}
