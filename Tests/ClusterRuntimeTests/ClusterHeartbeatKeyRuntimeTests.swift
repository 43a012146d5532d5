import ClusterCore
import ClusterRuntime
import Foundation
import Gateway
import Logging
import ManagementModel
import Testing

/// The agent reads the cluster section's heartbeat key (bounded, checked) and signs and checks
/// heartbeats with it instead of the key derived from the cluster uid.
@Suite("Cluster runtime: the section's heartbeat key")
struct ClusterHeartbeatKeyRuntimeTests {
    static let keyBytes = (0..<32).map { UInt8($0 &* 7 &+ 3) }
    static var key: String { Data(keyBytes).base64EncodedString() }

    static func section(key: String?) -> CompiledCluster {
        var section = ClusterRuntimeTests.section()
        section.heartbeatKey = key
        return section
    }

    @Test func theKeyTravelsInThePolicyAndIsCheckedByTheAgent() throws {
        let cleanup = CompiledRule(
            number: 1, uid: CompiledRule.implicitCleanupUID, name: "Cleanup", layer: "Network", action: .drop, source: AddressMatch(any: true),
            destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false)
        let policy = CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "m1", targetUID: "uid-m1", revision: 1, revisionHash: "h", epochTerm: 1,
            epochServer: "primary", compiledAtMilliseconds: 0, rules: [cleanup], cluster: Self.section(key: Self.key))
        let decoded = try PolicyDecoding.decode(Array(try JSONEncoder().encode(policy)))
        #expect(decoded.cluster?.heartbeatKey == Self.key)
        #expect(decoded.cluster?.validationErrors(targetUID: "uid-m1") == [])
        #expect(try ClusterPlan(Self.section(key: Self.key)).heartbeatKeyBytes == Self.keyBytes)
        #expect(try ClusterPlan(Self.section(key: nil)).heartbeatKeyBytes == nil)

        for bad in ["", "not base64", Data(repeating: 1, count: 16).base64EncodedString(), String(repeating: "QUFB", count: 1_000)] {
            #expect(Self.section(key: bad).validationErrors(targetUID: "uid-m1").contains { $0.hasPrefix("cluster.heartbeatKey") }, "\(bad.prefix(20))")
            #expect(throws: ClusterConfigurationError.self) { try ClusterPlan(Self.section(key: bad)) }
        }
    }

    @Test func theRuntimeSignsAndChecksWithTheSectionsKey() async throws {
        let plan = try ClusterPlan(Self.section(key: Self.key))
        let events = ClusterRuntime.makeEvents()
        let transport = RecordingTransport()
        let runtime = ClusterRuntime(
            plan: plan, host: RecordingHost(), transport: transport, events: events, incarnation: 1, port: 8116, logger: Logger(label: "test")
        ) { _ in }
        let task = Task { await runtime.run() }
        defer { task.cancel() }
        // Signed with the uid-derived key: refused. Signed with the section's key: heard.
        events.continuation.yield(.datagram(HeartbeatCodec(clusterUID: "uid-cl").encode(ClusterRuntimeTests.heartbeat), interface: "eth0", from: "10.1.0.3"))
        events.continuation.yield(.datagram(HeartbeatCodec(keyBytes: Self.keyBytes).encode(ClusterRuntimeTests.heartbeat), interface: "eth0", from: "10.1.0.3"))
        let deadline = ContinuousClock.now + .seconds(120)
        while await runtime.status.members.first(where: { $0.id == 2 })?.lastHeardMillisecondsAgo == nil, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(await runtime.status.members.first { $0.id == 2 }?.lastHeardMillisecondsAgo != nil)
        #expect(await runtime.rejectedDatagrams == ["tag": 1])
        while transport.sent.withLock({ $0.isEmpty }), ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        let sent = try #require(transport.sent.withLock { $0.last?.datagram })
        #expect((try? HeartbeatCodec(keyBytes: Self.keyBytes).decode(sent)) != nil, "own heartbeats carry the section's key")
        #expect((try? HeartbeatCodec(clusterUID: "uid-cl").decode(sent)) == nil)
        runtime.stop()
        await task.value
    }
}
