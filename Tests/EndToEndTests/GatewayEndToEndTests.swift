import Foundation
import Gateway
import Testing

/// A `rampart gateway` agent child process. Deinit kills it.
final class AgentProcess: Sendable {
    let process: Process
    let record = ExitRecord()
    let dataDirectory: String
    let logPath: String

    private init(process: Process, dataDirectory: String, logPath: String) {
        self.process = process
        self.dataDirectory = dataDirectory
        self.logPath = logPath
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var logTail: String { String(log.suffix(4000)) }

    static func start(dataDirectory: String, logPath: String, arguments: [String], environment: [String: String] = [:]) throws -> AgentProcess {
        let process = Process()
        process.executableURL = try Executable.rampart()
        process.arguments = ["gateway", "--data", dataDirectory] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let agent = AgentProcess(process: process, dataDirectory: dataDirectory, logPath: logPath)
        let record = agent.record
        process.terminationHandler = { record.record($0) }
        try process.run()
        try? log.close()
        return agent
    }

    func stop() async throws {
        if record.exit == nil { Foundation.kill(process.processIdentifier, SIGTERM) }
        guard try await record.wait(seconds: Bounds.serverStopSeconds) != nil else {
            kill()
            throw E2EFailure("the gateway agent did not stop on SIGTERM; its log:\n\(logTail)")
        }
    }

    func kill() {
        if record.exit == nil, process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    deinit { kill() }
}

/// Gateway helpers on an HA group (or a single primary).
extension HAGroup {
    /// Adds a simple-gateway with a one-time key on `server` (published) and returns the key file.
    func addGateway(_ name: String, on server: String = "primary") async throws -> String {
        let key = "gateway-\(name)-key-2026"
        try await fixture.mgmtJSON(
            ["add-simple-gateway", "name=\(name)", "ip-address=192.0.2.200", "one-time-password-file=\(secretFile(key, in: fixture.scratch))"] + asRoot(server))
        let keyFile = fixture.scratch.path("\(name).key")
        FileManager.default.createFile(atPath: keyFile, contents: Data("\(key)\n".utf8), attributes: [.posixPermissions: 0o600])
        return keyFile
    }

    /// Starts the agent of gateway `name`: the first start enrols with `keyFile` through `server`.
    func startAgent(
        _ name: String, keyFile: String?, via server: String = "primary", attempt: Int = 1,
        enforcement: [String] = ["--enforce", "none"], extra: [String] = [], environment: [String: String] = [:]
    ) throws -> AgentProcess {
        var arguments = enforcement + ["--log-level", "debug"]
        if let keyFile {
            let sicPort = try #require(self.server(server).sicPort)
            arguments += ["--name", name, "--management", "127.0.0.1:\(sicPort)", "--activation-key-file", keyFile]
        }
        return try AgentProcess.start(
            dataDirectory: fixture.scratch.path("gw-\(name)"), logPath: fixture.scratch.path("gw-\(name)-\(attempt).log"),
            arguments: arguments + extra, environment: environment)
    }

    func gateway(_ name: String, on server: String) async throws -> [String: Any] {
        let result = try await fixture.rampart(["mgmt", "show-simple-gateway", "name=\(name)", "--format", "json"] + asRoot(server))
        return (try? result.json()) ?? [:]
    }

    /// show-logs of one gateway on one server (its own log database).
    func logs(of gateway: String, on server: String) async throws -> [[String: Any]] {
        let result = try await fixture.rampart(
            [
                "mgmt", "show-logs", "new-query.filter=gateway:\(gateway)", "new-query.time-frame=all-time",
                "--format", "json",
            ] + asRoot(server))
        return (try? result.json())?.objects("logs") ?? []
    }

    func gatewayState(_ name: String, on server: String) async throws -> String? {
        try await gateway(name, on: server).object("gateway-status")?.string("state")
    }

    /// install-policy as Ansible sends it (policy-package, targets); `rampart mgmt` waits for the task.
    func install(_ targets: [String], on server: String) async throws -> (result: CLIResult, task: [String: Any]?) {
        let targetArguments = targets.enumerated().map { "targets.\($0.offset + 1)=\($0.element)" }
        let result = try await fixture.rampart(
            ["mgmt", "install-policy", "policy-package=Standard"] + targetArguments + ["--format", "json"] + asRoot(server))
        return (result, (try? result.json())?.objects("tasks").first)
    }
}

func taskDetail(_ task: [String: Any]?, gateway: String) -> [String: Any]? {
    (task?["task-details"] as? [[String: Any]])?.first { $0.string("gatewayName") == gateway }
}

@Suite("End to end: gateways", .serialized, .endToEndSlot)
struct GatewayEndToEndTests {
    @Test("enrol, install (a gateway that is down fails only its part), status, restart keeps the policy", .timeLimit(.minutes(10)))
    func enrolInstallRestart() async throws {
        let group = try await HAGroup()
        let keyFile = try await group.addGateway("gw-1")
        _ = try await group.addGateway("gw-down")
        var agent = try group.startAgent("gw-1", keyFile: keyFile)
        defer { agent.kill() }
        #expect(try await group.eventually { try await group.gatewayState("gw-1", on: "primary") == "ok" }, "\(agent.logTail)")
        let enrolled = try await group.gateway("gw-1", on: "primary")
        #expect(enrolled.string("sic-state") == "communicating" && (enrolled.string("sic-name") ?? "").contains("CN=gw-1"), "\(enrolled)")
        #expect(try await group.gatewayState("gw-down", on: "primary") == "untrusted")
        let keyMode = try FileManager.default.attributesOfItem(atPath: "\(agent.dataDirectory)/pki/node.key")[.posixPermissions] as? NSNumber
        #expect(keyMode?.intValue == 0o600, "the gateway's private key is 0600")
        // --enforce none (the tests' choice) is said loudly: on the agent's output and log, and in its status.
        #expect(agent.log.contains("WARNING: --enforce none: this gateway ENFORCES NOTHING"), "\(agent.logTail)")
        #expect(agent.log.contains("warning") && agent.log.contains("ENFORCES NOTHING (no policy"), "\(agent.logTail)")
        let offStatus = enrolled["gateway-status"] as? [String: Any]
        #expect(offStatus?.string("enforcement") == "none" && (offStatus?.string("warning") ?? "").contains("enforces nothing"), "\(enrolled)")

        try await group.fixture.mgmtJSON(
            [
                "add-access-rule", "layer=Network", "position=1", "name=web-in", "service.1=https",
                "action=Accept", "track.type=Log",
            ] + group.asRoot("primary"))
        let (result, task) = try await group.install(["gw-1", "gw-down"], on: "primary")
        #expect(result.status == 0 && task?.string("status") == "partially succeeded", "\(result)")
        #expect(taskDetail(task, gateway: "gw-1")?.string("statusCode") == "succeeded", "\(result)")
        let down = taskDetail(task, gateway: "gw-down")
        #expect(down?.string("statusCode") == "failed" && (down?.string("statusDescription") ?? "").contains("not connected"), "\(result)")

        // Durable on the gateway, 0600, and reported back as installed at the published head.
        let policyFile = "\(agent.dataDirectory)/installed-policy.json"
        let policy = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: policyFile))) as? [String: Any]
        #expect((policy?["rules"] as? [Any])?.count == 3, "web-in, the Cleanup rule and the implicit cleanup rule: \(policy ?? [:])")
        let head = try await group.head("primary")
        #expect(
            try await group.eventually {
                let status = try await group.gateway("gw-1", on: "primary").object("gateway-status")
                return status?.string("policy") == "installed" && status?.int("installed-revision") == head
            })
        let listed = try await group.fixture.mgmtJSON(["show-gateways-and-servers", "details-level=full"] + group.asRoot("primary"))
        #expect(Set(listed.objects("objects").compactMap { $0.string("name") }) == ["gw-1", "gw-down", "primary"], "\(listed)")

        // A newer publish: the installed policy may be out of date.
        _ = try await group.addHost("after-install", on: "primary")
        #expect(
            try await group.eventually {
                try await group.gateway("gw-1", on: "primary").object("gateway-status")?.string("policy") == "may-be-out-of-date"
            })

        // The agent stops: not responding; restarted with only --data, its policy is back in force first.
        try await agent.stop()
        #expect(try await group.eventually { try await group.gatewayState("gw-1", on: "primary") == "not-responding" })
        // The management event stream saw it all, and the log (one of its subscribers) says so.
        let serverLog = group.servers["primary"]?.log ?? ""
        for line in [
            "event gateway-status-changed: gateway gw-1: channel up", "event gateway-status-changed: gateway gw-1: channel down",
            "event policy-installed: Standard at revision", "on gw-down: failed",
        ] {
            #expect(serverLog.contains(line), "the primary's log names the event: \(line)")
        }
        agent = try group.startAgent("gw-1", keyFile: nil, attempt: 2)
        #expect(try await group.eventually { agent.log.contains("installed policy restored") }, "\(agent.logTail)")
        #expect(
            try await group.eventually {
                let status = try await group.gateway("gw-1", on: "primary").object("gateway-status")
                return status?.string("state") == "ok" && status?.int("installed-revision") == head
            }, "\(agent.logTail)")
    }

    @Test("install from the active, fail over, install from the new active, the old active's push is refused", .timeLimit(.minutes(10)))
    func followsPromotionAndFencesTheOldActive() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        let keyFile = try await group.addGateway("gw-1")
        let agent = try group.startAgent("gw-1", keyFile: keyFile)
        defer { agent.kill() }
        // The gateway learns every management server from the active and connects to each.
        #expect(try await group.eventually { try await group.gatewayState("gw-1", on: "primary") == "ok" }, "\(agent.logTail)")
        #expect(try await group.eventually { try await group.gatewayState("gw-1", on: "mgmt-b") == "ok" }, "\(agent.logTail)")

        try await group.fixture.mgmtJSON(["add-host", "name=web", "ip-address=192.0.2.80"] + group.asRoot("primary"))
        try await group.fixture.mgmtJSON(
            [
                "add-access-rule", "layer=Network", "position=1", "name=web-in", "destination.1=web",
                "service.1=https", "action=Accept", "track.type=Log",
            ] + group.asRoot("primary"))
        let first = try await group.install(["gw-1"], on: "primary")
        #expect(first.task?.string("status") == "succeeded", "\(first.result)")

        // A logged hit on the gateway reaches every management server's own log database, once each.
        let hit = try await group.fixture.rampart([
            "gateway", "test-packet", "--data", agent.dataDirectory, "src=10.1.0.5", "dst=192.0.2.80",
            "proto=tcp", "dport=443",
        ])
        #expect(hit.status == 0 && hit.stdout.hasPrefix("ACCEPT") && hit.stdout.contains("web-in"), "\(hit)")
        for server in ["primary", "mgmt-b"] {
            #expect(try await group.eventually { try await group.logs(of: "gw-1", on: server).count == 1 }, "logs on \(server): \(agent.logTail)")
            let record = try await group.logs(of: "gw-1", on: server).first
            #expect(record?.string("rule_name") == "web-in" && record?.string("dst") == "192.0.2.80" && record?.int("gateway-sequence") == 1)
        }
        let onStandby = try await group.install(["gw-1"], on: "mgmt-b")
        #expect(
            onStandby.result.status != 0 && (onStandby.result.stdout + onStandby.result.stderr).contains("active server primary"),
            "a standby refuses install-policy, naming the active: \(onStandby.result)")

        // The active dies; the standby is promoted (forced failover) and installs with no re-enrolment.
        group.server("primary").kill()
        #expect(
            try await group.eventually {
                try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json().string("path") == "failover"
            })
        #expect(try await group.ha(["promote", "--force"], on: "mgmt-b").status == 0)
        let second = try await group.install(["gw-1"], on: "mgmt-b")
        #expect(second.task?.string("status") == "succeeded", "\(second.result)\n\(agent.logTail)")
        let fence = try await group.gateway("gw-1", on: "mgmt-b").object("gateway-status")?.string("highest-epoch-seen")
        #expect(fence?.hasSuffix("/mgmt-b") == true, "the gateway remembers the new active's epoch: \(fence ?? "nil")")

        // The old active comes back alone (mgmt-b is down, so it never hears of the new epoch): it
        // restarts as the active of its old epoch but takes no write and installs nothing until it has
        // heard from mgmt-b, and the gateway has seen mgmt-b's epoch anyway (its fence is the second wall).
        _ = try await group.server("mgmt-b").stop()
        try await group.start("primary")
        #expect(try await group.eventually { try await group.gatewayState("gw-1", on: "primary") == "ok" }, "\(agent.logTail)")
        let stale = try await group.install(["gw-1"], on: "primary")
        #expect(stale.task == nil && stale.result.status != 0, "\(stale.result)")
        #expect((stale.result.stdout + stale.result.stderr).contains("waiting for mgmt-b"), "\(stale.result)")
        let fenceOnPrimary = try await group.gateway("gw-1", on: "primary").object("gateway-status")?.string("highest-epoch-seen")
        #expect(fenceOnPrimary?.hasSuffix("/mgmt-b") == true, "the gateway tells the old active the epoch it has seen: \(fenceOnPrimary ?? "nil")")
        let installed =
            try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(agent.dataDirectory)/installed-policy.json"))) as? [String: Any]
        #expect(installed?["epochServer"] as? String == "mgmt-b", "the newer active's policy stays in force")
        // The gateway reconnected to the restarted server and sent its outbox again: the hit is stored once.
        #expect(try await group.logs(of: "gw-1", on: "primary").count == 1)
    }

    @Test(
        "a policy installed from the management server is loaded into nftables in the gateway's namespace: a real TCP connection to ssh is accepted, another port dropped",
        .timeLimit(.minutes(5)),
        .enabled(if: NetworkNamespace.available, "needs root, ip and nft"))
    func enforcesWithNftablesInANamespace() async throws {
        let namespace = try await NetworkNamespace("rampart-e2e-\(UInt32.random(in: 0...UInt32.max))")
        defer { namespace.remove() }
        let group = try await HAGroup()
        let keyFile = try await group.addGateway("gw-nft")
        let agent = try group.startAgent("gw-nft", keyFile: keyFile, enforcement: ["--enforce", "nftables", "--netns", namespace.name])
        defer { agent.kill() }
        #expect(try await group.eventually { try await group.gatewayState("gw-nft", on: "primary") == "ok" }, "\(agent.logTail)")
        try await group.fixture.mgmtJSON(
            [
                "add-access-rule", "layer=Network", "position=1", "name=ssh-in", "service.1=ssh",
                "action=Accept", "track.type=Log",
            ] + group.asRoot("primary"))
        let (result, task) = try await group.install(["gw-nft"], on: "primary")
        #expect(task?.string("status") == "succeeded", "\(result)\n\(agent.logTail)")
        let listing = try await namespace.run(["nft", "list", "table", "inet", "rampart"])
        #expect(listing.contains("tcp dport 22") && listing.contains("accept") && listing.contains("drop"), "\(listing)")
        let status = try await group.gateway("gw-nft", on: "primary").object("gateway-status")
        #expect(status?.string("enforcement") == "nftables")

        // Real traffic: a client namespace joined to the gateway's by a veth pair; listeners on the
        // gateway on 22 (the rule accepts it) and 2323 (the cleanup rule drops it).
        let client = try await NetworkNamespace(namespace.name + "-c")
        defer { client.remove() }
        try await client.link(to: namespace, clientAddress: "10.77.0.1", gatewayAddress: "10.77.0.2")
        let listener = try namespace.start(["python3", "-c", NetworkNamespace.listenerScript, "22", "2323"])
        // SIGKILL: children of the test process inherit its blocked SIGTERM.
        defer {
            kill(listener.processIdentifier, SIGKILL)
            listener.waitUntilExit()
        }
        #expect(try await group.eventually { await client.connect(to: "10.77.0.2", port: 22) == "connected" }, "ssh is accepted by rule ssh-in")
        let other = await client.connect(to: "10.77.0.2", port: 2323)
        #expect(other == "timeout", "any other port is dropped by the cleanup rule (no answer), not \(other)")
    }
}

