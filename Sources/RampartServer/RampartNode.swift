import Foundation
import Gateway
import HACore
import HARuntime
import Hummingbird
import Logging
import ManagementModel
import ManagementService
import NIOCore
import NIOSSL
import Operations
import PeerTransport
import SICPort
import ServiceLifecycle
import SmartTasks
import Store
import Synchronization
import TrustCore
import UnixSignals
import WebAPI

/// What a management server is asked to be: `rampart server`'s flags, or a test's node.
public struct ServerConfiguration: Sendable {
    /// The data directory (created when missing).
    public var dataDirectory: URL
    /// HTTPS port of the Web API (0: a free port, told in node.json).
    public var apiPort: Int
    /// The SIC port: enrolment and mutual-TLS channels between servers and gateways (0: a free port).
    public var sicPort: Int
    /// The address the Web API and the SIC port bind to.
    public var listen: String
    /// This server's name (a host name), used in certificates and revisions.
    public var serverName: String
    /// On first start: the file holding the password of `admin` (else a random one is generated).
    public var adminPasswordFile: String?
    /// First start of a secondary: the active server's SIC address (enrol, then synchronize).
    public var join: SICAddress?
    /// With `join`: the file holding the one-time activation key of this server's checkpoint-host object.
    public var activationKeyFile: String?
    /// With `join` (`--force`): enrol even when this clock and the active's differ by more than its `--clock-problem-ms`.
    public var enrolmentAllowsClockSkew = false
    /// The SIC address the other servers use to reach this one (default: `listen` and the SIC port).
    public var advertiseSIC: SICAddress?
    /// Also serve `/metrics` and `/health/<check>` over plain HTTP on this HOST:PORT (nil: only on the API listener).
    public var metricsListen: SICAddress?
    /// A peer's clock offset beyond `warningMilliseconds` is a warning, beyond `problemMilliseconds` a
    /// problem that refuses a promotion unless forced (`--clock-warning-ms`, `--clock-problem-ms`).
    public var clockThresholds = ClockThresholds.standard
    /// SmartTasks' retries, storm damping and queue bounds (`--smarttask-*`).
    public var smartTaskLimits = SmartTaskLimits()
    /// The SMTP relay send-mail SmartTasks go through (`--smtp-relay HOST:PORT`); nil: send-mail tasks
    /// fail at run time saying no relay is configured.
    public var smtpRelay: MailRelayAddress?
    /// How long `show-task` answers for a finished task (`--task-retention-seconds`).
    public var taskRetentionSeconds = Limits.taskRetentionSeconds
    /// Where the management service runs (see `ManagementService`); nil: a thread of its own.
    public var serviceExecutor: (any SerialExecutor)?
    public var logger: Logger

    public init(
        dataDirectory: URL, apiPort: Int = 8443, sicPort: Int = 18191, listen: String = "127.0.0.1", serverName: String = "primary",
        adminPasswordFile: String? = nil, join: SICAddress? = nil, activationKeyFile: String? = nil, advertiseSIC: SICAddress? = nil,
        logger: Logger
    ) {
        self.dataDirectory = dataDirectory.standardizedFileURL
        self.apiPort = apiPort
        self.sicPort = sicPort
        self.listen = listen
        self.serverName = serverName
        self.adminPasswordFile = adminPasswordFile
        self.join = join
        self.activationKeyFile = activationKeyFile
        self.advertiseSIC = advertiseSIC
        self.logger = logger
    }
}

/// Why a server could not start. `isUsage` when the operator's input is wrong (a flag, a file, the
/// data directory): `rampart server` then shows its usage, as for a bad flag.
public struct ServerStartError: Error, CustomStringConvertible {
    public let description: String
    public let isUsage: Bool

    static func usage(_ description: String) -> ServerStartError { ServerStartError(description: description, isUsage: true) }
    static func failure(_ description: String) -> ServerStartError { ServerStartError(description: description, isUsage: false) }
}

/// One management server of an HA group, composed from the modules: the management service on its
/// store, the HA runtime and mesh, the SIC port with the gateway hub, the Web API over HTTPS and on
/// the local socket, the operations worker. `prepare` opens everything up to the listeners; `run`
/// runs the services until a graceful shutdown. `rampart server` is this; a test boots nodes in process.
public final class RampartNode: Sendable {
    public let configuration: ServerConfiguration
    /// The node's management service (sessions, locks, publish).
    public let service: ManagementService
    public let runtime: HARuntime
    /// The port the SIC listener bound (the configured one, or the free one 0 gave).
    public let sicPort: Int
    /// Every service of the node, run together by `run`.
    public let services: [any Service]
    private let bound: BoundPorts
    private let ports: PortReservation
    private let lock: NodeLock
    private let group = Mutex<ServiceGroup?>(nil)

