import Foundation
import HARuntime
import ManagementModel
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

public enum BenchClusterLimits {
    static let virtualAddress = "10.1.0.1"
    static let servicePort = 8080
    /// Routed side: the server namespace behind the members, and its virtual address on their eth2.
    static let serverVirtualAddress = "10.2.0.1"
    static let serverAddress = "10.2.0.100"
    static let echoPort = 9090
    /// The held connection's request after a failover is answered within this, or counted lost.
    static let heldAnswerWaitSeconds = 10.0
    /// Before a failover: the standby's conntrackd external cache should hold the held connection.
    static let syncWaitSeconds = 10.0
    static let heartbeatPort = 18_116
    static let heartbeatIntervalMilliseconds: Int64 = 100
    /// `--dead-timer-ms` unless given: six heartbeats, ClusterXL's fast-failover ratio.
    public static let deadTimerMillisecondsDefault: Int64 = 600
    /// Upper bound for any one wait (a member to become STANDBY, the client to be answered).
    static let waitSeconds = 60.0
    /// After each failover is restored: several dead timers in which nothing may change.
    static let settleDeadTimers: Int64 = 3
    static let settleMillisecondsMin: Int64 = 2_000
    static let probeIntervalMilliseconds = 5
    static let stopTimeoutMilliseconds = 3_000
}

/// `rampart bench cluster-failover`: a two-member gateway cluster in network namespaces (as the
/// end-to-end lab: eth0 on a cluster bridge, eth1 on a sync bridge, a client on the cluster network),
/// failed over again and again by kill -9 and by link cut of the ACTIVE member.
public struct BenchClusterFailoverRun {
    let json: Bool
    /// Failovers in all, alternately kill -9 and link cut.
    let failovers: Int
    /// Keep the agents' logs in this directory.
    let logDir: String?
    /// The members' dead timer (their heartbeat stays 100 ms).
    let deadTimerMilliseconds: Int64

    public init(json: Bool, failovers: Int, logDir: String?, deadTimerMilliseconds: Int64 = BenchClusterLimits.deadTimerMillisecondsDefault) {
        self.json = json
        self.failovers = failovers
        self.logDir = logDir
        self.deadTimerMilliseconds = deadTimerMilliseconds
    }

    /// How long a restored round must stay unchanged: several dead timers, at least two seconds.
    var settleMilliseconds: Int64 {
        max(BenchClusterLimits.settleMillisecondsMin, BenchClusterLimits.settleDeadTimers * deadTimerMilliseconds)
    }

