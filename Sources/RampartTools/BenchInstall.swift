import Foundation
import Gateway
import ManagementClient
import ManagementModel
import ManagementService
import TrustCore

/// `rampart bench install`: policy installation time to a fleet of real agents, against a server it starts.
public struct BenchInstallRun {
    /// Gateway agents.
    let gateways: Int
    /// Rules in the package.
    let rules: Int
    /// Installs to time.
    let samples: Int
    let json: Bool
    /// Keep the servers' and agents' logs in this directory.
    let logDir: String?

    public init(gateways: Int, rules: Int, samples: Int, json: Bool, logDir: String?) {
        self.gateways = gateways
        self.rules = rules
        self.samples = samples
        self.json = json
        self.logDir = logDir
    }

    public func run() async throws {
        BenchMachine.start()
        try await BenchHARun.withPrimary(options: .init(objects: 0, samples: samples), logDirectory: logDir) { run in
            let key = "bench-gw-" + UUID().uuidString
            try await populate(run, key: key)
            let agents = try await startAgents(run, key: key)
            for figure in try await measure(run, agents: agents) {
                figure.write(json: json)
            }
        }
    }

    /// The package's rules and hosts, and the gateway objects, published (the hosts and rules in one
    /// revision, the gateways in batches of 500).
    func populate(_ run: BenchHARun, key: String) async throws {
        try await run.withPrimaryClient { client in
            let sid = try await client.login()
            let hosts = max(1, rules / 10)
            for index in 0..<hosts {
                try await client.mustSucceed(
                    "add-host", ["name": .string("bench-dst-\(index)"), "ip-address": .string("10.\(index / 250).\(index % 250).1")], sid: sid)
            }
            for index in 0..<rules {
                try await client.mustSucceed(
                    "add-access-rule",
                    [
                        "layer": "Network", "position": "bottom", "name": .string("bench-rule-\(index)"),
                        "destination": .array([.string("bench-dst-\(index % hosts)")]), "service": .array(["https"]),
                        "action": .string(index % 7 == 6 ? "Drop" : "Accept"), "track": ["type": "Log"],
                    ], sid: sid)
            }
            try await client.mustSucceed("publish", [:], sid: sid)
            for index in 0..<gateways {
                try await client.mustSucceed(
                    "add-simple-gateway",
                    [
                        "name": .string(Self.gatewayName(index)), "ip-address": "127.0.0.1",
                        "one-time-password": .string(key),
                    ], sid: sid)
                if index % 500 == 499 { try await client.mustSucceed("publish", [:], sid: sid) }
            }
            try await client.mustSucceed("publish", [:], sid: sid)
            _ = try? await client.transport.call("logout", [:], sid: sid)
        }
    }

    static func gatewayName(_ index: Int) -> String { "bench-gw-\(index)" }

