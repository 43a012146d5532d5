import ArgumentParser
import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import ManagementAPI
import ManagementModel
import NIOCore
import PeerTransport
import ServiceLifecycle
import Store
import TrustCore

/// Node-local settings (never synchronized): where this server listens. Written after the
/// listeners are bound, so `api-port` is the real port even when 0 was asked for.
struct NodeSettings: Codable {
    var serverName: String
    var listen: String
    var apiPort: Int
    var sicPort: Int?
    enum CodingKeys: String, CodingKey {
        case serverName = "server-name", listen, apiPort = "api-port", sicPort = "sic-port"
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

    func validate() throws {
        guard (0...65535).contains(apiPort) else { throw ValidationError("--api-port must be 0 to 65535") }
        guard (0...65535).contains(sicPort) else { throw ValidationError("--sic-port must be 0 to 65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
    }

    func run() async throws {
        umask(0o077)  // every file and socket this server creates is private to its user
        var logger = Logger(label: "rampart")
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        let directory = URL(fileURLWithPath: data).standardizedFileURL
        try DurableFile.ensureDirectory(directory, mode: 0o700)

        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        if let problem = try store.verifyJournal() {
            logger.critical("refusing to start: the revision journal does not verify", metadata: ["problem": "\(problem)"])
            throw ValidationError("The revision journal in \(directory.path)/rampart.sqlite is broken: \(problem). Restore from a backup; the server will not run on it.")
        }
        if let head = try store.head() {
            logger.info("journal verified", metadata: ["revisions": "\(head.number)", "head": "\(head.hash)"])
        }
        let pki = try PKIDirectory.loadOrCreate(dataDirectory: directory, serverName: serverName, listenAddresses: [listen], now: Date())
        logger.info("internal CA ready", metadata: ["ica": "\(pki.icaOutcome)", "api-certificate": "\(pki.apiCertificateOutcome)"])
        let identity = ServerIdentity(name: serverName, ipAddress: listen, apiPort: apiPort)
        let service = try ManagementService(store: store, identity: identity, logger: logger)
        try await initializeIfNeeded(service, directory: directory, logger: logger)

        let serverUID = try store.setting("server-uid") ?? {
            let uid = SecureRandom.uuid()
            try store.setSetting("server-uid", uid)
            return uid
        }()
        let sicIdentity = try ServerSICIdentity.loadOrIssue(pki: pki, identity: NodeIdentity(uid: serverUID, name: serverName), now: Date(), logger: logger)
        await service.configureSIC(authority: pki.internalCA)
        for warning in CertificateLifecycle.expiryWarnings(icaNotValidAfter: pki.internalCA.notValidAfter,
                                                           nodeNotValidAfter: try? sicIdentity.certificate().notValidAfter, now: Date()) {
            logger.warning("\(warning)")
        }
        let sicListener = try await PeerListener.bind(
            PeerListenerConfiguration(host: listen, port: sicPort, identity: sicIdentity.issuedIdentity,
                                      verifier: LiveSICVerifier(icaPEM: pki.internalCA.certificatePEM, service: service)),
            logger: logger)
        let sic = SICService(listener: sicListener, service: service, serverName: serverName, logger: logger)
        let bound = BoundPorts()
        let apiApp = try WebAPI.httpsApplication(service: service, host: listen, port: apiPort, tls: try pki.makeServerTLSConfiguration(),
                                                 logger: logger, onRunning: { port in
                                                     await service.apiListenerBound(port: port)
                                                     await bound.api(port)
                                                 })
        let localApp = WebAPI.localSocketApplication(service: service, path: directory.appendingPathComponent("rampart.sock").path,
                                                     logger: logger, onRunning: { await bound.local() })
        let announcer = NodeAnnouncer(bound: bound, directory: directory, settings: NodeSettings(serverName: serverName, listen: listen, apiPort: apiPort, sicPort: sicListener.port), logger: logger)
        let group = ServiceGroup(configuration: .init(services: [apiApp, localApp, sic, announcer], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        logger.info("server stopped")
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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(settings), to: directory.appendingPathComponent("node.json"), mode: 0o600)
        logger.notice("Rampart management server ready", metadata: ["api": "https://\(settings.listen):\(port)/web_api", "data": "\(directory.path)"])
        try? await gracefulShutdown()
    }
}
