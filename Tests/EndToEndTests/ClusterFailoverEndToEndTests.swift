import Foundation
import ManagementModel
import Testing

/// A two-member gateway cluster in network namespaces: each member's agent runs in its own namespace
/// (`ip netns exec`), with eth0 on a "cluster" bridge and eth1 on a "sync" bridge (both in a bridge
/// namespace); a client namespace sits on the cluster network and reaches the virtual address.
final class ClusterLab: @unchecked Sendable {
    static let virtualAddress = "10.1.0.1"
    /// Fifteen heartbeats of 100 ms. The suites beside these load a two-core machine so that a member's
    /// heartbeats arrived up to 660 ms apart (CI run s33-3): with 600 ms the standbys failed over a live
    /// active, which is the member doing its job on a starved machine, not what these tests examine.
    static let deadTimerMilliseconds: Int64 = 1_500
    let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    let scratch: TemporaryDirectory
    let bridge: NetworkNamespace
    let client: NetworkNamespace
    /// Routed labs: a server namespace behind the members (10.2.0.0/24, virtual address 10.2.0.1 on
    /// each member's eth2); the members forward between client and server with a stateful ruleset.
    var server: NetworkNamespace?
    var members: [NetworkNamespace] = []
    var listeners: [Process] = []
    var agents: [Int: AgentInNamespace] = [:]
    /// The devices plugged into each namespace, by namespace name (a member's links, for a power-off).
    var devices: [String: [String]] = [:]
    let port = 18_116
    let memberIDs: ClosedRange<Int>

    static let serverVirtualAddress = "10.2.0.1"
    static let serverAddress = "10.2.0.100"

    /// The members' dead timer in this lab.
    let deadTimerMilliseconds: Int64

    init(
        recovery: String = "active-up", routed: Bool = false, memberCount: Int = 2,
        deadTimerMilliseconds: Int64 = ClusterLab.deadTimerMilliseconds
    ) async throws {
        self.deadTimerMilliseconds = deadTimerMilliseconds
        memberIDs = 1...memberCount
        scratch = try TemporaryDirectory()
        bridge = try await NetworkNamespace("rcl\(tag)b")
        client = try await NetworkNamespace("rcl\(tag)c")
        for bridgeName in ["brc", "brs"] + (routed ? ["brv"] : []) {
            try await bridge.run(["ip", "link", "add", bridgeName, "type", "bridge"])
            try await bridge.run(["ip", "link", "set", bridgeName, "up"])
        }
        for id in memberIDs {
            let member = try await NetworkNamespace("rcl\(tag)m\(id)")
            members.append(member)
            try await plug(member, device: "eth0", into: "brc", address: "10.1.0.\(id + 1)/24")
            try await plug(member, device: "eth1", into: "brs", address: "10.9.0.\(id + 1)/24")
            try await member.run(["ip", "link", "set", "lo", "up"])
            listeners.append(try member.start(["python3", "-c", NetworkNamespace.listenerScript, "8080"]))
            if routed { try await makeStatefulRouter(member, id: id) }
            let policy = try Self.policy(
                local: id, recovery: recovery, routed: routed, memberCount: memberCount, deadTimerMilliseconds: deadTimerMilliseconds)
            FileManager.default.createFile(atPath: scratch.path("policy-m\(id).json"), contents: Data(policy))
        }
        try await plug(client, device: "eth0", into: "brc", address: "10.1.0.100/24")
        try await client.run(["ip", "link", "set", "lo", "up"])
        if routed {
            let server = try await NetworkNamespace("rcl\(tag)s")
            self.server = server
            try await plug(server, device: "eth0", into: "brv", address: "\(Self.serverAddress)/24")
            try await server.run(["ip", "link", "set", "lo", "up"])
            try await server.run(["ip", "route", "add", "default", "via", Self.serverVirtualAddress])
            try await client.run(["ip", "route", "add", "default", "via", Self.virtualAddress])
        }
    }

    /// A member that forwards only what its connection table knows: new TCP connections to 8080 start
    /// with a SYN; any other packet needs an established entry, so a mid-connection packet reaching a
    /// member without the entry is dropped (strict tracking: no pick-up of a connection mid-stream).
    func makeStatefulRouter(_ member: NetworkNamespace, id: Int) async throws {
        try await plug(member, device: "eth2", into: "brv", address: "10.2.0.\(id + 1)/24")
        let ruleset = scratch.path("router-m\(id).nft")
        let rules = """
            table inet rampart_lab {
              chain forward {
                type filter hook forward priority 0; policy drop;
                ct state established,related accept
                ct state invalid drop
                tcp dport 8080 tcp flags & (fin|syn|rst|ack) == syn ct state new accept
              }
            }

            """
        FileManager.default.createFile(atPath: ruleset, contents: Data(rules.utf8))
        try await member.run(["nft", "-f", ruleset])
        try await member.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        try await member.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"])
    }

