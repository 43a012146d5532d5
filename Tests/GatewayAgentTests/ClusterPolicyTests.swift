import Foundation
import Gateway
import Logging
import ManagementModel
import Testing

@Suite("Gateway agent: a cluster member's policy and rollback")
struct ClusterPolicyTests {
    static let cleanup = CompiledRule(
        number: 1, uid: CompiledRule.implicitCleanupUID, name: "Implicit cleanup rule", layer: "Network", action: .drop,
        source: AddressMatch(any: true), destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false)

    static func section(local: Int = 2) -> CompiledCluster {
        let members = (1...2).map { id in
            CompiledClusterMember(
                memberID: id, name: "m\(id)", uid: "uid-m\(id)", priority: Int64(101 - id), address: "192.0.2.1\(id)",
                interfaces: [
                    CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "eth1", type: "sync", address: "10.9.0.\(id + 1)", maskLength: 24),
                ])
        }
        return CompiledCluster(
            clusterName: "cl-1", clusterUID: "uid-cl", mode: "cluster-xl-ha", memberRecovery: "active-up",
            heartbeatIntervalMilliseconds: 200, deadTimerMilliseconds: 1000, localMemberID: local,
            localMemberName: "m\(local)", localMemberUID: "uid-m\(local)", localPriority: Int64(101 - local), members: members,
            interfaces: [
                CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.1", maskLength: 24),
                CompiledClusterInterface(name: "eth1", type: "sync", address: nil, maskLength: nil),
            ])
    }

    static func policy(revision: UInt64 = 5, cluster: CompiledCluster? = section()) -> CompiledPolicy {
        CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "m2", targetUID: "uid-m2", revision: revision, revisionHash: "h",
            epochTerm: 1, epochServer: "primary", compiledAtMilliseconds: 1, rules: [cleanup], cluster: cluster)
    }

    static func bytes(_ policy: CompiledPolicy) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(policy))
    }

    /// The agent reads a policy file from the server (or the disk) as untrusted input: with a JSON value
    /// edited at `path`.
    static func edited(_ change: (inout [String: JSONValue]) -> Void) throws -> [UInt8] {
        var root = try JSONValue.parse(try bytes(policy())).objectValue ?? [:]
        var cluster = root["cluster"]?.objectValue ?? [:]
        change(&cluster)
        root["cluster"] = .object(cluster)
        return JSONValue.object(root).canonicalBytes
    }

    @Test func aMembersPolicyDecodesWithItsClusterSection() throws {
        let decoded = try PolicyDecoding.decode(try Self.bytes(Self.policy()))
        #expect(decoded == Self.policy() && decoded.validationErrors.isEmpty)
        #expect(decoded.cluster?.localMember?.name == "m2" && decoded.cluster?.interfaces.first?.carriesVirtualAddress == true)
        let gateway = try PolicyDecoding.decode(try Self.bytes(Self.policy(cluster: nil)))
        let text = String(decoding: try Self.bytes(gateway), as: UTF8.self)
        #expect(gateway.cluster == nil && !text.contains("cluster"), "a gateway's policy bytes carry no cluster key")
    }

    @Test func aClusterSectionIsBoundedAndChecked() throws {
        let six: [JSONValue] = (1...6).map { _ in .object([:]) }
        #expect(throws: PolicyDecoding.Failure.self) { try PolicyDecoding.decode(try Self.edited { $0["members"] = .array(six) }) }
        #expect(throws: PolicyDecoding.Failure.self) { try PolicyDecoding.decode(try Self.edited { $0["localMemberID"] = "2" }) }
        func errors(_ cluster: CompiledCluster) -> [String] {
            var policy = Self.policy()
            policy.cluster = cluster
            return policy.validationErrors
        }
        var wrong = Self.section()
        wrong.members[0].interfaces[0].name = "eth0;reboot"
        #expect(errors(wrong).contains { $0.contains("cluster.members[0].interfaces[0].name") })
        wrong = Self.section()
        wrong.interfaces[0].address = "010.1.0.1"
        #expect(errors(wrong).contains { $0.contains("cluster.interfaces[0].address") })
        wrong = Self.section()
        wrong.interfaces[0].address = nil
        #expect(errors(wrong).contains { $0.contains("cluster.interfaces[0].address: missing") }, "a cluster interface needs its virtual address")
        wrong = Self.section()
        wrong.members[1].priority = wrong.members[0].priority
        wrong.localPriority = wrong.members[0].priority
        #expect(errors(wrong).contains { $0.contains("priorities must differ") })
        wrong = Self.section()
        wrong.deadTimerMilliseconds = 500
        #expect(errors(wrong).contains { $0.contains("cluster.deadTimerMilliseconds") })
        wrong = Self.section(local: 1)
        #expect(errors(wrong).contains { $0.contains("cluster.localMemberUID") }, "a policy for m1 is not m2's")
        wrong = Self.section()
        wrong.mode = "cluster-ls-multicast"
        #expect(errors(wrong).contains { $0.contains("cluster.mode") })
    }

    func makeAgent(_ directory: URL) throws -> GatewayAgent {
        let state = try AgentState.load(directory) ?? AgentState(name: "m2", servers: [AgentState.Server(name: nil, sicAddress: "127.0.0.1:1")])
        return GatewayAgent(directory: directory, state: state, enforcer: MemoryEnforcer(), storage: .file(in: directory), logger: Logger(label: "test"))
    }

    @Test func aMemberRollsBackToItsPreviousPolicyDurably() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var agent = try makeAgent(directory)
        let epoch = RevisionEpoch(term: 1, server: "primary")
        #expect(await agent.install(body: try Self.bytes(Self.policy(revision: 5))[...], from: "primary").kind == .installed)
        #expect(await agent.cluster?.clusterName == "cl-1", "the runtime reads the installed cluster section")
        #expect(await agent.install(body: try Self.bytes(Self.policy(revision: 6))[...], from: "primary").kind == .installed)

        let other = await agent.rollBack(package: "p", revision: 7, epoch: epoch, from: "primary")
        let kept = await agent.policy?.revision
        #expect(other.kind == .refused && kept == 6, "only the install being undone is rolled back")
        let undone = await agent.rollBack(package: "p", revision: 6, epoch: epoch, from: "primary")
        #expect(undone.kind == .installed && undone.message.contains("revision 5"))
        #expect(await agent.policy?.revision == 5)

        agent = try makeAgent(directory)
        try await agent.restore()
        #expect(await agent.policy?.revision == 5, "the rollback is durable")
    }

    @Test func aFirstInstallRollsBackToTheInitialPolicy() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-cluster-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var agent = try makeAgent(directory)
        #expect(await agent.install(body: try Self.bytes(Self.policy(revision: 3))[...], from: "primary").kind == .installed)
        let undone = await agent.rollBack(package: "p", revision: 3, epoch: RevisionEpoch(term: 1, server: "primary"), from: "primary")
        #expect(undone.kind == .installed && undone.message.contains("initial policy"))
        #expect(await agent.policy == nil)
        agent = try makeAgent(directory)
        try await agent.restore()
        #expect(await agent.policy == nil, "nothing installed after a restart either")
    }
}