    fileprivate init(
        configuration: ServerConfiguration, service: ManagementService, runtime: HARuntime, sicPort: Int, services: [any Service],
        bound: BoundPorts, ports: PortReservation, lock: NodeLock
    ) {
        self.configuration = configuration
        self.service = service
        self.runtime = runtime
        self.sicPort = sicPort
        self.services = services
        self.bound = bound
        self.ports = ports
        self.lock = lock
    }

    /// Runs every service until a graceful shutdown: one of `gracefulShutdownSignals`, or `shutdown()`.
    /// Requests in flight, a publish included, finish first. Then the reserved ports are released.
    public func run(gracefulShutdownSignals: [UnixSignal] = []) async throws {
        defer { ports.release() }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: gracefulShutdownSignals, logger: configuration.logger)
        // A service that never finishes its graceful stop must not keep the server (and its lock) forever.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(Self.gracefulShutdownSecondsMax)
        let group = ServiceGroup(configuration: groupConfiguration)
        self.group.withLock { $0 = group }
        try await group.run()
    }

    /// Asks a running node to stop gracefully (as SIGTERM does).
    public func shutdown() async {
        await group.withLock { $0 }?.triggerGracefulShutdown()
    }

    /// The Web API's port once both listeners are bound (and node.json written); nil before.
    public func apiPort() async -> Int? { await bound.ready }
}

// MARK: - Composition

extension RampartNode {
    /// Opens the node: its ports reserved, its data directory locked and its journal verified, its
    /// role (primary, or a secondary joined or joining), certificates and services, the SIC port bound.
    public static func prepare(_ configuration: ServerConfiguration) async throws -> RampartNode {
        let (directory, logger) = (configuration.dataDirectory, configuration.logger)
        // Before anything else: limits that contradict each other would only show at a large publish.
        do {
            try LimitRelations.validate()
        } catch {
            logger.critical("refusing to start: \(error)")
            throw ServerStartError.failure(error.description)
        }
        // Every port before anything in the data directory: a port in use leaves a fresh directory as it
        // was (absent or empty) and a joining secondary's one-time key unspent.
        let ports = try PortReservation.reserve(
            [
                .init(flag: "--api-port", port: configuration.apiPort),
                .init(flag: "--sic-port", port: configuration.sicPort),
            ], host: configuration.listen)
        if let metrics = configuration.metricsListen {
            ports.absorb(try PortReservation.reserve([.init(flag: "--metrics-listen", port: metrics.port, hostFlag: "--metrics-listen")], host: metrics.host))
        }
        try checkLocalSocketPath(directory)
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        guard let lock = try NodeLock.tryAcquire(dataDirectory: directory) else {
            throw ServerStartError.usage("another process holds \(directory.path)/\(NodeLock.fileName): a server or a restore is running on this directory")
        }
        if let interrupted = DataDirectoryLayout.interruptedRestore(directory) { throw ServerStartError.usage(interrupted) }
        let store = try ManagementStore(path: directory.appendingPathComponent(DataDirectoryLayout.database).path)
        if let problem = try store.verifyJournal() {
            logger.critical("refusing to start: the revision journal does not verify", metadata: ["problem": "\(problem)"])
            throw ServerStartError.usage(
                "The revision journal in \(directory.path)/\(DataDirectoryLayout.database) is broken: \(problem). Restore from a backup; the server will not run on it."
            )
        }
        if let head = try store.head() {
            logger.info("journal verified", metadata: ["revisions": "\(head.number)", "head": "\(head.hash)"])
        }
        let composer = NodeComposer(configuration: configuration, store: store)
        let membership = try await composer.secondaryMembership()
        let setup: NodeComposer.NodeSetup
        if let membership {
            setup = try await composer.secondarySetup(membership: membership)
        } else {
            setup = try await composer.primarySetup()
        }
        return try await composer.compose(setup, membership: membership, ports: ports, lock: lock)
    }