    /// A veth pair: `device` in `namespace`, its peer on `bridgeName` in the bridge namespace.
    func plug(_ namespace: NetworkNamespace, device: String, into bridgeName: String, address: String) async throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let (inner, outer) = ("ci" + suffix, "co" + suffix)
        try await NetworkNamespace.command(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer])
        try await NetworkNamespace.command(["ip", "link", "set", inner, "netns", namespace.name])
        try await NetworkNamespace.command(["ip", "link", "set", outer, "netns", bridge.name])
        devices[namespace.name, default: []].append(device)
        try await namespace.run(["ip", "link", "set", inner, "name", device])
        try await namespace.run(["ip", "addr", "add", address, "dev", device])
        try await namespace.run(["ip", "link", "set", device, "up"])
        try await bridge.run(["ip", "link", "set", outer, "master", bridgeName])
        try await bridge.run(["ip", "link", "set", outer, "up"])
    }

    static func policy(local: Int, recovery: String, routed: Bool, memberCount: Int, deadTimerMilliseconds: Int64) throws -> [UInt8] {
        let members = (1...memberCount).map { id in
            CompiledClusterMember(
                memberID: id, name: "m\(id)", uid: "uid-m\(id)", priority: Int64(101 - id), address: "10.1.0.\(id + 1)",
                interfaces: [
                    CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "eth1", type: "sync", address: "10.9.0.\(id + 1)", maskLength: 24),
                ] + (routed ? [CompiledClusterInterface(name: "eth2", type: "cluster", address: "10.2.0.\(id + 1)", maskLength: 24)] : []))
        }
        let cluster = CompiledCluster(
            clusterName: "cl-lab", clusterUID: "uid-cl-lab", mode: "cluster-xl-ha", memberRecovery: recovery, heartbeatIntervalMilliseconds: 100,
            deadTimerMilliseconds: deadTimerMilliseconds, localMemberID: local, localMemberName: "m\(local)", localMemberUID: "uid-m\(local)",
            localPriority: Int64(101 - local), members: members,
            interfaces: [
                CompiledClusterInterface(name: "eth0", type: "cluster", address: virtualAddress, maskLength: 24),
                CompiledClusterInterface(name: "eth1", type: "sync", address: nil, maskLength: nil),
            ] + (routed ? [CompiledClusterInterface(name: "eth2", type: "cluster", address: serverVirtualAddress, maskLength: 24)] : []))
        let cleanup = CompiledRule(
            number: 1, uid: CompiledRule.implicitCleanupUID, name: "Implicit cleanup rule", layer: "Network", action: .accept,
            source: AddressMatch(any: true), destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false)
        let policy = CompiledPolicy(
            packageName: "Standard", packageUID: "p", targetName: "m\(local)", targetUID: "uid-m\(local)", revision: 1, revisionHash: "h",
            epochTerm: 1, epochServer: "primary", compiledAtMilliseconds: 1, rules: [cleanup], cluster: cluster)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(policy))
    }

    func dataDirectory(_ id: Int) -> String { scratch.path("m\(id)") }

    /// Starts the member's agent, its links up first (after a power-off).
    func start(_ id: Int) async throws {
        for device in devices[members[id - 1].name] ?? [] { try await members[id - 1].run(["ip", "link", "set", device, "up"]) }
        agents[id] = try AgentInNamespace.start(
            namespace: members[id - 1], logPath: scratch.path("m\(id).log"),
            arguments: [
                "gateway", "--data", dataDirectory(id), "--policy-file", scratch.path("policy-m\(id).json"), "--enforce", "none", "--cluster-port",
                String(port),
            ])
    }

    /// A member that loses power: its agent killed (-9) and its links down. A killed agent alone
    /// leaves the virtual address and its conntrackd behind, and the member would go on forwarding.
    func powerOff(_ id: Int) async {
        agents[id]?.kill()
        for device in devices[members[id - 1].name] ?? [] { _ = try? await members[id - 1].run(["ip", "link", "set", device, "down"]) }
    }

    func state(_ id: Int) async -> [String: Any]? {
        guard agents[id]?.record.exit == nil,
            let result = try? await CLI.run(["cluster", "state", "--data", dataDirectory(id), "--json"], scratch: scratch),
            result.status == 0
        else { return nil }
        return (try? result.json())?.object("status")
    }

    func memberState(_ id: Int) async -> String? { await state(id)?.string("state") }

    func holdsVirtualAddress(_ id: Int) async -> Bool {
        ((try? await members[id - 1].run(["ip", "-4", "addr", "show", "dev", "eth0"])) ?? "").contains(Self.virtualAddress + "/")
    }

    /// The members in ACTIVE holding the address, by id.
    func activeHolders() async -> [Int] {
        var holders: [Int] = []
        for id in memberIDs where await memberState(id) == "ACTIVE" {
            if await holdsVirtualAddress(id) { holders.append(id) }
        }
        return holders
    }

    func clientReachesVirtualAddress() async -> Bool { await client.connect(to: Self.virtualAddress, port: 8080) == "connected" }

    var logs: String { memberIDs.map { "m\($0):\n" + (agents[$0]?.logTail ?? "") }.joined(separator: "\n") }

    func conntrackdConfiguration(_ id: Int) -> String { dataDirectory(id) + "/conntrackd.conf" }

    func tearDown() {
        for agent in agents.values { agent.kill() }
        // kill -9 leaves each member's conntrackd behind (as a crashed agent would): stop them here.
        for (index, member) in members.enumerated() where FileManager.default.fileExists(atPath: conntrackdConfiguration(index + 1)) {
            member.runBlocking(["conntrackd", "-C", conntrackdConfiguration(index + 1), "-k"])
        }
        for listener in listeners {
            kill(listener.processIdentifier, SIGKILL)
            listener.waitUntilExit()
        }
        for namespace in members + [client, bridge] + (server.map { [$0] } ?? []) { namespace.remove() }
    }
}

