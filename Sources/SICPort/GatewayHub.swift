import Foundation
import Gateway
import HARuntime
import Logging
import ManagementModel
import ManagementService
import PeerTransport
import ServiceLifecycle
import Store
import Synchronization
import TrustCore

/// Install fan-out bounds on the management side.
enum HubLimits {
    /// Pushes in flight at once, across all installs.
    static let pushesInFlightMax = 128
    /// A gateway that has not acknowledged a push within this time fails its part.
    static let pushTimeout = Duration.seconds(120)
    /// Batches of pushes waiting to start.
    static let pendingBatchesMax = 64
}

/// The management server's side of the gateways' SIC channels: a registry of connected gateways by
/// certificate identity (the uid of their simple-gateway object), what each reported, and install
/// pushes with bounded concurrency. Node-local: every server keeps its own, from the gateways themselves.
public final class GatewayHub: GatewayFleet, Service {
    let service: ManagementService
    let logger: Logger
    /// This server's log database (DIR/logs.sqlite), where gateways' records go.
    let logs: LogStore?
    private let registry = Mutex<[String: Entry]>([:])
    private let serversCache = Mutex<(at: ContinuousClock.Instant, list: [JSONValue])?>(nil)
    private let batches: AsyncStream<Batch>
    private let batchWriter: AsyncStream<Batch>.Continuation

    struct Batch: Sendable {
        let pushes: [GatewayPush]
        let report: @Sendable (GatewayPushResult) async -> Void
    }

    /// One gateway as this server knows it.
    struct Entry {
        var status = GatewayLiveStatus(connected: false)
        /// The live channel's writer and token (a newer channel replaces an older one).
        var channel: (token: UInt64, writer: AsyncStream<PeerFrame>.Continuation)?
        /// Pushes sent on the channel, waiting for the gateway's result.
        var waiting: [String: CheckedContinuation<GatewayPushResult, Never>] = [:]
    }

    /// Every open SIC channel: a revoked gateway's channel closes at once.
    let channels: SICChannels

    public init(service: ManagementService, channels: SICChannels, logger: Logger) {
        self.service = service
        self.logs = service.logs
        self.channels = channels
        self.logger = logger
        (batches, batchWriter) = AsyncStream.makeStream(of: Batch.self, bufferingPolicy: .bufferingNewest(HubLimits.pendingBatchesMax))
    }

    // MARK: GatewayFleet

    public func status(ofGateway uid: String) -> GatewayLiveStatus? { registry.withLock { $0[uid]?.status } }

    public func push(_ pushes: [GatewayPush], report: @escaping @Sendable (GatewayPushResult) async -> Void) {
        batchWriter.yield(Batch(pushes: pushes, report: report))
    }

    public func rollback(_ rollbacks: [GatewayRollback], report: @escaping @Sendable (GatewayPushResult) async -> Void) {
        Task {
            await withTaskGroup(of: Void.self) { group in
                for rollback in rollbacks {
                    group.addTask {
                        let header: JSONValue = [
                            "type": .string(GatewayWire.rollback), "package": .string(rollback.packageUID),
                            "revision": .int(Int64(clamping: rollback.revision)), "epoch": rollback.epoch.json,
                        ]
                        await report(await self.sendAndWait(uid: rollback.gatewayUID, name: rollback.gatewayName, header: header, body: nil))
                    }
                }
            }
        }
    }

