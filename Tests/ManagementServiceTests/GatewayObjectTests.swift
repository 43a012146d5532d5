import Foundation
import ManagementModel
import ManagementService
import Testing

@Suite("Web API: gateways, clusters, install-policy")
struct GatewayObjectTests {
    @Test func simpleGatewayKeepsNoActivationKeyAndReportsItsState() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let gateway = try await h.ok(
            "add-simple-gateway",
            [
                "name": "gw-1", "ip-address": "192.0.2.1", "one-time-password": "a-one-time-key",
                "vpn": true, "interfaces": [["name": "eth0", "ip-address": "192.0.2.1"]],
            ], sid: sid)
        #expect(gateway["ipv4-address"] == "192.0.2.1" && gateway["vpn"] == true && gateway["firewall"] == true)
        #expect(gateway["one-time-password"] == nil && gateway["activation-key"] == nil, "the key is never shown: \(gateway)")
        #expect(gateway["sic-state"] == "uninitialized")
        #expect(gateway["gateway-status"]?["state"] == "untrusted" && gateway["policy-status"] == "not-installed")
        let bad = await h.call("add-simple-gateway", ["name": "gw-2", "ip-address": "300.1.1.1"], sid: sid)
        #expect(bad.status == 400 && bad.body["message"]?.stringValue?.contains("ip-address") == true)
        let shortKey = await h.call("add-simple-gateway", ["name": "gw-3", "ip-address": "192.0.2.3", "one-time-password": "short"], sid: sid)
        #expect(shortKey.status == 400 && shortKey.body["message"]?.stringValue?.contains("one-time-password") == true)
        _ = try await h.publish(sid: sid)
        let listed = try await h.ok("show-gateways-and-servers", sid: sid)
        #expect(listed["objects"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["gw-1"])
        #expect(try await h.ok("show-simple-gateways", sid: sid)["total"] == .int(1))
    }

    @Test func simpleClusterIsAsynchronousAndChecksItsMembers() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let added = try await h.ok(
            "add-simple-cluster",
            [
                "name": "cl-1", "ip-address": "192.0.2.10", "cluster-mode": "cluster-xl-ha",
                "members": [
                    ["name": "m1", "ip-address": "192.0.2.11", "one-time-password": "member-key-1"],
                    ["name": "m2", "ip-address": "192.0.2.12"],
                ],
            ], sid: sid)
        let id = try #require(added["task-id"]?.stringValue, "add-simple-cluster answers with a task: \(added)")
        let task = try await h.ok("show-task", ["task-id": .string(id), "details-level": "full"], sid: sid)["tasks"]![0]!
        #expect(task["status"] == "succeeded")
        let cluster = try await h.ok("show-simple-cluster", ["name": "cl-1"], sid: sid)
        #expect(cluster["members"]?[0]?["ipv4-address"] == "192.0.2.11" && cluster["members"]?[0]?["one-time-password"] == nil)
        let noAddress = await h.call("add-simple-cluster", ["name": "cl-2", "members": [["name": "m3"]]], sid: sid)
        #expect(noAddress.status == 400 && noAddress.body["message"]?.stringValue?.contains("members[0].ip-address") == true)
        let twice = await h.call(
            "add-simple-cluster", ["name": "cl-3", "members": [["name": "m", "ip-address": "192.0.2.1"], ["name": "m", "ip-address": "192.0.2.2"]]], sid: sid)
        #expect(twice.status == 400)
    }

    @Test func targetsAcceptGatewaysByNameAndInstallFailsPerGatewayWithoutAChannel() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-simple-gateway", ["name": "gw-a", "ip-address": "192.0.2.1"], sid: sid)
        try await h.ok("add-simple-gateway", ["name": "gw-b", "ip-address": "192.0.2.2"], sid: sid)
        try await h.ok("add-access-rule", ["layer": "Network", "position": 1, "name": "only-a", "install-on": ["gw-a"], "action": "Accept"], sid: sid)
        let package = try await h.ok("set-package", ["name": "Standard", "installation-targets": ["gw-a"]], sid: sid)
        #expect(package["installation-targets"]?[0]?["name"] == "gw-a", "\(package)")
        let unknown = await h.call("set-package", ["name": "Standard", "installation-targets": ["nope"]], sid: sid)
        #expect(unknown.status == 404)
        _ = try await h.publish(sid: sid)

        let outside = await h.call("install-policy", ["policy-package": "Standard", "targets": ["gw-b"]], sid: sid)
        #expect(outside.status == 400 && outside.body["message"]?.stringValue?.contains("not an installation target") == true, "\(outside.body)")
        #expect(await h.call("install-policy", ["policy-package": "nope"], sid: sid).status == 404)
        #expect(await h.call("install-policy", [:], sid: sid).status == 400)
        // As Ansible's cp_mgmt_install_policy sends it.
        let started = try await h.ok(
            "install-policy",
            [
                "policy-package": "standard", "targets": ["gw-a"], "access": true,
                "threat-prevention": true, "install-on-all-cluster-members-or-fail": true,
            ], sid: sid)
        let task = try await h.ok("show-task", ["task-id": started["task-id"]!, "details-level": "full"], sid: sid)["tasks"]![0]!
        #expect(task["status"] == "failed", "no gateway channel in this harness: \(task)")
        #expect(task["task-details"]?[0]?["gatewayName"] == "gw-a" && task["task-details"]?[0]?["statusCode"] == "failed")

        let verified = try await h.ok("verify-policy", ["policy-package": "Standard"], sid: sid)
        let verify = try await h.ok("show-task", ["task-id": verified["task-id"]!, "details-level": "full"], sid: sid)["tasks"]![0]!
        #expect(verify["status"]?.stringValue?.hasPrefix("succeeded") == true, "\(verify)")
    }

    @Test func sharedPolicyBytesGiveEachTargetItsWholePolicy() throws {
        let rule = CompiledRule(
            number: 1, uid: "r", name: "Cleanup rule", layer: "Network", action: .drop, source: AddressMatch(any: true),
            destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: true)
        var policy = CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "", targetUID: "", revision: 4, revisionHash: "h",
            epochTerm: 2, epochServer: "mgmt-b", compiledAtMilliseconds: 9, rules: [rule])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let shared = SharedPolicyBytes(encoded: Array(try encoder.encode(policy)))
        let bytes = shared.bytes(targetName: "gw \"quoted\"", targetUID: "uid-1")
        policy.targetName = "gw \"quoted\""
        policy.targetUID = "uid-1"
        #expect(try JSONDecoder().decode(CompiledPolicy.self, from: Data(bytes)) == policy)
    }
}
