import ArgumentParser
import ClusterRuntime
import Foundation
import Gateway
import Logging
import PeerTransport
import ServiceLifecycle
import TrustCore

/// `rampart gateway` (the default `run` subcommand): the gateway agent.
struct GatewayRunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the gateway agent: enrol once, then follow every management server and enforce the installed policy.",
        discussion: """
            First start (enrol with the one-time key of the gateway's simple-gateway object):
              rampart sic new-key --out gw-1.key
              rampart mgmt add-simple-gateway name=gw-1 ip-address=192.0.2.1 one-time-password-file=gw-1.key -r true --data DIR
              rampart gateway --data ./gw-1 --name gw-1 --management 127.0.0.1:18191 --activation-key-file gw-1.key
            Later starts need only --data: the name, the management servers (as they last announced
            themselves) and the highest epoch seen are in DIR/gateway.json; the key and certificate in DIR/pki.
            The last installed policy (DIR/installed-policy.json) is put in force before anything connects;
            before the first install, the initial policy is: only the agent's channels to its management
            servers (and loopback) pass, everything else is dropped.
            The agent keeps one mutual-TLS channel to every management server; the active pushes policy over
            it (install-policy), and a push from an epoch lower than the highest one seen is refused.
            --enforce nftables (the default) loads the policy into the kernel (needs CAP_NET_ADMIN);
            --enforce none enforces NOTHING: the policy is kept in memory and on disk only, for tests and
            demos, and the agent says so loudly (its log, its output, its gateway-status on the servers).
            """)

    @Option(name: .long, help: "The gateway's data directory (created when missing).")
    var data: String

    @Option(name: .long, help: "Management servers' SIC addresses, HOST:PORT[,HOST:PORT…]. Needed at the first start; later the servers' own list is used.")
    var management: String?

    @Option(name: .long, help: "File holding the one-time activation key of the gateway's simple-gateway object (first start only).")
    var activationKeyFile: String?

    @Option(name: .long, help: "The gateway's name: exactly its simple-gateway object's name (first start only).")
    var name: String?

    @Flag(
        name: .long,
        help:
            "First start only: enrol even when this clock and the server's differ by more than the server's --clock-problem-ms (fix NTP instead when you can).")
    var force = false

    @Option(name: .long, help: "Enforcement: nftables (the kernel enforces the policy) or none (nothing is enforced: tests and demos only).")
    var enforce: String = "nftables"

    @Option(name: .long, help: "With --enforce nftables: load the ruleset inside this network namespace (ip netns exec NS nft …).")
    var netns: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(
        name: .long,
        help: "Labs and tests: install this policy file (a CompiledPolicy, as a server pushes it) instead of enrolling; talk to no management server.")
    var policyFile: String?

    @Option(name: .long, help: "A cluster member's heartbeat UDP port (every member of the cluster must use the same).")
    var clusterPort: Int = ClusterService.defaultHeartbeatPort

    /// `rampart bench install`: N agents in this process, each with its own directory DIR/<name>N,
    /// identity, key, certificate and channels; --name is the prefix of their names.
    @Option(name: .long, help: .hidden)
    var benchAgents: Int?

    func validate() throws {
        guard ["nftables", "none"].contains(enforce) else { throw ValidationError("--enforce: expected nftables or none, not \(enforce)") }
        if netns != nil, enforce != "nftables" { throw ValidationError("--netns goes with --enforce nftables") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        if let management { _ = try GatewayRunCommand.addresses(management) }
        guard (1...65_535).contains(clusterPort) else { throw ValidationError("--cluster-port: 1 to 65535") }
        if policyFile != nil, benchAgents != nil || management != nil { throw ValidationError("--policy-file goes without --management and --bench-agents") }
    }

    /// --management: HOST:PORT[,HOST:PORT…].
    static func addresses(_ text: String) throws -> [SICAddress] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !items.isEmpty, items.count <= GatewayLimits.managementServersMax else {
            throw ValidationError("--management: 1 to \(GatewayLimits.managementServersMax) HOST:PORT addresses, comma-separated")
        }
        return try items.map { item in
            guard let address = SICAddress(argument: item) else { throw ValidationError("--management: '\(item)' is not HOST:PORT") }
            return address
        }
    }

    func run() async throws {
        umask(0o077)
        var logger = Logger(label: "rampart.gateway")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let directory = URL(fileURLWithPath: data).standardizedFileURL
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        if enforce == "none" { warnEnforcementOff(logger) }
        var options = AgentStartOptions(
            enforcement: enforce == "nftables" ? .nftables(namespace: netns) : .none,
            management: try management.map(Self.addresses), activationKeyFile: activationKeyFile, clusterHeartbeatPort: clusterPort)
        options.allowsClockSkew = force
        let agents = try await withUsageErrors {
            if let benchAgents {
                return try await AgentService.prepareMany(count: benchAgents, root: directory, prefix: name ?? "bench-gw-", options: options, logger: logger)
            }
            if let policyFile { return [try await AgentService.standalone(directory: directory, policyFile: policyFile, options: options, logger: logger)] }
            return [try await AgentService.prepare(directory: directory, name: name, options: options, logger: logger)]
        }
        // A single agent runs its cluster side (idle unless its policy has a cluster section).
        var services: [any Service] = agents
        if agents.count == 1, let agent = agents.first?.agent {
            services.append(ClusterService(agent: agent, directory: directory, heartbeatPort: clusterPort, logger: logger))
        }
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.notice("gateway agent stopped")
    }

    /// `--enforce none` is for tests and demos; a gateway run that way by mistake protects nothing, so
    /// it says so where an operator looks: the log (warning), standard output, and its gateway-status.
    func warnEnforcementOff(_ logger: Logger) {
        let text =
            "--enforce none: this gateway ENFORCES NOTHING (no policy is loaded into the kernel, all traffic passes); for tests and demos only, run with --enforce nftables to protect anything"
        logger.warning("\(text)")
        FileHandle.standardOutput.write(Data("WARNING: \(text)\n".utf8))
    }
}
