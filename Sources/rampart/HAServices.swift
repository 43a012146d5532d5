import Foundation
import HACore
import HARuntime
import Logging
import ManagementService
import ManagementModel
import PeerTransport
import ServiceLifecycle
import Store
import TrustCore

/// Node-local HA membership (never synchronized), DIR/ha.json: written once a secondary has joined,
/// so a restart needs no --join and never enrols again. A directory without it is a primary's.
struct HAMembership: Codable, Equatable {
    var role: String
    var serverName: String
    var activeServer: String
    var joinHost: String
    var joinSICPort: Int
    enum CodingKeys: String, CodingKey {
        case role, serverName = "server-name", activeServer = "active-server", joinHost = "join-host", joinSICPort = "join-sic-port"
    }

    static func file(_ directory: URL) -> URL { directory.appendingPathComponent("ha.json") }

    static func load(_ directory: URL) throws -> HAMembership? {
        guard let data = FileManager.default.contents(atPath: file(directory).path) else { return nil }
        return try JSONDecoder().decode(HAMembership.self, from: data)
    }

    func save(_ directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(self), to: Self.file(directory), mode: 0o600)
    }
}

/// Runs the HA runtime's clock and inbox for the server's lifetime.
struct HARuntimeService: Service {
    let runtime: HARuntime

    func run() async throws {
        await cancelWhenGracefulShutdown { await runtime.run() }
    }
}

/// Bounds and periods of the links between management servers.
enum HALinkLimits {
    static let reconnectDelayMinMilliseconds = 100
    static let reconnectDelayMaxMilliseconds = 2_000
    /// How often membership, addresses and the ICA state are reconciled.
    static let reconcileIntervalMilliseconds = 250
    /// How often each channel carries this server's wall clock (`ha-clock`), for the promotion's clock check.
    static let clockIntervalMilliseconds = 1_000
    /// A channel silent this long is closed (heartbeats come every 100 ms): a black-holed TCP
    /// connection would otherwise hold the route until the kernel gives up on it, many minutes later.
    static let channelSilenceMilliseconds = 5_000
}

/// Where this server can be reached, as it announces itself (the API port is known once bound), and
/// the serial of the SIC certificate it presents: the active records it, so that whichever server is
/// active can revoke this one.
final class LocalAddresses: @unchecked Sendable {
    private let lock = NSLock()
    private var sicValue: String
    private var apiValue: String?
    let sicSerial: String

    init(sic: String, sicSerial: String) {
        sicValue = sic
        self.sicSerial = sicSerial
    }
    var sic: String { lock.withLock { sicValue } }
    var api: String? { lock.withLock { apiValue } }
    func apiBound(_ address: String) { lock.withLock { apiValue = address } }
}

/// Addresses (and certificate serials) peers announced on their channels; the active records them in the database.
final class AnnouncedAddresses: @unchecked Sendable {
    typealias Record = (name: String, sic: String, api: String, serial: String?)
    private let lock = NSLock()
    private var byName: [String: Record] = [:]

    func record(_ name: String, _ message: JSONValue) {
        guard let sic = message["sic-address"]?.stringValue, let api = message["api-address"]?.stringValue,
              sic.utf8.count <= 300, api.utf8.count <= 300 else { return }
        let serial = message["sic-serial"]?.stringValue.flatMap { RevocationList.isValidSerial($0) ? $0 : nil }
        lock.withLock { byName[name] = (name, sic, api, serial) }
    }

    var all: [Record] { lock.withLock { Array(byName.values) } }
}

/// One HA channel over an established SIC connection: queued outbound messages to the peer are
/// written by a child task while inbound messages go to `inbound`. Returns when either side ends.
enum HAChannel {
    /// Sent first by the server that dialed: who it is and where it listens.
    static let attachType = "ha-attach"
    /// The answer of the server that accepted: the same facts about itself.
    static let memberType = "ha-member"
    /// Active → standby: the Internal CA state (see `ICAStateSync`).
    static let icaType = "ha-ica"
    /// Either way, every `HALinkLimits.clockIntervalMilliseconds`: the sender's wall clock.
    static let clockType = "ha-clock"
    /// Sent just before a channel is cut because the peer's certificate was revoked: why.
    static let revokedType = "sic-revoked"

    /// Who this server is, where it listens, the serial of its SIC certificate, and what it runs.
    static func announcement(_ type: String, name: String, addresses: LocalAddresses, versions: PeerFacts.Versions) -> JSONValue {
        ["type": .string(type), "name": .string(name), "sic-address": .string(addresses.sic), "api-address": .string(addresses.api ?? ""),
         "sic-serial": .string(addresses.sicSerial),
         "software-version": .string(versions.software), "schema-version": .int(Int64(versions.schema))]
    }

