import Foundation
import Logging
import ManagementModel
import PeerTransport
import ServiceLifecycle
import Store
import TrustCore

/// One gateway agent as a service: its channels and, with nftables, its hit collection.
public struct AgentService: Service {
    /// Nil for an agent that takes its policy from a file (`--policy-file`): it talks to no server.
    let links: AgentLinks?
    let hits: HitCollection?
    public let agent: GatewayAgent

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                if let links {
                    group.addTask { await links.run() }
                } else {
                    // Nothing to dial: the agent still runs (its cluster side, its policy) until shutdown.
                    group.addTask { while !Task.isCancelled { try? await Task.sleep(for: .seconds(3_600)) } }
                }
                if let hits { group.addTask { await hits.run() } }
            }
        }
    }
}

/// How an agent starts: what enforces its policy, and, at the first start, where it enrols.
public struct AgentStartOptions: Sendable {
    public enum Enforcement: Sendable {
        /// The kernel enforces the policy (nft), inside a network namespace when one is named.
        case nftables(namespace: String?)
        /// Nothing is enforced: tests and demos only.
        case none
    }

    public var enforcement: Enforcement
    /// Management servers' SIC addresses (needed at the first start; later the servers' own list is used).
    public var management: [SICAddress]?
    /// The one-time activation key's file (first start only).
    public var activationKeyFile: String?
    /// The cluster heartbeat port (`--cluster-port`): a member's nftables ruleset accepts heartbeats on it.
    public var clusterHeartbeatPort: Int
    /// `--force` at the first start: enrol even when this clock and the server's differ by more than
    /// the server's `--clock-problem-ms`.
    public var allowsClockSkew = false

    public init(
        enforcement: Enforcement, management: [SICAddress]?, activationKeyFile: String?,
        clusterHeartbeatPort: Int = NftablesRenderer.clusterHeartbeatPortDefault
    ) {
        self.enforcement = enforcement
        self.management = management
        self.activationKeyFile = activationKeyFile
        self.clusterHeartbeatPort = clusterHeartbeatPort
    }

    var enforcementName: String {
        if case .nftables = enforcement { return "nftables" }
        return "none"
    }

    /// nftables (the ruleset file DIR/nftables.rules, loaded atomically with nft -f) or nothing.
    func makeEnforcer(directory: URL) -> any PolicyEnforcer {
        switch enforcement {
        case .nftables(let namespace):
            NftablesEnforcer(rulesetDirectory: directory, namespace: namespace, clusterHeartbeatPort: clusterHeartbeatPort)
        case .none: MemoryEnforcer()
        }
    }
}

/// Why an agent could not start; `isUsage` when the operator's flags are wrong.
public struct AgentStartError: Error, CustomStringConvertible {
    public let description: String
    public let isUsage: Bool
}

extension AgentService {
    /// Agents enrolling at once in one process (`rampart bench install`).
    public static let enrolmentsInFlightMax = 8

    /// One agent: enrolled (or loaded), its last policy back in force, ready to connect.
    public static func prepare(directory: URL, name: String?, options: AgentStartOptions, logger: Logger) async throws -> AgentService {
        // Before anything connects, the first enrolment included: the last installed policy, or the initial one.
        let enforcer = options.makeEnforcer(directory: directory)
        let storage = InstalledPolicyStorage.file(in: directory)
        let restored: CompiledPolicy?
        do {
            restored = try await GatewayAgent.enforceAtStart(
                storage: storage, enforcer: enforcer,
                gateway: name ?? directory.lastPathComponent, logger: logger)
        } catch let error as NftablesError {
            throw AgentStartError(
                description:
                    "\(error)\n--enforce nftables loads the policy into the kernel: run the agent as root or with CAP_NET_ADMIN (--enforce none enforces nothing: tests and demos only)",
                isUsage: false)
        }
        let (state, credentials) = try await GatewayEnrolment.prepare(directory: directory, name: name, options: options, logger: logger)
        let agent = GatewayAgent(directory: directory, state: state, enforcer: enforcer, storage: storage, logger: logger)
        await agent.adoptRestored(restored)
        logger.notice(
            "gateway agent running",
            metadata: [
                "gateway": "\(state.name)", "enforcement": "\(options.enforcementName)",
                "servers": "\(state.servers.map(\.sicAddress).joined(separator: ","))",
            ])
        let outbox = try AgentOutbox.open(directory, gateway: state.name)
        let hits = (enforcer as? NftablesEnforcer).map { HitCollection(agent: agent, enforcer: $0, outbox: outbox, logger: logger) }
        return AgentService(links: try AgentLinks(agent: agent, credentials: credentials, logs: outbox, logger: logger), hits: hits, agent: agent)
    }