    public func run() async throws {
        guard getuid() == 0 else { throw ToolFailure("bench cluster-failover needs root (it builds network namespaces)") }
        for tool in ["/usr/sbin/ip", "/usr/bin/arping", "/usr/bin/python3", "/usr/sbin/nft", "/usr/sbin/conntrackd"]
        where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ToolFailure("bench cluster-failover needs \(tool)")
        }
        BenchMachine.start()
        let lab = try BenchClusterLab(logDirectory: logDir, deadTimerMilliseconds: deadTimerMilliseconds)
        let signals = lab.cleanup.onSignals()
        defer { _ = signals }
        let result: Result<[BenchFigure], any Error>
        do {
            result = .success(try await measure(lab))
        } catch {
            result = .failure(error)
        }
        await lab.cleanup.run()
        for figure in try result.get() { figure.write(json: json) }
    }

    func measure(_ lab: BenchClusterLab) async throws -> [BenchFigure] {
        try lab.build()
        try lab.startAgent(1)
        try lab.startAgent(2)
        var active = try await lab.waitForOneActive()
        try await lab.startHeldConnection()
        var survivedMilliseconds: [Double] = []
        var survived = 0
        var survivedByKill = 0
        var syncedBefore = 0
        var kills: [Double] = []
        var cuts: [Double] = []
        var flaps = 0
        var counted = 0
        for round in 0..<failovers {
            let (old, new) = (active, 3 - active)
            let countBefore = try await lab.failoverCount(new)
            if await lab.waitForSyncedEntry(new) { syncedBefore += 1 }
            let byKill = round % 2 == 0
            let prober = try lab.startProber(expecting: new)
            // The prober is answered by the old active until the kill: give it its first answers.
            try await Task.sleep(for: .milliseconds(200))
            let cutAt = HARuntime.monotonicNanoseconds()
            if byKill { try await lab.powerOff(old) } else { try lab.members[old - 1].run(["ip", "link", "set", "eth0", "down"]) }
            let answeredAt = try lab.waitForAnswer(prober)
            let milliseconds = Double(Int64(answeredAt) - Int64(cutAt)) / 1_000_000
            if byKill { kills.append(milliseconds) } else { cuts.append(milliseconds) }
            if let answeredAt = try await lab.heldConnectionAnswers(round: round) {
                survived += 1
                if byKill { survivedByKill += 1 }
                survivedMilliseconds.append(Double(Int64(answeredAt) - Int64(cutAt)) / 1_000_000)
            }
            // Restore: the killed member restarted, or the link up; it must come back STANDBY.
            if byKill { try lab.startAgent(old) } else { try lab.members[old - 1].run(["ip", "link", "set", "eth0", "up"]) }
            try await lab.waitForState(old, "STANDBY")
            try await Task.sleep(for: .milliseconds(settleMilliseconds))
            guard try await lab.oneActive() == new else {
                throw ToolFailure("round \(round): member \(new) is not the one ACTIVE after the settle time\n\(lab.logs)")
            }
            let increments = try await lab.failoverCount(new) - countBefore
            counted += increments
            flaps += max(0, increments - 1)
            active = new
        }
        let note =
            "Two rampart gateway agents (heartbeat \(BenchClusterLimits.heartbeatIntervalMilliseconds) ms, dead timer "
            + "\(deadTimerMilliseconds) ms, Active Up) in network namespaces: from the kill -9 with links down (a power-off) / ip link set eth0 down of "
            + "the ACTIVE member (CLOCK_MONOTONIC) to the first TCP connect from the client namespace to the virtual address answered by "
            + "the new active (a fresh connect every \(BenchClusterLimits.probeIntervalMilliseconds) ms; the listener answers with its "
            + "member id). The members route between the client and a server namespace (strict conntrack rules, conntrackd FTFW sync)."
        // One reading of the machine for the whole run: the three figures come from the same rounds.
        let machine = BenchMachine.sinceLastFigure()
        return [
            BenchFigure(metric: "cluster_failover_kill", samplesMilliseconds: kills, note: note, machine: machine),
            BenchFigure(metric: "cluster_failover_link", samplesMilliseconds: cuts, note: note, machine: machine),
            BenchFigure(
                metric: "cluster_flaps",
                extra: ["flaps": .int(Int64(flaps)), "failovers": .int(Int64(failovers)), "failover_count_increments": .int(Int64(counted))],
                note: "State changes beyond the one expected per failover: the new active's failover-count (rampart cluster state --json) "
                    + "read before each failover and after the old member is back STANDBY and \(settleMilliseconds) ms "
                    + "passed (failover_count_increments: their sum, expected = failovers); every round also checks exactly one ACTIVE "
                    + "holding the virtual address.", machine: machine),
            BenchFigure(
                metric: "cluster_connections_survived", samplesMilliseconds: survivedMilliseconds, rate: Double(survived) / Double(max(failovers, 1)),
                rateUnit: "fraction",
                extra: [
                    "n": .int(Int64(failovers)), "survived": .int(Int64(survived)), "survived_after_kill": .int(Int64(survivedByKill)),
                    "survived_after_link_cut": .int(Int64(survived - survivedByKill)), "entry_in_standby_cache_before": .int(Int64(syncedBefore)),
                    "rate": .double(Double(survived) / Double(max(failovers, 1))),
                ],
                note: "One long-lived TCP connection from the client to an echo server behind the members, routed through the virtual "
                    + "addresses; the members' forward chain accepts only SYNs of new connections and established packets "
                    + "(nf_conntrack_tcp_loose=0), so the connection survives a failover only if conntrackd synchronized its entry and the "
                    + "new active committed it. Before each failover the bench waits (at most \(BenchClusterLimits.syncWaitSeconds) s) for "
                    + "the standby's external cache to hold it; after the failover (the fresh connect answered by the new active) one "
                    + "request is sent on it and counted survived if echoed within \(BenchClusterLimits.heldAnswerWaitSeconds) s (TCP "
                    + "retransmits meanwhile); a lost connection is replaced by a new one before the next failover. n = failovers, rate = "
                    + "survived / n (by kind: survived_after_kill, survived_after_link_cut; entry_in_standby_cache_before: failovers "
                    + "before which the standby's cache held the connection); the samples (ms) are from the kill/cut to the echo, for the survived ones.",
                machine: machine),
        ]
    }
}