/// A network namespace for a test (`ip netns add`), removed at the end.
struct NetworkNamespace {
    let name: String

    static var available: Bool {
        getuid() == 0 && ["/usr/sbin/nft", "/usr/sbin/ip", "/usr/bin/python3"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    init(_ name: String) async throws {
        self.name = name
        try await Self.command(["ip", "netns", "add", name])
    }

    @discardableResult
    func run(_ arguments: [String]) async throws -> String { try await Self.command(["ip", "netns", "exec", name] + arguments) }

    func remove() { Self.commandBlocking(["ip", "netns", "del", name]) }

    /// A quick command in this namespace from a synchronous teardown (see `commandBlocking`).
    func runBlocking(_ arguments: [String]) { Self.commandBlocking(["ip", "netns", "exec", name] + arguments) }

    /// A veth pair between this namespace (the client side) and `gateway`, both ends up, /24.
    func link(to gateway: NetworkNamespace, clientAddress: String, gatewayAddress: String) async throws {
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 36)
        let (clientEnd, gatewayEnd) = ("vc" + suffix, "vg" + suffix)
        try await Self.command(["ip", "link", "add", clientEnd, "type", "veth", "peer", "name", gatewayEnd])
        try await Self.command(["ip", "link", "set", clientEnd, "netns", name])
        try await Self.command(["ip", "link", "set", gatewayEnd, "netns", gateway.name])
        try await Self.command(["ip", "-n", name, "addr", "add", clientAddress + "/24", "dev", clientEnd])
        try await Self.command(["ip", "-n", gateway.name, "addr", "add", gatewayAddress + "/24", "dev", gatewayEnd])
        for (namespace, device) in [(name, clientEnd), (gateway.name, gatewayEnd), (name, "lo"), (gateway.name, "lo")] {
            try await Self.command(["ip", "-n", namespace, "link", "set", device, "up"])
        }
    }

    /// A long-running command in this namespace (stopped by the caller).
    func start(_ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", name] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// How a TCP connection from this namespace ends within 2 s: "connected", "timeout" (a drop
    /// answers nothing), "refused" (a reject, or nothing listening) or "error …".
    func connect(to address: String, port: Int) async -> String {
        let script = """
            import socket, sys
            try:
                socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close(); print("connected")
            except socket.timeout:
                print("timeout")
            except ConnectionRefusedError:
                print("refused")
            except OSError as e:
                print("error", e)
            """
        let output = (try? await run(["python3", "-c", script, address, String(port)])) ?? "error: python3 did not run"
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Accepts and closes TCP connections on every port given, until killed.
    static let listenerScript = """
        import socket, sys, selectors
        sel = selectors.DefaultSelector()
        for port in sys.argv[1:]:
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", int(port))); s.listen(16); sel.register(s, selectors.EVENT_READ)
        while True:
            for key, _ in sel.select():
                key.fileobj.accept()[0].close()
        """

    /// Runs a tool and returns its output (stdout, then stderr). It waits without holding a thread:
    /// a test that blocked the cooperative pool here starved every other test on a two-core machine.
    @discardableResult
    static func command(_ arguments: [String]) async throws -> String {
        let result = try await CommandRunner.run(arguments)
        let output = result.output + result.errorOutput
        guard result.succeeded else { throw E2EFailure("\(arguments.joined(separator: " ")): \(output)") }
        return output
    }

    /// For teardown where no `await` is possible (a `defer`): blocks its thread, so only quick `ip` calls.
    static func commandBlocking(_ arguments: [String]) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return }
        process.waitUntilExit()
    }
}
