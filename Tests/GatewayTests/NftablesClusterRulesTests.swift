import Gateway
import ManagementModel
import Testing

/// A cluster member's ruleset accepts the cluster's own heartbeats before the rulebase (implied rules),
/// so a Drop cleanup rule does not silence the cluster.
@Suite("nftables implied cluster rules")
struct NftablesClusterRulesTests {
    func policy(cluster: CompiledCluster?) -> CompiledPolicy {
        let cleanup = CompiledRule(
            number: 1, uid: CompiledRule.implicitCleanupUID, name: "Cleanup", layer: "Network", action: .drop, source: AddressMatch(any: true),
            destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false)
        return CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "m1", targetUID: "uid-m1", revision: 1, revisionHash: "h", epochTerm: 1,
            epochServer: "primary", compiledAtMilliseconds: 0, rules: [cleanup], cluster: cluster)
    }

    func cluster() -> CompiledCluster {
        let members = (1...2).map { id in
            CompiledClusterMember(
                memberID: id, name: "m\(id)", uid: "uid-m\(id)", priority: Int64(101 - id), address: "10.1.0.\(id + 1)",
                interfaces: [
                    CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "eth1", type: "sync", address: "fd09::\(id + 1)", maskLength: 64),
                    CompiledClusterInterface(name: "eth2", type: "private", address: "10.7.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "bad\"name", type: "sync", address: "10.8.0.\(id + 1)", maskLength: 24),
                ])
        }
        return CompiledCluster(
            clusterName: "cl", clusterUID: "uid-cl", mode: "cluster-xl-ha", memberRecovery: "active-up", heartbeatIntervalMilliseconds: 100,
            deadTimerMilliseconds: 600, localMemberID: 1, localMemberName: "m1", localMemberUID: "uid-m1", localPriority: 100, members: members,
            interfaces: [
                CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.1", maskLength: 24),
                CompiledClusterInterface(name: "eth1", type: "sync", address: nil, maskLength: nil),
                CompiledClusterInterface(name: "eth2", type: "private", address: nil, maskLength: nil),
                CompiledClusterInterface(name: "bad\"name", type: "sync", address: nil, maskLength: nil),
            ])
    }

    func inputChain(_ text: String) -> [String] {
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        guard let start = lines.firstIndex(of: "chain input {") else { return [] }
        return Array(lines[start...].prefix { $0 != "}" })
    }

    @Test func heartbeatsBetweenMemberAddressesOnMonitoredInterfacesPassBeforeTheRulebase() throws {
        let input = inputChain(NftablesRenderer.render(policy(cluster: cluster())))
        let comment = "comment \"\(NftablesRenderer.clusterHeartbeatComment)\""
        let cluster = "iifname \"eth0\" ip saddr { 10.1.0.2, 10.1.0.3 } udp dport 8116 counter accept \(comment)"
        let sync = "iifname \"eth1\" ip6 saddr { fd09::2, fd09::3 } udp dport 8116 counter accept \(comment)"
        let clusterIndex = try #require(input.firstIndex(of: cluster))
        let syncIndex = try #require(input.firstIndex(of: sync))
        let jump = try #require(input.firstIndex(of: "jump layer_1"))
        #expect(clusterIndex < jump && syncIndex < jump)
        // Private interfaces carry no heartbeats; a name that is not safe is never written.
        #expect(input.filter { $0.contains(comment) }.count == 2)
        #expect(!input.contains { $0.contains("eth2") || $0.contains("bad") })
    }

    @Test func theHeartbeatPortFollowsTheAgentsClusterPort() {
        let text = NftablesRenderer.render(policy(cluster: cluster()), clusterHeartbeatPort: 18_116)
        #expect(text.contains("udp dport 18116 counter accept"))
        #expect(!text.contains("udp dport 8116 "))
    }

    @Test func aGatewayThatIsNoClusterMemberGetsNoImpliedClusterRule() {
        #expect(!NftablesRenderer.render(policy(cluster: nil)).contains(NftablesRenderer.clusterHeartbeatComment))
    }
}