    /// Labs and tests: an agent that installs its policy from `policyFile` (a CompiledPolicy as a
    /// management server pushes it, checked the same way) instead of enrolling; it talks to no server.
    public static func standalone(directory: URL, policyFile: String, options: AgentStartOptions, logger: Logger) async throws -> AgentService {
        guard let handle = FileHandle(forReadingAtPath: policyFile) else {
            throw AgentStartError(description: "--policy-file: cannot read \(policyFile)", isUsage: true)
        }
        defer { try? handle.close() }
        let body = Array((try handle.read(upToCount: InstalledPolicyFile.sizeBytesMax + 1)) ?? Data())
        guard body.count <= InstalledPolicyFile.sizeBytesMax else {
            throw AgentStartError(description: "--policy-file: larger than a policy can be", isUsage: true)
        }
        let target: String
        do { target = try PolicyDecoding.decode(body).targetName } catch {
            throw AgentStartError(description: "--policy-file: \(error)", isUsage: true)
        }
        let state = try AgentState.load(directory) ?? AgentState(name: target, servers: [])
        try state.save(directory)
        let agent = GatewayAgent(
            directory: directory, state: state, enforcer: options.makeEnforcer(directory: directory), storage: InstalledPolicyStorage.file(in: directory),
            logger: logger)
        let outcome = await agent.install(body: body[...], from: "policy-file")
        guard outcome.kind == .installed else { throw AgentStartError(description: "--policy-file: \(outcome.message)", isUsage: true) }
        logger.notice("gateway agent running from a policy file (no management server)", metadata: ["gateway": "\(state.name)"])
        return AgentService(links: nil, hits: nil, agent: agent)
    }

    /// `count` agents named <prefix>0 … in DIR/<prefix>i, enrolled a few at a time (`rampart bench install`).
    public static func prepareMany(count: Int, root: URL, prefix: String, options: AgentStartOptions, logger: Logger) async throws -> [AgentService] {
        var services: [AgentService?] = Array(repeating: nil, count: count)
        try await withThrowingTaskGroup(of: (Int, AgentService).self) { group in
            var next = 0
            func start() {
                let index = next
                next += 1
                group.addTask {
                    let directory = root.appendingPathComponent("\(prefix)\(index)")
                    try DurableFile.ensureDirectory(directory, mode: 0o700)
                    return (index, try await prepare(directory: directory, name: "\(prefix)\(index)", options: options, logger: logger))
                }
            }
            while next < min(count, enrolmentsInFlightMax) { start() }
            while let (index, made) = try await group.next() {
                services[index] = made
                if next < count { start() }
            }
        }
        return services.compactMap { $0 }
    }
}

/// The first start of a gateway (enrol with the one-time key, store DIR/gateway.json), or a later one
/// (load both; flags that contradict the stored state are refused rather than silently ignored).
enum GatewayEnrolment {
    static func prepare(directory: URL, name: String?, options: AgentStartOptions, logger: Logger) async throws -> (AgentState, NodeCredentials) {
        let pki = directory.appendingPathComponent(DataDirectoryLayout.pki)
        if var state = try AgentState.load(directory) {
            if let name, name != state.name {
                throw AgentStartError(description: "this data directory is gateway \(state.name); --name \(name) does not match", isUsage: true)
            }
            let credentials = try NodeCredentials.load(from: pki)
            if let management = options.management, state.servers.isEmpty {
                state.servers = management.map { AgentState.Server(name: nil, sicAddress: "\($0)") }
                try state.save(directory)
            }
            return (state, credentials)
        }
        guard let name, let servers = options.management, let activationKeyFile = options.activationKeyFile else {
            throw AgentStartError(description: "first start of a gateway: give --name, --management and --activation-key-file", isUsage: true)
        }
        var failures: [String] = []
        for server in servers {
            do {
                let credentials = try await NodeEnrolment.enrol(
                    dataDirectory: directory.path, server: server, name: name, activationKeyFile: activationKeyFile,
                    allowsClockSkew: options.allowsClockSkew)
                let state = AgentState(name: name, servers: servers.map { AgentState.Server(name: nil, sicAddress: "\($0)") })
                try state.save(directory)
                logger.notice("gateway enrolled", metadata: ["identity": "\(credentials.identity)", "server": "\(server)"])
                return (state, credentials)
            } catch {
                failures.append("\(server): \(error)")
            }
        }
        throw AgentStartError(description: "enrolment failed with every management server: " + failures.joined(separator: "; "), isUsage: false)
    }
}
