import Foundation
import HACore
import Logging
import ManagementModel
import ManagementService
import PeerTransport
import ServiceLifecycle
import Store
import Synchronization
import TrustCore

/// Runs the HA runtime's clock and inbox for the server's lifetime.
public struct HARuntimeService: Service {
    let runtime: HARuntime

    public init(runtime: HARuntime) { self.runtime = runtime }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await runtime.run() }
    }
}

/// Bounds and periods of the links between management servers.
public enum HALinkLimits {
    /// Redial backoff of the mesh's dial loops; a channel that lived `workingAfter` was a working one.
    static let redial = RedialBackoff(
        delayMin: .milliseconds(100), delayMax: .milliseconds(2_000), workingAfter: .seconds(2),
        idleCheck: reconcileInterval)
    /// How often membership, addresses and the ICA state are reconciled.
    static let reconcileInterval = Duration.milliseconds(250)
    /// How often each channel carries this server's wall clock (`ha-clock`), for the promotion's clock check.
    static let clockInterval = Duration.milliseconds(1_000)
    /// A channel silent this long is closed (heartbeats come every 100 ms): a black-holed TCP
    /// connection would otherwise hold the route until the kernel gives up on it, many minutes later.
    static let channelSilence = Duration.milliseconds(5_000)
    /// Addresses a peer announces are refused beyond this length.
    static let addressBytesMax = 300
}

/// Where this server can be reached, as it announces itself (the API port is known once bound), and
/// the serial of the SIC certificate it presents: the active records it, so that whichever server is
/// active can revoke this one.
public final class LocalAddresses: Sendable {
    public let sic: String
    public let sicSerial: String
    private let apiAddress = Mutex<String?>(nil)

    public init(sic: String, sicSerial: String) {
        self.sic = sic
        self.sicSerial = sicSerial
    }

    public var api: String? { apiAddress.withLock { $0 } }
    public func apiBound(_ address: String) { apiAddress.withLock { $0 = address } }
}

/// Addresses (and certificate serials) peers announced on their channels; the active records them in the database.
final class AnnouncedAddresses: Sendable {
    typealias Record = (name: String, sic: String, api: String, serial: String?)
    private let byName = Mutex<[String: Record]>([:])

    func record(_ name: String, _ message: JSONValue) {
        guard let sic = message["sic-address"]?.stringValue, let api = message["api-address"]?.stringValue,
            sic.utf8.count <= HALinkLimits.addressBytesMax, api.utf8.count <= HALinkLimits.addressBytesMax
        else { return }
        let serial = message["sic-serial"]?.stringValue.flatMap { RevocationList.isValidSerial($0) ? $0 : nil }
        byName.withLock { $0[name] = (name, sic, api, serial) }
    }

    var all: [Record] { byName.withLock { Array($0.values) } }
}

/// One HA channel over an established SIC connection: queued outbound messages to the peer are
/// written by a child task while inbound messages go to `inbound`. Returns when either side ends.
public enum HAChannel {
    /// Sent first by the server that dialed: who it is and where it listens.
    public static let attachType = "ha-attach"
    /// The answer of the server that accepted: the same facts about itself.
    static let memberType = "ha-member"
    /// Active → standby: the Internal CA state (see `ICAStateSync`).
    static let icaType = "ha-ica"
    /// Either way, every `HALinkLimits.clockInterval`: the sender's wall clock.
    static let clockType = "ha-clock"
    /// Sent just before a channel is cut because the peer's certificate was revoked: why.
    static let revokedType = "sic-revoked"

    /// Who this server is, where it listens, the serial of its SIC certificate, and what it runs.
    static func announcement(_ type: String, name: String, addresses: LocalAddresses, versions: PeerFacts.Versions) -> JSONValue {
        [
            "type": .string(type), "name": .string(name), "sic-address": .string(addresses.sic), "api-address": .string(addresses.api ?? ""),
            "sic-serial": .string(addresses.sicSerial),
            "software-version": .string(versions.software), "schema-version": .int(Int64(versions.schema)),
        ]
    }