    /// The operator socket DIR/rampart.sock must fit a Unix socket address (108 bytes with its end):
    /// checked before the directory is created, since binding it later would fail after the first start.
    static func checkLocalSocketPath(_ directory: URL) throws {
        let path = directory.appendingPathComponent(DataDirectoryLayout.socket).path
        let pathBytesMax = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
        guard path.utf8.count <= pathBytesMax else {
            throw ServerStartError.failure(
                "--data \(directory.path): the operator socket \(path) would be \(path.utf8.count) bytes long, over the \(pathBytesMax) a Unix socket path may have; choose a shorter data directory path"
            )
        }
    }
}

/// The steps that compose a node on its opened store.
struct NodeComposer {
    let configuration: ServerConfiguration
    let store: ManagementStore
    var directory: URL { configuration.dataDirectory }
    var serverName: String { configuration.serverName }
    var logger: Logger { configuration.logger }

    /// What differs between a primary and a secondary once set up; everything after is the same.
    struct NodeSetup {
        let service: ManagementService
        /// This server's SIC identity (pki/node.key, node.pem, ica.pem).
        let credentials: NodeCredentials
        let apiTLS: TLSConfiguration
        let role: HAServerRole
    }

    func makeService() async throws -> ManagementService {
        let service = try ManagementService(
            store: store, identity: ServerIdentity(name: serverName, ipAddress: configuration.listen, apiPort: configuration.apiPort),
            logger: logger, logs: try LogStore(directory: directory), executor: configuration.serviceExecutor)
        await service.configureClock(configuration.clockThresholds)
        await service.configureTaskRetention(seconds: configuration.taskRetentionSeconds)
        return service
    }

    /// The primary: the Internal CA and API certificate (created at first start), the first
    /// administrator and revision 1, and its own SIC certificate.
    func primarySetup() async throws -> NodeSetup {
        let pki = try PKIDirectory.loadOrCreate(dataDirectory: directory, serverName: serverName, listenAddresses: apiCertificateNames(), now: Date())
        logger.info("internal CA ready", metadata: ["ica": "\(pki.icaOutcome)", "api-certificate": "\(pki.apiCertificateOutcome)"])
        let service = try await makeService()
        try await initializeIfNeeded(service)
        let serverUID =
            try store.setting("server-uid")
            ?? {
                let uid = SecureRandom.uuid()
                try store.setSetting("server-uid", uid)
                return uid
            }()
        let credentials = try ServerSICIdentity.loadOrIssue(pki: pki, identity: NodeIdentity(uid: serverUID, name: serverName), now: Date(), logger: logger)
        await service.configureSIC(authority: pki.internalCA)
        return NodeSetup(service: service, credentials: credentials, apiTLS: try pki.makeServerTLSConfiguration(), role: .primary)
    }

    /// A secondary: no administrator of its own; everything published comes from the active. pki/ holds
    /// its SIC identity and the group's Internal CA: its certificate from enrolment, its key from the
    /// server it joined (asked over SIC when missing, as at the first start), so its API certificate is
    /// issued by the group's CA like every server's, and a promotion finds the key it needs.
    func secondarySetup(membership: HAMembership) async throws -> NodeSetup {
        let pkiDirectory = directory.appendingPathComponent(DataDirectoryLayout.pki)
        let credentials = try NodeCredentials.load(from: pkiDirectory)
        var names = apiCertificateNames()
        if !FileManager.default.fileExists(atPath: pkiDirectory.appendingPathComponent(PKIDirectory.FileName.icaKey).path) {
            let servers =
                [SICAddress(host: membership.joinHost, port: membership.joinSICPort)]
                + (try store.objects(types: [.checkpointHost], offset: 0, limit: HALimits().serversMax, nameFilter: nil).objects).filter {
                    $0.name != serverName
                }
                .compactMap { $0.fields[ManagedObject.haSICAddressField]?.stringValue.flatMap(SICAddress.init(argument:)) }
            let addresses = await ServerCertificates.fetchICAKey(
                credentials: credentials, from: Array(servers.prefix(HALimits().serversMax)),
                pkiDirectory: pkiDirectory, logger: logger)
            names = ServerCertificates.apiNames(
                listen: configuration.listen, advertisedHost: configuration.advertiseSIC?.host,
                ownObjectAddresses: names + (addresses ?? []))
        }
        let apiTLS: TLSConfiguration
        let apiTLSDirectory = directory.appendingPathComponent(DataDirectoryLayout.apiTLS)
        do {
            let pki = try PKIDirectory.loadOrCreate(dataDirectory: directory, serverName: serverName, listenAddresses: names, now: Date())
            logger.info("API certificate from the group's Internal CA", metadata: ["api-certificate": "\(pki.apiCertificateOutcome)"])
            apiTLS = try pki.makeServerTLSConfiguration()
            // A node-local API CA from an earlier start (or an earlier Rampart) is trusted by no one now: remove it.
            try? FileManager.default.removeItem(at: apiTLSDirectory)
        } catch let error as TrustError where error.code == .icaKeyMissing {
            // No server gave the key (none reachable): serve HTTPS anyway, from a node-local CA, until a later start.
            logger.warning(
                "no Internal CA key yet: the API certificate comes from a node-local CA (api-tls/) until a start that has it; clients that trust pki/ica.pem cannot verify this server meanwhile"
            )
            try DurableFile.ensureDirectory(apiTLSDirectory, mode: 0o700)
            apiTLS = try PKIDirectory.loadOrCreate(
                dataDirectory: apiTLSDirectory, serverName: serverName,
                listenAddresses: names, now: Date()
            ).makeServerTLSConfiguration()
        }
        return NodeSetup(service: try await makeService(), credentials: credentials, apiTLS: apiTLS, role: .secondary)
    }

