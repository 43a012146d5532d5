import Foundation
import Gateway
import Logging
import ManagementModel
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Two network namespaces joined by a veth pair: `client` (10.77.0.1) and `gw` (10.77.0.2). Names
/// are unique per run; `close` deletes both namespaces (and with them the veth pair).
struct NamespacePair {
    static let clientAddress = "10.77.0.1"
    static let gatewayAddress = "10.77.0.2"

    let client: String
    let gateway: String
    let id: String
    var clientDevice: String { "vc\(id)" }
    var gatewayDevice: String { "vg\(id)" }

    /// Runs as root with `ip`, `nft` and `python3` on PATH. With RAMPART_SKIP_NETNS=1 a machine
    /// without them skips instead of failing.
    static var unavailableReason: String? {
        var missing: [String] = []
        if geteuid() != 0 { missing.append("root") }
        for tool in ["ip", "nft", "python3"] where !toolExists(tool) { missing.append("`\(tool)`") }
        return missing.isEmpty
            ? nil
            : "network-namespace tests need " + missing.joined(separator: ", ")
                + " (CI installs nftables and iproute2 and runs as root; set RAMPART_SKIP_NETNS=1 to skip them locally)"
    }

    static var shouldRun: Bool {
        unavailableReason == nil || ProcessInfo.processInfo.environment["RAMPART_SKIP_NETNS"] != "1"
    }