    /// One process of `gateways` agents; returns when the server sees every one of them connected.
    func startAgents(_ run: BenchHARun, key: String) async throws -> ChildProcess {
        let keyFile = run.root + "/gateways.key"
        _ = FileManager.default.createFile(atPath: keyFile, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
        let logFile = run.logDirectory + "/agents.log"
        let arguments = [
            "gateway", "--data", run.root + "/agents", "--bench-agents", String(gateways), "--name", "bench-gw-",
            "--management", "127.0.0.1:\(run.primary!.sicPort)", "--activation-key-file", keyFile, "--log-level", "warning",
            "--enforce", "none",
        ]
        let process = try run.children.start(name: "agents", arguments: arguments, output: .newLog(path: logFile))
        let started = monotonicMilliseconds()
        try await run.withPrimaryClient { client in
            let sid = try await client.login()
            while true {
                let connected = try await Self.connectedGateways(client, sid: sid)
                if connected == gateways { break }
                guard process.isRunning else { throw ToolFailure("the agents stopped; their log: \(logFile)\n" + BenchHARun.tail(logFile)) }
                guard monotonicMilliseconds() - started < Double(BenchInstallLimits.setupTimeoutMilliseconds) else {
                    throw ToolFailure("only \(connected) of \(gateways) gateways connected in time; log: \(logFile)")
                }
                try await Task.sleep(for: .milliseconds(500))
            }
            _ = try? await client.transport.call("logout", [:], sid: sid)
        }
        return process
    }

    static func connectedGateways(_ client: BenchClient, sid: String) async throws -> Int {
        var offset = 0
        var connected = 0
        while true {
            let page = try await client.transport.call(
                "show-simple-gateways", ["limit": 500, "offset": .int(Int64(offset)), "details-level": "full"], sid: sid)
            let objects = page.body["objects"]?.arrayValue ?? []
            connected += objects.filter { $0["gateway-status"]?["state"]?.stringValue == "ok" }.count
            offset += objects.count
            if objects.isEmpty || offset >= Int(page.body["total"]?.intValue ?? 0) { return connected }
        }
    }

    /// install-policy → task finished, `samples` times; and one durable write of the policy's size.
    func measure(_ run: BenchHARun, agents: ChildProcess) async throws -> [BenchFigure] {
        var install = BenchFigure(
            metric: "install_policy_ms",
            note: """
                install-policy of a \(rules)-rule package to \(gateways) gateway agents (one process, each its own SIC identity, \
                mutual-TLS channel and durable policy file): from the request to show-task reporting every gateway acknowledged \
                (policy written with fsync and applied); show-task polled every 2 ms; loopback, release build
                """)
        var policyBytes = 0
        try await run.withPrimaryClient { client in
            let sid = try await client.login()
            let serverPID = run.primary!.server.process.processIdentifier
            let cpuBefore = (server: BenchServer.cpuMilliseconds(serverPID), agents: BenchServer.cpuMilliseconds(agents.pid))
            for _ in 0..<samples {
                let started = monotonicMilliseconds()
                let reply = try await client.transport.call("install-policy", ["policy-package": "Standard"], sid: sid)
                guard let id = reply.body["task-id"]?.stringValue else { throw ToolFailure("install-policy: \(reply.body.canonicalString)") }
                while true {
                    let task = try await client.transport.call("show-task", ["task-id": .string(id)], sid: sid)
                    let status = task.body["tasks"]?.arrayValue?.first?["status"]?.stringValue ?? "?"
                    if status != "in progress" {
                        guard status == "succeeded" else {
                            throw ToolFailure("install task \(status): \(task.body["tasks"]?.arrayValue?.first?["comments"]?.stringValue ?? "")")
                        }
                        break
                    }
                    try await Task.sleep(for: .milliseconds(2))
                }
                install.samplesMilliseconds.append(monotonicMilliseconds() - started)
            }
            // Where the time goes: CPU of each process per install (2 cores shared by both and the client).
            install.extra["server_cpu_ms_per_install"] = .int((BenchServer.cpuMilliseconds(serverPID) - cpuBefore.server) / Int64(samples))
            install.extra["agents_cpu_ms_per_install"] = .int((BenchServer.cpuMilliseconds(agents.pid) - cpuBefore.agents) / Int64(samples))
            _ = try? await client.transport.call("logout", [:], sid: sid)
        }
        let sample = run.root + "/agents/" + Self.gatewayName(0) + "/" + InstalledPolicyFile.fileName
        policyBytes = BenchHA.fileBytes(sample)
        install.extra.merge(["gateways": .int(Int64(gateways)), "rules": .int(Int64(rules)), "policy_bytes": .int(Int64(policyBytes))]) { _, new in new }
        return [install, try Self.decode(file: sample), try Self.durableWrite(bytes: policyBytes, directory: run.root)]
    }

    /// The agent's parse of a received policy, alone (PolicyDecoding, as the agent reads a push).
    static func decode(file: String) throws -> BenchFigure {
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        var figure = BenchFigure(metric: "policy_decode_ms", note: "PolicyDecoding of one installed policy (\(data.count) bytes) into CompiledPolicy, 50 times")
        for _ in 0..<50 {
            let started = monotonicMilliseconds()
            _ = try PolicyDecoding.decode(data)
            figure.samplesMilliseconds.append(monotonicMilliseconds() - started)
        }
        let policy = try PolicyDecoding.decode(data)
        var validation: [Double] = []
        for _ in 0..<50 {
            let started = monotonicMilliseconds()
            _ = policy.validationErrors
            validation.append(monotonicMilliseconds() - started)
        }
        figure.extra["validation_p50_ms"] = BenchHA.milliseconds(BenchFigure.percentile(validation, 0.5))
        return figure
    }

    /// The agent's durable write, alone: write-temp, fsync, rename, directory fsync of a file that size.
    static func durableWrite(bytes: Int, directory: String) throws -> BenchFigure {
        var figure = BenchFigure(
            metric: "policy_durable_write_ms",
            note: "DurableFile.write of \(bytes) bytes (write-temp, fsync, rename, fsync of the directory), 200 times, on the benchmark's file system")
        let payload = [UInt8](repeating: 0x20, count: max(bytes, 1))
        let url = URL(fileURLWithPath: directory + "/durable-write-sample")
        for _ in 0..<200 {
            let started = monotonicMilliseconds()
            try DurableFile.write(payload, to: url, mode: 0o600)
            figure.samplesMilliseconds.append(monotonicMilliseconds() - started)
        }
        return figure
    }
}

enum BenchInstallLimits {
    static let setupTimeoutMilliseconds = 1_800_000
}