    /// Runs the pushes of every batch, at most `pushesInFlightMax` at once in all.
    public func run() async throws {
        let slots = PushSlots(HubLimits.pushesInFlightMax)
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for await batch in self.batches {
                    group.addTask { await self.runBatch(batch, slots: slots) }
                }
            }
        }
    }

    func runBatch(_ batch: Batch, slots: PushSlots) async {
        await withTaskGroup(of: Void.self) { group in
            for push in batch.pushes {
                await slots.acquire()
                group.addTask {
                    let result = await self.pushOne(push)
                    await slots.release()
                    await batch.report(result)
                }
            }
        }
    }

    /// Sends one push and waits for the gateway's answer, the channel's end, or the timeout.
    func pushOne(_ push: GatewayPush) async -> GatewayPushResult {
        let header: JSONValue = ["type": .string(GatewayWire.install), "target-name": .string(push.gatewayName), "target-uid": .string(push.gatewayUID)]
        return await sendAndWait(
            uid: push.gatewayUID, name: push.gatewayName, header: header,
            body: { push.policy.bytes(targetName: push.gatewayName, targetUID: push.gatewayUID) })
    }

    /// Sends a request (install or rollback; `header` gets an `id`) on the gateway's channel and waits
    /// for the result with that id, the channel's end, or the timeout.
    func sendAndWait(uid: String, name: String, header: JSONValue, body: (() -> [UInt8])?) async -> GatewayPushResult {
        let id = SecureRandom.uuid()
        func fail(_ message: String) -> GatewayPushResult {
            GatewayPushResult(gatewayUID: uid, gatewayName: name, outcome: .failed, message: message)
        }
        var fields = header.objectValue ?? [:]
        fields["id"] = .string(id)
        // A gateway whose trust was reset (reset-sic) gets nothing more on its old channel.
        guard service.isEnrolledGateway(uid: uid) else { return fail(notConnectedReason(uid)) }
        let frame = GatewayWire.frame(.object(fields), body: body?())
        return await withTaskGroup(of: GatewayPushResult?.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    let sent = self.registry.withLock { registry -> Bool in
                        guard let writer = registry[uid]?.channel?.writer else { return false }
                        registry[uid]?.waiting[id] = continuation
                        writer.yield(frame)
                        return true
                    }
                    if !sent { continuation.resume(returning: fail(self.notConnectedReason(uid))) }
                }
            }
            group.addTask {
                try? await Task.sleep(for: HubLimits.pushTimeout)
                return nil
            }
            let first = await group.next()!
            guard let result = first else {
                // Timed out: the waiting continuation is resumed here (and only here) with the failure.
                let waiting = registry.withLock { $0[uid]?.waiting.removeValue(forKey: id) }
                waiting?.resume(returning: fail("no answer within \(HubLimits.pushTimeout.components.seconds) s"))
                return await group.next()!!
            }
            group.cancelAll()
            return result
        }
    }

    func notConnectedReason(_ uid: String) -> String {
        guard service.isEnrolledGateway(uid: uid) else {
            return "not connected: the gateway has not enrolled (SIC uninitialized; start it with its one-time key)"
        }
        guard let seen = status(ofGateway: uid)?.lastContactMilliseconds else {
            return "not connected to this management server (not responding since this server started)"
        }
        return "not connected to this management server (not responding; last contact \(Renderer.timestamp(seen)["iso-8601"]?.stringValue ?? ""))"
    }

    // MARK: channels

    /// Serves a gateway's channel (SICService hands it over after the first frame, a hello). The peer
    /// must be an enrolled simple-gateway or cluster member: its certificate's uid names that object.
    func accept(
        _ connection: PeerConnection, identity: NodeIdentity, hello: JSONValue,
        frames: inout PeerInboundFrames.AsyncIterator
    ) async throws {
        guard service.isEnrolledGateway(uid: identity.uid) else {
            logger.warning("gateway channel refused: not an enrolled simple-gateway", metadata: ["peer": "\(identity)"])
            try await connection.send(GatewayWire.frame(["type": "error", "message": .string("\(identity) is not an enrolled gateway of this server")]))
            return
        }
        let registration = channels.register(node: identity.uid)
        defer { channels.unregister(registration) }
        let (outbound, writer) = AsyncStream.makeStream(of: PeerFrame.self)
        let token = attach(identity.uid, writer: writer, report: GatewayReport(json: hello["status"]))
        service.events.publish(.gatewayStatusChanged(GatewayStatusChanged(gateway: identity.name, uid: identity.uid, connected: true)))
        defer {
            detach(identity.uid, token: token)
            service.events.publish(.gatewayStatusChanged(GatewayStatusChanged(gateway: identity.name, uid: identity.uid, connected: false)))
        }
        writer.yield(await welcome(logsOf: identity.name))
        let lastHeard = LastHeard()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                for await frame in outbound { try await connection.send(frame) }
                await connection.close()  // replaced by a newer channel
            }
            group.addTask {
                for await reason in registration.cutOff {
                    self.logger.warning("gateway channel cut", metadata: ["gateway": "\(identity.name)", "reason": "\(reason)"])
                    await connection.close()
                    return
                }
            }
            group.addTask {
                try await lastHeard.waitForSilence(
                    longerThan: .milliseconds(GatewayLimits.silenceMilliseconds),
                    checkingEvery: .milliseconds(GatewayLimits.heartbeatMilliseconds)
                ) {
                    writer.yield(await self.welcome(logsOf: nil))
                }
                await connection.close()
            }
            while let frame = try await frames.next() {
                lastHeard.now()
                guard let (header, body) = GatewayWire.decode(frame) else { continue }
                await inbound(header, body: body, from: identity, writer: writer)
            }
            group.cancelAll()
        }
    }

    func inbound(_ header: JSONValue, body: ArraySlice<UInt8>, from identity: NodeIdentity, writer: AsyncStream<PeerFrame>.Continuation) async {
        switch header["type"]?.stringValue {
        case GatewayWire.status:
            update(identity.uid, report: GatewayReport(json: header["status"]))
            if let stamps = ClockStamps(message: header, receivedAtMilliseconds: WallClock.milliseconds()) {
                registry.withLock { $0[identity.uid]?.status.clock.record(stamps) }
            }
            await service.sicPeerSeen(uid: identity.uid)
        case GatewayWire.installResult, GatewayWire.rollbackResult:
            let report = GatewayReport(json: header["status"])
            update(identity.uid, report: report)
            guard let id = header["id"]?.stringValue else { return }
            let outcome = GatewayPushResult.Outcome(rawValue: header["outcome"]?.stringValue ?? "") ?? .failed
            var message = String((header["message"]?.stringValue ?? "").prefix(GatewayReport.textLengthMax))
            if outcome == .refused, let seen = report?.highestEpoch {
                message += Self.fencedAdvice(gatewayHighest: seen, ours: await service.gatewayAnnouncement().epoch) ?? ""
            }
            let waiting = registry.withLock { $0[identity.uid]?.waiting.removeValue(forKey: id) }
            waiting?.resume(returning: GatewayPushResult(gatewayUID: identity.uid, gatewayName: identity.name, outcome: outcome, message: message))
        case GatewayWire.logs:
            guard let logs, let through = header["through"]?.intValue else { return }
            do {
                let records = try JSONDecoder().decode([SequencedLogRecord].self, from: Data(body))
                try logs.append(records, receivedFrom: identity.name, receivedAtMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
                writer.yield(GatewayWire.frame(["type": .string(GatewayWire.logsAck), "through": .int(through)]))
            } catch {
                logger.warning("could not store gateway logs", metadata: ["gateway": "\(identity.name)", "error": "\(error)"])
            }
        default:
            break
        }
    }

    /// What to do when a gateway refused this server's push because it has seen a higher epoch: nil
    /// when this server's epoch is not below it (the refusal was for another reason).
    static func fencedAdvice(gatewayHighest: RevisionEpoch, ours: RevisionEpoch) -> String? {
        guard ours < gatewayHighest else { return nil }
        return """
            . This server's epoch \(ours.text) is below \(gatewayHighest.text): another server is active in a later epoch \
            (install there), or this server was restored from a backup older than the group's last promotion. If every other \
            server is gone, stop this server and restore again above the gateway's term: `rampart backup restore FILE --data DIR \
            --as-new-primary --replace --epoch-term \(gatewayHighest.term)` (or `rampart migrate import FILE --data NEWDIR \
            --as-new-primary --epoch-term \(gatewayHighest.term)`)
            """
    }

    /// The server's announcement: epoch, whether it is the active, every management server's SIC
    /// address, (on a new channel) the last log sequence stored from this gateway, and this server's
    /// wall clock, which the gateway's next status echoes.
    func welcome(logsOf gatewayName: String?) async -> PeerFrame {
        let (epoch, isActive) = await service.gatewayAnnouncement()
        let servers = serverList()
        var header: [String: JSONValue] = [
            "type": .string(GatewayWire.welcome), "epoch": epoch.json, "active": .bool(isActive),
            "servers": .array(servers), "sent-at-ms": .int(WallClock.milliseconds()),
        ]
        if let gatewayName, let logs {
            do { header["log-cursor"] = .int(Int64(try logs.lastSequence(gateway: gatewayName))) } catch {
                logger.warning("could not read the log database", metadata: ["error": "\(error)"])
            }
        }
        return GatewayWire.frame(.object(header))
    }

    private func gatewayName(_ uid: String) -> String? { service.publishedObject(uid: uid)?.name }

    /// Every management server's SIC address, read from the database at most once a second (every
    /// channel announces it every heartbeat).
    private func serverList() -> [JSONValue] {
        let now = ContinuousClock.now
        if let cached = serversCache.withLock({ $0 }), now - cached.at < .seconds(1) { return cached.list }
        let list: [JSONValue] = service.managementServers().compactMap { server in
            server.sicAddress.map { ["name": .string(server.name), "sic-address": .string($0)] }
        }
        serversCache.withLock { $0 = (now, list) }
        return list
    }

    private func attach(_ uid: String, writer: AsyncStream<PeerFrame>.Continuation, report: GatewayReport?) -> UInt64 {
        let token = UInt64.random(in: 1...UInt64.max)
        let previous = registry.withLock { registry -> AsyncStream<PeerFrame>.Continuation? in
            var entry = registry[uid] ?? Entry()
            let old = entry.channel?.writer
            entry.channel = (token, writer)
            entry.status.connected = true
            registry[uid] = entry
            return old
        }
        previous?.finish()
        update(uid, report: report)
        return token
    }

    private func detach(_ uid: String, token: UInt64) {
        let orphaned = registry.withLock { registry -> [CheckedContinuation<GatewayPushResult, Never>] in
            guard var entry = registry[uid], entry.channel?.token == token else { return [] }
            entry.channel?.writer.finish()
            entry.channel = nil
            entry.status.connected = false
            let waiting = Array(entry.waiting.values)
            entry.waiting = [:]
            registry[uid] = entry
            return waiting
        }
        let name = gatewayName(uid) ?? uid
        for continuation in orphaned {
            continuation.resume(
                returning: GatewayPushResult(
                    gatewayUID: uid, gatewayName: name, outcome: .failed,
                    message: "the gateway's channel closed before it acknowledged the policy"))
        }
    }

    private func update(_ uid: String, report: GatewayReport?) {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let before = registry.withLock { registry -> ClusterMemberReport? in
            var entry = registry[uid] ?? Entry()
            let before = entry.status.report?.cluster
            entry.status.lastContactMilliseconds = now
            if let report { entry.status.report = report }
            registry[uid] = entry
            return before
        }
        if let after = report?.cluster, after.state != before?.state { clusterStateChanged(uid, from: before?.state, to: after) }
    }

    /// A member's cluster state changed: the event stream says so, with the member's reason.
    private func clusterStateChanged(_ uid: String, from: String?, to report: ClusterMemberReport) {
        guard let member = service.publishedObject(uid: uid), member.type == .clusterMember else { return }
        let cluster = member.fields[ClusterModel.clusterField]?.stringValue.flatMap { service.publishedObject(uid: $0)?.name } ?? ""
        service.events.publish(
            .clusterMemberStateChanged(
                ClusterMemberStateChanged(
                    cluster: cluster, member: member.name, uid: uid, from: from, to: report.state,
                    eventCode: report.lastChange?.eventCode ?? "", reason: report.lastChange?.reason ?? "")))
    }
}

/// A counting semaphore for pushes in flight.
actor PushSlots {
    private var free: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []
    init(_ count: Int) { free = count }
    func acquire() async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }
    func release() {
        if waiters.isEmpty { free += 1 } else { waiters.removeFirst().resume() }
    }
}
