import Foundation
import Testing

/// A cluster lab whose members are managed: the members' namespaces get a third device, mgmt0, on a
/// management bridge that a veth pair joins to the root namespace, where `rampart server` runs (on
/// 0.0.0.0, so the members reach its SIC port at the root end's address).
final class ManagedClusterLab: @unchecked Sendable {
    let lab: ClusterLab
    let fixture: EndToEndTests.Fixture
    let subnet = "172.31.\(Int.random(in: 100...250))"
    let rootDevice = "rm" + String(UInt32.random(in: 0...UInt32.max), radix: 36)
    var server: ServerProcess?

    init() async throws {
        lab = try await ClusterLab()
        fixture = try EndToEndTests.Fixture()
        let bridgeEnd = "rb" + rootDevice.dropFirst(2)
        try await lab.bridge.run(["ip", "link", "add", "brm", "type", "bridge"])
        try await lab.bridge.run(["ip", "link", "set", "brm", "up"])
        try await NetworkNamespace.command(["ip", "link", "add", rootDevice, "type", "veth", "peer", "name", bridgeEnd])
        try await NetworkNamespace.command(["ip", "link", "set", bridgeEnd, "netns", lab.bridge.name])
        try await lab.bridge.run(["ip", "link", "set", bridgeEnd, "master", "brm"])
        try await lab.bridge.run(["ip", "link", "set", bridgeEnd, "up"])
        try await NetworkNamespace.command(["ip", "addr", "add", "\(subnet).1/24", "dev", rootDevice])
        try await NetworkNamespace.command(["ip", "link", "set", rootDevice, "up"])
        for id in 1...2 { try await lab.plug(lab.members[id - 1], device: "mgmt0", into: "brm", address: "\(subnet).\(id + 1)/24") }
    }

    var asRoot: [String] { fixture.asRoot }

    func startServer() async throws {
        server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server", extraArguments: ["--listen", "0.0.0.0"])
    }

    /// The simple-cluster `name` with members cm1 and cm2 (one-time keys) on the lab's interfaces.
    func addCluster(_ name: String) async throws {
        var arguments = [
            "add-simple-cluster", "name=\(name)", "ip-address=192.0.2.10", "cluster-mode=cluster-xl-ha",
            "interfaces.1.name=eth0", "interfaces.1.interface-type=cluster", "interfaces.1.ip-address=\(ClusterLab.virtualAddress)",
            "interfaces.1.mask-length=24", "interfaces.2.name=eth1", "interfaces.2.interface-type=sync", "interfaces.2.ip-address=10.9.0.0",
            "interfaces.2.mask-length=24", "cluster-settings.heartbeat-interval-ms=100", "cluster-settings.dead-timer-ms=600",
        ]
        for id in 1...2 {
            let key = "member-cm\(id)-key-2026"
            let keyFile = fixture.scratch.path("cm\(id).key")
            FileManager.default.createFile(atPath: keyFile, contents: Data("\(key)\n".utf8), attributes: [.posixPermissions: 0o600])
            arguments += [
                "members.\(id).name=cm\(id)", "members.\(id).ip-address=\(subnet).\(id + 1)", "members.\(id).one-time-password-file=\(keyFile)",
                "members.\(id).interfaces.1.name=eth0", "members.\(id).interfaces.1.ip-address=10.1.0.\(id + 1)",
                "members.\(id).interfaces.1.mask-length=24", "members.\(id).interfaces.2.name=eth1",
                "members.\(id).interfaces.2.ip-address=10.9.0.\(id + 1)", "members.\(id).interfaces.2.mask-length=24",
            ]
        }
        try await fixture.mgmtJSON(arguments + asRoot)
    }

    /// Member `id`'s agent in its namespace; the first start enrols with its one-time key.
    func startMember(_ id: Int, enforcement: String) throws {
        let sicPort = try #require(server?.sicPort)
        // The lab's data directory and agent slot: its state, holder and kill helpers work on it.
        lab.agents[id] = try AgentInNamespace.start(
            namespace: lab.members[id - 1], logPath: fixture.scratch.path("cm\(id).log"),
            arguments: [
                "gateway", "--data", lab.dataDirectory(id), "--name", "cm\(id)", "--management", "\(subnet).1:\(sicPort)",
                "--activation-key-file", fixture.scratch.path("cm\(id).key"), "--enforce", enforcement, "--log-level", "debug",
            ])
    }

    func showCluster(_ name: String) async throws -> [String: Any] {
        let result = try await fixture.rampart(["mgmt", "show-simple-cluster", "name=\(name)", "--format", "json"] + asRoot)
        return (try? result.json()) ?? [:]
    }

    /// Each member's `cluster-member-status.state` as show-simple-cluster says, by member name.
    func memberStates(_ name: String) async throws -> [String: String] {
        var states: [String: String] = [:]
        for member in try await showCluster(name).objects("members") {
            if let memberName = member.string("name") { states[memberName] = member.object("cluster-member-status")?.string("state") }
        }
        return states
    }

