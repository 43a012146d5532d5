import Foundation
import Logging
import ManagementModel
import NIOConcurrencyHelpers
import PeerTransport
import TrustCore

/// The agent's outbound mutual-TLS channels: one to every management server it knows, each redialed
/// with backoff, following the list the servers announce. Every channel carries the agent's report,
/// pushes and their results, the servers' announcements, and the log records the server lacks.
public struct AgentLinks: Sendable {
    let agent: GatewayAgent
    let connector: PeerConnector
    let logs: AgentOutbox
    let logger: Logger
    /// Per server name: is a channel up (one channel per server).
    let connected = ConnectedServers()

    public init(agent: GatewayAgent, credentials: NodeCredentials, logs: AgentOutbox, logger: Logger,
                limits: PeerLimits = .default) throws {
        self.agent = agent
        self.connector = try PeerConnector(identity: credentials.issuedIdentity, verifier: try credentials.makeVerifier(), limits: limits, logger: logger)
        self.logs = logs
        self.logger = logger
    }

    /// Runs until cancelled: a dial loop per known address, started and ended as the list changes.
    public func run() async {
        let dialing = DialingAddresses()
        await withTaskGroup(of: Void.self) { group in
            while !Task.isCancelled {
                for address in dialing.update(await agent.servers.map(\.sicAddress)) {
                    group.addTask { await dialLoop(address, dialing: dialing) }
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
            group.cancelAll()
        }
    }

    func dialLoop(_ address: String, dialing: DialingAddresses) async {
        var delayMilliseconds = GatewayLimits.reconnectDelayMinMilliseconds
        while !Task.isCancelled, dialing.isWanted(address) {
            guard let (host, port) = Self.split(address) else {
                logger.error("not a HOST:PORT address; ignored", metadata: ["address": "\(address)"])
                return
            }
            let started = ContinuousClock.now
            do {
                try await connector.connect(host: host, port: port, expecting: nil) { connection in
                    try await serve(connection, address: address)
                }
            } catch {
                if !Task.isCancelled { logger.debug("management channel failed", metadata: ["address": "\(address)", "error": "\(error)"]) }
            }
            if ContinuousClock.now - started > .seconds(5) { delayMilliseconds = GatewayLimits.reconnectDelayMinMilliseconds }
            try? await Task.sleep(for: .milliseconds(delayMilliseconds))
            delayMilliseconds = min(delayMilliseconds * 2, GatewayLimits.reconnectDelayMaxMilliseconds)
        }
    }

    static func split(_ address: String) -> (String, Int)? {
        var text = Substring(address)
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        text = text[..<colon]
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        return text.isEmpty ? nil : (String(text), port)
    }

    /// One channel for as long as it lasts.
    func serve(_ connection: PeerConnection, address: String) async throws {
        let server = connection.peerIdentity?.name ?? address
        // Two addresses of one server (as first given, and as it announced itself): one channel is enough.
        guard connected.claim(server) else { return }
        defer {
            connected.release(server)
            logger.notice("management channel down", metadata: ["server": "\(server)"])
        }
        let (outbound, writer) = AsyncStream.makeStream(of: PeerFrame.self)
        let lastHeard = Heard()
        let shipping = LogCursor()
        try await connection.send(GatewayWire.frame(["type": .string(GatewayWire.hello), "status": await agent.report.json]))
        logger.notice("management channel up", metadata: ["server": "\(server)", "address": "\(address)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await frame in outbound { try await connection.send(frame) }
            }
            group.addTask {
                // Heartbeat with the report; a silent server is dropped (its TCP may be black-holed).
                while !Task.isCancelled {
                    try await Task.sleep(for: .milliseconds(GatewayLimits.heartbeatMilliseconds))
                    if lastHeard.silence > .milliseconds(GatewayLimits.silenceMilliseconds) {
                        logger.warning("management server silent; reconnecting", metadata: ["server": "\(server)"])
                        await connection.close()
                        return
                    }
                    writer.yield(GatewayWire.frame(["type": .string(GatewayWire.status), "status": await agent.report.json]))
                    shipLogs(shipping, writer: writer)
                }
            }
            for try await frame in connection.inbound {
                lastHeard.now()
                guard let (header, body) = GatewayWire.decode(frame) else { continue }
                switch header["type"]?.stringValue {
                case GatewayWire.welcome:
                    await welcome(header)
                    if let cursor = header["log-cursor"]?.intValue, cursor >= 0 { shipping.acknowledged(UInt64(cursor)) }
                    shipLogs(shipping, writer: writer)
                case GatewayWire.install:
                    let outcome = await agent.install(body: body, from: server)
                    writer.yield(GatewayWire.frame(["type": .string(GatewayWire.installResult), "id": header["id"] ?? .null,
                                                    "outcome": .string(outcome.kind.rawValue), "message": .string(outcome.message),
                                                    "status": await agent.report.json]))
                case GatewayWire.logsAck:
                    if let through = header["through"]?.intValue, through >= 0 { shipping.acknowledged(UInt64(through)) }
                    shipLogs(shipping, writer: writer)
                default:
                    break
                }
            }
            writer.finish()
            group.cancelAll()
        }
    }

    func welcome(_ header: JSONValue) async {
        guard let epoch = RevisionEpoch(json: header["epoch"]) else { return }
        let servers = (header["servers"]?.arrayValue ?? []).compactMap { item -> AgentState.Server? in
            guard let address = item["sic-address"]?.stringValue, Self.split(address) != nil else { return nil }
            return AgentState.Server(name: item["name"]?.stringValue, sicAddress: address)
        }
        await agent.announcement(epoch: epoch, isActive: header["active"]?.boolValue == true, servers: servers)
    }

    /// Sends the next batch of records this server has not acknowledged, one batch in flight at a time.
    func shipLogs(_ cursor: LogCursor, writer: AsyncStream<PeerFrame>.Continuation) {
        guard let after = cursor.startBatch() else { return }
        do {
            let batch = try logs.records(after: after, limit: GatewayLimits.logRecordsPerFrameMax)
            guard let last = batch.last?.sequence else {
                cursor.batchEmpty()
                return
            }
            writer.yield(GatewayWire.frame(["type": .string(GatewayWire.logs), "through": .int(Int64(last))],
                                           body: Array(try JSONEncoder().encode(batch))))
        } catch {
            cursor.batchEmpty()
            logger.warning("could not read the log outbox", metadata: ["error": "\(error)"])
        }
    }
}

/// A server's acknowledged log position on one channel, and whether a batch is in flight.
final class LogCursor: Sendable {
    private let state = NIOLockedValueBox<(acknowledged: UInt64?, inFlight: Bool)>((nil, false))

    /// The server stored everything up to `sequence`.
    func acknowledged(_ sequence: UInt64) { state.withLockedValue { $0 = (max($0.acknowledged ?? sequence, sequence), false) } }
    /// The position to send from, when nothing is in flight and the server told its position.
    func startBatch() -> UInt64? {
        state.withLockedValue { value in
            guard let acknowledged = value.acknowledged, !value.inFlight else { return nil }
            value.inFlight = true
            return acknowledged
        }
    }
    func batchEmpty() { state.withLockedValue { $0.inFlight = false } }
}

/// When a channel last received a frame.
final class Heard: Sendable {
    private let at = NIOLockedValueBox(ContinuousClock.now)
    func now() { at.withLockedValue { $0 = ContinuousClock.now } }
    var silence: Duration { ContinuousClock.now - at.withLockedValue { $0 } }
}

/// The addresses the agent dials, and the loops running for them.
final class DialingAddresses: Sendable {
    private let state = NIOLockedValueBox<(wanted: Set<String>, running: Set<String>)>(([], []))

    /// Sets the wanted addresses; returns those that need a new loop.
    func update(_ addresses: [String]) -> [String] {
        state.withLockedValue { value in
            value.wanted = Set(addresses)
            let starting = addresses.filter { !value.running.contains($0) }
            value.running.formUnion(starting)
            return starting
        }
    }

    /// False ends the address's loop (and frees it for a later one).
    func isWanted(_ address: String) -> Bool {
        state.withLockedValue { value in
            if value.wanted.contains(address) { return true }
            value.running.remove(address)
            return false
        }
    }
}

/// Which management servers have a channel up now.
final class ConnectedServers: Sendable {
    private let names = NIOLockedValueBox<Set<String>>([])
    /// False when a channel to `name` is already up.
    func claim(_ name: String) -> Bool { names.withLockedValue { $0.insert(name).inserted } }
    func release(_ name: String) { _ = names.withLockedValue { $0.remove(name) } }
}
