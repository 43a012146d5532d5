import Gateway
import ManagementModel
import Testing

@Suite("nftables renderer and hit collector")
struct NftablesRendererTests {
    func rule(
        _ uid: String, _ action: CompiledAction, layer: String = "Network", source: AddressMatch = AddressMatch(any: true),
        destination: AddressMatch = AddressMatch(any: true), service: ServiceMatch = ServiceMatch(any: true), log: Bool = false
    ) -> CompiledRule {
        CompiledRule(number: 1, uid: uid, name: uid, layer: layer, action: action, source: source, destination: destination, service: service, log: log)
    }

    func policy(_ rules: [CompiledRule]) -> CompiledPolicy {
        CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "gw", targetUID: "g", revision: 9, revisionHash: "h",
            epochTerm: 2, epochServer: "primary", compiledAtMilliseconds: 0, rules: rules)
    }

    func ranges(_ pairs: (String, String)...) -> [AddressRange] { pairs.map { AddressRange(first: $0.0, last: $0.1) } }

    @Test func theTableIsReplacedInOneFileWithBaseChainsOnInputAndForward() {
        let text = NftablesRenderer.render(policy([rule("u1", .accept), rule(CompiledRule.implicitCleanupUID, .drop)]))
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        #expect(Array(lines[1...3]) == ["table inet rampart", "delete table inet rampart", "table inet rampart {"])
        #expect(lines.contains("type filter hook input priority filter; policy accept;"))
        #expect(lines.contains("type filter hook forward priority filter; policy accept;"))
        #expect(lines.filter { $0 == "ct state established,related accept" }.count == 2)
        #expect(lines.filter { $0 == "jump layer_1" }.count == 2)
        // In the only (last) layer an accept is final.
        #expect(lines.contains("counter accept comment \"rampart 0 u1\""))
        #expect(lines.contains("counter drop comment \"rampart 1 implicit-cleanup\""))
    }

    @Test func addressesSplitByFamilyWithNegationAndRanges() {
        let source = AddressMatch(any: false, ranges: ranges(("10.0.0.1", "10.0.0.1"), ("10.1.0.0", "10.1.255.255"), ("fd00::1", "fd00::1")))
        let destination = AddressMatch(any: false, negate: true, ranges: ranges(("10.9.0.0", "10.9.0.255")))
        let service = ServiceMatch(
            any: false,
            entries: [
                ServiceEntry(proto: "tcp", portFirst: 80, portLast: 80),
                ServiceEntry(proto: "tcp", portFirst: 8000, portLast: 8100),
                ServiceEntry(proto: "udp", portFirst: 53, portLast: 53),
            ])
        let text = NftablesRenderer.render(policy([rule("r", .reject, source: source, destination: destination, service: service)]))
        let statements = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { $0.contains("\"rampart 0 r\"") }
        #expect(
            statements == [
                "ip saddr { 10.0.0.1, 10.1.0.0-10.1.255.255 } ip daddr != { 10.9.0.0-10.9.0.255 } tcp dport { 80, 8000-8100 } counter reject comment \"rampart 0 r\"",
                "ip saddr { 10.0.0.1, 10.1.0.0-10.1.255.255 } ip daddr != { 10.9.0.0-10.9.0.255 } udp dport { 53 } counter reject comment \"rampart 0 r\"",
                // IPv6: the negated destination has no IPv6 range, so every IPv6 destination is outside it.
                "ip6 saddr { fd00::1 } tcp dport { 80, 8000-8100 } counter reject comment \"rampart 0 r\"",
                "ip6 saddr { fd00::1 } udp dport { 53 } counter reject comment \"rampart 0 r\"",
            ])
    }

    @Test func negatedServicesAndOrderedLayers() {
        let notSSH = ServiceMatch(any: false, negate: true, entries: [ServiceEntry(proto: "tcp", portFirst: 22, portLast: 22)])
        let rules = [
            rule("a", .accept, layer: "L1"), rule("b", .accept, layer: "L2", service: notSSH), rule("c", .drop, layer: "L2"),
            rule("nothing", .accept, layer: "L2", source: AddressMatch(any: true, negate: true)),
        ]
        let lines = NftablesRenderer.render(policy(rules)).split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        // Accept in a layer that is not the last goes on to the next layer.
        #expect(lines.contains("counter return comment \"rampart 0 a\""))
        #expect(lines.contains("tcp dport != { 22 } counter accept comment \"rampart 1 b\""))
        #expect(lines.contains("meta l4proto udp counter accept comment \"rampart 1 b\""))
        #expect(lines.contains("meta l4proto != { tcp, udp } counter accept comment \"rampart 1 b\""))
        #expect(!lines.contains { $0.contains("rampart 3 nothing") })
        #expect(lines.filter { $0 == "jump layer_2" }.count == 2)
    }

    @Test func countersTurnIntoLogRecordsForRulesThatLog() throws {
        let policy = policy([rule("web", .accept, log: true), rule("quiet", .accept), rule(CompiledRule.implicitCleanupUID, .drop)])
        func listing(_ web: Int, _ quiet: Int, table: Int = 1) -> String {
            """
            {"nftables": [{"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
             {"table": {"family": "inet", "name": "rampart", "handle": \(table)}},
             {"rule": {"family": "inet", "table": "rampart", "chain": "layer_1", "handle": 4, "comment": "rampart 0 web",
               "expr": [{"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"counter": {"packets": \(web), "bytes": 60}}, {"accept": null}]}},
             {"rule": {"family": "inet", "table": "rampart", "chain": "layer_1", "handle": 5, "comment": "rampart 0 web",
               "expr": [{"counter": {"packets": 1, "bytes": 60}}, {"accept": null}]}},
             {"rule": {"family": "inet", "table": "rampart", "chain": "layer_1", "handle": 6, "comment": "rampart 1 quiet",
               "expr": [{"counter": {"packets": \(quiet), "bytes": 60}}, {"accept": null}]}},
             {"rule": {"family": "inet", "table": "rampart", "chain": "input", "handle": 9,
               "expr": [{"counter": {"packets": 50, "bytes": 60}}, {"accept": null}]}}]}
            """
        }
        let reading = try NftablesHitCollector.reading(fromListing: listing(2, 7))
        #expect(reading.counters == [.init(index: 0, uid: "web", packets: 3), .init(index: 1, uid: "quiet", packets: 7)])
        #expect(reading.tableHandle == 1)
        var collector = NftablesHitCollector()
        let first = collector.records(from: reading, policy: policy, gatewayName: "gw", nowMilliseconds: 10)
        #expect(first.map(\.ruleUID) == ["web"] && first.first?.hitCount == 3 && first.first?.origin == "nftables")
        #expect(first.first?.policyRevision == 9 && first.first?.action == .accept)
        #expect(collector.records(from: reading, policy: policy, gatewayName: "gw", nowMilliseconds: 20).isEmpty)
        let later = collector.records(
            from: try NftablesHitCollector.reading(fromListing: listing(6, 9)), policy: policy, gatewayName: "gw", nowMilliseconds: 30)
        #expect(later.map(\.hitCount) == [4])
        // A new load (a new table handle) starts the counters from zero: all of it is new.
        let reloaded = collector.records(
            from: try NftablesHitCollector.reading(fromListing: listing(6, 9, table: 2)), policy: policy, gatewayName: "gw", nowMilliseconds: 40)
        #expect(reloaded.map(\.hitCount) == [7])
        #expect(throws: NftablesError.self) { try NftablesHitCollector.reading(fromListing: "not json") }
    }
}
