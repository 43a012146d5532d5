import Foundation
import ManagementModel
import ManagementService
import Synchronization
import Testing
import TrustCore

/// A fleet whose gateways answer as the test says: each push and rollback is recorded and answered
/// with the outcome `answer` gives for the gateway's name.
final class ScriptedFleet: GatewayFleet {
    let pushes = Mutex<[GatewayPush]>([])
    let rollbacks = Mutex<[GatewayRollback]>([])
    let answer: @Sendable (String) -> GatewayPushResult.Outcome
    let reports: [String: GatewayLiveStatus]

    init(reports: [String: GatewayLiveStatus] = [:], answer: @escaping @Sendable (String) -> GatewayPushResult.Outcome = { _ in .installed }) {
        self.answer = answer
        self.reports = reports
    }

    func status(ofGateway uid: String) -> GatewayLiveStatus? { reports[uid] }

    func push(_ pushes: [GatewayPush], report: @escaping @Sendable (GatewayPushResult) async -> Void) {
        self.pushes.withLock { $0 += pushes }
        Task {
            for push in pushes {
                let outcome = answer(push.gatewayName)
                await report(
                    GatewayPushResult(
                        gatewayUID: push.gatewayUID, gatewayName: push.gatewayName, outcome: outcome,
                        message: outcome == .installed ? "Installed" : "the kernel refused the ruleset"))
            }
        }
    }

    func rollback(_ rollbacks: [GatewayRollback], report: @escaping @Sendable (GatewayPushResult) async -> Void) {
        self.rollbacks.withLock { $0 += rollbacks }
        Task {
            for rollback in rollbacks {
                await report(
                    GatewayPushResult(
                        gatewayUID: rollback.gatewayUID, gatewayName: rollback.gatewayName, outcome: .installed,
                        message: "Back to Standard revision 1"))
            }
        }
    }
}

@Suite("Gateway clusters: objects, members, install, status")
struct ClusterTests {
    /// As Ansible's cp_mgmt_simple_cluster sends it (plus Rampart's cluster-settings and priorities).
    static let cluster: JSONValue = [
        "name": "cl-1", "ip-address": "192.0.2.10", "cluster-mode": "cluster-xl-ha",
        "interfaces": [
            ["name": "eth0", "interface-type": "cluster", "ip-address": "10.1.0.1", "network-mask": "255.255.255.0"],
            ["name": "eth1", "interface-type": "sync", "ip-address": "10.9.0.0", "mask-length": "24"],
        ],
        "members": [
            [
                "name": "m1", "ip-address": "192.0.2.11", "one-time-password": "member-key-1",
                "interfaces": [
                    ["name": "eth0", "ip-address": "10.1.0.2", "network-mask": "255.255.255.0"],
                    ["name": "eth1", "ip-address": "10.9.0.2", "mask-length": 24],
                ],
            ],
            [
                "name": "m2", "ip-address": "192.0.2.12", "one-time-password": "member-key-2", "priority": 50,
                "interfaces": [
                    ["name": "eth0", "ip-address": "10.1.0.3", "mask-length": 24],
                    ["name": "eth1", "ip-address": "10.9.0.3", "mask-length": 24],
                ],
            ],
        ],
        "cluster-settings": ["heartbeat-interval-ms": 100, "member-recovery": "primary-up"],
    ]

    func addCluster(_ h: Harness, sid: String, publish: Bool = true) async throws {
        let added = try await h.ok("add-simple-cluster", Self.cluster, sid: sid)
        let task = try await h.ok("show-task", ["task-id": added["task-id"]!, "details-level": "full"], sid: sid)["tasks"]![0]!
        #expect(task["status"] == "succeeded", "\(task)")
        if publish { _ = try await h.publish(sid: sid) }
    }

