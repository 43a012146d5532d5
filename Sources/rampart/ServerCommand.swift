import ArgumentParser
import Foundation
import HACore
import HARuntime
import Hummingbird
import HummingbirdTLS
import Logging
import ManagementService
import ManagementModel
import NIOCore
import NIOPosix
import Operations
import PeerTransport
import ServiceLifecycle
import Store
import TrustCore
import WebAPI

/// Node-local settings (never synchronized): where this server listens. Written after the
/// listeners are bound, so `api-port` is the real port even when 0 was asked for.
struct NodeSettings: Codable {
    var serverName: String
    var listen: String
    var apiPort: Int
    var sicPort: Int?
    /// Scheduled backups of this node (`rampart backup schedule`); kept when the server rewrites the file.
    var backupSchedule: BackupSchedule?
    enum CodingKeys: String, CodingKey {
        case serverName = "server-name", listen, apiPort = "api-port", sicPort = "sic-port", backupSchedule = "backup-schedule"
    }

    func write(dataDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(self), to: URL(fileURLWithPath: dataDirectory).appendingPathComponent("node.json"), mode: 0o600)
    }

    static func read(dataDirectory: String) throws -> NodeSettings {
        let url = URL(fileURLWithPath: dataDirectory).appendingPathComponent("node.json")
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ValidationError("No node.json in \(dataDirectory): is a Rampart server running with --data \(dataDirectory)?")
        }
        return try JSONDecoder().decode(NodeSettings.self, from: data)
    }
}

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run a Rampart management server on a data directory.",
        discussion: """
        The first start on an empty directory initialises a primary server: the management database
        (rampart.sqlite), the Internal CA and the API's HTTPS certificate (pki/), and the first
        administrator `admin`, whose random password is written to DIR/initial-admin-password (0600)
        unless --admin-password-file gives one. Later starts verify the revision journal's hash chain
        and refuse to run on a broken one.

        The Web API listens with HTTPS on --listen:--api-port (POST /web_api/<command>, Check Point
        conventions); local operator commands use DIR/rampart.sock. SIGTERM or SIGINT stops the server
        gracefully: requests in flight, a publish included, finish first.

        Example:
          rampart server --data ./mgmt1 --api-port 8443
        """)

    @Option(name: .long, help: "Data directory (created when missing).")
    var data: String

    @Option(name: .long, help: "HTTPS port of the Web API (0 picks a free port; node.json tells which).")
    var apiPort: Int = 8443

    @Option(name: .long, help: "SIC port: enrolment and mutual-TLS channels between servers (0 picks a free port).")
    var sicPort: Int = 18191

    @Option(name: .long, help: "Address the Web API and the SIC port bind to.")
    var listen: String = "127.0.0.1"

    @Option(name: .long, help: "On first start: file holding the password of `admin` (else a random one is generated).")
    var adminPasswordFile: String?

    @Option(name: .long, help: "This server's name (a host name); used in certificates and revisions.")
    var serverName: String = "primary"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "First start of a secondary: the active server's SIC address, HOST:PORT (enrol, then synchronize).")
    var join: SICAddress?

    @Option(name: .long, help: "With --join: file holding the one-time activation key given to this server's checkpoint-host object.")
    var activationKeyFile: String?

    @Option(name: .long, help: "The SIC address the other management servers use to reach this one, HOST:PORT (default: --listen and the SIC port; set it behind NAT or a proxy).")
    var advertiseSIC: SICAddress?

    @Option(name: .long, help: "Threads that carry the network and run requests (1 to \(Self.eventLoopsMax); default: half the cores, at least 1). On a small machine, handing a publish between threads costs more than running TLS on several.")
    var eventLoops: Int?

    static let eventLoopsMax = 64
    static var defaultEventLoops: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }

    func validate() throws {
        guard (0...65535).contains(apiPort) else { throw ValidationError("--api-port must be 0 to 65535") }
        guard (0...65535).contains(sicPort) else { throw ValidationError("--sic-port must be 0 to 65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        if let eventLoops, !(1...Self.eventLoopsMax).contains(eventLoops) { throw ValidationError("--event-loops must be 1 to \(Self.eventLoopsMax)") }
        if apiPort == sicPort, apiPort != 0 { throw ValidationError("--api-port and --sic-port must differ (both are \(apiPort))") }
        if join != nil, activationKeyFile == nil { throw ValidationError("--join needs --activation-key-file") }
        if join != nil, adminPasswordFile != nil { throw ValidationError("a secondary has no administrator of its own: --admin-password-file does not go with --join") }
    }

    func run() async throws {
        // Tasks run on NIO's event loops, where the sockets are: a request or an HA message no longer
        // crosses to another thread pool and back (about 0.3 ms of a publish's 1.3 ms on two cores).
        // Blocking work of seconds (backups, snapshot copies) is handed to a dispatch queue (`offloaded`).
        NIOSingletons.groupLoopCountSuggestion = eventLoops ?? Self.defaultEventLoops
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        umask(0o077)  // every file and socket this server creates is private to its user
        var logger = Logger(label: "rampart")
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        let directory = URL(fileURLWithPath: data).standardizedFileURL
        // Every port before anything in the data directory: a port in use leaves a fresh directory as it
        // was (absent or empty) and a joining secondary's one-time key unspent.
        let ports = try PortReservation.reserve([.init(flag: "--api-port", port: apiPort), .init(flag: "--sic-port", port: sicPort)],
                                                host: listen)
        defer { ports.release() }
        try Self.checkLocalSocketPath(directory)
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        let lock = try NodeLock.tryAcquire(dataDirectory: directory)
        guard lock != nil else { throw ValidationError("another process holds \(directory.path)/\(NodeLock.fileName): a server or a restore is running on this directory") }
        if let interrupted = DataDirectoryLayout.interruptedRestore(directory) { throw ValidationError(interrupted) }
        defer { withExtendedLifetime(lock) {} }

        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        if let problem = try store.verifyJournal() {
            logger.critical("refusing to start: the revision journal does not verify", metadata: ["problem": "\(problem)"])
            throw ValidationError("The revision journal in \(directory.path)/rampart.sqlite is broken: \(problem). Restore from a backup; the server will not run on it.")
        }
        if let head = try store.head() {
            logger.info("journal verified", metadata: ["revisions": "\(head.number)", "head": "\(head.hash)"])
        }
        let membership = try await secondaryMembership(directory: directory, store: store, logger: logger)
        let node: NodeSetup
        if let membership {
            node = try await secondarySetup(directory: directory, store: store, membership: membership, logger: logger)
        } else {
            node = try await primarySetup(directory: directory, store: store, logger: logger)
        }
        try await runNode(node, membership: membership, directory: directory, store: store, logger: logger)
        logger.info("server stopped")
    }

    /// The operator socket DIR/rampart.sock must fit a Unix socket address (108 bytes with its end):
    /// checked before the directory is created, since binding it later would fail after the first start.
    static func checkLocalSocketPath(_ directory: URL) throws {
        let path = directory.appendingPathComponent("rampart.sock").path
        let pathBytesMax = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
        guard path.utf8.count <= pathBytesMax else {
            throw CommandFailure("--data \(directory.path): the operator socket \(path) would be \(path.utf8.count) bytes long, over the \(pathBytesMax) a Unix socket path may have; choose a shorter data directory path")
        }
    }

    /// What differs between a primary and a secondary once set up; everything after is the same.
    struct NodeSetup {
        let service: ManagementService
        /// This server's SIC identity (pki/node.key, node.pem, ica.pem).
        let credentials: NodeCredentials
        let apiTLS: TLSConfiguration
        let role: HAServerRole
    }

    /// The primary: the Internal CA and API certificate (created at first start), the first
    /// administrator and revision 1, and its own SIC certificate.
    func primarySetup(directory: URL, store: ManagementStore, logger: Logger) async throws -> NodeSetup {
        let pki = try PKIDirectory.loadOrCreate(dataDirectory: directory, serverName: serverName, listenAddresses: apiCertificateNames(store), now: Date())
        logger.info("internal CA ready", metadata: ["ica": "\(pki.icaOutcome)", "api-certificate": "\(pki.apiCertificateOutcome)"])
        let service = try ManagementService(store: store, identity: ServerIdentity(name: serverName, ipAddress: listen, apiPort: apiPort), logger: logger,
                                            logs: try LogStore(directory: directory))
        try await initializeIfNeeded(service, directory: directory, logger: logger)
        let serverUID = try store.setting("server-uid") ?? {
            let uid = SecureRandom.uuid()
            try store.setSetting("server-uid", uid)
            return uid
        }()
        let credentials = try ServerSICIdentity.loadOrIssue(pki: pki, identity: NodeIdentity(uid: serverUID, name: serverName), now: Date(), logger: logger)
        await service.configureSIC(authority: pki.internalCA)
        for warning in CertificateLifecycle.expiryWarnings(icaNotValidAfter: pki.internalCA.notValidAfter,
                                                           nodeNotValidAfter: try? credentials.certificate().notValidAfter, now: Date()) {
            logger.warning("\(warning)")
        }
        return NodeSetup(service: service, credentials: credentials, apiTLS: try pki.makeServerTLSConfiguration(), role: .primary)
    }

    /// A secondary: no administrator of its own; everything published comes from the active. pki/ holds
    /// its SIC identity and the group's Internal CA: its certificate from enrolment, its key from the
    /// server it joined (asked over SIC when missing, as at the first start), so its API certificate is
    /// issued by the group's CA like every server's, and a promotion finds the key it needs.
    func secondarySetup(directory: URL, store: ManagementStore, membership: HAMembership, logger: Logger) async throws -> NodeSetup {
        let pkiDirectory = directory.appendingPathComponent("pki")
        let credentials = try NodeCredentials.load(from: pkiDirectory)
        var names = apiCertificateNames(store)
        if !FileManager.default.fileExists(atPath: pkiDirectory.appendingPathComponent(PKIDirectory.FileName.icaKey).path) {
            let servers = [SICAddress(host: membership.joinHost, port: membership.joinSICPort)]
                + (try store.objects(types: [.checkpointHost], offset: 0, limit: HALimits().serversMax, nameFilter: nil).objects).filter { $0.name != serverName }
                    .compactMap { $0.fields[ManagedObject.haSICAddressField]?.stringValue.flatMap(SICAddress.init(argument:)) }
            let addresses = await ServerCertificates.fetchICAKey(credentials: credentials, from: Array(servers.prefix(HALimits().serversMax)),
                                                                 pkiDirectory: pkiDirectory, logger: logger)
            names = ServerCertificates.apiNames(listen: listen, advertisedHost: advertiseSIC?.host, ownObjectAddresses: names + (addresses ?? []))
        }
        let apiTLS: TLSConfiguration
        do {
            let pki = try PKIDirectory.loadOrCreate(dataDirectory: directory, serverName: serverName, listenAddresses: names, now: Date())
            logger.info("API certificate from the group's Internal CA", metadata: ["api-certificate": "\(pki.apiCertificateOutcome)"])
            apiTLS = try pki.makeServerTLSConfiguration()
            // A node-local API CA from an earlier start (or an earlier Rampart) is trusted by no one now: remove it.
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("api-tls"))
        } catch let error as TrustError where error.code == .icaKeyMissing {
            // No server gave the key (none reachable): serve HTTPS anyway, from a node-local CA, until a later start.
            logger.warning("no Internal CA key yet: the API certificate comes from a node-local CA (api-tls/) until a start that has it; clients that trust pki/ica.pem cannot verify this server meanwhile")
            try DurableFile.ensureDirectory(directory.appendingPathComponent("api-tls"), mode: 0o700)
            apiTLS = try PKIDirectory.loadOrCreate(dataDirectory: directory.appendingPathComponent("api-tls"), serverName: serverName,
                                                   listenAddresses: names, now: Date()).makeServerTLSConfiguration()
        }
        let service = try ManagementService(store: store, identity: ServerIdentity(name: serverName, ipAddress: listen, apiPort: apiPort), logger: logger,
                                            logs: try LogStore(directory: directory))
        return NodeSetup(service: service, credentials: credentials, apiTLS: apiTLS, role: .secondary)
    }

    /// The names of this server's API certificate (see `ServerCertificates.apiNames`).
    func apiCertificateNames(_ store: ManagementStore) -> [String] {
        ServerCertificates.apiNames(listen: listen, advertisedHost: advertiseSIC?.host,
                                    ownObjectAddresses: ServerCertificates.objectAddresses(of: serverName, in: store))
    }

    /// Runs a management server of an HA group: the HA runtime, the mesh of SIC channels to the other
    /// management servers, the Web API over HTTPS and on the local socket.
    func runNode(_ node: NodeSetup, membership: HAMembership?, directory: URL, store: ManagementStore, logger: Logger) async throws {
        let service = node.service
        let ica = ICAStateSync(pkiDirectory: directory.appendingPathComponent("pki"), service: service, logger: logger)
        if node.role == .secondary, let authority = ica.loadAuthority() {
            try await service.adoptICAState(authority: authority, revocationsText: try service.currentRevocations().jsonText)
        }
        var peers = Set(service.managementServers().map(\.name))
        if let membership { peers.insert(membership.activeServer) }
        peers.remove(serverName)
        guard peers.count < HALimits().serversMax else {
            throw ValidationError("\(peers.count) other management servers: an HA group holds at most \(HALimits().serversMax) servers")
        }
        let links = HAPeerLinks()
        let versions = PeerFacts.Versions(software: RampartRelease.version, schema: DatabaseFiles.managementSchema.count)
        let facts = PeerFacts()
        let runtime = try HARuntime(configuration: HAConfiguration(serverID: ServerID(serverName), peers: peers.sorted().map { ServerID($0) },
                                                                   softwareVersion: versions.software, schemaVersion: UInt32(versions.schema),
                                                                   limits: .overNetwork),
                                    store: store, bootstrapActive: node.role == .primary,
                                    snapshotDirectory: directory.appendingPathComponent("ha-snapshots"),
                                    exportDirectory: directory.appendingPathComponent("ha-exports"), logger: logger, send: { links.send($0) })
        let apiAddressOf: @Sendable (ServerID) -> String? = { id in service.managementServers().first { $0.name == id.name }?.apiAddress }
        let checks = PromotionChecks(credentials: node.credentials, authority: { ica.loadAuthority() }, facts: facts, local: versions,
                                     peers: { runtime.status.peers.map(\.serverID.name) })
        await service.attachHA(HAWebAPIBridge(runtime: runtime, links: links, serverRole: node.role, activeAddress: apiAddressOf,
                                              peerIPAddress: { id in service.managementServers().first { $0.name == id.name }?.ipAddress },
                                              promotionChecks: { checks.evaluate(now: Date()) }))
        let sicSerial = NodeCertificate.serialHex(try node.credentials.certificate().serialNumber)
        if node.role == .primary, runtime.writesEnabled, let uid = try store.setting("server-uid") {
            try await service.registerPrimary(name: serverName, uid: uid, ipAddress: listen, sicSerial: sicSerial)
        }
        let channels = SICChannels()
        await service.attachSICChannels(channels)
        let sicListener = try await PeerListener.bind(
            PeerListenerConfiguration(host: listen, port: sicPort, identity: node.credentials.issuedIdentity,
                                      verifier: LiveSICVerifier(icaPEM: node.credentials.icaPEM, service: service)),
            logger: logger)
        let local = LocalAddresses(sic: advertiseSIC.map { "\($0.host):\($0.port)" } ?? "\(listen):\(sicListener.port)", sicSerial: sicSerial)
        let mesh = HAMesh(runtime: runtime, links: links, service: service, credentials: node.credentials, serverName: serverName,
                          local: local, facts: facts, versions: versions, join: membership, ica: ica, channels: channels, logger: logger)
        let gateways = GatewayHub(service: service, channels: channels, logger: logger)
        await service.attachGateways(gateways)
        let sic = SICService(listener: sicListener, service: service, serverName: serverName, mesh: mesh, gateways: gateways, logger: logger)
        let bound = BoundPorts()
        let apiApp = try WebAPI.httpsApplication(service: service, host: listen, port: apiPort, tls: node.apiTLS,
                                                 logger: logger, onRunning: { port in
                                                     await service.apiListenerBound(port: port)
                                                     await bound.api(port)
                                                 })
        let localApp = WebAPI.localSocketApplication(service: service, path: directory.appendingPathComponent("rampart.sock").path,
                                                     logger: logger, onRunning: { await bound.local() })
        let announcer = NodeAnnouncer(bound: bound, directory: directory, local: local,
                                      settings: NodeSettings(serverName: serverName, listen: listen, apiPort: apiPort, sicPort: sicListener.port), logger: logger)
        let operations = OperationsService(directory: directory, serverName: serverName, logger: logger)
        await service.attachOperations(operations.provider)
        let group = ServiceGroup(configuration: .init(services: [apiApp, localApp, sic, announcer, HARuntimeService(runtime: runtime), mesh, operations, gateways],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// This directory's secondary membership: the stored one, or a new one made by joining with
    /// --join (enrol with the one-time key, learn the active's name over SIC). Nil for a primary.
    func secondaryMembership(directory: URL, store: ManagementStore, logger: Logger) async throws -> HAMembership? {
        if let membership = try HAMembership.load(directory) {
            guard membership.serverName == serverName else {
                throw ValidationError("this data directory is the secondary \(membership.serverName); start it with --server-name \(membership.serverName)")
            }
            return membership
        }
        guard let join, let activationKeyFile else { return nil }
        guard try store.head() == nil else {
            throw ValidationError("--join needs a fresh data directory: \(directory.path) already holds a management database")
        }
        let credentials = try await NodeEnrolment.enrol(dataDirectory: directory.path, server: join, name: serverName, activationKeyFile: activationKeyFile)
        let (active, _) = try await SICNodeChannel(credentials: credentials, host: join.host, port: join.port).exchange(SICChannelMessage.ping())
        guard let active else { throw CommandFailure("the active server at \(join.host):\(join.port) did not identify itself") }
        let membership = HAMembership(role: HAServerRole.secondary.rawValue, serverName: serverName, activeServer: active.name,
                                      joinHost: join.host, joinSICPort: join.port)
        try membership.save(directory)
        logger.notice("joined the HA group as a secondary", metadata: ["active": "\(active.name)", "sic": "\(join.host):\(join.port)"])
        return membership
    }

    func initializeIfNeeded(_ service: ManagementService, directory: URL, logger: Logger) async throws {
        let password: String
        var generated = false
        if let adminPasswordFile {
            guard let text = try? String(contentsOfFile: adminPasswordFile, encoding: .utf8) else {
                throw ValidationError("--admin-password-file: cannot read \(adminPasswordFile)")
            }
            password = text.trimmingCharacters(in: .newlines)
            guard !password.isEmpty else { throw ValidationError("--admin-password-file: the file is empty") }
        } else {
            password = SecureRandom.password(length: 20)
            generated = true
        }
        guard try await service.initializeIfEmpty(adminPassword: password) else { return }
        if generated {
            try DurableFile.write(Array((password + "\n").utf8), to: directory.appendingPathComponent("initial-admin-password"), mode: 0o600)
            logger.notice("first start: administrator 'admin' created; its password is in \(directory.path)/initial-admin-password")
        }
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