    static func clock(nowMilliseconds: Int64) -> JSONValue { ["type": .string(clockType), "sent-at-ms": .int(nowMilliseconds)] }

    /// `frames` is the connection's one inbound iterator (a connection allows only one): the caller may
    /// have read the first frames from it already. `cutOff` yields when the peer's certificate is revoked:
    /// the peer is told why, then the channel closes at once (`onCutOff` runs after).
    static func pump(_ connection: PeerConnection, link: HAPeerLinks.Link, frames: inout PeerInboundFrames.AsyncIterator,
                     cutOff: AsyncStream<String>, onCutOff: @escaping @Sendable (String) -> Void,
                     inbound: (PeerFrame) async throws -> Void) async throws {
        let lastHeard = LastHeard()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in link.replaced {}
                // The route was replaced by a newer channel (or detached): this one is done.
                await connection.close()
            }
            group.addTask {
                for await reason in cutOff {
                    connection.sendNow(SICChannelMessage.frame(["type": .string(revokedType), "message": .string(reason)]))
                    await connection.close()
                    onCutOff(reason)
                    return
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(HALinkLimits.channelSilenceMilliseconds / 5))
                    if lastHeard.silence > .milliseconds(HALinkLimits.channelSilenceMilliseconds) {
                        await connection.close()
                        return
                    }
                }
            }
            while let frame = try await frames.next() {
                lastHeard.now()
                guard frame.type == .message else { continue }
                try await inbound(frame)
            }
            group.cancelAll()
        }
    }
}

/// When a channel last received a frame.
final class LastHeard: @unchecked Sendable {
    private let lock = NSLock()
    private var at = ContinuousClock.now
    func now() { lock.withLock { at = ContinuousClock.now } }
    var silence: Duration { ContinuousClock.now - lock.withLock { at } }
}

/// A server to dial, and the identity its certificate must carry (nil: only the name is checked).
struct DialTarget: Sendable, Equatable {
    let name: String
    let host: String
    let port: Int
    let identity: NodeIdentity?
}

/// The dial loops running, and what each should dial now.
final class DialPlan: @unchecked Sendable {
    private let lock = NSLock()
    private var targets: [String: DialTarget] = [:]
    private var running: Set<String> = []

    /// Sets the targets; returns the names that need a new dial loop.
    func update(_ newTargets: [DialTarget]) -> [String] {
        lock.withLock {
            targets = Dictionary(newTargets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
            let starting = targets.keys.filter { !running.contains($0) }
            running.formUnion(starting)
            return starting
        }
    }

    /// The current target for `name`; nil ends its loop (and frees the name for a later one).
    func target(_ name: String) -> DialTarget? {
        lock.withLock {
            guard let target = targets[name] else {
                running.remove(name)
                return nil
            }
            return target
        }
    }
}

/// The HA group's links: a full mesh of SIC channels between management servers, one per pair. The
/// server whose name sorts first dials; a server whose own addresses are not yet recorded (just
/// joined, or restarted on other ports) dials everyone it can, so that it gets announced. Every
/// channel carries HA core messages both ways, the servers' addresses, and the ICA state.
struct HAMesh: Service {
    let runtime: HARuntime
    let links: HAPeerLinks
    let service: ManagementService
    let credentials: NodeCredentials
    let serverName: String
    let local: LocalAddresses
    let announced = AnnouncedAddresses()
    /// What peers say of their versions and clocks (the promotion checks read it).
    let facts: PeerFacts
    let versions: PeerFacts.Versions
    /// A secondary's join target: the only server it can reach before its database is synchronized.
    let join: HAMembership?
    let ica: ICAStateSync
    /// Every open SIC channel, so a revocation closes this mesh's channels to the node at once.
    let channels: SICChannels
    let logger: Logger