/// The namespaces, agents and files of one run; `cleanup` removes them all, once.
final class BenchClusterLab: Sendable {
    let tag = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    let root: String
    let logDirectory: String
    let children = ChildProcessSupervisor(stopGrace: .milliseconds(Int64(BenchClusterLimits.stopTimeoutMilliseconds)))
    let cleanup: BenchClusterCleanup
    let bridge: BenchNamespace
    let client: BenchNamespace
    let server: BenchNamespace
    let members: [BenchNamespace]

    let deadTimerMilliseconds: Int64

    init(logDirectory: String?, deadTimerMilliseconds: Int64) throws {
        self.deadTimerMilliseconds = deadTimerMilliseconds
        root = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-bench-cluster-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.logDirectory = logDirectory ?? root + "/logs"
        try FileManager.default.createDirectory(atPath: self.logDirectory, withIntermediateDirectories: true)
        bridge = BenchNamespace(name: "rbc\(tag)b")
        client = BenchNamespace(name: "rbc\(tag)c")
        server = BenchNamespace(name: "rbc\(tag)s")
        members = [BenchNamespace(name: "rbc\(tag)m1"), BenchNamespace(name: "rbc\(tag)m2")]
        let runDirectory = root
        let conntrackDaemons = members.enumerated().map { index, member in (member, runDirectory + "/m\(index + 1)/conntrackd.conf") }
        cleanup = BenchClusterCleanup(
            cleanup: BenchCleanup(children: children, directory: root), namespaces: [bridge, client, server] + members,
            conntrackDaemons: conntrackDaemons)
    }

    func build() throws {
        for namespace in [bridge, client] + members { try BenchNamespace.command(["ip", "netns", "add", namespace.name]) }
        for namespace in [server] { try BenchNamespace.command(["ip", "netns", "add", namespace.name]) }
        for bridgeName in ["brc", "brs", "brv"] {
            try bridge.run(["ip", "link", "add", bridgeName, "type", "bridge"])
            try bridge.run(["ip", "link", "set", bridgeName, "up"])
        }
        for (index, member) in members.enumerated() {
            let id = index + 1
            try plug(member, device: "eth0", into: "brc", address: "10.1.0.\(id + 1)/24")
            try plug(member, device: "eth1", into: "brs", address: "10.9.0.\(id + 1)/24")
            try member.run(["ip", "link", "set", "lo", "up"])
            try makeStatefulRouter(member, id: id)
            try children.start(
                name: "listener-m\(id)", program: "/usr/bin/env",
                arguments: ["ip", "netns", "exec", member.name, "python3", "-c", Self.listenerScript, String(BenchClusterLimits.servicePort), "m\(id)"],
                output: .newLog(path: logDirectory + "/listener-m\(id).log"))
            let policy = try Self.policy(local: id, deadTimerMilliseconds: deadTimerMilliseconds)
            guard FileManager.default.createFile(atPath: root + "/policy-m\(id).json", contents: Data(policy)) else {
                throw ToolFailure("cannot write the policy of member \(id)")
            }
        }
        try plug(client, device: "eth0", into: "brc", address: "10.1.0.100/24")
        try client.run(["ip", "link", "set", "lo", "up"])
        try client.run(["ip", "route", "add", "default", "via", BenchClusterLimits.virtualAddress])
        try plug(server, device: "eth0", into: "brv", address: "\(BenchClusterLimits.serverAddress)/24")
        try server.run(["ip", "link", "set", "lo", "up"])
        try server.run(["ip", "route", "add", "default", "via", BenchClusterLimits.serverVirtualAddress])
        try children.start(
            name: "echo-server", program: "/usr/bin/env",
            arguments: ["ip", "netns", "exec", server.name, "python3", "-c", Self.echoServerScript, String(BenchClusterLimits.echoPort)],
            output: .newLog(path: logDirectory + "/echo-server.log"))
    }

