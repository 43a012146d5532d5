import ClusterCore
import Foundation
import Logging
import ManagementModel

/// Where heartbeats leave: one datagram to one peer address on one interface.
public protocol HeartbeatTransport: Sendable {
    func send(_ datagram: [UInt8], on interface: InterfaceName, to address: String) async
}

/// The I/O shell of one cluster member around `ClusterStateMachine`: one loop takes every input in
/// arrival order (ticks, heartbeats, operator commands), steps the core, and carries out the output
/// before the next input, as the core's contract asks: effects in order (hold or release the virtual
/// address, log the state change), then the heartbeats, then the log line with the reason.
public actor ClusterRuntime {
    public enum Event: Sendable {
        /// A tick of the loop, due at this monotonic instant (how late it is handled is the load figure).
        case tick(dueMilliseconds: UInt64)
        case datagram([UInt8], interface: InterfaceName, from: String?)
        case command(ClusterInput, reply: CheckedContinuation<ClusterOutput?, Never>)
    }

    public nonisolated let plan: ClusterPlan
    let host: any ClusterHost
    let transport: any HeartbeatTransport
    let codec: HeartbeatCodec
    let executor: EffectExecutor
    /// conntrackd between the members; nil: no connection state is synchronized.
    let connectionSync: ConnectionSync?
    let logger: Logger
    let publish: @Sendable (ClusterMemberReport) async -> Void
    let wallClockMilliseconds: @Sendable () -> Int64
    let origin = ContinuousClock.now
    nonisolated let events: AsyncStream<Event>.Continuation
    let stream: AsyncStream<Event>

    var machine: ClusterStateMachine
    /// The link state last told to the core, per monitored interface.
    var linksUp: [InterfaceName: Bool] = [:]
    var lastReport: ClusterMemberReport?
    var lastChangeWallMilliseconds: Int64?
    public private(set) var rejectedDatagrams: [String: UInt64] = [:]
    public private(set) var port: Int
    var schedulingDelay = SchedulingDelay()
    var lastLoadSampleMilliseconds: UInt64?
    /// The last load figure fed to the core: how late this member's loop ran, as a share of the
    /// heartbeat interval (nil: none yet).
    public private(set) var loadPercent: Int?

    /// Inputs waiting beyond this are dropped (a heartbeat flood must not grow memory; a dropped
    /// command is answered nil).
    public static let eventsQueuedMax = 4_096
    /// How often the load figure is fed to the core (its dead timer stretches under load, and the
    /// heartbeats carry the figure to the other members).
    public static let loadSampleIntervalMilliseconds: UInt64 = 1_000

    /// The input queue: made first, so the transport can deliver into it before the runtime exists.
    public static func makeEvents() -> (stream: AsyncStream<Event>, continuation: AsyncStream<Event>.Continuation) {
        let (stream, continuation) = AsyncStream.makeStream(of: Event.self, bufferingPolicy: .bufferingOldest(eventsQueuedMax))
        return (stream, continuation)
    }

    public init(
        plan: ClusterPlan, host: any ClusterHost, transport: any HeartbeatTransport,
        events: (stream: AsyncStream<Event>, continuation: AsyncStream<Event>.Continuation), incarnation: UInt64, port: Int, logger: Logger,
        connectionSync: ConnectionSync? = nil,
        wallClockMilliseconds: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        publish: @escaping @Sendable (ClusterMemberReport) async -> Void
    ) {
        self.plan = plan
        self.host = host
        self.transport = transport
        self.codec = plan.heartbeatKeyBytes.map(HeartbeatCodec.init(keyBytes:)) ?? HeartbeatCodec(clusterUID: plan.clusterUID)
        self.executor = EffectExecutor(host: host, plan: plan, logger: logger)
        self.connectionSync = connectionSync
        self.logger = logger
        self.publish = publish
        self.wallClockMilliseconds = wallClockMilliseconds
        self.port = port
        let up = plan.configuration.monitoredInterfaces.filter { host.linkUp($0) == true }
        for interface in plan.configuration.monitoredInterfaces { linksUp[interface] = up.contains(interface) }
        machine = ClusterStateMachine(
            configuration: plan.configuration,
            start: ClusterStart(nowMilliseconds: 0, incarnation: incarnation, linksUp: up, policyInstalled: true))
        (stream, self.events) = events
    }

    /// Milliseconds since this runtime started, on the monotonic clock (never backwards).
    nonisolated func monotonicMilliseconds() -> UInt64 {
        let elapsed = ContinuousClock.now - origin
        let (seconds, attoseconds) = elapsed.components
        return UInt64(max(0, seconds)) * 1_000 + UInt64(max(0, attoseconds)) / 1_000_000_000_000_000
    }

    /// Runs until cancelled: the ticker and the one loop that steps the core. At the end the
    /// virtual address is released (a stopped runtime must not keep it).
    public func run() async {
        logger.notice(
            "cluster runtime started",
            metadata: [
                "cluster": "\(plan.clusterName)", "member": "\(plan.configuration.localMember)", "mode": "\(plan.configuration.mode)",
                "interfaces": "\(plan.configuration.monitoredInterfaces.map(\.name).joined(separator: ","))",
            ])
        // The previous run may have been killed while active: hold nothing until the core says so.
        _ = await executor.releaseVirtualAddresses()
        let interval = max(plan.configuration.limits.heartbeatIntervalMilliseconds / 4, 5)
        let ticker = Task { [events, self] in
            while !Task.isCancelled {
                let due = monotonicMilliseconds()
                events.yield(.tick(dueMilliseconds: due))
                try? await Task.sleep(for: .milliseconds(interval))
                // Woken late: that lateness counts too (the next tick is due where this sleep should have ended).
                let woken = monotonicMilliseconds()
                if woken > due + interval + 1 { events.yield(.tick(dueMilliseconds: due + interval)) }
            }
        }
        defer { ticker.cancel() }
        for await event in stream {
            if Task.isCancelled { break }
            await process(event)
        }
        if machine.holdsVirtualAddress { _ = await executor.releaseVirtualAddresses() }
        logger.notice("cluster runtime stopped", metadata: ["cluster": "\(plan.clusterName)"])
    }

    /// Stops `run` (its stream ends).
    public nonisolated func stop() { events.finish() }

    /// An operator command (admin down, pnote register…): its output, nil when the queue was full.
    public func perform(_ input: ClusterInput) async -> ClusterOutput? {
        await withCheckedContinuation { continuation in
            if case .dropped = events.yield(.command(input, reply: continuation)) { continuation.resume(returning: nil) }
        }
    }

    public var status: ClusterStatus { machine.status }

    /// The wall-clock time of a monotonic instant of this runtime (for what an operator reads).
    public func wallMilliseconds(ofMonotonic instant: UInt64) -> Int64 {
        let now = monotonicMilliseconds()
        return wallClockMilliseconds() - Int64(clamping: now >= instant ? now - instant : 0)
    }

    func process(_ event: Event) async {
        switch event {
        case .tick(let due):
            schedulingDelay.record(dueMilliseconds: due, nowMilliseconds: monotonicMilliseconds())
            for interface in plan.configuration.monitoredInterfaces {
                let up = host.linkUp(interface) ?? false
                guard up != linksUp[interface] else { continue }
                linksUp[interface] = up
                await step(.linkChanged(interface, up: up))
            }
            // The core's clock is the time each input happened, in queue order: a loop running behind
            // steps its backlog at the ticks' due times, so heartbeats still queued behind a tick never
            // look missed (at processing time a lagging member declared a live active dead).
            await step(.tick(now: max(due, machine.nowMilliseconds)))
            await sampleLoadIfDue()
        case .datagram(let bytes, let interface, let source):
            guard let input = admit(bytes, interface: interface, from: source) else { return }
            await step(input)
        case .command(let input, let reply):
            await step(.tick(now: max(monotonicMilliseconds(), machine.nowMilliseconds)))
            reply.resume(returning: await step(input))
        }
        await publishIfChanged()
    }

    /// Feeds the core how late this member's loop ran since the previous sample, once per interval.
    func sampleLoadIfDue() async {
        let now = monotonicMilliseconds()
        if let last = lastLoadSampleMilliseconds, now - last < Self.loadSampleIntervalMilliseconds { return }
        lastLoadSampleMilliseconds = now
        let interval = plan.configuration.limits.heartbeatIntervalMilliseconds
        guard let percent = schedulingDelay.percent(ofIntervalMilliseconds: interval) else { return }
        loadPercent = percent
        await step(.load(percent: percent))
    }

    /// A datagram becomes an input only when it comes from the configured address of the member it
    /// names, on the interface it arrived on, and its tag is right.
    func admit(_ bytes: [UInt8], interface: InterfaceName, from source: String?) -> ClusterInput? {
        guard let monitored = plan.interfaces.first(where: { $0.name == interface }) else { return reject("interface") }
        let heartbeat: ClusterHeartbeat
        do { heartbeat = try codec.decode(bytes) } catch { return reject(error.rawValue) }
        guard monitored.peers.contains(where: { $0.member == heartbeat.member && $0.address == source }) else { return reject("sender") }
        return .receive(heartbeat, on: interface)
    }

    func reject(_ why: String) -> ClusterInput? {
        rejectedDatagrams[why, default: 0] &+= 1
        return nil
    }

    /// One step and its output carried out: effects in order, then heartbeats, then the log.
    @discardableResult
    func step(_ input: ClusterInput) async -> ClusterOutput {
        let output = machine.step(input)
        var followUps: [ClusterInput] = []
        for effect in output.effects {
            if let followUp = await carryOut(effect) { followUps.append(followUp) }
        }
        for heartbeat in output.messages {
            guard let monitored = plan.interfaces.first(where: { $0.name == heartbeat.interface }) else { continue }
            let datagram = codec.encode(heartbeat)
            for peer in monitored.peers { await transport.send(datagram, on: heartbeat.interface, to: peer.address) }
        }
        if !output.effects.isEmpty || !Self.isRoutine(output.reason) {
            logger.info("cluster: \(output.reason)", metadata: ["cluster": "\(plan.clusterName)", "state": "\(machine.state)"])
        }
        for followUp in followUps { await step(followUp) }
        return output
    }

    static let routineReasons: Set<String> = ["tick", "heartbeat", "link state unchanged", "device report"]

    /// Bookkeeping that needs no log line (a load sample is one every second).
    static func isRoutine(_ reason: String) -> Bool {
        routineReasons.contains(reason) || (reason.hasPrefix("load ") && reason.hasSuffix("%") && !reason.contains(";"))
    }

    func carryOut(_ effect: ClusterEffect) async -> ClusterInput? {
        switch effect {
        case .holdVirtualAddress:
            let outcome = await executor.holdVirtualAddresses()
            for failure in outcome.failures { logger.error("cluster: holding the virtual address failed", metadata: ["command": "\(failure)"]) }
        case .releaseVirtualAddress:
            let outcome = await executor.releaseVirtualAddresses()
            for failure in outcome.failures { logger.error("cluster: releasing the virtual address failed", metadata: ["command": "\(failure)"]) }
            await connectionSync?.becameStandby()
        case .commitConnectionTable:
            guard let connectionSync else {
                logger.info("cluster: no connection table to commit (connection sync is not configured on this member)")
                break
            }
            await connectionSync.becameActive()
        case .requestFullSync(let member):
            guard let connectionSync else {
                logger.info("cluster: full sync from \(member) not needed (connection sync is not configured on this member)")
                return .fullSyncCompleted(from: member)
            }
            // Waiting must not stop heartbeats: the answer comes back as a command through the queue.
            Task {
                let entries = await connectionSync.receiveFullTable()
                self.logger.notice("cluster: full sync from \(member): \(entries) connections in the external cache")
                _ = await self.perform(.fullSyncCompleted(from: member))
            }
        case .stateChanged(let change):
            lastChangeWallMilliseconds = wallClockMilliseconds()
            let level: Logger.Level = change.to == .down || change.to == .activeAttention ? .warning : .notice
            logger.log(
                level: level, "cluster member state changed",
                metadata: [
                    "cluster": "\(plan.clusterName)", "member": "\(plan.configuration.localMember)", "event-code": "\(change.eventCode)",
                    "from": "\(change.from)", "to": "\(change.to)", "reason": "\(change.reason)",
                ])
        case .deadTimerChanged(let status, let code, let reason):
            logger.warning("cluster dead timer changed", metadata: ["event-code": "\(code)", "dead-timer": "\(status)", "reason": "\(reason)"])
        case .commandRefused:
            break
        }
        return nil
    }

    /// The member report the agent sends its management servers.
    public var report: ClusterMemberReport {
        let status = machine.status
        let change = status.lastStateChange.map { change in
            ClusterMemberReport.Change(
                eventCode: change.eventCode.rawValue, from: change.from.rawValue, to: change.to.rawValue, reason: change.reason.description,
                timeMilliseconds: lastChangeWallMilliseconds ?? wallMilliseconds(ofMonotonic: change.atMilliseconds))
        }
        return ClusterMemberReport(
            state: status.state.rawValue, pnotes: status.devices.map { .init(name: $0.name, state: $0.state.rawValue) },
            failoverCount: status.failoverCount, lastChange: change)
    }

    func publishIfChanged() async {
        let now = report
        guard now != lastReport else { return }
        lastReport = now
        await publish(now)
    }
}
