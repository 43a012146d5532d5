import Foundation
import HARuntime
import ManagementModel
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

enum BenchClusterLimits {
    static let virtualAddress = "10.1.0.1"
    static let servicePort = 8080
    static let heartbeatPort = 18_116
    static let heartbeatIntervalMilliseconds: Int64 = 100
    static let deadTimerMilliseconds: Int64 = 600
    /// Upper bound for any one wait (a member to become STANDBY, the client to be answered).
    static let waitSeconds = 60.0
    /// After each failover is restored: several dead timers in which nothing may change.
    static let settleSeconds = 2.0
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

    public init(json: Bool, failovers: Int, logDir: String?) {
        self.json = json
        self.failovers = failovers
        self.logDir = logDir
    }

    public func run() async throws {
        guard getuid() == 0 else { throw ToolFailure("bench cluster-failover needs root (it builds network namespaces)") }
        for tool in ["/usr/sbin/ip", "/usr/bin/arping", "/usr/bin/python3"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw ToolFailure("bench cluster-failover needs \(tool)")
        }
        BenchMachine.start()
        let lab = try BenchClusterLab(logDirectory: logDir)
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
        var kills: [Double] = []
        var cuts: [Double] = []
        var flaps = 0
        var counted = 0
        for round in 0..<failovers {
            let (old, new) = (active, 3 - active)
            let countBefore = try await lab.failoverCount(new)
            let byKill = round % 2 == 0
            let prober = try lab.startProber(expecting: new)
            // The prober is answered by the old active until the kill: give it its first answers.
            try await Task.sleep(for: .milliseconds(200))
            let cutAt = HARuntime.monotonicNanoseconds()
            if byKill { try lab.killAgent(old) } else { try lab.members[old - 1].run(["ip", "link", "set", "eth0", "down"]) }
            let answeredAt = try lab.waitForAnswer(prober)
            let milliseconds = Double(Int64(answeredAt) - Int64(cutAt)) / 1_000_000
            if byKill { kills.append(milliseconds) } else { cuts.append(milliseconds) }
            // Restore: the killed member restarted, or the link up; it must come back STANDBY.
            if byKill { try lab.startAgent(old) } else { try lab.members[old - 1].run(["ip", "link", "set", "eth0", "up"]) }
            try await lab.waitForState(old, "STANDBY")
            try await Task.sleep(for: .seconds(BenchClusterLimits.settleSeconds))
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
            + "\(BenchClusterLimits.deadTimerMilliseconds) ms, Active Up) in network namespaces: from the kill -9 / ip link set eth0 down of "
            + "the ACTIVE member (CLOCK_MONOTONIC) to the first TCP connect from the client namespace to the virtual address answered by "
            + "the new active (a fresh connect every \(BenchClusterLimits.probeIntervalMilliseconds) ms; the listener answers with its "
            + "member id). connections_survived is not measured: no connection sync (conntrackd) in this build."
        // One reading of the machine for the whole run: the three figures come from the same rounds.
        let machine = BenchMachine.sinceLastFigure()
        return [
            BenchFigure(metric: "cluster_failover_kill", samplesMilliseconds: kills, note: note, machine: machine),
            BenchFigure(metric: "cluster_failover_link", samplesMilliseconds: cuts, note: note, machine: machine),
            BenchFigure(
                metric: "cluster_flaps",
                extra: ["flaps": .int(Int64(flaps)), "failovers": .int(Int64(failovers)), "failover_count_increments": .int(Int64(counted))],
                note: "State changes beyond the one expected per failover: the new active's failover-count (rampart cluster state --json) "
                    + "read before each failover and after the old member is back STANDBY and \(BenchClusterLimits.settleSeconds) s "
                    + "passed (failover_count_increments: their sum, expected = failovers); every round also checks exactly one ACTIVE "
                    + "holding the virtual address.", machine: machine),
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
    let members: [BenchNamespace]

    init(logDirectory: String?) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-bench-cluster-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.logDirectory = logDirectory ?? root + "/logs"
        try FileManager.default.createDirectory(atPath: self.logDirectory, withIntermediateDirectories: true)
        bridge = BenchNamespace(name: "rbc\(tag)b")
        client = BenchNamespace(name: "rbc\(tag)c")
        members = [BenchNamespace(name: "rbc\(tag)m1"), BenchNamespace(name: "rbc\(tag)m2")]
        cleanup = BenchClusterCleanup(cleanup: BenchCleanup(children: children, directory: root), namespaces: [bridge, client] + members)
    }

    func build() throws {
        for namespace in [bridge, client] + members { try BenchNamespace.command(["ip", "netns", "add", namespace.name]) }
        for bridgeName in ["brc", "brs"] {
            try bridge.run(["ip", "link", "add", bridgeName, "type", "bridge"])
            try bridge.run(["ip", "link", "set", bridgeName, "up"])
        }
        for (index, member) in members.enumerated() {
            let id = index + 1
            try plug(member, device: "eth0", into: "brc", address: "10.1.0.\(id + 1)/24")
            try plug(member, device: "eth1", into: "brs", address: "10.9.0.\(id + 1)/24")
            try member.run(["ip", "link", "set", "lo", "up"])
            try children.start(
                name: "listener-m\(id)", program: "/usr/bin/env",
                arguments: ["ip", "netns", "exec", member.name, "python3", "-c", Self.listenerScript, String(BenchClusterLimits.servicePort), "m\(id)"],
                output: .newLog(path: logDirectory + "/listener-m\(id).log"))
            let policy = try Self.policy(local: id)
            guard FileManager.default.createFile(atPath: root + "/policy-m\(id).json", contents: Data(policy)) else {
                throw ToolFailure("cannot write the policy of member \(id)")
            }
        }
        try plug(client, device: "eth0", into: "brc", address: "10.1.0.100/24")
        try client.run(["ip", "link", "set", "lo", "up"])
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

    func startAgent(_ id: Int) throws {
        try children.start(
            name: "agent-m\(id)", program: "/usr/bin/env",
            arguments: [
                "ip", "netns", "exec", members[id - 1].name, ChildProcessSupervisor.executable, "gateway", "--data", dataDirectory(id),
                "--policy-file", root + "/policy-m\(id).json", "--enforce", "none", "--cluster-port", String(BenchClusterLimits.heartbeatPort),
            ],
            output: .appendedLog(path: logDirectory + "/agent-m\(id).log", header: "agent m\(id)"))
    }

    /// kill -9 of the agent (`ip netns exec` execs it: the pid is the agent's), until it is gone.
    func killAgent(_ id: Int) throws {
        guard let agent = children.child(named: "agent-m\(id)"), agent.isRunning else { throw ToolFailure("agent m\(id) is not running") }
        kill(agent.pid, SIGKILL)
        agent.process.waitUntilExit()
    }

    /// The member's `rampart cluster state --json` status; nil while it does not answer.
    func state(_ id: Int) -> [String: Any]? {
        guard let output = try? BenchNamespace.command([ChildProcessSupervisor.executable, "cluster", "state", "--data", dataDirectory(id), "--json"]),
            let object = try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any]
        else { return nil }
        return object["status"] as? [String: Any]
    }

    func failoverCount(_ id: Int) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(BenchClusterLimits.waitSeconds)
        while ContinuousClock.now < deadline {
            if let count = (state(id)?["failover-count"] as? NSNumber)?.intValue { return count }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ToolFailure("member \(id) does not answer rampart cluster state\n\(logs)")
    }

    func holdsVirtualAddress(_ id: Int) -> Bool {
        ((try? members[id - 1].run(["ip", "-4", "addr", "show", "dev", "eth0"])) ?? "").contains(BenchClusterLimits.virtualAddress + "/")
    }

    /// The member that is the one ACTIVE holding the address while the other is STANDBY without it; nil otherwise.
    func oneActive() async throws -> Int? {
        let states = [1, 2].map { state($0)?["state"] as? String }
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
            if state(id)?["state"] as? String == wanted { return }
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

    static func policy(local: Int) throws -> [UInt8] {
        let members = (1...2).map { id in
            CompiledClusterMember(
                memberID: id, name: "m\(id)", uid: "uid-m\(id)", priority: Int64(101 - id), address: "10.1.0.\(id + 1)",
                interfaces: [
                    CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "eth1", type: "sync", address: "10.9.0.\(id + 1)", maskLength: 24),
                ])
        }
        let cluster = CompiledCluster(
            clusterName: "cl-bench", clusterUID: "uid-cl-bench", mode: "cluster-xl-ha", memberRecovery: "active-up",
            heartbeatIntervalMilliseconds: BenchClusterLimits.heartbeatIntervalMilliseconds, deadTimerMilliseconds: BenchClusterLimits.deadTimerMilliseconds,
            localMemberID: local, localMemberName: "m\(local)", localMemberUID: "uid-m\(local)", localPriority: Int64(101 - local), members: members,
            interfaces: [
                CompiledClusterInterface(name: "eth0", type: "cluster", address: BenchClusterLimits.virtualAddress, maskLength: 24),
                CompiledClusterInterface(name: "eth1", type: "sync", address: nil, maskLength: nil),
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
    private let namespaces: Mutex<[BenchNamespace]>

    init(cleanup: BenchCleanup, namespaces: [BenchNamespace]) {
        self.cleanup = cleanup
        self.namespaces = Mutex(namespaces)
    }

    func run() async {
        await cleanup.run()
        let remaining = namespaces.withLock { namespaces in
            defer { namespaces = [] }
            return namespaces
        }
        // Deleting a namespace deletes its veth ends and bridges with it.
        for namespace in remaining { _ = try? BenchNamespace.command(["ip", "netns", "del", namespace.name]) }
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