    /// The names of this server's API certificate (see `ServerCertificates.apiNames`).
    func apiCertificateNames() -> [String] {
        ServerCertificates.apiNames(
            listen: configuration.listen, advertisedHost: configuration.advertiseSIC?.host,
            ownObjectAddresses: ServerCertificates.objectAddresses(of: serverName, in: store))
    }

    /// This directory's secondary membership: the stored one, or a new one made by joining with
    /// `join` (enrol with the one-time key, learn the active's name over SIC). Nil for a primary.
    func secondaryMembership() async throws -> HAMembership? {
        if let membership = try HAMembership.load(directory) {
            guard membership.serverName == serverName else {
                throw ServerStartError.usage(
                    "this data directory is the secondary \(membership.serverName); start it with --server-name \(membership.serverName)")
            }
            return membership
        }
        guard let join = configuration.join, let activationKeyFile = configuration.activationKeyFile else { return nil }
        guard try store.head() == nil else {
            throw ServerStartError.usage("--join needs a fresh data directory: \(directory.path) already holds a management database")
        }
        let credentials: NodeCredentials
        do {
            credentials = try await NodeEnrolment.enrol(
                dataDirectory: directory.path, server: join, name: serverName, activationKeyFile: activationKeyFile,
                allowsClockSkew: configuration.enrolmentAllowsClockSkew)
        } catch let failure as NodeEnrolment.Failure {
            throw ServerStartError(description: failure.description, isUsage: failure.isUsage)
        }
        let (active, _) = try await SICNodeChannel(credentials: credentials, host: join.host, port: join.port).exchange(SICChannelMessage.ping())
        guard let active else { throw ServerStartError.failure("the active server at \(join) did not identify itself") }
        let membership = HAMembership(
            role: HAServerRole.secondary.rawValue, serverName: serverName, activeServer: active.name,
            joinHost: join.host, joinSICPort: join.port)
        try membership.save(directory)
        logger.notice("joined the HA group as a secondary", metadata: ["active": "\(active.name)", "sic": "\(join)"])
        return membership
    }

    func initializeIfNeeded(_ service: ManagementService) async throws {
        let password: String
        var generated = false
        if let adminPasswordFile = configuration.adminPasswordFile {
            guard let text = try? String(contentsOfFile: adminPasswordFile, encoding: .utf8) else {
                throw ServerStartError.usage("--admin-password-file: cannot read \(adminPasswordFile)")
            }
            password = text.trimmingCharacters(in: .newlines)
            guard !password.isEmpty else { throw ServerStartError.usage("--admin-password-file: the file is empty") }
        } else {
            password = SecureRandom.password(length: 20)
            generated = true
        }
        guard try await service.initializeIfEmpty(adminPassword: password) else { return }
        if generated {
            try DurableFile.write(Array((password + "\n").utf8), to: directory.appendingPathComponent(DataDirectoryLayout.initialAdminPassword), mode: 0o600)
            logger.notice("first start: administrator 'admin' created; its password is in \(directory.path)/\(DataDirectoryLayout.initialAdminPassword)")
        }
    }

