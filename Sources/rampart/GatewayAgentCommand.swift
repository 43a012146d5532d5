import ArgumentParser
import Foundation
import Gateway
import Logging
import ManagementModel
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

    @Option(name: .long, help: "Enforcement: nftables (the kernel enforces the policy) or none (nothing is enforced: tests and demos only).")
    var enforce: String = "nftables"

    @Option(name: .long, help: "With --enforce nftables: load the ruleset inside this network namespace (ip netns exec NS nft …).")
    var netns: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    /// `rampart bench install`: N agents in this process, each with its own directory DIR/<name>N,
    /// identity, key, certificate and channels; --name is the prefix of their names.
    @Option(name: .long, help: .hidden)
    var benchAgents: Int?

    func validate() throws {
        guard ["nftables", "none"].contains(enforce) else { throw ValidationError("--enforce: expected nftables or none, not \(enforce)") }
        if netns != nil, enforce != "nftables" { throw ValidationError("--netns goes with --enforce nftables") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level \(logLevel)") }
        if let management { _ = try GatewayRunCommand.addresses(management) }
    }

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
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        let directory = URL(fileURLWithPath: data).standardizedFileURL
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        if enforce == "none" { warnEnforcementOff(logger) }
        let agents: [AgentService]
        if let benchAgents {
            agents = try await benchAgentServices(count: benchAgents, root: directory, logger: logger)
        } else {
            agents = [try await agentService(directory: directory, name: name, logger: logger)]
        }
        let group = ServiceGroup(configuration: .init(services: agents, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.notice("gateway agent stopped")
    }

    /// One agent: enrolled (or loaded), its last policy back in force, ready to connect.
    func agentService(directory: URL, name: String?, logger: Logger) async throws -> AgentService {
        // Before anything connects, the first enrolment included: the last installed policy, or the initial one.
        let enforcer = makeEnforcer(directory: directory)
        let storage = InstalledPolicyStorage.file(in: directory)
        let restored: CompiledPolicy?
        do {
            restored = try await GatewayAgent.enforceAtStart(storage: storage, enforcer: enforcer,
                                                             gateway: name ?? directory.lastPathComponent, logger: logger)
        } catch let error as NftablesError {
            throw CommandFailure("\(error)\n--enforce nftables loads the policy into the kernel: run the agent as root or with CAP_NET_ADMIN (--enforce none enforces nothing: tests and demos only)")
        }
        let (state, credentials) = try await GatewayEnrolment.prepare(directory: directory, name: name, management: management,
                                                                      activationKeyFile: activationKeyFile, logger: logger)
        let agent = GatewayAgent(directory: directory, state: state, enforcer: enforcer, storage: storage, logger: logger)
        await agent.adoptRestored(restored)
        logger.notice("gateway agent running", metadata: ["gateway": "\(state.name)", "enforcement": "\(enforce)",
                                                          "servers": "\(state.servers.map(\.sicAddress).joined(separator: ","))"])
        let outbox = try AgentOutbox.open(directory, gateway: state.name)
        let hits = (enforcer as? NftablesEnforcer).map { HitCollection(agent: agent, enforcer: $0, outbox: outbox, logger: logger) }
        return AgentService(links: try AgentLinks(agent: agent, credentials: credentials, logs: outbox, logger: logger), hits: hits)
    }

    /// `count` agents named <--name>0 … in DIR/<name>i, enrolled a few at a time.
    func benchAgentServices(count: Int, root: URL, logger: Logger) async throws -> [AgentService] {
        let prefix = name ?? "bench-gw-"
        var links: [AgentService?] = Array(repeating: nil, count: count)
        try await withThrowingTaskGroup(of: (Int, AgentService).self) { group in
            var next = 0
            func start() {
                let index = next
                next += 1
                group.addTask {
                    let directory = root.appendingPathComponent("\(prefix)\(index)")
                    try DurableFile.ensureDirectory(directory, mode: 0o700)
                    return (index, try await agentService(directory: directory, name: "\(prefix)\(index)", logger: logger))
                }
            }
            while next < min(count, BenchInstallLimits.enrolmentsInFlightMax) { start() }
            while let (index, made) = try await group.next() {
                links[index] = made
                if next < count { start() }
            }
        }
        return links.compactMap { $0 }
    }
}

/// One agent as a service: its channels and, with nftables, its hit collection.
struct AgentService: Service {
    let links: AgentLinks
    let hits: HitCollection?
    func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await links.run() }
                if let hits { group.addTask { await hits.run() } }
            }
        }
    }
}

/// The first start of a gateway (enrol with the one-time key, store DIR/gateway.json), or a later one
/// (load both; flags that contradict the stored state are refused rather than silently ignored).
enum GatewayEnrolment {
    static func prepare(directory: URL, name: String?, management: String?, activationKeyFile: String?,
                        logger: Logger) async throws -> (AgentState, NodeCredentials) {
        let pki = directory.appendingPathComponent("pki")
        if var state = try AgentState.load(directory) {
            if let name, name != state.name { throw ValidationError("this data directory is gateway \(state.name); --name \(name) does not match") }
            let credentials = try NodeCredentials.load(from: pki)
            if let management, state.servers.isEmpty {
                state.servers = try GatewayRunCommand.addresses(management).map { AgentState.Server(name: nil, sicAddress: "\($0.host):\($0.port)") }
                try state.save(directory)
            }
            return (state, credentials)
        }
        guard let name, let management, let activationKeyFile else {
            throw ValidationError("first start of a gateway: give --name, --management and --activation-key-file")
        }
        let servers = try GatewayRunCommand.addresses(management)
        var failures: [String] = []
        for server in servers {
            do {
                let credentials = try await NodeEnrolment.enrol(dataDirectory: directory.path, server: server, name: name, activationKeyFile: activationKeyFile)
                let state = AgentState(name: name, servers: servers.map { AgentState.Server(name: nil, sicAddress: "\($0.host):\($0.port)") })
                try state.save(directory)
                logger.notice("gateway enrolled", metadata: ["identity": "\(credentials.identity)", "server": "\(server.host):\(server.port)"])
                return (state, credentials)
            } catch {
                failures.append("\(server.host):\(server.port): \(error)")
            }
        }
        throw CommandFailure("enrolment failed with every management server: " + failures.joined(separator: "; "))
    }
}

extension GatewayRunCommand {
    /// `--enforce none` is for tests and demos; a gateway run that way by mistake protects nothing, so
    /// it says so where an operator looks: the log (warning), standard output, and its gateway-status.
    func warnEnforcementOff(_ logger: Logger) {
        let text = "--enforce none: this gateway ENFORCES NOTHING (no policy is loaded into the kernel, all traffic passes); for tests and demos only, run with --enforce nftables to protect anything"
        logger.warning("\(text)")
        FileHandle.standardOutput.write(Data("WARNING: \(text)\n".utf8))
    }

    /// --enforce: nftables (the ruleset file DIR/nftables.rules, loaded atomically with nft -f) or none.
    func makeEnforcer(directory: URL) -> any PolicyEnforcer {
        enforce == "nftables" ? NftablesEnforcer(rulesetDirectory: directory, namespace: netns) : MemoryEnforcer()
    }
}
