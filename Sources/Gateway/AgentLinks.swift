import Foundation
import Logging
import ManagementModel
import PeerTransport
import Synchronization
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

    public init(
        agent: GatewayAgent, credentials: NodeCredentials, logs: AgentOutbox, logger: Logger,
        limits: PeerLimits = .default
    ) throws {
        self.agent = agent
        self.connector = try PeerConnector(identity: credentials.issuedIdentity, verifier: try credentials.makeVerifier(), limits: limits, logger: logger)
        self.logs = logs
        self.logger = logger
    }

    /// Runs until cancelled: a dial loop per known address, started and ended as the list changes.
    public func run() async {
        let plan = DialPlan<String, SICAddress>()
        var refused: Set<String> = []
        await withTaskGroup(of: Void.self) { group in
            while !Task.isCancelled {
                var targets: [(key: String, target: SICAddress)] = []
                for address in await agent.servers.map(\.sicAddress) {
                    if let target = SICAddress(argument: address) {
                        targets.append((address, target))
                    } else if refused.insert(address).inserted {
                        logger.error("not a HOST:PORT address; ignored", metadata: ["address": "\(address)"])
                    }
                }
                for address in plan.update(targets) {
                    group.addTask { await plan.dialLoop(address, backoff: Self.backoff) { await dialOnce($0, address: address) } }
                }
                try? await Task.sleep(for: .milliseconds(500))
            }
            group.cancelAll()
        }
    }

    static let backoff = RedialBackoff(
        delayMin: .milliseconds(GatewayLimits.reconnectDelayMinMilliseconds),
        delayMax: .milliseconds(GatewayLimits.reconnectDelayMaxMilliseconds),
        workingAfter: .seconds(5), idleCheck: .milliseconds(GatewayLimits.heartbeatMilliseconds))

    /// One channel to `target`, for as long as it lasts. True when it was established.
    func dialOnce(_ target: SICAddress, address: String) async -> Bool {
        var established = false
        do {
            try await connector.connect(host: target.host, port: target.port, expecting: nil) { connection in
                established = true
                try await serve(connection, address: address)
            }
        } catch {
            if !Task.isCancelled { logger.debug("management channel failed", metadata: ["address": "\(address)", "error": "\(error)"]) }
        }
        return established
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
        let lastHeard = LastHeard()
        let shipping = LogCursor()
        let welcomeHeard = LastWelcome()
        try await connection.send(GatewayWire.frame(["type": .string(GatewayWire.hello), "status": await agent.report.json]))
        logger.notice("management channel up", metadata: ["server": "\(server)", "address": "\(address)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await frame in outbound { try await connection.send(frame) }
            }
            group.addTask {
                // Heartbeat with the report; a silent server is dropped (its TCP may be black-holed).
                try await lastHeard.waitForSilence(
                    longerThan: .milliseconds(GatewayLimits.silenceMilliseconds),
                    checkingEvery: .milliseconds(GatewayLimits.heartbeatMilliseconds)
                ) {
                    writer.yield(GatewayWire.frame(GatewayWire.statusHeader(await agent.report.json, echo: welcomeHeard.last)))
                    shipLogs(shipping, writer: writer)
                }
                logger.warning("management server silent; reconnecting", metadata: ["server": "\(server)"])
                await connection.close()
            }
            for try await frame in connection.inbound {
                lastHeard.now()
                guard let (header, body) = GatewayWire.decode(frame) else { continue }
                switch header["type"]?.stringValue {
                case GatewayWire.welcome:
                    welcomeHeard.record(header)
                    await welcome(header)
                    if let cursor = header["log-cursor"]?.intValue, cursor >= 0 { shipping.acknowledged(UInt64(cursor)) }
                    shipLogs(shipping, writer: writer)
                case GatewayWire.install:
                    let outcome = await agent.install(body: body, from: server)
                    writer.yield(
                        GatewayWire.frame([
                            "type": .string(GatewayWire.installResult), "id": header["id"] ?? .null,
                            "outcome": .string(outcome.kind.rawValue), "message": .string(outcome.message),
                            "status": await agent.report.json,
                        ]))
                case GatewayWire.rollback:
                    let outcome: InstallOutcome
                    if let package = header["package"]?.stringValue, let revision = header["revision"]?.intValue, revision >= 0,
                        let epoch = RevisionEpoch(json: header["epoch"])
                    {
                        outcome = await agent.rollBack(package: package, revision: UInt64(revision), epoch: epoch, from: server)
                    } else {
                        outcome = InstallOutcome(kind: .failed, message: "a rollback needs package, revision and epoch")
                    }
                    writer.yield(
                        GatewayWire.frame([
                            "type": .string(GatewayWire.rollbackResult), "id": header["id"] ?? .null,
                            "outcome": .string(outcome.kind.rawValue), "message": .string(outcome.message),
                            "status": await agent.report.json,
                        ]))
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
            guard let address = item["sic-address"]?.stringValue, SICAddress(argument: address) != nil else { return nil }
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
            writer.yield(
                GatewayWire.frame(
                    ["type": .string(GatewayWire.logs), "through": .int(Int64(last))],
                    body: Array(try JSONEncoder().encode(batch))))
        } catch {
            cursor.batchEmpty()
            logger.warning("could not read the log outbox", metadata: ["error": "\(error)"])
        }
    }
}

/// A server's acknowledged log position on one channel, and whether a batch is in flight.
final class LogCursor: Sendable {
    private let state = Mutex<(acknowledged: UInt64?, inFlight: Bool)>((nil, false))

    /// The server stored everything up to `sequence`.
    func acknowledged(_ sequence: UInt64) { state.withLock { $0 = (max($0.acknowledged ?? sequence, sequence), false) } }
    /// The position to send from, when nothing is in flight and the server told its position.
    func startBatch() -> UInt64? {
        state.withLock { value in
            guard let acknowledged = value.acknowledged, !value.inFlight else { return nil }
            value.inFlight = true
            return acknowledged
        }
    }
    func batchEmpty() { state.withLock { $0.inFlight = false } }
}

/// The last `gw-welcome` heard on a channel: its `sent-at-ms` and this agent's clock on arrival, which
/// the next `gw-status` echoes (NTP's t1 and t2 for the server).
final class LastWelcome: Sendable {
    private let heard = Mutex<ClockStamps.Echo?>(nil)

    func record(_ welcome: JSONValue) {
        guard let sentAt = welcome["sent-at-ms"]?.intValue else { return }
        let echo = ClockStamps.Echo(sentAtMilliseconds: sentAt, receivedAtMilliseconds: WallClock.milliseconds())
        heard.withLock { $0 = echo }
    }

    var last: ClockStamps.Echo? { heard.withLock { $0 } }
}

/// Which management servers have a channel up now.
final class ConnectedServers: Sendable {
    private let names = Mutex<Set<String>>([])
    /// False when a channel to `name` is already up.
    func claim(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
    func release(_ name: String) { _ = names.withLock { $0.remove(name) } }
}