    @Test func aClusterMakesMemberObjectsWithTheirOwnIdentity() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await addCluster(h, sid: sid)
        let cluster = try await h.ok("show-simple-cluster", ["name": "cl-1"], sid: sid)
        let members = try #require(cluster["members"]?.arrayValue)
        #expect(members.map { $0["name"] } == ["m1", "m2"])
        #expect(members[0]["type"] == "cluster-member" && members[0]["uid"] != nil && members[0]["sic-state"] == "uninitialized")
        #expect(members[0]["priority"] == 100 && members[1]["priority"] == 50, "default priority for the first: \(members)")
        #expect(members[0]["one-time-password"] == nil && members[0]["activation-key"] == nil, "no key is ever shown")
        #expect(cluster["cluster-settings"] == ["heartbeat-interval-ms": 100, "dead-timer-ms": 1000, "member-recovery": "primary-up"])
        #expect(cluster["interfaces"]?[0]?["ipv4-address"] == "10.1.0.1" && cluster["interfaces"]?[0]?["ipv4-mask-length"] == 24)
        #expect(cluster["interfaces"]?[1]?["ipv4-network-mask"] == "255.255.255.0")

        // As cp_mgmt_cluster_members_facts asks: the plural, then one member by uid.
        let listed = try await h.ok("show-cluster-members", ["details-level": "full"], sid: sid)
        #expect(listed["total"] == 2 && listed["objects"]?[1]?["name"] == "m2")
        let uid = try #require(members[1]["uid"]?.stringValue)
        let member = try await h.ok("show-cluster-member", ["uid": .string(uid)], sid: sid)
        #expect(member["cluster"]?["name"] == "cl-1" && member["member-id"] == 2 && member["ip-address"] == "192.0.2.12")
        #expect(member["interfaces"]?[0]?["interface-type"] == "cluster", "a member interface takes its cluster interface's type")
        #expect(member["cluster-member-status"]?["state"] == "not-responding")