    func run() async throws {
        let connector = try PeerConnector(identity: credentials.issuedIdentity,
                                          verifier: LiveSICVerifier(icaPEM: credentials.icaPEM, service: service), logger: logger)
        let plan = DialPlan()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                var clockSentAt = ContinuousClock.now - .seconds(60)
                while !Task.isCancelled {
                    let members = service.managementServers()
                    await reconcile(members)
                    if ContinuousClock.now - clockSentAt >= .milliseconds(HALinkLimits.clockIntervalMilliseconds) {
                        clockSentAt = ContinuousClock.now
                        let clock = HAChannel.clock(nowMilliseconds: Self.wallClockMilliseconds())
                        for peer in runtime.status.peers.map(\.serverID) { links.send(clock, to: peer) }
                    }
                    for name in plan.update(dialTargets(members)) {
                        group.addTask { await dialLoop(name, plan: plan, connector: connector) }
                    }
                    try? await Task.sleep(for: .milliseconds(HALinkLimits.reconcileIntervalMilliseconds))
                }
                group.cancelAll()
            }
        }
    }

    // MARK: membership

    /// Keeps the core's peers equal to the database's management servers, records announced
    /// addresses (on the active), and sends the ICA state to standbys that lack it.
    func reconcile(_ members: [ManagementServerEntry]) async {
        let synchronized = members.contains { $0.name == serverName }
        let current = Set(runtime.status.peers.map(\.serverID.name))
        var wanted = synchronized ? Set(members.map(\.name)) : current
        if let join { wanted.insert(join.activeServer) }
        wanted.remove(serverName)
        for name in wanted.subtracting(current).sorted() { runtime.admin(.addPeer(ServerID(name))) }
        if synchronized {
            for name in current.subtracting(wanted).sorted() where name != join?.activeServer { runtime.admin(.removePeer(ServerID(name))) }
        }
        // Only an active that has heard from its group publishes on its own: an old active restarting
        // in a stale epoch must learn of the newer one before it writes anything (a system change made
        // in that window would be a needless collision).
        let status = runtime.status
        guard runtime.writesEnabled, status.peers.isEmpty || status.peers.contains(where: { $0.lastContactMillisecondsAgo != nil }) else { return }
        var records = announced.all
        if let api = local.api { records.append((serverName, local.sic, api, local.sicSerial)) }
        // Only what differs from the database: this runs every reconcile interval.
        for record in records where members.contains(where: {
            $0.name == record.name && ($0.sicAddress != record.sic || $0.apiAddress != record.api || (record.serial != nil && $0.sicSerial != record.serial))
        }) {
            do {
                try await service.recordAddresses(of: record.name, sicAddress: record.sic, apiAddress: record.api, sicSerial: record.serial)
            } catch {
                logger.warning("could not record a server's addresses", metadata: ["server": "\(record.name)", "error": "\(error)"])
            }
        }
        await ica.push(to: runtime.status.peers.map(\.serverID), links: links)
    }

    func dialTargets(_ members: [ManagementServerEntry]) -> [DialTarget] {
        let own = members.first { $0.name == serverName }
        let announcedHere = own != nil && own?.sicAddress == local.sic && own?.apiAddress == local.api
        var targets: [DialTarget] = []
        for member in members where member.name != serverName && (serverName < member.name || !announcedHere) {
            guard let address = member.sicAddress.flatMap(SICAddress.init(argument:)) else { continue }
            targets.append(DialTarget(name: member.name, host: address.host, port: address.port,
                                      identity: NodeIdentity(uid: member.uid, name: member.name)))
        }
        if !announcedHere, let join, !targets.contains(where: { $0.name == join.activeServer }) {
            targets.append(DialTarget(name: join.activeServer, host: join.joinHost, port: join.joinSICPort, identity: nil))
        }
        return targets
    }

    /// Accepts a channel from a management server of this group (or, before this server's database
    /// is synchronized, from the server it joined).
    func isMember(_ peer: ServerID) -> Bool {
        let members = service.managementServers()
        if members.contains(where: { $0.name == peer.name }) { return true }
        return !members.contains { $0.name == serverName } && peer.name == join?.activeServer
    }

    // MARK: channels

    func dialLoop(_ name: String, plan: DialPlan, connector: PeerConnector) async {
        var delayMilliseconds = HALinkLimits.reconnectDelayMinMilliseconds
        while !Task.isCancelled, let target = plan.target(name) {
            if links.isConnected(ServerID(name)) {
                // The peer dialed us: that channel serves both ways.
                try? await Task.sleep(for: .milliseconds(HALinkLimits.reconcileIntervalMilliseconds))
                continue
            }
            // Back off unless the channel lived a while: a peer that accepts and closes at once (not yet
            // synchronized, so it does not know us) must not be redialed in a tight loop.
            let started = ContinuousClock.now
            if await linkOnce(target, connector), ContinuousClock.now - started > .seconds(2) {
                delayMilliseconds = HALinkLimits.reconnectDelayMinMilliseconds
            }
            try? await Task.sleep(for: .milliseconds(delayMilliseconds))
            delayMilliseconds = min(delayMilliseconds * 2, HALinkLimits.reconnectDelayMaxMilliseconds)
        }
    }

    /// One outbound channel, for as long as it lasts. True when it was established.
    func linkOnce(_ target: DialTarget, _ connector: PeerConnector) async -> Bool {
        do {
            return try await connector.connect(host: target.host, port: target.port, expecting: target.identity) { connection in
                guard connection.peerIdentity?.name == target.name else {
                    throw CommandFailure("\(target.host):\(target.port) answered as \(connection.peerIdentity.map { "\($0)" } ?? "?"), not \(target.name)")
                }
                try await connection.send(SICChannelMessage.frame(HAChannel.announcement(HAChannel.attachType, name: serverName, addresses: local, versions: versions)))
                var frames = connection.inbound.makeAsyncIterator()
                await serveChannel(connection, peer: ServerID(target.name), uid: connection.peerIdentity?.uid, frames: &frames, direction: "dialed")
                return true
            }
        } catch {
            if !Task.isCancelled { logger.debug("HA link failed", metadata: ["peer": "\(target.name)", "error": "\(error)"]) }
            if let error = error as? PeerTransportError, [.peerCertificateRefused, .certificateRefusedByPeer].contains(error.code) {
                links.recordTrustProblem(ServerID(target.name), error.message)
            }
            return false
        }
    }

    /// The accepting side: `first` is the message that asked for HA.
    func accept(_ connection: PeerConnection, peer: ServerID, first: JSONValue, frames: inout PeerInboundFrames.AsyncIterator) async throws {
        let uid = connection.peerIdentity?.uid
        guard isMember(peer) else {
            logger.warning("HA channel refused: not a management server of this group", metadata: ["peer": "\(peer)"])
            try await connection.send(SICChannelMessage.frame(SICChannelMessage.error("\(peer) is not a management server of this group")))
            return
        }
        try await connection.send(SICChannelMessage.frame(HAChannel.announcement(HAChannel.memberType, name: serverName, addresses: local, versions: versions)))
        await inbound(first, from: peer)
        await serveChannel(connection, peer: peer, uid: uid, frames: &frames, direction: "accepted")
    }

    /// Serves an established channel until it ends. Contact counts for SIC status (`sic status`,
    /// test-sic-status), recorded at most once a second.
    func serveChannel(_ connection: PeerConnection, peer: ServerID, uid: String?, frames: inout PeerInboundFrames.AsyncIterator, direction: String) async {
        let registration = channels.register(node: uid ?? "")
        defer { channels.unregister(registration) }
        let link = links.attach(peer) { frame in connection.sendNow(frame) }
        defer { links.detach(peer, link) }
        logger.notice("HA channel up", metadata: ["peer": "\(peer)", "direction": "\(direction)"])
        runtime.linkRestored(peer)
        var lastSeen = ContinuousClock.now - .seconds(2)
        let (links, logger) = (links, logger)
        let onCutOff: @Sendable (String) -> Void = { reason in
            links.recordTrustProblem(peer, "revoked: \(reason) (SIC reset); the channel was closed")
            logger.warning("HA channel cut: the peer's SIC certificate was revoked", metadata: ["peer": "\(peer)"])
        }
        do {
            try await HAChannel.pump(connection, link: link, frames: &frames, cutOff: registration.cutOff, onCutOff: onCutOff) { frame in
                if let uid, ContinuousClock.now - lastSeen >= .seconds(1) {
                    lastSeen = ContinuousClock.now
                    await service.sicPeerSeen(uid: uid)
                }
                await inbound(frame, from: peer)
            }
            logger.notice("HA channel closed", metadata: ["peer": "\(peer)"])
        } catch {
            logger.warning("HA channel broke", metadata: ["peer": "\(peer)", "error": "\(error)"])
        }
    }

    /// A frame from a peer's channel: an HA message (binary or JSON), or another JSON channel message.
    func inbound(_ frame: PeerFrame, from peer: ServerID) async {
        if let message = HAMessageCodec.decode(frame: frame) {
            runtime.deliver(from: peer, message)
        } else if let json = SICChannelMessage.decode(frame) {
            await inbound(json, from: peer)
        }
    }

    static func wallClockMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    func inbound(_ json: JSONValue, from peer: ServerID) async {
        switch json["type"]?.stringValue {
        case HAMessageCodec.messageType:
            if let message = HAMessageCodec.decode(json) { runtime.deliver(from: peer, message) }
        case HAChannel.attachType, HAChannel.memberType:
            announced.record(peer.name, json)
            facts.recordVersions(peer.name, json)
        case HAChannel.clockType:
            if let sentAt = json["sent-at-ms"]?.intValue {
                facts.recordClock(peer.name, sentAtMilliseconds: sentAt, receivedAtMilliseconds: Self.wallClockMilliseconds())
            }
        case HAChannel.icaType:
            await ica.receive(json, from: peer, runtime: runtime)
        case HAChannel.revokedType:
            let reason = SICChannels.printable(String((json["message"]?.stringValue ?? "").prefix(200)))
            links.recordTrustProblem(peer, "revoked: \(peer) closed the channel because this server's SIC certificate was revoked (\(reason))")
            logger.error("this server's SIC certificate was revoked: the peer closed the channel; enrol again with a new one-time key",
                         metadata: ["peer": "\(peer)", "reason": "\(SICChannels.printable(reason))"])
        default:
            break
        }
    }
}