    /// As the end-to-end routed lab: a member forwards new TCP connections to the echo port (SYN only)
    /// and packets of connections its table knows; a mid-connection packet without an entry is dropped.
    func makeStatefulRouter(_ member: BenchNamespace, id: Int) throws {
        try plug(member, device: "eth2", into: "brv", address: "10.2.0.\(id + 1)/24")
        let ruleset = root + "/router-m\(id).nft"
        let rules = """
            table inet rampart_bench {
              chain forward {
                type filter hook forward priority 0; policy drop;
                ct state established,related accept
                ct state invalid drop
                tcp dport \(BenchClusterLimits.echoPort) tcp flags & (fin|syn|rst|ack) == syn ct state new accept
              }
            }

            """
        guard FileManager.default.createFile(atPath: ruleset, contents: Data(rules.utf8)) else { throw ToolFailure("cannot write \(ruleset)") }
        try member.run(["nft", "-f", ruleset])
        try member.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
        try member.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_tcp_loose=0"])
    }

    var heldOutput: String { root + "/held-connection.out" }

    /// The long-lived connection from the client to the echo server, through the virtual addresses.
    func startHeldConnection() async throws {
        try children.start(
            name: "held-connection", program: "/usr/bin/env",
            arguments: [
                "ip", "netns", "exec", client.name, "python3", "-c", Self.heldConnectionScript, BenchClusterLimits.serverAddress,
                String(BenchClusterLimits.echoPort), root, String(BenchClusterLimits.heldAnswerWaitSeconds),
            ], output: .newLog(path: heldOutput))
        guard try await waitForHeldLine({ $0 == "connected" }) != nil else { throw ToolFailure("the held connection was not established\n\(logs)") }
    }