        // Members enrol as themselves: SIC commands find them by name.
        let status = try await h.ok("test-sic-status", ["name": "m2"], sid: sid)
        #expect(status["sic-status"] == "uninitialized" && status["sic-message"]?.stringValue?.contains("enrol") == true)
        #expect(await h.service.isEnrolledGateway(uid: uid) == false)
    }

    @Test func setKeepsMembersByNameAndDeleteRemovesThem() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await addCluster(h, sid: sid)
        let before = try await h.ok("show-cluster-members", sid: sid)["objects"]!
        let equal = try await h.ok("equals", ["type": "simple-cluster", "params": Self.cluster], sid: sid)
        #expect(equal["equals"] == true, "Ansible's second run changes nothing")
        var changed = Self.cluster.objectValue ?? [:]
        changed["members"] = [
            [
                "name": "m2", "ip-address": "192.0.2.12", "priority": 50,
                "interfaces": [
                    ["name": "eth0", "ip-address": "10.1.0.3", "mask-length": 24],
                    ["name": "eth1", "ip-address": "10.9.0.3", "mask-length": 24],
                ],
            ]
        ]
        #expect(try await h.ok("equals", ["type": "simple-cluster", "params": .object(changed)], sid: sid)["equals"] == false)
        try await h.ok("set-simple-cluster", .object(changed), sid: sid)
        let after = try await h.ok("show-cluster-members", sid: sid)["objects"]!
        #expect(after.arrayValue?.count == 1 && after[0]?["uid"] == before[1]?["uid"], "m2 keeps its uid (and its trust); m1 is gone")
        try await h.ok("delete-simple-cluster", ["name": "cl-1"], sid: sid)
        #expect(try await h.ok("show-cluster-members", sid: sid)["total"] == 0)
    }

    @Test func clusterInputIsCheckedNamingTheField() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        func refusal(_ change: (inout [String: JSONValue]) -> Void) async -> String {
            var params = Self.cluster.objectValue ?? [:]
            change(&params)
            let reply = await h.call("add-simple-cluster", .object(params), sid: sid)
            return reply.status == 400 ? reply.body["message"]?.stringValue ?? "" : "status \(reply.status)"
        }
        #expect(await refusal { $0["cluster-mode"] = "cluster-ls-multicast" }.contains("accepted: cluster-xl-ha"))
        #expect(await refusal { $0["interfaces"] = [["name": "eth0", "interface-type": "cluster"]] }.contains("interfaces[0].ip-address"))
        #expect(
            await refusal { $0["interfaces"] = [["name": "eth0", "interface-type": "vrrp", "ip-address": "10.1.0.1"]] }.contains("interfaces[0].interface-type")
        )
        #expect(await refusal { $0["interfaces"] = [["name": "bad name", "ip-address": "10.1.0.1"]] }.contains("interfaces[0].name"))
        #expect(await refusal { $0["cluster-settings"] = ["heartbeat-interval-ms": 500, "dead-timer-ms": 1000] }.contains("cluster-settings.dead-timer-ms"))
        #expect(await refusal { $0["cluster-settings"] = ["heartbeat-interval-ms": 1] }.contains("cluster-settings.heartbeat-interval-ms"))
        #expect(await refusal { $0["cluster-settings"] = ["member-recovery": "sometimes"] }.contains("cluster-settings.member-recovery"))
        #expect(await refusal { $0["cluster-settings"] = ["surprise": 1] }.contains("cluster-settings.surprise"))
        let six: [JSONValue] = (1...6).map { ["name": .string("n\($0)"), "ip-address": .string("192.0.2.\(20 + $0)")] }
        #expect(
            await refusal {
                $0["interfaces"] = []
                $0["members"] = .array(six)
            }.contains("at most 5"))
        #expect(await refusal { $0["members"] = [["name": "m1", "ip-address": "192.0.2.11"]] }.contains("members[0].interfaces"))
        #expect(
            await refusal {
                $0["interfaces"] = []
                $0["members"] = [
                    ["name": "m1", "ip-address": "192.0.2.11", "priority": 7],
                    ["name": "m2", "ip-address": "192.0.2.12", "priority": 7],
                ]
            }.contains("members[1].priority"))
        #expect(
            await refusal {
                $0["interfaces"] = []
                $0["members"] = [["name": "m1", "ip-address": "192.0.2.11", "surprise": true]]
            }.contains("members[0].surprise"))
        #expect(
            await refusal {
                $0["interfaces"] = []
                $0["members"] = [["name": "m1", "ip-address": "192.0.2.11", "one-time-password": "short"]]
            }
            .contains("members[0].one-time-password"))
        try await h.ok("add-simple-gateway", ["name": "gw-m1", "ip-address": "192.0.2.30"], sid: sid)
        #expect(
            await refusal {
                $0["interfaces"] = []
                $0["members"] = [["name": "gw-m1", "ip-address": "192.0.2.11"]]
            }.contains("gw-m1"),
            "a member is an object of its own: its name is unique")
    }

    @Test func installOnAClusterGoesToEveryMemberWithItsClusterSection() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await addCluster(h, sid: sid)
        // No gateway channels in this harness: every member fails, named in the task.
        let failed = try await h.ok("install-policy", ["policy-package": "Standard", "targets": ["cl-1"]], sid: sid)
        let task = try await waitForTask(h, failed["task-id"]!, sid: sid)
        #expect(task["status"] == "failed" && task["task-details"]?.arrayValue?.compactMap { $0["gatewayName"]?.stringValue } == ["m1", "m2"])

        let fleet = ScriptedFleet()
        await h.service.attachGateways(fleet)
        let started = try await h.ok("install-policy", ["policy-package": "Standard", "targets": ["cl-1"]], sid: sid)
        #expect(try await waitForTask(h, started["task-id"]!, sid: sid)["status"] == "succeeded")
        let pushes = fleet.pushes.withLock { $0 }
        let members = try await h.ok("show-cluster-members", sid: sid)["objects"]!
        let second = try #require(pushes.first { $0.gatewayName == "m2" })
        let policy = try JSONDecoder().decode(CompiledPolicy.self, from: Data(second.policy.bytes(targetName: "m2", targetUID: second.gatewayUID)))
        let section = try #require(policy.cluster, "a member's policy carries its cluster")
        #expect(section.clusterName == "cl-1" && section.localMemberName == "m2" && section.localMemberID == 2 && section.localPriority == 50)
        #expect(section.localMemberUID == members[1]?["uid"]?.stringValue && second.gatewayUID == section.localMemberUID)
        #expect(section.members.map(\.name) == ["m1", "m2"] && section.members[0].priority == 100)
        #expect(section.members[1].interfaces.first == CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.3", maskLength: 24))
        #expect(section.interfaces.filter(\.carriesVirtualAddress).map(\.address) == ["10.1.0.1"])
        #expect(section.heartbeatIntervalMilliseconds == 100 && section.deadTimerMilliseconds == 1000 && section.memberRecovery == "primary-up")
    }

    @Test func aFailingMemberRollsTheOthersBackUnlessTheFlagIsOff() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await addCluster(h, sid: sid)
        let fleet = ScriptedFleet { $0 == "m2" ? .failed : .installed }
        await h.service.attachGateways(fleet)
        let started = try await h.ok("install-policy", ["policy-package": "Standard", "targets": ["cl-1"]], sid: sid)
        let task = try await waitForTask(h, started["task-id"]!, sid: sid)
        #expect(task["status"] == "failed", "\(task)")
        #expect(task["comments"]?.stringValue?.contains("member m2 failed") == true, "the task names the member: \(task)")
        #expect(fleet.rollbacks.withLock { $0.map(\.gatewayName) } == ["m1"])
        let first = try #require(task["task-details"]?[0])
        #expect(first["statusCode"] == "failed" && first["rampart-outcome"] == "rolled-back", "\(first)")
        #expect(first["statusDescription"]?.stringValue?.contains("member m2 of cluster cl-1 failed") == true)

        let partial = try await h.ok(
            "install-policy",
            [
                "policy-package": "Standard", "targets": ["cl-1"],
                "install-on-all-cluster-members-or-fail": false,
            ], sid: sid)
        let second = try await waitForTask(h, partial["task-id"]!, sid: sid)
        #expect(second["status"] == "partially succeeded" && fleet.rollbacks.withLock { $0.count } == 1, "\(second)")
    }

    @Test func membersShowTheirLiveClusterState() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await addCluster(h, sid: sid)
        let members = try await h.ok("show-cluster-members", sid: sid)["objects"]!
        let uid1 = try #require(members[0]?["uid"]?.stringValue)
        let uid2 = try #require(members[1]?["uid"]?.stringValue)
        func report(_ state: String, reason: String) -> GatewayLiveStatus {
            GatewayLiveStatus(
                connected: true, lastContactMilliseconds: 1,
                report: GatewayReport(
                    name: "m", enforcement: "nftables",
                    cluster: ClusterMemberReport(
                        state: state, pnotes: [.init(name: "Interface Active Check", state: state == "DOWN" ? "problem" : "ok")], failoverCount: 2,
                        lastChange: .init(eventCode: "CLUS-110305", from: "STANDBY", to: state, reason: reason, timeMilliseconds: 1_800_000_000_000))))
        }
        // The harness has no SIC channels: test the display through a fleet reporting both members.
        await h.service.attachGateways(
            ScriptedFleet(reports: [uid1: report("ACTIVE", reason: "member m2 is down"), uid2: report("DOWN", reason: "eth0 link down")]))
        let cluster = try await h.ok("show-simple-cluster", ["name": "cl-1"], sid: sid)
        #expect(cluster["cluster-status"] == ["state": "ok", "active-members": ["m1"]])
        let shown = cluster["members"]?[1]?["cluster-member-status"]
        #expect(shown?["state"] == "DOWN" && shown?["failover-count"] == 2 && shown?["pnotes"]?[0]?["state"] == "problem")
        #expect(shown?["last-change"]?["reason"] == "eth0 link down" && shown?["last-change"]?["event-code"] == "CLUS-110305")
        let listed = try await h.ok("show-gateways-and-servers", ["details-level": "full"], sid: sid)
        let inList = listed["objects"]?.arrayValue?.first { $0["name"] == "cl-1" }
        #expect(inList?["members"]?[0]?["cluster-member-status"]?["state"] == "ACTIVE")
    }

    @Test func aMemberEnrolsWithItsOwnKeyAndItsCertificateNamesTheMember() async throws {
        let h = try await Harness()
        let authority = try InternalCA.create(name: "test-ica", now: Date(timeIntervalSince1970: Double(h.clock.now) / 1000 - 60))
        await h.service.configureSIC(authority: authority)
        let sid = try await h.login()
        try await addCluster(h, sid: sid)
        let uid = try #require(try await h.ok("show-cluster-members", sid: sid)["objects"]?[0]?["uid"]?.stringValue)
        let now = Date(timeIntervalSince1970: Double(h.clock.now) / 1000)
        let client = try EnrolmentClient(nodeName: "m1", activationKey: "member-key-1", iterations: 1_000)
        let request = try client.makeRequest(nodeNonce: Array(repeating: 1, count: TrustLimits.enrolmentNonceByteCount), now: now)
        let answer = await h.service.enrol(request, address: "192.0.2.11", serverNonce: Array(repeating: 2, count: TrustLimits.enrolmentNonceByteCount))
        let credentials = try client.accept(answer: answer.encoded(), to: request, now: now)
        #expect(credentials.identity.uid == uid && credentials.identity.name == "m1")
        #expect(await h.service.isEnrolledGateway(uid: uid), "an enrolled member gets a gateway channel")
        let member = try await h.ok("show-cluster-member", ["uid": .string(uid)], sid: sid)
        #expect(member["sic-state"] == "initialized" || member["sic-state"] == "communicating", "\(member)")
    }

    @Test func aMemberStateChangeIsAnEventWithItsReason() {
        let down = ManagementEvent.clusterMemberStateChanged(
            ClusterMemberStateChanged(
                cluster: "cl-1", member: "m1", uid: "u1", from: "ACTIVE", to: "DOWN", eventCode: "CLUS-110305", reason: "eth0 link down"))
        #expect(down.kind == "cluster-member-state-changed" && down.needsAttention)
        #expect(down.description == "cluster-member-state-changed: cluster cl-1 member m1: ACTIVE -> DOWN [CLUS-110305] (eth0 link down)")
        let standby = ManagementEvent.clusterMemberStateChanged(
            ClusterMemberStateChanged(
                cluster: "cl-1", member: "m2", uid: "u2", from: nil, to: "STANDBY", eventCode: "", reason: ""))
        #expect(!standby.needsAttention && standby.description.hasSuffix("unknown -> STANDBY"))
        // Reports from an agent are untrusted: an unknown state is dropped, texts and lists are bounded.
        let hostile: JSONValue = [
            "state": "ACTIVE", "pnotes": .array((0..<100).map { _ in ["name": "x", "state": "ok"] }),
            "last-change": ["from": "STANDBY", "to": "ACTIVE", "reason": .string(String(repeating: "r", count: 5_000))],
        ]
        let report = try? #require(ClusterMemberReport(json: hostile))
        #expect(report?.pnotes.count == Limits.clusterReportPnotesMax && report?.lastChange?.reason.count == Limits.clusterReportReasonLengthMax)
        #expect(ClusterMemberReport(json: ["state": "LOST"]) == nil)
        let gateway = GatewayReport(name: "m1", enforcement: "nftables", cluster: report)
        #expect(GatewayReport(json: gateway.json) == gateway)
    }

    func waitForTask(_ h: Harness, _ id: JSONValue, sid: String) async throws -> JSONValue {
        for _ in 0..<500 {
            let task = try await h.ok("show-task", ["task-id": id, "details-level": "full"], sid: sid)["tasks"]![0]!
            if task["status"] != "in progress" { return task }
            try await Task.sleep(for: .milliseconds(20))
        }
        struct TaskDidNotEnd: Error {}
        throw TaskDidNotEnd()
    }
}