/// What is synchronized outside the revision journal: the Internal CA's certificate, key and revocation
/// list, which a promoted standby needs to enrol and revoke. The active sends it over each channel
/// (mutual TLS between enrolled servers) when the channel opens and whenever it changes; a standby
/// accepts it only from the active of its epoch and only for the ICA it already trusts.
final class ICAStateSync: @unchecked Sendable {
    let pkiDirectory: URL
    let service: ManagementService
    let logger: Logger
    private let lock = NSLock()
    /// Per peer: the channel and the state last sent on it.
    private var sent: [ServerID: (channel: UInt64, digest: String)] = [:]
    private var authority: InternalCA?

    init(pkiDirectory: URL, service: ManagementService, logger: Logger) {
        self.pkiDirectory = pkiDirectory
        self.service = service
        self.logger = logger
    }

    var certificateFile: URL { pkiDirectory.appendingPathComponent(PKIDirectory.FileName.icaCertificate) }
    var keyFile: URL { pkiDirectory.appendingPathComponent(PKIDirectory.FileName.icaKey) }

    /// The authority, when this server holds the ICA key (the primary; a standby once it received it).
    /// Read from pki/ once, then kept: `push` asks for it every reconcile interval.
    func loadAuthority() -> InternalCA? {
        if let cached = lock.withLock({ authority }) { return cached }
        guard let certificate = try? String(contentsOf: certificateFile, encoding: .utf8),
              let key = try? String(contentsOf: keyFile, encoding: .utf8),
              let loaded = try? InternalCA(certificatePEM: certificate, privateKeyPEM: key) else { return nil }
        lock.withLock { authority = loaded }
        return loaded
    }