    static func toolExists(_ tool: String) -> Bool {
        CommandRunner.searchPath.split(separator: ":").contains {
            FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)")
        }
    }

    static func create() async throws -> NamespacePair {
        if let reason = unavailableReason { throw NetnsFailure(reason) }
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let pair = NamespacePair(client: "rpc-\(getpid())-\(id)", gateway: "rpg-\(getpid())-\(id)", id: id)
        do {
            try await run(["ip", "netns", "add", pair.client])
            try await run(["ip", "netns", "add", pair.gateway])
            try await run(["ip", "link", "add", "vc\(id)", "netns", pair.client, "type", "veth", "peer", "name", "vg\(id)", "netns", pair.gateway])
            for (namespace, device, address) in [(pair.client, "vc\(id)", clientAddress), (pair.gateway, "vg\(id)", gatewayAddress)] {
                try await run(["ip", "-n", namespace, "addr", "add", "\(address)/24", "dev", device])
                try await run(["ip", "-n", namespace, "link", "set", device, "up"])
                try await run(["ip", "-n", namespace, "link", "set", "lo", "up"])
            }
        } catch {
            await pair.close()
            throw error
        }
        return pair
    }

    func close() async {
        for namespace in [client, gateway] { _ = try? await CommandRunner.run(["ip", "netns", "del", namespace]) }
    }

    @discardableResult
    static func run(_ arguments: [String]) async throws -> String {
        let result = try await CommandRunner.run(arguments)
        guard result.succeeded else { throw NetnsFailure("\(arguments.joined(separator: " ")) failed: \(result.errorOutput)") }
        return result.output
    }

    /// A TCP listener in the gateway namespace (or `namespace`) on `ports`, accepting and closing every connection.
    func startListener(ports: [Int], in namespace: String? = nil) throws -> Process {
        let script = """
            import select, socket
            socks = []
            for port in (\(ports.map(String.init).joined(separator: ", ")),):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
                s.listen(64)
                socks.append(s)
            while True:
                ready, _, _ = select.select(socks, [], [])
                for s in ready:
                    conn, _ = s.accept()
                    conn.close()
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["ip", "netns", "exec", namespace ?? gateway, "python3", "-c", script]
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = CommandRunner.searchPath
        process.environment = environment
        try process.run()
        return process
    }

    enum Outcome: String { case connected, timeout, refused, error }

    /// A TCP connection from the client namespace to the gateway: "connected", "timeout" (dropped)
    /// or "refused" (rejected). The timeout bounds the wait for an answer that never comes.
    /// `from` and `to` change the direction (the gateway's own outbound connections, loopback).
    func connect(port: Int, timeoutSeconds: Int, from: String? = nil, to address: String = gatewayAddress) async throws -> Outcome {
        let script = """
            import socket, sys
            try:
                socket.create_connection(("\(address)", \(port)), timeout=\(timeoutSeconds)).close()
                print("connected")
            except socket.timeout:
                print("timeout")
            except ConnectionRefusedError:
                print("refused")
            except OSError as e:
                print("error", e)
            """
        let output = try await Self.run(["ip", "netns", "exec", from ?? client, "python3", "-c", script])
        return Outcome(rawValue: output.split(separator: " ").first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? "") ?? .error
    }
}

struct NetnsFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

@Suite("Real enforcement in network namespaces", .serialized, .enabled(if: NamespacePair.shouldRun, "RAMPART_SKIP_NETNS=1 and no root/ip/nft"))
struct NetnsEnforcementTests {
    static let allowed = 8080, dropped = 9090, rejected = 7070

    /// client → gateway: 8080 accepted, 9090 dropped, 7070 rejected (each logged), the rest cleanup.
    func policy(alsoAllow extra: Int? = nil) throws -> CompiledPolicy {
        let world = PolicyWorld()
        try world.add(.host, ["name": "client", "ip-address": .string(NamespacePair.clientAddress)])
        try world.add(.host, ["name": "gateway", "ip-address": .string(NamespacePair.gatewayAddress)])
        for port in [Self.allowed, Self.dropped, Self.rejected] {
            try world.add(.serviceTCP, ["name": .string("tcp-\(port)"), "port": .string("\(port)")])
        }
        var allowedServices: [JSONValue] = [.string("tcp-\(Self.allowed)")]
        if let extra { allowedServices.append(.string("tcp-\(extra)")) }
        try world.rule([
            "name": "allow-web", "source": ["client"], "destination": ["gateway"], "service": .array(allowedServices),
            "action": "Accept", "track": "Log",
        ])
        try world.rule(["name": "drop-9090", "source": ["client"], "service": ["tcp-9090"], "action": "Drop", "track": "Log"])
        try world.rule(["name": "reject-7070", "service": ["tcp-7070"], "action": "Reject", "track": "Log"])
        return try world.compile()
    }

    @Test func aRealTCPConnectionIsAcceptedDroppedOrRejectedByTheInstalledPolicy() async throws {
        let pair = try await NamespacePair.create()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-nft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        var listener: Process?
        do {
            listener = try pair.startListener(ports: [Self.allowed, Self.dropped, Self.rejected])
            // Without a policy every port answers: what follows is the policy's doing, not a missing listener.
            for port in [Self.allowed, Self.dropped, Self.rejected] {
                #expect(try await connectEventually(pair, port: port), "the listener on \(port) never answered before the policy")
            }
            let installed = try policy()
            let enforcer = NftablesEnforcer(rulesetDirectory: scratch, namespace: pair.gateway)
            try await enforcer.apply(installed)
            let rulesetOnDisk = try String(contentsOf: enforcer.rulesetFile, encoding: .utf8)
            #expect(rulesetOnDisk == NftablesRenderer.render(installed))

            #expect(try await pair.connect(port: Self.allowed, timeoutSeconds: 20) == .connected)
            #expect(try await pair.connect(port: Self.dropped, timeoutSeconds: 2) == .timeout)
            #expect(try await pair.connect(port: Self.rejected, timeoutSeconds: 20) == .refused)
            // The matcher agrees with the kernel.
            for (port, action) in [(Self.allowed, CompiledAction.accept), (Self.dropped, .drop), (Self.rejected, .reject)] {
                let decision = PacketMatcher.evaluate(try packet(NamespacePair.clientAddress, NamespacePair.gatewayAddress, "tcp", port), against: installed)
                #expect(decision.action == action)
            }

            var collector = NftablesHitCollector()
            let records = try await collector.collect(from: enforcer, policy: installed, gatewayName: "gw", nowMilliseconds: 1)
            let hitsByRule = Dictionary(records.map { ($0.ruleName, $0.hitCount ?? 0) }, uniquingKeysWith: +)
            // One SYN at least on each; the dropped one may be retransmitted before the client gives up.
            #expect((hitsByRule["allow-web"] ?? 0) >= 1)
            #expect((hitsByRule["drop-9090"] ?? 0) >= 1)
            #expect((hitsByRule["reject-7070"] ?? 0) >= 1)
            #expect(Set(hitsByRule.keys) == ["allow-web", "drop-9090", "reject-7070"])
            #expect(records.allSatisfy { $0.origin == "nftables" && $0.policyRevision == 3 })

            // A second install replaces the table in one step: 9090 is allowed now, and counters restart.
            let widened = try policy(alsoAllow: Self.dropped)
            try await enforcer.apply(widened)
            let tables = try await NamespacePair.run(["ip", "netns", "exec", pair.gateway, "nft", "list", "tables"])
            #expect(tables.split(separator: "\n") == ["table inet rampart"])
            #expect(try await pair.connect(port: Self.dropped, timeoutSeconds: 20) == .connected)
            let after = try await collector.collect(from: enforcer, policy: widened, gatewayName: "gw", nowMilliseconds: 2)
            #expect(after.map(\.ruleName) == ["allow-web"] && after.first?.hitCount == 1)

            // A ruleset nft refuses leaves the installed one in force, and the error carries nft's text.
            var broken = widened
            broken.rules[0].service = ServiceMatch(any: false, entries: [ServiceEntry(proto: "tcp", portFirst: 70_000, portLast: 70_000)])
            let failure = await #expect(throws: NftablesError.self) { try await enforcer.apply(broken) }
            #expect("\(String(describing: failure))".contains("nft"))
            #expect(try await pair.connect(port: Self.dropped, timeoutSeconds: 20) == .connected)

            try await enforcer.remove()
            let remaining = try await NamespacePair.run(["ip", "netns", "exec", pair.gateway, "nft", "list", "tables"])
            #expect(remaining.isEmpty)
        } catch {
            Issue.record("enforcement test failed: \(error)")
        }
        // SIGKILL: the child inherits the test process's blocked signals, so SIGTERM would stay pending.
        if let listener, listener.isRunning {
            kill(listener.processIdentifier, SIGKILL)
            listener.waitUntilExit()
        }
        await pair.close()
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Check Point's initial policy: a gateway that never received a policy protects itself from its
    /// first start; only its own channels to its management servers (and loopback) pass.
    @Test func aFreshGatewayDropsAllButItsManagementChannelsBeforeAnyInstall() async throws {
        let pair = try await NamespacePair.create()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-nft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let managementPort = 18191
        var listeners: [Process] = []
        do {
            listeners.append(try pair.startListener(ports: [Self.allowed]))
            // The management server, in the client's namespace: the gateway dials it.
            listeners.append(try pair.startListener(ports: [managementPort], in: pair.client))
            #expect(try await connectEventually(pair, port: Self.allowed), "the listener never answered before the agent started")

            let enforcer = NftablesEnforcer(rulesetDirectory: scratch, namespace: pair.gateway)
            let state = AgentState(name: "gw", servers: [.init(name: nil, sicAddress: "\(NamespacePair.clientAddress):\(managementPort)")])
            let agent = GatewayAgent(
                directory: scratch, state: state, enforcer: enforcer, storage: .file(in: scratch),
                logger: Logger(label: "test"))
            try await agent.restore()
            #expect(await agent.policy == nil, "nothing was installed")

            #expect(try await pair.connect(port: Self.allowed, timeoutSeconds: 2) == .timeout, "traffic to the gateway is dropped")
            #expect(
                try await pair.connect(port: managementPort, timeoutSeconds: 20, from: pair.gateway, to: NamespacePair.clientAddress)
                    == .connected, "the gateway's own channel to its management server passes, answers included")
            #expect(
                try await pair.connect(port: Self.allowed, timeoutSeconds: 20, from: pair.gateway, to: "127.0.0.1") == .connected,
                "loopback passes")
            let listing = try await NamespacePair.run(["ip", "netns", "exec", pair.gateway, "nft", "list", "table", "inet", "rampart"])
            #expect(listing.contains(NftablesRenderer.initialPolicyComment), "\(listing)")
            try await enforcer.remove()
        } catch {
            Issue.record("initial policy test failed: \(error)")
        }
        for listener in listeners where listener.isRunning {
            kill(listener.processIdentifier, SIGKILL)
            listener.waitUntilExit()
        }
        await pair.close()
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Every construct the renderer emits (IPv6, ranges, negated cells and services, ordered layers)
    /// is accepted by the real `nft`.
    @Test func everyRenderedConstructLoads() async throws {
        let pair = try await NamespacePair.create()
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-nft-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        do {
            var policy = try PacketMatcherTests().policy()
            let enforcer = NftablesEnforcer(rulesetDirectory: scratch, namespace: pair.gateway)
            try await enforcer.apply(policy)
            // The same rules again as a second ordered layer, with a negated service and destination.
            var second = policy.rules.map { rule -> CompiledRule in
                var copy = rule
                copy.layer = "Second"
                return copy
            }
            second[0].service.negate = true
            second[1].destination.negate = true
            policy.rules += second
            try await enforcer.apply(policy)
            let reading = try NftablesHitCollector.reading(fromListing: try await enforcer.listing())
            #expect(reading.counters.map(\.index) == Array(policy.rules.indices))
        } catch {
            Issue.record("loading the rendered ruleset failed: \(error)")
        }
        await pair.close()
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Connects until the listener answers (it may still be starting), within a generous bound.
    func connectEventually(_ pair: NamespacePair, port: Int) async throws -> Bool {
        for _ in 0..<200 {
            if try await pair.connect(port: port, timeoutSeconds: 5) == .connected { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