    /// The first line of the held connection's output that `matches`, within the wait bound (nil: none).
    func waitForHeldLine(_ matches: (Substring) -> Bool) async throws -> Substring? {
        let deadline = ContinuousClock.now + .seconds(BenchClusterLimits.waitSeconds)
        while ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: heldOutput, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: matches) { return line }
            try await Task.sleep(for: .milliseconds(10))
        }
        return nil
    }

    /// Sends round `round`'s request on the held connection: CLOCK_MONOTONIC ns of the echo, nil when it
    /// was lost (then waits for the replacement connection).
    func heldConnectionAnswers(round: Int) async throws -> UInt64? {
        guard FileManager.default.createFile(atPath: root + "/request-\(round)", contents: nil) else { throw ToolFailure("cannot write a trigger") }
        guard let line = try await waitForHeldLine({ $0.hasPrefix("\(round) answered ") || $0.hasPrefix("\(round) lost") }) else {
            throw ToolFailure("the held connection's client did not report round \(round)\n\(logs)")
        }
        if line.hasPrefix("\(round) answered "), let answeredAt = line.split(separator: " ").last.flatMap({ UInt64($0) }) { return answeredAt }
        guard try await waitForHeldLine({ $0 == "\(round) reconnected" }) != nil else {
            throw ToolFailure("the held connection could not be replaced after round \(round)\n\(logs)")
        }
        return nil
    }

    /// Waits (bounded) until the member's conntrackd external cache holds the held connection: whether it did.
    func waitForSyncedEntry(_ id: Int) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(BenchClusterLimits.syncWaitSeconds)
        while ContinuousClock.now < deadline {
            let cache = (try? members[id - 1].run(["conntrackd", "-C", dataDirectory(id) + "/conntrackd.conf", "-e"])) ?? ""
            if cache.contains("dst=\(BenchClusterLimits.serverAddress)") { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return false
    }

    /// A veth pair: `device` in `namespace`, its peer on `bridgeName` in the bridge namespace.
    func plug(_ namespace: BenchNamespace, device: String, into bridgeName: String, address: String) throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let (inner, outer) = ("bi" + suffix, "bo" + suffix)
        try BenchNamespace.command(["ip", "link", "add", inner, "type", "veth", "peer", "name", outer])
        try BenchNamespace.command(["ip", "link", "set", inner, "netns", namespace.name])
        try BenchNamespace.command(["ip", "link", "set", outer, "netns", bridge.name])
        try namespace.run(["ip", "link", "set", inner, "name", device])
        try namespace.run(["ip", "addr", "add", address, "dev", device])
        try namespace.run(["ip", "link", "set", device, "up"])
        try bridge.run(["ip", "link", "set", outer, "master", bridgeName])
        try bridge.run(["ip", "link", "set", outer, "up"])
    }

    func dataDirectory(_ id: Int) -> String { root + "/m\(id)" }

    /// The devices of a member (its links, for a power-off).
    static let memberDevices = ["eth0", "eth1", "eth2"]

    /// Starts the member's agent, its links up first (after a power-off).
    func startAgent(_ id: Int) throws {
        for device in Self.memberDevices { try members[id - 1].run(["ip", "link", "set", device, "up"]) }
        try children.start(
            name: "agent-m\(id)", program: "/usr/bin/env",
            arguments: [
                "ip", "netns", "exec", members[id - 1].name, ChildProcessSupervisor.executable, "gateway", "--data", dataDirectory(id),
                "--policy-file", root + "/policy-m\(id).json", "--enforce", "none", "--cluster-port", String(BenchClusterLimits.heartbeatPort),
            ],
            output: .appendedLog(path: logDirectory + "/agent-m\(id).log", header: "agent m\(id)"))
    }

    /// A member that loses power: kill -9 of the agent (`ip netns exec` execs it: the pid is the
    /// agent's), until it is gone, and its links down. A killed agent alone leaves the virtual address
    /// and its conntrackd behind, and the member would go on forwarding the held connection.
    func powerOff(_ id: Int) async throws {
        guard let agent = children.child(named: "agent-m\(id)"), agent.isRunning else { throw ToolFailure("agent m\(id) is not running") }
        kill(agent.pid, SIGKILL)
        await agent.waitForExit()
        for device in Self.memberDevices { try members[id - 1].run(["ip", "link", "set", device, "down"]) }
    }

    /// The member's `rampart cluster state --json` status; nil while it does not answer.
    func state(_ id: Int) async -> [String: Any]? {
        guard let output = try? await children.output(of: "cluster-state", arguments: ["cluster", "state", "--data", dataDirectory(id), "--json"]),
            let object = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        else { return nil }
        return object["status"] as? [String: Any]
    }

    func failoverCount(_ id: Int) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(BenchClusterLimits.waitSeconds)
        while ContinuousClock.now < deadline {
            if let count = (await state(id)?["failover-count"] as? NSNumber)?.intValue { return count }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ToolFailure("member \(id) does not answer rampart cluster state\n\(logs)")
    }

    func holdsVirtualAddress(_ id: Int) -> Bool {
        ((try? members[id - 1].run(["ip", "-4", "addr", "show", "dev", "eth0"])) ?? "").contains(BenchClusterLimits.virtualAddress + "/")
    }

    /// The member that is the one ACTIVE holding the address while the other is STANDBY without it; nil otherwise.
    func oneActive() async throws -> Int? {
        let states = [await state(1)?["state"] as? String, await state(2)?["state"] as? String]
        guard let active = [1, 2].first(where: { states[$0 - 1] == "ACTIVE" }), states[2 - active] == "STANDBY",
            holdsVirtualAddress(active), !holdsVirtualAddress(3 - active)
        else { return nil }
        return active
    }

    func waitForOneActive() async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(BenchClusterLimits.waitSeconds)
        while ContinuousClock.now < deadline {
            if let active = try await oneActive() { return active }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw ToolFailure("the cluster did not settle on one ACTIVE member\n\(logs)")
    }

    func waitForState(_ id: Int, _ wanted: String) async throws {
        let deadline = ContinuousClock.now + .seconds(BenchClusterLimits.waitSeconds)
        while ContinuousClock.now < deadline {
            if await state(id)?["state"] as? String == wanted { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ToolFailure("member \(id) did not become \(wanted)\n\(logs)")
    }

    /// A client-side prober: fresh TCP connects to the virtual address until one is answered by `member`.
    /// Supervised as the agents are: a signal to the bench stops it too.
    func startProber(expecting member: Int) throws -> (process: Process, output: Pipe) {
        let pipe = Pipe()
        let prober = try children.start(
            name: "prober", program: "/usr/bin/env",
            arguments: [
                "ip", "netns", "exec", client.name, "python3", "-c", Self.proberScript, BenchClusterLimits.virtualAddress,
                String(BenchClusterLimits.servicePort), "m\(member)", String(BenchClusterLimits.waitSeconds),
                String(Double(BenchClusterLimits.probeIntervalMilliseconds) / 1000),
            ], output: .capture(pipe))
        return (prober.process, pipe)
    }

    /// CLOCK_MONOTONIC nanoseconds of the prober's first answer from the expected member.
    func waitForAnswer(_ prober: (process: Process, output: Pipe)) throws -> UInt64 {
        let output = String(decoding: prober.output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        prober.process.waitUntilExit()
        guard prober.process.terminationStatus == 0, let answeredAt = output.split(separator: " ").first.flatMap({ UInt64($0) }) else {
            throw ToolFailure("the new active did not answer the client: \(output.prefix(200))\n\(logs)")
        }
        return answeredAt
    }

    var logs: String {
        [1, 2].map { id in
            let text = (try? String(contentsOfFile: logDirectory + "/agent-m\(id).log", encoding: .utf8)) ?? ""
            return "m\(id):\n" + String(text.suffix(2000))
        }.joined(separator: "\n")
    }

    static func policy(local: Int, deadTimerMilliseconds: Int64) throws -> [UInt8] {
        let members = (1...2).map { id in
            CompiledClusterMember(
                memberID: id, name: "m\(id)", uid: "uid-m\(id)", priority: Int64(101 - id), address: "10.1.0.\(id + 1)",
                interfaces: [
                    CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "eth1", type: "sync", address: "10.9.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "eth2", type: "cluster", address: "10.2.0.\(id + 1)", maskLength: 24),
                ])
        }
        let cluster = CompiledCluster(
            clusterName: "cl-bench", clusterUID: "uid-cl-bench", mode: "cluster-xl-ha", memberRecovery: "active-up",
            heartbeatIntervalMilliseconds: BenchClusterLimits.heartbeatIntervalMilliseconds, deadTimerMilliseconds: deadTimerMilliseconds,
            localMemberID: local, localMemberName: "m\(local)", localMemberUID: "uid-m\(local)", localPriority: Int64(101 - local), members: members,
            interfaces: [
                CompiledClusterInterface(name: "eth0", type: "cluster", address: BenchClusterLimits.virtualAddress, maskLength: 24),
                CompiledClusterInterface(name: "eth1", type: "sync", address: nil, maskLength: nil),
                CompiledClusterInterface(name: "eth2", type: "cluster", address: BenchClusterLimits.serverVirtualAddress, maskLength: 24),
            ])
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

    /// Accepts TCP connections on a port and answers each with the member's name, then closes it.
    static let listenerScript = """
        import socket, sys
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(64)
        while True:
            c = s.accept()[0]
            try:
                c.sendall(sys.argv[2].encode())
            except OSError:
                pass
            c.close()
        """

    /// Echoes what each connection sends.
    static let echoServerScript = """
        import socket, sys, threading
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
        def serve(c):
            while True:
                data = c.recv(100)
                if not data: return
                c.sendall(data)
        while True:
            c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
        """

    /// One connection held open; for each round N, once DIR/request-N exists, one request on it: prints
    /// "N answered NS" (CLOCK_MONOTONIC of the echo) or "N lost" then "N reconnected" (a new connection).
    static let heldConnectionScript = """
        import os, socket, sys, time
        address, port, directory, wait = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
        def connect():
            while True:
                try:
                    s = socket.create_connection((address, port), timeout=5); s.settimeout(wait); s.sendall(b"hello\\n")
                    if s.recv(100): return s
                except OSError:
                    pass
                time.sleep(0.1)
        s = connect(); print("connected", flush=True)
        n = 0
        while True:
            while not os.path.exists(os.path.join(directory, "request-%d" % n)): time.sleep(0.005)
            try:
                s.sendall(b"ping %d\\n" % n); ok = bool(s.recv(100))
            except OSError:
                ok = False
            if ok:
                print("%d answered %d" % (n, time.monotonic_ns()), flush=True)
            else:
                print("%d lost" % n, flush=True); s.close(); s = connect(); print("%d reconnected" % n, flush=True)
            n += 1
        """

    /// Prints the CLOCK_MONOTONIC ns of the first connect answered by the expected member, and the probes made.
    static let proberScript = """
        import socket, sys, time
        address, port, wanted = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
        end, interval = time.monotonic() + float(sys.argv[4]), float(sys.argv[5])
        probes = 0
        while time.monotonic() < end:
            probes += 1
            try:
                c = socket.create_connection((address, port), timeout=0.05)
                c.settimeout(0.05)
                got = c.recv(16)
                c.close()
                if got == wanted:
                    print(time.monotonic_ns(), probes)
                    sys.exit(0)
            except OSError:
                pass
            time.sleep(interval)
        print("timeout", probes)
        sys.exit(1)
        """
}

/// A network namespace of the run, by name.
struct BenchNamespace: Sendable {
    let name: String

    @discardableResult
    func run(_ arguments: [String]) throws -> String { try Self.command(["ip", "netns", "exec", name] + arguments) }

    @discardableResult
    static func command(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0].hasPrefix("/") ? arguments[0] : "/usr/bin/env")
        process.arguments = arguments[0].hasPrefix("/") ? Array(arguments.dropFirst()) : arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ToolFailure("\(arguments.joined(separator: " ")): \(output.prefix(300))") }
        return output
    }
}