    /// `sent-at-ms`: the sender's wall clock. Since 0.10 also `echo-sent-at-ms` and `echo-received-at-ms`
    /// (the last `ha-clock` it heard from this peer: that one's send time and its own receive time, for
    /// NTP's offset and delay; `ClockStamps`), and `mode` with `mode-held-ms`. A receiver reads each only when present.
    static func clock(nowMilliseconds: Int64, echo: ClockStamps.Echo?, mode: String, modeHeldMilliseconds: Int64) -> JSONValue {
        var message = ClockStamps.fields(sentAtMilliseconds: nowMilliseconds, echo: echo)
        message["type"] = .string(clockType)
        message["mode"] = .string(mode)
        message["mode-held-ms"] = .int(modeHeldMilliseconds)
        return .object(message)
    }

    /// `frames` is the connection's one inbound iterator (a connection allows only one): the caller may
    /// have read the first frames from it already. `cutOff` yields when the peer's certificate is revoked:
    /// the peer is told why, then the channel closes at once (`onCutOff` runs after).
    static func pump(
        _ connection: PeerConnection, link: HAPeerLinks.Link, frames: inout PeerInboundFrames.AsyncIterator,
        cutOff: AsyncStream<String>, onCutOff: @escaping @Sendable (String) -> Void,
        inbound: (PeerFrame) async throws -> Void
    ) async throws {
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
                try await lastHeard.waitForSilence(longerThan: HALinkLimits.channelSilence, checkingEvery: HALinkLimits.channelSilence / 5)
                await connection.close()
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

/// A server to dial, and the identity its certificate must carry (nil: only the name is checked).
struct DialTarget: Sendable, Equatable {
    let name: String
    let address: SICAddress
    let identity: NodeIdentity?
}

/// A dialed peer answered as another server than the one meant.
struct UnexpectedPeer: Error, CustomStringConvertible {
    let description: String
}

/// The HA group's links: a full mesh of SIC channels between management servers, one per pair. The
/// server whose name sorts first dials; a server whose own addresses are not yet recorded (just
/// joined, or restarted on other ports) dials everyone it can, so that it gets announced. Every
/// channel carries HA core messages both ways, the servers' addresses, and the ICA state.
public struct HAMesh: Service {
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

    public init(
        runtime: HARuntime, links: HAPeerLinks, service: ManagementService, credentials: NodeCredentials, serverName: String,
        local: LocalAddresses, facts: PeerFacts, versions: PeerFacts.Versions, join: HAMembership?, ica: ICAStateSync,
        channels: SICChannels, logger: Logger
    ) {
        self.runtime = runtime
        self.links = links
        self.service = service
        self.credentials = credentials
        self.serverName = serverName
        self.local = local
        self.facts = facts
        self.versions = versions
        self.join = join
        self.ica = ica
        self.channels = channels
        self.logger = logger
    }

    public func run() async throws {
        let connector = try PeerConnector(
            identity: credentials.issuedIdentity,
            verifier: LiveSICVerifier(icaPEM: credentials.icaPEM, service: service),
            isGroupMember: Self.groupMembership(service: service, serverName: serverName, join: join), logger: logger)
        let plan = DialPlan<String, DialTarget>()
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                var clockSentAt = ContinuousClock.now - .seconds(60)
                while !Task.isCancelled {
                    let members = service.managementServers()
                    await reconcile(members)
                    if ContinuousClock.now - clockSentAt >= HALinkLimits.clockInterval {
                        clockSentAt = ContinuousClock.now
                        sendClock()
                    }
                    for name in plan.update(dialTargets(members).map { ($0.name, $0) }) {
                        group.addTask {
                            // The peer dialed us: that channel serves both ways.
                            await plan.dialLoop(name, backoff: HALinkLimits.redial, isIdle: { links.isConnected(ServerID($0.name)) }) {
                                await linkOnce($0, connector)
                            }
                        }
                    }
                    try? await Task.sleep(for: HALinkLimits.reconcileInterval)
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
        for record in records
        where members.contains(where: {
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
            targets.append(DialTarget(name: member.name, address: address, identity: NodeIdentity(uid: member.uid, name: member.name)))
        }
        if !announcedHere, let join, !targets.contains(where: { $0.name == join.activeServer }) {
            targets.append(DialTarget(name: join.activeServer, address: SICAddress(host: join.joinHost, port: join.joinSICPort), identity: nil))
        }
        return targets
    }

    /// Accepts a channel from a management server of this group (or, before this server's database
    /// is synchronized, from the server it joined).
    func isMember(_ peer: ServerID) -> Bool { Self.isMember(peer, service: service, serverName: serverName, join: join) }

    static func isMember(_ peer: ServerID, service: ManagementService, serverName: String, join: HAMembership?) -> Bool {
        let members = service.managementServers()
        if members.contains(where: { $0.name == peer.name }) { return true }
        return !members.contains { $0.name == serverName } && peer.name == join?.activeServer
    }

    /// The verified SIC peers that may send and receive the HA group's large frames (an append carries
    /// a whole revision): a management server of this group that is not an enrolled gateway, the rule
    /// by which the SIC port hands a channel to the mesh. The transport asks once per connection.
    public static func groupMembership(service: ManagementService, serverName: String, join: HAMembership?) -> PeerGroupMembership {
        { identity in
            isMember(ServerID(identity.name), service: service, serverName: serverName, join: join) && !service.isEnrolledGateway(uid: identity.uid)
        }
    }

    // MARK: channels

    /// One outbound channel, for as long as it lasts. True when it was established.
    func linkOnce(_ target: DialTarget, _ connector: PeerConnector) async -> Bool {
        let address = target.address
        do {
            return try await connector.connect(host: address.host, port: address.port, expecting: target.identity) { connection in
                guard connection.peerIdentity?.name == target.name else {
                    throw UnexpectedPeer(description: "\(address) answered as \(connection.peerIdentity.map { "\($0)" } ?? "?"), not \(target.name)")
                }
                try await connection.send(
                    SICChannelMessage.frame(HAChannel.announcement(HAChannel.attachType, name: serverName, addresses: local, versions: versions)))
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
    public func accept(_ connection: PeerConnection, peer: ServerID, first: JSONValue, frames: inout PeerInboundFrames.AsyncIterator) async throws {
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
        let link = links.attach(peer, frameBytesMax: connection.frameBytesMax) { frame in connection.sendNow(frame) }
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

    /// Sends every peer this server's wall clock, the echo of the last it heard from that peer, and its mode.
    func sendClock() {
        let now = WallClock.milliseconds()
        let (role, since) = runtime.modeSince
        let held = max(Int64((Date().timeIntervalSince(since) * 1000).rounded(.down)), 0)
        for peer in runtime.status.peers.map(\.serverID) {
            let message = HAChannel.clock(nowMilliseconds: now, echo: facts.lastHeard(from: peer.name), mode: role.rawValue, modeHeldMilliseconds: held)
            links.send(message, to: peer)
        }
    }

    func inbound(_ json: JSONValue, from peer: ServerID) async {
        switch json["type"]?.stringValue {
        case HAMessageCodec.messageType:
            if let message = HAMessageCodec.decode(json) { runtime.deliver(from: peer, message) }
        case HAChannel.attachType, HAChannel.memberType:
            announced.record(peer.name, json)
            facts.recordVersions(peer.name, json)
        case HAChannel.clockType:
            if let stamps = ClockStamps(message: json, receivedAtMilliseconds: WallClock.milliseconds()) { facts.recordClock(peer.name, stamps) }
            if let mode = json["mode"]?.stringValue, let held = json["mode-held-ms"]?.intValue {
                // On the machine's own clock, as this server's own mode-since is.
                facts.recordMode(peer.name, mode: mode, heldMilliseconds: held, receivedAtMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
            }
        case HAChannel.icaType:
            await ica.receive(json, from: peer, runtime: runtime)
        case HAChannel.revokedType:
            let reason = SICChannels.printable(String((json["message"]?.stringValue ?? "").prefix(200)))
            links.recordTrustProblem(peer, "revoked: \(peer) closed the channel because this server's SIC certificate was revoked (\(reason))")
            logger.error(
                "this server's SIC certificate was revoked: the peer closed the channel; enrol again with a new one-time key",
                metadata: ["peer": "\(peer)", "reason": "\(SICChannels.printable(reason))"])
        default:
            break
        }
    }
}