    /// A management server of an HA group: the HA runtime, the mesh of SIC channels to the other
    /// management servers, the gateways' hub on the SIC port, the Web API over HTTPS and on the local socket.
    /// The release this server announces to its peers (the promotion's and `ha diagnose`'s versions check).
    /// FOR TESTS ONLY: `RAMPART_TEST_ANNOUNCED_VERSION` replaces it (at most 64 characters), so a test
    /// shows two releases without building two. Never set it in production.
    static var announcedSoftwareVersion: String {
        guard let given = ProcessInfo.processInfo.environment["RAMPART_TEST_ANNOUNCED_VERSION"], !given.isEmpty, given.count <= 64 else {
            return RampartRelease.version
        }
        return given
    }

    func compose(_ node: NodeSetup, membership: HAMembership?, ports: PortReservation, lock: NodeLock) async throws -> RampartNode {
        let service = node.service
        // The log subscribes first: it sees the node's events from the HA runtime's first step on.
        let eventLog = try EventLog(events: service.events, logger: logger)
        let recentEvents = try RecentEventsFeed(events: service.events, recent: service.recentEvents, serverName: serverName)
        let ica = ICAStateSync(pkiDirectory: directory.appendingPathComponent(DataDirectoryLayout.pki), service: service, logger: logger)
        if node.role == .secondary, let authority = ica.loadAuthority() {
            try await service.adoptICAState(authority: authority, revocationsText: try service.currentRevocations().jsonText)
        }
        var peers = Set(service.managementServers().map(\.name))
        if let membership { peers.insert(membership.activeServer) }
        peers.remove(serverName)
        guard peers.count < HALimits().serversMax else {
            throw ServerStartError.usage("\(peers.count) other management servers: an HA group holds at most \(HALimits().serversMax) servers")
        }
        let links = HAPeerLinks()
        let versions = PeerFacts.Versions(software: Self.announcedSoftwareVersion, schema: DatabaseFiles.managementSchema.count)
        let facts = PeerFacts(events: service.events, thresholds: configuration.clockThresholds)
        let runtime = try HARuntime(
            configuration: HAConfiguration(
                serverID: ServerID(serverName), peers: peers.sorted().map { ServerID($0) },
                softwareVersion: versions.software, schemaVersion: UInt32(versions.schema),
                limits: .overNetwork),
            store: store, bootstrapActive: node.role == .primary,
            snapshotDirectory: directory.appendingPathComponent(DataDirectoryLayout.haSnapshots),
            exportDirectory: directory.appendingPathComponent(DataDirectoryLayout.haExports), logger: logger,
            events: service.events, send: { try links.send($0) })
        // Subscribed before the runtime's first step: the node's first HA state is queued too.
        let smartTasks = try SmartTaskEngine(
            store: try DeliveryStore(path: directory.appendingPathComponent(DeliveryStore.fileName).path, limits: configuration.smartTaskLimits),
            catalog: ServiceSmartTaskCatalog(service: service), journal: JournalSource(store: store), events: service.events,
            environment: EngineEnvironment(serverName: serverName, limits: configuration.smartTaskLimits, isActive: { runtime.writesEnabled }),
            mail: configuration.smtpRelay.map(SmartTaskEngine.mailSender(relay:)), logger: logger)
        await service.attachSmartTaskPort(smartTasks)
        let apiAddressOf: @Sendable (ServerID) -> String? = { id in service.managementServers().first { $0.name == id.name }?.apiAddress }
        let checks = PromotionChecks(
            credentials: node.credentials, authority: { ica.loadAuthority() }, facts: facts, local: versions,
            peers: { runtime.status.peers.map(\.serverID.name) })
        await service.attachHA(
            HAWebAPIBridge(
                runtime: runtime, links: links, serverRole: node.role, activeAddress: apiAddressOf,
                peerIPAddress: { id in service.managementServers().first { $0.name == id.name }?.ipAddress },
                promotionChecks: { checks.evaluate(now: Date()) }, facts: facts))
        let sicSerial = NodeCertificate.serialHex(try node.credentials.certificate().serialNumber)
        if node.role == .primary, runtime.writesEnabled, let uid = try store.setting("server-uid") {
            try await service.registerPrimary(name: serverName, uid: uid, ipAddress: configuration.listen, sicSerial: sicSerial)
        }
        let channels = SICChannels()
        await service.attachSICChannels(channels)
        let sicListener = try await PeerListener.bind(
            PeerListenerConfiguration(
                host: configuration.listen, port: configuration.sicPort, identity: node.credentials.issuedIdentity,
                verifier: LiveSICVerifier(icaPEM: node.credentials.icaPEM, service: service),
                isGroupMember: HAMesh.groupMembership(service: service, serverName: serverName, join: membership)),
            logger: logger)
        let local = LocalAddresses(sic: configuration.advertiseSIC.map { "\($0)" } ?? "\(configuration.listen):\(sicListener.port)", sicSerial: sicSerial)
        let mesh = HAMesh(
            runtime: runtime, links: links, service: service, credentials: node.credentials, serverName: serverName,
            local: local, facts: facts, versions: versions, join: membership, ica: ica, channels: channels, logger: logger)
        let gateways = GatewayHub(service: service, channels: channels, logger: logger)
        await service.attachGateways(gateways)
        let sic = SICService(listener: sicListener, service: service, serverName: serverName, mesh: mesh, gateways: gateways, logger: logger)
        let bound = BoundPorts()
        let monitoring = try NodeMonitoring(
            service: service, runtime: runtime, facts: facts, credentials: node.credentials, metricsListen: configuration.metricsListen,
            logger: logger)
        let apiApp = try WebAPI.httpsApplication(
            service: service, host: configuration.listen, port: configuration.apiPort, tls: node.apiTLS,
            logger: logger, mounting: WebAPI.monitoringMounts(monitoring.endpoints),
            onRunning: { port in
                await service.apiListenerBound(port: port)
                await bound.api(port)
            })
        let localApp = WebAPI.localSocketApplication(
            service: service, path: directory.appendingPathComponent(DataDirectoryLayout.socket).path,
            logger: logger, onRunning: { await bound.local() })
        let announcer = NodeAnnouncer(
            bound: bound, directory: directory, local: local,
            settings: NodeSettings(
                serverName: serverName, listen: configuration.listen, apiPort: configuration.apiPort,
                sicPort: sicListener.port),
            logger: logger)
        let operations = OperationsService(directory: directory, serverName: serverName, events: service.events, logger: logger)
        await service.attachOperations(operations.provider)
        await service.attachClockOffsets { NodeMonitoring.clockOffsets(runtime: runtime, facts: facts) }
        let certificates = CertificateWatch(credentials: node.credentials, events: service.events, logger: logger)
        let named: [(String, any Service)] =
            [
                ("the event log", eventLog), ("the recent events", recentEvents), ("the Web API", apiApp), ("the local socket", localApp),
                ("the SIC port", sic), ("node.json", announcer), ("HA", HARuntimeService(runtime: runtime)), ("the HA mesh", mesh),
                ("operations", operations), ("the gateways", gateways), ("the certificate watch", certificates), ("SmartTasks", smartTasks),
            ] + monitoring.services.map { ("monitoring", $0) }
        let services = named.map { NamedService(name: $0.0, base: $0.1, logger: logger) as any Service }
        return RampartNode(
            configuration: configuration, service: service, runtime: runtime, sicPort: sicListener.port, services: services,
            bound: bound, ports: ports, lock: lock)
    }
}

/// Collects the bound ports of both listeners.
actor BoundPorts {
    var apiPort: Int?
    var localReady = false
    func api(_ port: Int) { apiPort = port }
    func local() { localReady = true }
    var ready: Int? { localReady ? apiPort : nil }
}

/// Writes node.json once both listeners are bound, then waits for shutdown.
struct NodeAnnouncer: Service {
    let bound: BoundPorts
    let directory: URL
    let local: LocalAddresses
    let settings: NodeSettings
    let logger: Logger

    func run() async throws {
        var port: Int?
        // Bounded wait for the listeners; they bind in milliseconds or have failed.
        for _ in 0..<6_000 {
            port = await bound.ready
            if port != nil || Task.isCancelled { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let port else { return }
        var settings = settings
        settings.apiPort = port
        settings.backupSchedule = (try? NodeSettings.read(dataDirectory: directory.path))?.backupSchedule
        local.apiBound("\(settings.listen):\(port)")
        try settings.write(dataDirectory: directory.path)
        logger.notice("Rampart management server ready", metadata: ["api": "https://\(settings.listen):\(port)/web_api", "data": "\(directory.path)"])
        try? await gracefulShutdown()
    }
}