/// Stops the children and removes the files (BenchCleanup), then deletes the namespaces; also on SIGINT/SIGTERM.
final class BenchClusterCleanup: Sendable {
    let cleanup: BenchCleanup
    let namespaces: [BenchNamespace]
    private let once = Mutex<Task<Void, Never>?>(nil)
    /// Each member's conntrackd (namespace, configuration): a powered-off member's agent could not stop its own.
    let conntrackDaemons: [(namespace: BenchNamespace, configuration: String)]

    init(cleanup: BenchCleanup, namespaces: [BenchNamespace], conntrackDaemons: [(BenchNamespace, String)]) {
        self.cleanup = cleanup
        self.namespaces = namespaces
        self.conntrackDaemons = conntrackDaemons.map { (namespace: $0.0, configuration: $0.1) }
    }

    /// Runs the cleanup once; a second caller (the run's own end racing a signal) waits for that same
    /// one to finish, rather than finding nothing left to do and exiting while it is halfway.
    func run() async {
        let task = once.withLock { once in
            if let running = once { return running }
            let started = Task { await removeEverything() }
            once = started
            return started
        }
        await task.value
    }

    private func removeEverything() async {
        for daemon in conntrackDaemons where FileManager.default.fileExists(atPath: daemon.configuration) {
            _ = try? daemon.namespace.run(["conntrackd", "-C", daemon.configuration, "-k"])
        }
        await cleanup.run()
        // Deleting a namespace deletes its veth ends and bridges with it.
        for namespace in namespaces { _ = try? BenchNamespace.command(["ip", "netns", "del", namespace.name]) }
    }

    func onSignals() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                Task {
                    await run()
                    exit(128 + number)
                }
            }
            source.resume()
            return source
        }
    }
}
