import Foundation
import Gateway
import Logging
import ManagementModel
import Testing

@Suite("Gateway agent: fence, wire, durable install")
struct GatewayAgentTests {
    @Test func fenceOrdersEpochsByTermThenServer() {
        var fence = EpochFence(highest: nil)
        #expect(fence.admit(RevisionEpoch(term: 1, server: "primary")) == .accept(raised: true))
        #expect(fence.admit(RevisionEpoch(term: 1, server: "primary")) == .accept(raised: false))
        #expect(fence.admit(RevisionEpoch(term: 2, server: "mgmt-b")) == .accept(raised: true))
        guard case .refuse(let reason) = fence.admit(RevisionEpoch(term: 1, server: "primary")) else {
            Issue.record("a lower epoch must be refused")
            return
        }
        #expect(reason.contains("refused: gateway has seen epoch 2/mgmt-b") && reason.contains("1/primary"))
        guard case .refuse = fence.admit(RevisionEpoch(term: 2, server: "mgmt-a")) else {
            Issue.record("same term, lower server: refused")
            return
        }
        #expect(fence.highest == RevisionEpoch(term: 2, server: "mgmt-b"))
    }

    @Test func wireCarriesHeaderAndBodyApart() throws {
        let body = Array(#"{"rules":[1,2,3]}"#.utf8)
        let frame = GatewayWire.frame(["type": "gw-install", "id": "x\ny"], body: body)
        let (header, decodedBody) = try #require(GatewayWire.decode(frame))
        #expect(header["id"] == "x\ny" && Array(decodedBody) == body)
        let (alone, none) = try #require(GatewayWire.decode(GatewayWire.frame(["type": "gw-status"])))
        #expect(alone["type"] == "gw-status" && none.isEmpty)
        let report = GatewayReport(
            name: "gw", enforcement: "none", installedPackage: "Standard", installedRevision: 7,
            installedEpoch: RevisionEpoch(term: 2, server: "b"), highestEpoch: RevisionEpoch(term: 3, server: "a"), lastRefusal: "no")
        #expect(GatewayReport(json: report.json) == report)
    }

    func policy(term: UInt64, server: String, revision: UInt64 = 5, target: String = "gw-1") throws -> [UInt8] {
        let rule = CompiledRule(
            number: 1, uid: CompiledRule.implicitCleanupUID, name: "Implicit cleanup rule", layer: "Network", action: .drop,
            source: AddressMatch(any: true), destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false)
        let compiled = CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: target, targetUID: "u1", revision: revision,
            revisionHash: "h", epochTerm: term, epochServer: server, compiledAtMilliseconds: 1, rules: [rule])
        return Array(try JSONEncoder().encode(compiled))
    }

    func makeAgent(_ directory: URL) throws -> GatewayAgent {
        let state = try AgentState.load(directory) ?? AgentState(name: "gw-1", servers: [AgentState.Server(name: nil, sicAddress: "127.0.0.1:1")])
        return GatewayAgent(directory: directory, state: state, enforcer: MemoryEnforcer(), storage: .file(in: directory), logger: Logger(label: "test"))
    }

    @Test func installIsFencedDurablyAndSurvivesARestart() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("gw-agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var agent = try makeAgent(directory)
        #expect(await agent.install(body: try policy(term: 2, server: "mgmt-b")[...], from: "mgmt-b").kind == .installed)
        let wrongTarget = await agent.install(body: try policy(term: 2, server: "mgmt-b", target: "gw-2")[...], from: "mgmt-b")
        #expect(wrongTarget.kind == .failed && wrongTarget.message.contains("gw-2"))
        let garbage = await agent.install(body: Array("not json".utf8)[...], from: "x")
        #expect(garbage.kind == .failed)

        // A restarted agent keeps its fence (DIR/gateway.json) and its policy (installed-policy.json).
        agent = try makeAgent(directory)
        try await agent.restore()
        let restored = await agent.policy
        #expect(restored?.epochServer == "mgmt-b" && restored?.targetName == "gw-1")
        let old = await agent.install(body: try policy(term: 1, server: "primary", revision: 9)[...], from: "primary")
        #expect(old.kind == .refused && old.message == "refused: gateway has seen epoch 2/mgmt-b, this push is from epoch 1/primary")
        #expect(await agent.policy?.revision == 5, "the refused push changed nothing")
        #expect(await agent.report.lastRefusal == old.message)
        let state = try #require(try AgentState.load(directory))
        #expect(state.highestEpoch == RevisionEpoch(term: 2, server: "mgmt-b") && state.lastRefusal == old.message)
        let mode = try FileManager.default.attributesOfItem(atPath: AgentState.file(directory).path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)

        // An active's announcement raises the fence; an old epoch's server list is ignored.
        await agent.announcement(
            epoch: RevisionEpoch(term: 3, server: "mgmt-c"), isActive: true,
            servers: [AgentState.Server(name: "mgmt-c", sicAddress: "127.0.0.1:2")])
        await agent.announcement(
            epoch: RevisionEpoch(term: 2, server: "mgmt-b"), isActive: true,
            servers: [AgentState.Server(name: "mgmt-b", sicAddress: "127.0.0.1:3")])
        #expect(await agent.servers.map(\.sicAddress) == ["127.0.0.1:2"])
        #expect(try AgentState.load(directory)?.highestEpoch == RevisionEpoch(term: 3, server: "mgmt-c"))
    }
}

@Suite("Gateway agent: policy decoding")
struct PolicyDecodingTests {
    @Test func readsWhatJSONEncoderWroteAndNamesABadField() throws {
        let rules = [
            CompiledRule(
                number: 1, uid: "r1", name: "web \"in\"", layer: "Network", action: .accept,
                source: AddressMatch(
                    any: false, negate: true, ranges: [AddressRange(first: "10.0.0.0", last: "10.0.0.255"), AddressRange(first: "fd00::1", last: "fd00::1")]),
                destination: AddressMatch(any: true), service: ServiceMatch(any: false, entries: [ServiceEntry(proto: "tcp", portFirst: 443, portLast: 443)]),
                log: true),
            CompiledRule(
                number: 2, uid: CompiledRule.implicitCleanupUID, name: "Implicit cleanup rule", layer: "Network", action: .reject,
                source: AddressMatch(any: true), destination: AddressMatch(any: true), service: ServiceMatch(any: true, negate: true), log: false),
        ]
        let policy = CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "gw-1", targetUID: "g", revision: 12, revisionHash: "h",
            epochTerm: 3, epochServer: "mgmt-b", compiledAtMilliseconds: 1_700_000_000_000, rules: rules)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        #expect(try PolicyDecoding.decode(Array(try encoder.encode(policy))) == policy)
        let broken = Array(
            #"{"formatVersion":1,"packageName":"S","packageUID":"p","targetName":"g","targetUID":"u","revision":1,"revisionHash":"h","epochTerm":1,"epochServer":"a","compiledAtMilliseconds":0,"rules":[{"number":1}]}"#
                .utf8)
        #expect(throws: PolicyDecoding.Failure.self) { try PolicyDecoding.decode(broken) }
        do { _ = try PolicyDecoding.decode(broken) } catch { #expect("\(error)" == "rules[0].action: missing") }
    }
}
