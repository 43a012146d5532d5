import Foundation
import HACore
import HARuntime
import Logging
import ManagementAPI
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

/// Bounds of a standby's link to the active.
enum HALinkLimits {
    static let reconnectDelayMinMilliseconds = 100
    static let reconnectDelayMaxMilliseconds = 5_000
}

/// One HA channel over an established SIC connection: queued outbound messages to the peer are
/// written by a child task while inbound HA messages go to the runtime. Returns when either side ends.
enum HAChannel {
    /// Sent first by a standby so the active routes its HA messages to this connection.
    static let attachType = "ha-attach"

    /// `frames` is the connection's one inbound iterator (a connection allows only one): the caller may
    /// have read the first frames from it already.
    static func pump(_ connection: PeerConnection, link: HAPeerLinks.Link, frames: inout PeerInboundFrames.AsyncIterator,
                     inbound: (JSONValue) async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await message in link.outbound { try await connection.send(SICChannelMessage.frame(message)) }
                // The route was replaced by a newer channel (or detached): this one is done.
                await connection.close()
            }
            while let frame = try await frames.next() {
                guard frame.type == .message, let json = SICChannelMessage.decode(frame) else { continue }
                try await inbound(json)
            }
            group.cancelAll()
        }
    }
}

/// A standby's long-lived link to the active: connect over SIC, attach, exchange HA messages; on any
/// failure reconnect with a bounded exponential backoff.
struct HAStandbyLink: Service {
    let runtime: HARuntime
    let links: HAPeerLinks
    let credentials: NodeCredentials
    let membership: HAMembership
    let logger: Logger

    func run() async throws {
        let connector = try PeerConnector(identity: credentials.issuedIdentity, verifier: try credentials.makeVerifier(), logger: logger)
        let active = ServerID(membership.activeServer)
        await cancelWhenGracefulShutdown {
            var delayMilliseconds = HALinkLimits.reconnectDelayMinMilliseconds
            while !Task.isCancelled {
                if await linkOnce(connector, active: active) { delayMilliseconds = HALinkLimits.reconnectDelayMinMilliseconds }
                if Task.isCancelled { return }
                try? await Task.sleep(for: .milliseconds(delayMilliseconds))
                delayMilliseconds = min(delayMilliseconds * 2, HALinkLimits.reconnectDelayMaxMilliseconds)
            }
        }
    }

    /// One connection to the active, for as long as it lasts. True when it was established (the next
    /// attempt then starts from the shortest delay).
    func linkOnce(_ connector: PeerConnector, active: ServerID) async -> Bool {
        do {
            return try await connector.connect(host: membership.joinHost, port: membership.joinSICPort, expecting: nil) { connection in
                guard connection.peerIdentity?.name == active.name else {
                    throw CommandFailure("the SIC port answered as \(connection.peerIdentity.map { "\($0)" } ?? "?"), not the active \(active)")
                }
                logger.notice("HA link to the active is up", metadata: ["active": "\(active)", "address": "\(membership.joinHost):\(membership.joinSICPort)"])
                let link = links.attach(active)
                defer { links.detach(active, link) }
                do {
                    try await connection.send(SICChannelMessage.frame(["type": .string(HAChannel.attachType)]))
                    var frames = connection.inbound.makeAsyncIterator()
                    try await HAChannel.pump(connection, link: link, frames: &frames) { json in
                        if let message = HAMessageCodec.decode(json) { runtime.deliver(from: active, message) }
                    }
                    logger.warning("HA link to the active closed", metadata: ["active": "\(active)"])
                } catch {
                    logger.warning("HA link to the active broke", metadata: ["active": "\(active)", "error": "\(error)"])
                }
                return true
            }
        } catch {
            if !Task.isCancelled { logger.warning("HA link to the active failed", metadata: ["active": "\(active)", "error": "\(error)"]) }
            return false
        }
    }
}

/// The active's side: a peer server's SIC connection that asked for HA becomes its route.
struct HAActiveEndpoint: Sendable {
    let runtime: HARuntime
    let links: HAPeerLinks
    let store: ManagementStore
    let logger: Logger

    /// A management server of this group: a checkpoint-host object with that name (the SIC verifier
    /// has already checked its certificate, issued for that object at enrolment, and its revocation).
    func isMember(_ peer: ServerID) -> Bool {
        store.reader.objects(named: peer.name).contains { $0.type == .checkpointHost }
    }

    /// Serves the rest of `connection` as an HA channel. `first` is the message that asked for it.
    /// `seen` records contact for SIC status (`sic status`, `test-sic-status`) on every message.
    func serve(_ connection: PeerConnection, peer: ServerID, first: JSONValue, frames: inout PeerInboundFrames.AsyncIterator,
               seen: @escaping @Sendable () async -> Void) async throws {
        guard isMember(peer) else {
            logger.warning("HA channel refused: not a management server of this group", metadata: ["peer": "\(peer)"])
            try await connection.send(SICChannelMessage.frame(SICChannelMessage.error("\(peer) is not a checkpoint-host of this server")))
            return
        }
        if !runtime.status.peers.contains(where: { $0.serverID == peer }) {
            runtime.admin(.addPeer(peer))
        }
        let link = links.attach(peer)
        defer { links.detach(peer, link) }
        logger.notice("HA channel from a standby", metadata: ["peer": "\(peer)"])
        if let message = HAMessageCodec.decode(first) { runtime.deliver(from: peer, message) }
        try await HAChannel.pump(connection, link: link, frames: &frames) { json in
            await seen()
            if let message = HAMessageCodec.decode(json) { runtime.deliver(from: peer, message) }
        }
    }

    /// The peer's address for messages and status: its object's IPv4 address.
    static func address(_ store: ManagementStore) -> @Sendable (ServerID) -> String? {
        let reader = store.reader
        return { peer in
            reader.objects(named: peer.name).first { $0.type == .checkpointHost }?.fields["ipv4-address"]?.stringValue
        }
    }
}