    func clusterStatus(_ name: String) async throws -> String? { try await showCluster(name).object("cluster-status")?.string("state") }

    var logs: String {
        (1...2).map { "cm\($0):\n" + (lab.agents[$0]?.logTail ?? "") }.joined(separator: "\n") + "\nserver:\n" + (server?.logTail ?? "")
    }

    func tearDown() {
        server?.kill()
        NetworkNamespace.commandBlocking(["ip", "link", "del", rootDevice])
        lab.tearDown()
    }
}

extension NamespaceLabs {
    @Suite("Gateway cluster managed by a real management server", .serialized)
    struct ClusterManagementEndToEndTests {
        static let boundSeconds = 60.0

        /// With `--enforce nftables` the members run the Standard policy (its cleanup rule drops): the
        /// implied cluster rules keep the heartbeats flowing, or both members would go ACTIVE.
        @Test(
            "add-simple-cluster, two members enrol from their namespaces, install-policy on the cluster: one ACTIVE, show-simple-cluster shows both live; kill -9 of the active: the server shows the other ACTIVE and logs the change with its reason",
            .timeLimit(.minutes(6)),
            .enabled(if: NetworkNamespace.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/arping"), "needs root, ip, nft, arping"),
            arguments: ["none", "nftables"])
        func installOnClusterAndFailOverSeenByTheServer(enforcement: String) async throws {
            let managed = try await ManagedClusterLab()
            defer { managed.tearDown() }
            try await managed.startServer()
            try await managed.addCluster("cl-e2e")
            try managed.startMember(1, enforcement: enforcement)
            try managed.startMember(2, enforcement: enforcement)
            // Both members enrolled and connected: their status is known (no report yet) instead of not-responding.
            try #require(
                try await pollUntil(seconds: Self.boundSeconds) {
                    try await managed.memberStates("cl-e2e").values.filter { $0 != "not-responding" }.count == 2
                }, "\(managed.logs)")

            let install = try await managed.fixture.rampart(
                ["mgmt", "install-policy", "policy-package=Standard", "targets.1=cl-e2e", "--format", "json"] + managed.asRoot)
            #expect(install.status == 0, "\(install)\n\(managed.logs)")

            // Both members run the runtime from their cluster section; exactly one holds the virtual address.
            try #require(try await pollUntil(seconds: Self.boundSeconds) { await managed.lab.activeHolders().count == 1 }, "\(managed.logs)")
            // The other may still wait for the connection table (the full-sync pnote keeps it DOWN a while).
            for id in 1...2 {
                let settled = try await pollUntil(seconds: Self.boundSeconds) { ["ACTIVE", "STANDBY"].contains(await managed.lab.memberState(id) ?? "") }
                let state = await managed.lab.state(id)
                #expect(settled, "cm\(id): \(state ?? [:])")
            }
            let first = try #require(await managed.lab.activeHolders().first)
            let other = 3 - first
            #expect(
                try await pollUntil(seconds: Self.boundSeconds) {
                    try await managed.memberStates("cl-e2e") == ["cm\(first)": "ACTIVE", "cm\(other)": "STANDBY"]
                }, "\(managed.logs)")
            #expect(try await managed.clusterStatus("cl-e2e") == "ok")
            // The members sign their heartbeats with the key the server made for the cluster.
            for id in 1...2 {
                let log = (try? String(contentsOfFile: managed.fixture.scratch.path("cm\(id).log"), encoding: .utf8)) ?? ""
                #expect(!log.contains("no heartbeat key"), "cm\(id)")
            }
            if enforcement == "nftables" {
                let ruleset = (try? String(contentsOfFile: managed.lab.dataDirectory(first) + "/nftables.rules", encoding: .utf8)) ?? ""
                #expect(ruleset.contains("implied: cluster heartbeats") && ruleset.contains("counter drop comment \"rampart "), "\(ruleset)")
            }

            // kill -9 of the active: the server shows the other ACTIVE and logs the change with its reason.
            await managed.lab.powerOff(first)
            #expect(
                try await pollUntil(seconds: Self.boundSeconds) { try await managed.memberStates("cl-e2e")["cm\(other)"] == "ACTIVE" },
                "\(managed.logs)")
            #expect(try await managed.clusterStatus("cl-e2e") == "ok")
            let eventLine = {
                (managed.server?.log ?? "").split(separator: "\n").first {
                    $0.contains("cluster-member-state-changed") && $0.contains("member cm\(other): STANDBY -> ACTIVE [CLUS-")
                }
            }
            #expect(try await pollUntil(seconds: Self.boundSeconds) { eventLine() != nil }, "\(managed.logs)")
            let line = String(eventLine() ?? "")
            #expect(line.contains("(") && line.contains(")"), "the event says why: \(line)")
            print("cluster state change on the server: \(line)")
        }
    }
}
