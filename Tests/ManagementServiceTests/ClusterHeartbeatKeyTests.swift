import Foundation
import ManagementModel
import ManagementService
import Testing

/// Each cluster gets its own heartbeat secret when it is added: sent to its members in the policy's
/// cluster section, never shown, never taken from a client.
@Suite("Gateway clusters: the heartbeat key")
struct ClusterHeartbeatKeyTests {
    /// `ClusterTests.cluster` under another name, with other member names (names are unique).
    static func cluster(_ name: String, members: [String]) -> JSONValue {
        var body = ClusterTests.cluster.objectValue ?? [:]
        body["name"] = .string(name)
        let specs = (body["members"]?.arrayValue ?? []).enumerated().map { index, spec -> JSONValue in
            var member = spec.objectValue ?? [:]
            member["name"] = .string(members[index])
            return .object(member)
        }
        body["members"] = .array(specs)
        return .object(body)
    }

    func addAndPublish(_ h: Harness, _ body: JSONValue, sid: String) async throws {
        let added = try await h.ok("add-simple-cluster", body, sid: sid)
        #expect(try await ClusterTests().waitForTask(h, added["task-id"]!, sid: sid)["status"] == "succeeded")
        _ = try await h.publish(sid: sid)
    }

    /// The heartbeat key in the policy pushed to each member, by member name.
    func pushedKeys(_ h: Harness, targets: [String], sid: String) async throws -> [String: String] {
        let fleet = ScriptedFleet()
        await h.service.attachGateways(fleet)
        let started = try await h.ok("install-policy", ["policy-package": "Standard", "targets": .array(targets.map(JSONValue.string))], sid: sid)
        #expect(try await ClusterTests().waitForTask(h, started["task-id"]!, sid: sid)["status"] == "succeeded")
        var keys: [String: String] = [:]
        for push in fleet.pushes.withLock({ $0 }) {
            let policy = try JSONDecoder().decode(
                CompiledPolicy.self, from: Data(push.policy.bytes(targetName: push.gatewayName, targetUID: push.gatewayUID)))
            keys[push.gatewayName] = policy.cluster?.heartbeatKey
        }
        return keys
    }

    @Test func everyClusterHasItsOwnKeySharedByItsMembersAndNeverShown() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await addAndPublish(h, Self.cluster("cl-a", members: ["a1", "a2"]), sid: sid)
        try await addAndPublish(h, Self.cluster("cl-b", members: ["b1", "b2"]), sid: sid)
        let keys = try await pushedKeys(h, targets: ["cl-a", "cl-b"], sid: sid)
        let keyA = try #require(keys["a1"], "the member's cluster section carries the key: \(keys)")
        let keyB = try #require(keys["b1"])
        #expect(ClusterModel.heartbeatKeyBytes(keyA)?.count == 32 && ClusterModel.heartbeatKeyBytes(keyB)?.count == 32)
        #expect(keys["a2"] == keyA && keys["b2"] == keyB, "members of one cluster share its key")
        #expect(keyA != keyB, "two clusters get different keys")

        for command in ["show-simple-cluster", "show-simple-clusters", "show-gateways-and-servers"] {
            for level in ["standard", "full"] {
                let body: JSONValue = command == "show-simple-cluster" ? ["name": "cl-a", "details-level": .string(level)] : ["details-level": .string(level)]
                let shown = "\(try await h.ok(command, body, sid: sid))"
                #expect(!shown.contains(keyA) && !shown.contains(keyB) && !shown.contains(ClusterModel.heartbeatKeyField), "\(command) \(level)")
            }
        }
    }

    @Test func aClientCannotSetTheKey() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        var body = Self.cluster("cl-c", members: ["c1", "c2"]).objectValue ?? [:]
        body[ClusterModel.heartbeatKeyField] = .string(Data(repeating: 7, count: 32).base64EncodedString())
        let refused = await h.call("add-simple-cluster", .object(body), sid: sid)
        #expect(refused.status != 200, "\(refused.body)")
    }

    @Test func aKeyIsWellFormedOnlyAsBase64OfThirtyTwoBytes() {
        #expect(ClusterModel.heartbeatKeyBytes(ClusterModel.newHeartbeatKey())?.count == 32)
        #expect(ClusterModel.heartbeatKeyBytes(Data(repeating: 1, count: 31).base64EncodedString()) == nil)
        #expect(ClusterModel.heartbeatKeyBytes("not base64!") == nil)
        #expect(ClusterModel.heartbeatKeyBytes(String(repeating: "A", count: 10_000)) == nil)
    }
}