    func push(to peers: [ServerID], links: HAPeerLinks) async {
        guard let authority = loadAuthority(), let revocations = try? service.currentRevocations() else { return }
        let message: JSONValue = ["type": .string(HAChannel.icaType), "certificate": .string(authority.certificatePEM),
                                  "key": .string(authority.privateKeyPEM), "revocations": .string(revocations.jsonText)]
        let digest = message.canonicalString  // what was sent is compared whole: it is small
        for peer in peers {
            guard let channel = links.channelToken(peer) else { continue }
            let due = lock.withLock { () -> Bool in
                guard sent[peer]?.channel != channel || sent[peer]?.digest != digest else { return false }
                sent[peer] = (channel, digest)
                return true
            }
            if due { links.send(message, to: peer) }
        }
    }

    func receive(_ message: JSONValue, from peer: ServerID, runtime: HARuntime) async {
        let status = runtime.status
        guard status.role == .standby, peer == status.activeServer else { return }
        guard let certificate = message["certificate"]?.stringValue, let key = message["key"]?.stringValue,
              let revocations = message["revocations"]?.stringValue else { return }
        do {
            let trusted = try String(contentsOf: certificateFile, encoding: .utf8)
            guard trusted.trimmingCharacters(in: .whitespacesAndNewlines) == certificate.trimmingCharacters(in: .whitespacesAndNewlines) else {
                logger.error("ICA state refused: it is not the Internal CA this server trusts", metadata: ["from": "\(peer)"])
                return
            }
            let authority = try InternalCA(certificatePEM: certificate, privateKeyPEM: key)
            if (try? String(contentsOf: keyFile, encoding: .utf8)) != key {
                try DurableFile.write(Array(key.utf8), to: keyFile, mode: 0o600)
                logger.notice("Internal CA key received from the active: this server can enrol and revoke once promoted")
            }
            lock.withLock { self.authority = authority }
            try await service.adoptICAState(authority: authority, revocationsText: revocations)
        } catch {
            logger.error("ICA state from the active could not be stored", metadata: ["error": "\(error)"])
        }
    }
}
