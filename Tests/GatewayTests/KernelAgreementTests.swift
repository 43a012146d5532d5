import Foundation
import Gateway
import ManagementModel
import Testing

/// The kernel and the matcher agree: single packets sent through a gateway namespace that routes
/// them (the forward hook) hit exactly the rules `PacketMatcher` says, read back from the counters.
@Suite("nftables and the matcher agree", .enabled(if: NamespacePair.shouldRun, "RAMPART_SKIP_NETNS=1 and no root/ip/nft"))
struct KernelAgreementTests {
    static let clientSources = ["10.1.2.3", "192.0.2.1", "fd00:1::99", "fd00:3::99"]
    static let destinations = ["10.2.0.15", "10.2.0.5", "10.2.0.20", "fd00:2::10", "fd00:2::11"]
    static let probes: [(proto: String, port: Int)] = [("tcp", 80), ("tcp", 8050), ("tcp", 22), ("udp", 53), ("udp", 80)]

    /// Client addresses on the client's interface, routes both ways, forwarding on the gateway. The
    /// gateway routes the destinations back to the client, which does not forward and drops them.
    func route(_ pair: NamespacePair) async throws {
        let run = NamespacePair.run
        try await run(["ip", "-n", pair.gateway, "-6", "addr", "add", "fd00:77::2/64", "dev", pair.gatewayDevice, "nodad"])
        try await run(["ip", "-n", pair.gateway, "route", "add", "10.2.0.0/16", "via", NamespacePair.clientAddress])
        try await run(["ip", "-n", pair.gateway, "-6", "route", "add", "fd00:2::/64", "via", "fd00:77::1"])
        try await run(["ip", "-n", pair.client, "-6", "addr", "add", "fd00:77::1/64", "dev", pair.clientDevice, "nodad"])
        for source in Self.clientSources {
            let isV6 = source.contains(":")
            try await run(
                ["ip", "-n", pair.client] + (isV6 ? ["-6"] : []) + ["addr", "add", source + (isV6 ? "/128" : "/32"), "dev", pair.clientDevice]
                    + (isV6 ? ["nodad"] : []))
            try await run(
                ["ip", "-n", pair.gateway] + (isV6 ? ["-6"] : []) + ["route", "add", source, "via", isV6 ? "fd00:77::1" : NamespacePair.clientAddress])
        }
        try await run(["ip", "-n", pair.client, "route", "add", "10.2.0.0/16", "via", NamespacePair.gatewayAddress])
        try await run(["ip", "-n", pair.client, "-6", "route", "add", "fd00:2::/64", "via", "fd00:77::2"])
        try await run([
            "ip", "netns", "exec", pair.gateway, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
            "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.\(pair.gatewayDevice).rp_filter=0",
            "net.ipv4.conf.all.send_redirects=0", "net.ipv4.conf.\(pair.gatewayDevice).send_redirects=0",
        ])
    }

    /// One new connection's first packet: a UDP datagram, or a TCP SYN whose socket is then dropped.
    func send(_ pair: NamespacePair, source: String, destination: String, proto: String, port: Int) async throws {
        let family = source.contains(":") ? "socket.AF_INET6" : "socket.AF_INET"
        let script =
            proto == "udp"
            ? "import socket; s = socket.socket(\(family), socket.SOCK_DGRAM); s.bind((\"\(source)\", 0)); s.sendto(b\"x\", (\"\(destination)\", \(port)))"
            : "import socket; s = socket.socket(\(family), socket.SOCK_STREAM); s.setblocking(False); s.bind((\"\(source)\", 0)); s.connect_ex((\"\(destination)\", \(port))); s.close()"
        try await NamespacePair.run(["ip", "netns", "exec", pair.client, "python3", "-c", script])
    }

    @Test func everyProbeHitsTheRulesTheMatcherNames() async throws {
        let pair = try await NamespacePair.create()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-nft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        do {
            try await route(pair)
            // Two ordered layers: the matcher test policy, then a layer that rejects UDP 80 and accepts the rest.
            var policy = try PacketMatcherTests().policy()
            let udp80 = ServiceMatch(any: false, entries: [ServiceEntry(proto: "udp", portFirst: 80, portLast: 80)])
            policy.rules += [
                CompiledRule(
                    number: 1, uid: "second-udp80", name: "udp80", layer: "Second", action: .reject, source: AddressMatch(any: true),
                    destination: AddressMatch(any: true), service: udp80, log: true),
                CompiledRule(
                    number: 2, uid: CompiledRule.implicitCleanupUID, name: "cleanup", layer: "Second", action: .accept,
                    source: AddressMatch(any: true), destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false),
            ]
            let enforcer = NftablesEnforcer(rulesetDirectory: scratch, namespace: pair.gateway)
            try await enforcer.apply(policy)
            var previous = try NftablesHitCollector.reading(fromListing: try await enforcer.listing()).counters
            var decisions: Set<CompiledAction> = []
            for source in Self.clientSources {
                for destination in Self.destinations where destination.contains(":") == source.contains(":") {
                    for probe in Self.probes {
                        let expected = PacketMatcher.evaluate(try packet(source, destination, probe.proto, probe.port), against: policy)
                        decisions.insert(expected.action)
                        try await send(pair, source: source, destination: destination, proto: probe.proto, port: probe.port)
                        let hit = try await hits(enforcer, since: &previous, expected: expected.path.count)
                        #expect(
                            hit == expected.path.map { policy.rules.firstIndex(of: $0)! },
                            "\(probe.proto) \(source) -> \(destination):\(probe.port): kernel hit \(hit.map { policy.rules[$0].name }), matcher says \(expected.path.map(\.name))"
                        )
                    }
                }
            }
            #expect(decisions == [.accept, .drop, .reject])
        } catch {
            Issue.record("the agreement test failed: \(error)")
        }
        await pair.close()
        try? FileManager.default.removeItem(at: scratch)
    }

    /// The rule indices whose counters grew since `previous`, once `expected` counters grew (polled
    /// within a generous bound: the packet crosses the veth pair asynchronously).
    func hits(_ enforcer: NftablesEnforcer, since previous: inout [NftablesHitCollector.Counter], expected: Int) async throws -> [Int] {
        var grown: [Int] = []
        for _ in 0..<200 {
            let now = try NftablesHitCollector.reading(fromListing: try await enforcer.listing()).counters
            grown = zip(now, previous).filter { $0.packets > $1.packets }.map(\.0.index)
            if grown.count >= expected {
                previous = now
                return grown
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return grown
    }
}
