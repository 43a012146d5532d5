import Gateway
import ManagementModel
import Testing

@Suite("Packet matcher")
struct PacketMatcherTests {
    /// web servers reachable on http/https and 8000-8100 from the LAN; ssh to the admin host only
    /// from outside the LAN; DNS (udp) anywhere; the rest hits the Cleanup rule.
    func policy() throws -> CompiledPolicy {
        let world = PolicyWorld()
        try world.add(.network, ["name": "lan", "subnet": "10.1.0.0", "mask-length": 16])
        try world.add(.network, ["name": "lan6", "subnet": "fd00:1::", "mask-length": 64])
        try world.add(.group, ["name": "lans", "members": ["lan", "lan6"]])
        try world.add(.addressRange, ["name": "webs", "ip-address-first": "10.2.0.10", "ip-address-last": "10.2.0.19"])
        try world.add(.host, ["name": "web6", "ip-address": "fd00:2::10"])
        try world.add(.host, ["name": "admin", "ip-address": "10.2.0.5"])
        try world.add(.serviceTCP, ["name": "http", "port": "80"])
        try world.add(.serviceTCP, ["name": "alt", "port": "8000-8100"])
        try world.add(.serviceTCP, ["name": "ssh", "port": "22"])
        try world.add(.serviceUDP, ["name": "dns", "port": "53"])
        try world.add(.serviceGroup, ["name": "web-services", "members": ["http", "alt"]])
        try world.rule(["name": "web", "source": ["lans"], "destination": ["webs", "web6"], "service": ["web-services"], "action": "Accept", "track": "Log"])
        try world.rule(["name": "ssh", "source": ["lan"], "source-negate": true, "destination": ["admin"], "service": ["ssh"], "action": "Accept"])
        try world.rule(["name": "dns", "service": ["dns"], "action": "Accept"])
        try world.rule(["name": "no-ssh-elsewhere", "service": ["ssh"], "action": "Reject"])
        return try world.compile()
    }

    func decide(_ policy: CompiledPolicy, _ source: String, _ destination: String, _ proto: String, _ port: Int?) throws -> (CompiledAction, String?) {
        let decision = PacketMatcher.evaluate(try packet(source, destination, proto, port), against: policy)
        return (decision.action, decision.rule?.name)
    }

    @Test func firstMatchingRuleDecides() throws {
        let policy = try policy()
        #expect(try decide(policy, "10.1.2.3", "10.2.0.15", "tcp", 80) == (.accept, "web"))
        #expect(try decide(policy, "10.1.2.3", "10.2.0.15", "tcp", 8050) == (.accept, "web"))
        #expect(try decide(policy, "10.1.2.3", "10.2.0.15", "tcp", 8101) == (.drop, "Cleanup rule"))
        #expect(try decide(policy, "10.1.2.3", "10.2.0.20", "tcp", 80) == (.drop, "Cleanup rule"))
        #expect(try decide(policy, "10.1.2.3", "10.2.0.15", "udp", 80) == (.drop, "Cleanup rule"))
        #expect(try decide(policy, "192.0.2.1", "10.9.9.9", "udp", 53) == (.accept, "dns"))
        #expect(try decide(policy, "192.0.2.1", "10.9.9.9", "icmp", nil) == (.drop, "Cleanup rule"))
        let decision = PacketMatcher.evaluate(try packet("10.1.2.3", "10.2.0.15", "tcp", 80), against: policy)
        #expect(decision.rule?.number == 1 && decision.rule?.log == true && decision.path.map(\.name) == ["web"])
    }

    @Test func ipv6AddressesMatchTheirOwnRanges() throws {
        let policy = try policy()
        #expect(try decide(policy, "fd00:1::99", "fd00:2::10", "tcp", 80) == (.accept, "web"))
        #expect(try decide(policy, "fd00:3::99", "fd00:2::10", "tcp", 80) == (.drop, "Cleanup rule"))
    }

    @Test func negatedSourceMatchesEverythingOutsideIt() throws {
        let policy = try policy()
        #expect(try decide(policy, "192.0.2.1", "10.2.0.5", "tcp", 22) == (.accept, "ssh"))
        #expect(try decide(policy, "10.1.0.1", "10.2.0.5", "tcp", 22) == (.reject, "no-ssh-elsewhere"))
    }

    @Test func orderedLayersNeedAnAcceptInEachLayer() throws {
        let accept = CompiledRule(
            number: 1, uid: "a", name: "a", layer: "L1", action: .accept, source: AddressMatch(any: true),
            destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false)
        var second = accept
        second.layer = "L2"
        second.uid = "b"
        second.name = "b"
        second.service = ServiceMatch(any: false, negate: true, entries: [ServiceEntry(proto: "tcp", portFirst: 22, portLast: 22)])
        var cleanup = second
        cleanup.uid = CompiledRule.implicitCleanupUID
        cleanup.name = "cleanup"
        cleanup.action = .drop
        cleanup.service = ServiceMatch(any: true)
        let policy = CompiledPolicy(
            packageName: "p", packageUID: "p", targetName: "gw", targetUID: "gw", revision: 1, revisionHash: "",
            epochTerm: 1, epochServer: "s", compiledAtMilliseconds: 0, rules: [accept, second, cleanup])
        #expect(PacketMatcher.layers(of: policy).map { $0.map(\.uid) } == [["a"], ["b", CompiledRule.implicitCleanupUID]])
        let web = PacketMatcher.evaluate(try packet("10.0.0.1", "10.0.0.2", "tcp", 80), against: policy)
        #expect(web.action == .accept && web.rule?.uid == "b" && web.path.map(\.uid) == ["a", "b"])
        let ssh = PacketMatcher.evaluate(try packet("10.0.0.1", "10.0.0.2", "tcp", 22), against: policy)
        #expect(ssh.action == .drop && ssh.rule?.name == "cleanup")
        // A negated service matches other protocols too.
        #expect(PacketMatcher.evaluate(try packet("10.0.0.1", "10.0.0.2", "icmp", nil), against: policy).rule?.uid == "b")
    }

    @Test func badPacketsNameTheField() {
        #expect(throws: PacketError.invalid("src", "'10.0.0.300' is not an IPv4 or IPv6 address")) {
            try packet("10.0.0.300", "10.0.0.1", "tcp", 80)
        }
        #expect(throws: PacketError.invalid("dst", "source and destination must both be IPv4 or both IPv6")) {
            try packet("10.0.0.1", "::1", "tcp", 80)
        }
        #expect(throws: PacketError.invalid("proto", "expected tcp, udp or icmp")) { try packet("10.0.0.1", "10.0.0.2", "sctp", 80) }
        #expect(throws: PacketError.invalid("dport", "required for tcp")) { try packet("10.0.0.1", "10.0.0.2", "tcp", nil) }
        #expect(throws: PacketError.invalid("dport", "expected a port from 1 to 65535")) { try packet("10.0.0.1", "10.0.0.2", "udp", 70000) }
    }
}