/// A `rampart gateway` in a network namespace (`ip netns exec` execs it: the pid is the agent's).
final class AgentInNamespace: Sendable {
    let process: Process
    let record = ExitRecord()
    let logPath: String

    init(process: Process, logPath: String) {
        self.process = process
        self.logPath = logPath
    }

    static func start(namespace: NetworkNamespace, logPath: String, arguments: [String]) throws -> AgentInNamespace {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace.name, try Executable.rampart().path] + arguments
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        try log.seekToEnd()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let agent = AgentInNamespace(process: process, logPath: logPath)
        let record = agent.record
        process.terminationHandler = { record.record($0) }
        try process.run()
        try? log.close()
        return agent
    }

    var logTail: String { String(((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").suffix(3000)) }

    func kill() {
        if record.exit == nil, process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    func waitForExit() async throws { _ = try await record.wait(seconds: Bounds.serverStopSeconds) }

    deinit { kill() }
}

extension NamespaceLabs {
    @Suite("Gateway cluster: two member agents in namespaces fail over the virtual address", .serialized)
    struct ClusterFailoverEndToEndTests {
        static let boundSeconds = 60.0

        @Test(
            "one member holds the virtual address; kill -9 moves it to the other within the bound and the client reaches it; the old member comes back STANDBY (Active Up); link down and admin down fail over too",
            .timeLimit(.minutes(6)),
            .enabled(if: NetworkNamespace.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/arping"), "needs root, ip, arping"))
        func failsOverOnKillLinkDownAndAdminDown() async throws {
            // The 600 ms this test was written for. With the loaded labs' 1,500 ms (stretched to 6 s under
            // load) a kill once ended in a takeover that named no dead member (CLUS-110200, CI run s34-4):
            // a member that yielded in a split brain did not note the winner as the active one (fixed in
            // ClusterCore; ClusterScenarioTests "a standby that yields after a takeover under a dead timer
            // stretched meanwhile").
            let lab = try await ClusterLab(deadTimerMilliseconds: 600)
            defer { lab.tearDown() }
            try await lab.start(1)
            try await lab.start(2)
            try #require(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders().count == 1 }, "\(lab.logs)")
            let first = try #require(await lab.activeHolders().first, "\(lab.logs)")
            let other = 3 - first
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(other) == "STANDBY" }, "\(lab.logs)")
            #expect(!(await lab.holdsVirtualAddress(other)), "the standby holds nothing")
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.clientReachesVirtualAddress() }, "\(lab.logs)")

            // kill -9 of the active: the standby takes the address; the client reaches it again.
            let killedAt = ContinuousClock.now
            await lab.powerOff(first)
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.holdsVirtualAddress(other) }, "\(lab.logs)")
            let tookOver = ContinuousClock.now - killedAt
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.clientReachesVirtualAddress() }, "\(lab.logs)")
            let reached = ContinuousClock.now - killedAt
            print("cluster failover on kill -9: virtual address held after \(tookOver), client connected after \(reached)")
            let afterKill = await lab.state(other)
            #expect(afterKill?.object("last-change")?.string("event-code") == "CLUS-110300", "active member dead: \(afterKill ?? [:])")

            // The killed member comes back: it stays STANDBY (Active Up) and the other keeps the address.
            try await lab.agents[first]?.waitForExit()
            try await lab.start(first)
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(first) == "STANDBY" }, "\(lab.logs)")
            try await Task.sleep(for: .milliseconds(2 * lab.deadTimerMilliseconds))
            #expect(await lab.activeHolders() == [other], "Active Up: the recovered member does not take the address back")
            #expect(!(await lab.holdsVirtualAddress(first)))

            // Link down of the active's monitored interface: the other member takes over.
            try await lab.members[other - 1].run(["ip", "link", "set", "eth0", "down"])
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders() == [first] }, "\(lab.logs)")
            #expect(await lab.memberState(other) == "DOWN")
            try await lab.members[other - 1].run(["ip", "link", "set", "eth0", "up"])
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(other) == "STANDBY" }, "\(lab.logs)")
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.clientReachesVirtualAddress() }, "\(lab.logs)")

            // Admin down on the active: graceful failover through the admin_down pnote; admin up: standby.
            let down = try await CLI.run(["cluster", "admin", "down", "--data", lab.dataDirectory(first)], scratch: lab.scratch)
            #expect(down.status == 0, "\(down)")
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders() == [other] }, "\(lab.logs)")
            let pnotes = try await CLI.run(["cluster", "list", "--data", lab.dataDirectory(first)], scratch: lab.scratch)
            #expect(pnotes.stdout.contains("admin_down"), "\(pnotes)")
            let text = try await CLI.run(["cluster", "state", "--data", lab.dataDirectory(first)], scratch: lab.scratch)
            #expect(text.stdout.contains("Cluster Mode:   High Availability (Active Up)") && text.stdout.contains("Active PNOTEs: admin_down"), "\(text)")
            let up = try await CLI.run(["cluster", "admin", "up", "--data", lab.dataDirectory(first)], scratch: lab.scratch)
            #expect(up.status == 0)
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(first) == "STANDBY" }, "\(lab.logs)")
            // Admin down of the only healthy member is refused.
            try await lab.members[first - 1].run(["ip", "link", "set", "eth0", "down"])
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(first) == "DOWN" }, "\(lab.logs)")
            let refused = try await CLI.run(["cluster", "admin", "down", "--data", lab.dataDirectory(other)], scratch: lab.scratch)
            #expect(refused.status != 0 && refused.stderr.contains("admin-down-leaves-no-healthy-member"), "\(refused)")
        }

        @Test(
            "Primary Up: the highest priority member takes the virtual address back once it is back and healthy",
            .timeLimit(.minutes(6)),
            .enabled(if: NetworkNamespace.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/arping"), "needs root, ip, arping"))
        func primaryUpTakesTheAddressBack() async throws {
            let lab = try await ClusterLab(recovery: "primary-up")
            defer { lab.tearDown() }
            try await lab.start(1)
            try await lab.start(2)
            try #require(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders() == [1] }, "member 1 has the higher priority: \(lab.logs)")
            await lab.powerOff(1)
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders() == [2] }, "\(lab.logs)")
            try await lab.agents[1]?.waitForExit()
            try await lab.start(1)
            // After its start hysteresis and the preempt hold, member 1 claims ACTIVE back and member 2 releases it.
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders() == [1] }, "\(lab.logs)")
            #expect(
                try await pollUntil(seconds: Self.boundSeconds) {
                    let holds = await lab.holdsVirtualAddress(2)
                    return await lab.memberState(2) == "STANDBY" && !holds
                }, "\(lab.logs)")
            let state = await lab.state(1)
            #expect(state?.object("last-change")?.string("event-code") == "CLUS-110600", "preemption completed: \(state ?? [:])")
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.clientReachesVirtualAddress() }, "\(lab.logs)")
        }
    }
}
