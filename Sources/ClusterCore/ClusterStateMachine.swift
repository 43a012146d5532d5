/// The gateway-cluster state machine of one member (ClusterXL High Availability). Pure and
/// deterministic: no clock, no randomness, no I/O; lists follow the configuration's order.
///
/// The runtime (the gateway agent) feeds every event to `step`, one at a time, and carries out the
/// returned `ClusterOutput` before the next one: the effects in order (commit the connection table,
/// hold or release the virtual address, ask for a full sync, log a state change), then the heartbeats
/// (each on its interface, to every other member). Time only moves with `tick(now:)`: call it every
/// few tens of milliseconds. Nothing here survives a restart: a restarted member starts in INIT, asks
/// the active member for the connection table, and stays DOWN until it has it (as ClusterXL does).
///
/// How ACTIVE is decided, on every member from what it hears:
/// - every member ranks the members it hears by `MemberRank` (healthy first, then not recently failed,
///   then priority, then the lower ID) from what each one announces, so all rank alike;
/// - when no member is active, the first-ranked healthy member takes ACTIVE (at once when the active
///   member goes DOWN or STANDBY and says so; after the dead timer when it falls silent);
/// - an active member with a problem goes DOWN when a healthy member can take over, and otherwise
///   keeps forwarding as ACTIVE(!); when every member has a problem, the first-ranked takes ACTIVE(!);
/// - two active members that hear each other: the lower-ranked one yields at once (split brain);
/// - Active Up: a recovered member stays STANDBY. Primary Up: a higher-ranked member that has been a
///   healthy standby for `preemptHoldMilliseconds` goes READY, the active member releases, and it takes
///   ACTIVE; the hysteresis in the rank keeps a member that just lost ACTIVE from taking it back.
public struct ClusterStateMachine: Sendable {
    public let configuration: ClusterConfiguration
    public let incarnation: UInt64
    public private(set) var state: MemberState = .initializing
    public private(set) var nowMilliseconds: UInt64

    let startedAtMilliseconds: UInt64
    var stateSinceMilliseconds: UInt64
    var devices: DeviceTable
    var linksUp: [Bool]
    var peers: [Peer]
    var sequence: UInt64 = 0
    var nextHeartbeatAtMilliseconds: UInt64
    var heartbeatNow = true
    var lastSentProblems: [DeviceSummary] = []
    var ownLoadPercent: UInt8 = 0
    var load = LoadStretchState()
    var fullSync: FullSyncProgress = .pending(requestedFrom: nil, atMilliseconds: 0)
    /// When this member last left ACTIVE or ACTIVE(!).
    var lostActiveAtMilliseconds: UInt64?
    /// The member last seen active (this one included): the failover counter counts its changes, and a
    /// takeover's reason names what happened to it.
    var lastKnownActive: MemberID?
    /// READY only: the active member asked to release.
    var preemptTarget: MemberID?
    var failoverCount: UInt64 = 0
    var failoverCountResetAtMilliseconds: UInt64
    var failoverCountResetCause = "start"
    var lastStateChange: StateChange?
    var pending = PendingClusterOutput()

    public init(configuration: ClusterConfiguration, start: ClusterStart) {
        self.configuration = configuration
        incarnation = start.incarnation
        nowMilliseconds = start.nowMilliseconds
        startedAtMilliseconds = start.nowMilliseconds
        stateSinceMilliseconds = start.nowMilliseconds
        nextHeartbeatAtMilliseconds = start.nowMilliseconds
        failoverCountResetAtMilliseconds = start.nowMilliseconds
        devices = DeviceTable(nowMilliseconds: start.nowMilliseconds)
        linksUp = configuration.monitoredInterfaces.map { start.linksUp.contains($0) }
        peers = configuration.members.filter { $0.id != configuration.localMember }.map {
            Peer(member: $0, interfaceCount: configuration.monitoredInterfaces.count)
        }
        refreshInterfaceCheck()
        setPolicy(installed: start.policyInstalled)
    }

    public var localMember: MemberID { configuration.localMember }
    public var limits: ClusterLimits { configuration.limits }
    /// True while this member should hold the virtual address (ACTIVE or ACTIVE(!)).
    public var holdsVirtualAddress: Bool { state.isActive }
    /// A joining member that has not received the connection table yet (nor learned there is none).
    public var awaitsFullSync: Bool { if case .pending = fullSync { true } else { false } }

    public mutating func step(_ input: ClusterInput) -> ClusterOutput {
        pending = PendingClusterOutput()
        switch input {
        case .tick(let now):
            precondition(now >= nowMilliseconds, "time never goes backwards")
            nowMilliseconds = now
            runTimers()
        case .receive(let heartbeat, let interface): receive(heartbeat, on: interface)
        case .linkChanged(let interface, let up): linkChanged(interface, up: up)
        case .policyChanged(let installed):
            setPolicy(installed: installed)
            pending.decide(installed ? "a policy is installed" : "no policy is installed")
        case .fullSyncCompleted(let member): fullSyncCompleted(from: member)
        case .load(let percent):
            ownLoadPercent = UInt8(clamping: max(0, min(100, percent)))
            pending.note("load \(ownLoadPercent)%")
            reportLoad(of: localMember, percent: ownLoadPercent)
        case .registerDevice(let name, let state, let timeout): registerDevice(name, state: state, timeoutMilliseconds: timeout)
        case .reportDevice(let name, let state): reportDevice(name, state: state)
        case .unregisterDevice(let name): unregisterDevice(name)
        case .adminDown(let force): adminDown(force: force)
        case .adminUp: adminUp()
        case .resetFailoverCounter:
            failoverCount = 0
            failoverCountResetAtMilliseconds = nowMilliseconds
            failoverCountResetCause = "reset by an administrator"
            pending.decide("failover counter reset")
        }
        evaluate()
        sendHeartbeatsIfDue()
        return pending.finish()
    }

    // MARK: - Time

    mutating func runTimers() {
        for name in devices.checkDeadlines(now: nowMilliseconds) {
            pending.decide("critical device \(name) missed its report deadline: it counts as a problem until it reports again")
        }
        if ownLoadPercent >= limits.loadThresholdPercent { reportLoad(of: localMember, percent: ownLoadPercent) }
        checkLoadStretch()
        if nowMilliseconds >= nextHeartbeatAtMilliseconds { heartbeatNow = true }
    }

    var startupComplete: Bool {
        nowMilliseconds - startedAtMilliseconds >= limits.startupWaitMilliseconds
            || peers.allSatisfy { $0.lastHeardAtMilliseconds != nil }
    }

    var deadTimerMilliseconds: UInt64 {
        load.stretch == nil ? limits.deadTimerMilliseconds : limits.deadTimerUnderLoadMilliseconds
    }

    func isLive(_ peer: Peer) -> Bool {
        guard let heard = peer.lastHeardAtMilliseconds else { return false }
        return nowMilliseconds - heard <= deadTimerMilliseconds
    }

    /// Whether this member lost ACTIVE, or started, within the flap hysteresis.
    public var steadiness: Steadiness {
        if let lost = lostActiveAtMilliseconds, nowMilliseconds - lost < limits.flapHysteresisMilliseconds { return .lostActiveRecently }
        return nowMilliseconds - startedAtMilliseconds < limits.flapHysteresisMilliseconds ? .startedRecently : .steady
    }

    func rank(health: MemberHealth) -> MemberRank {
        MemberRank(health: health, steadiness: steadiness, priority: configuration.local.priority, member: localMember)
    }

    func peerIndex(_ id: MemberID) -> Int? { peers.firstIndex { $0.id == id } }

    // MARK: - Heartbeats

    mutating func receive(_ heartbeat: ClusterHeartbeat, on interface: InterfaceName) {
        guard heartbeat.member != localMember, let index = peerIndex(heartbeat.member) else {
            pending.decide("ignored a heartbeat from \(heartbeat.member): not another member of this cluster")
            return
        }
        guard heartbeat.interface == interface, let interfaceIndex = configuration.interfaceIndex(interface) else {
            pending.decide(
                "ignored a heartbeat from \(heartbeat.member) on \(interface): sent on \(heartbeat.interface), not a monitored interface here or cross-wired")
            return
        }
        guard heartbeat.problems.count <= limits.heartbeatProblemsMax,
            heartbeat.problems.allSatisfy({ isPrintableName($0.name, bytesMax: limits.nameBytesMax) })
        else {
            pending.decide("ignored a heartbeat from \(heartbeat.member): its device list is malformed")
            return
        }
        let mark = HeartbeatMark(incarnation: heartbeat.incarnation, sequence: heartbeat.sequence)
        if peers[index].interfaceMarks[interfaceIndex].map({ $0 < mark }) ?? true {
            peers[index].interfaceMarks[interfaceIndex] = mark
            peers[index].interfaceHeardAtMilliseconds[interfaceIndex] = nowMilliseconds
        }
        guard peers[index].mark.map({ $0 < mark }) ?? true else {
            pending.note("heartbeat")
            return
        }
        let wasActive = isLive(peers[index]) && peers[index].state.isActive
        peers[index].mark = mark
        peers[index].lastHeardAtMilliseconds = nowMilliseconds
        peers[index].state = heartbeat.state
        peers[index].priority = heartbeat.priority
        peers[index].problems = heartbeat.problems
        peers[index].health = heartbeat.health
        peers[index].steadiness = heartbeat.steadiness
        peers[index].loadPercent = min(heartbeat.loadPercent, 100)
        pending.note("heartbeat")
        reportLoad(of: heartbeat.member, percent: peers[index].loadPercent)
        if heartbeat.state.isActive, !wasActive { noteActive(heartbeat.member) }
        if wasActive, !heartbeat.state.isActive, state.isActive {
            // It claimed ACTIVE and released it: neighbours may still send to it.
            pending.effect(.holdVirtualAddress)
            pending.decide("\(heartbeat.member) released ACTIVE (now \(heartbeat.state)): announcing the virtual address again")
        }
    }

    mutating func sendHeartbeatsIfDue() {
        let problems = devices.notOk
        if problems != lastSentProblems { heartbeatNow = true }
        guard heartbeatNow else { return }
        heartbeatNow = false
        lastSentProblems = problems
        sequence += 1
        nextHeartbeatAtMilliseconds = nowMilliseconds + limits.heartbeatIntervalMilliseconds
        let steadinessNow = steadiness
        for (index, interface) in configuration.monitoredInterfaces.enumerated() where linksUp[index] {
            pending.messages.append(
                ClusterHeartbeat(
                    member: localMember, incarnation: incarnation, sequence: sequence, interface: interface, state: state,
                    priority: configuration.local.priority, problems: problems, steadiness: steadinessNow,
                    loadPercent: ownLoadPercent))
        }
    }

    mutating func noteActive(_ member: MemberID) {
        if let last = lastKnownActive, last != member { failoverCount += 1 }
        lastKnownActive = member
    }

    // MARK: - Transitions

    /// The one way a state changes: with a reason and its event code, and the effects that go with it.
    mutating func transition(to target: MemberState, _ reason: TransitionReason) {
        precondition(target != state, "a transition changes the state")
        let change = StateChange(from: state, to: target, reason: reason, atMilliseconds: nowMilliseconds)
        if target.isActive, !state.isActive {
            pending.effect(.commitConnectionTable)
            pending.effect(.holdVirtualAddress)
            noteActive(localMember)
        }
        if state.isActive, !target.isActive {
            pending.effect(.releaseVirtualAddress)
            lostActiveAtMilliseconds = nowMilliseconds
        }
        // Yielding to another active member makes it the one we know, even with no heartbeat of it since:
        // a dead timer stretched after our takeover can make a silent member live again.
        if case .splitBrainResolved(let winner, _, _) = reason { noteActive(winner) }
        if case .preempting(let active) = reason { preemptTarget = active } else if target != .ready { preemptTarget = nil }
        state = target
        stateSinceMilliseconds = nowMilliseconds
        lastStateChange = change
        pending.effect(.stateChanged(change))
        pending.decide(change.description)
        heartbeatNow = true
    }

    mutating func evaluate() {
        refreshFullSync()
        if state == .initializing, !startupComplete { return }
        guard let (target, reason) = decide(), target != state else { return }
        transition(to: target, reason)
    }
}

/// `(incarnation, sequence)`: orders a member's heartbeats across its restarts.
struct HeartbeatMark: Comparable, Sendable {
    var incarnation: UInt64
    var sequence: UInt64

    static func < (lhs: HeartbeatMark, rhs: HeartbeatMark) -> Bool {
        (lhs.incarnation, lhs.sequence) < (rhs.incarnation, rhs.sequence)
    }
}

/// What this member knows about another one, from its last heartbeats.
struct Peer: Sendable {
    let member: ClusterMember
    var mark: HeartbeatMark?
    var lastHeardAtMilliseconds: UInt64?
    var interfaceMarks: [HeartbeatMark?]
    var interfaceHeardAtMilliseconds: [UInt64?]
    var state: MemberState = .initializing
    var priority: UInt8
    var problems: [DeviceSummary] = []
    var health: MemberHealth = .impaired
    var steadiness = Steadiness.startedRecently
    var loadPercent: UInt8 = 0

    init(member: ClusterMember, interfaceCount: Int) {
        self.member = member
        priority = member.priority
        interfaceMarks = Array(repeating: nil, count: interfaceCount)
        interfaceHeardAtMilliseconds = Array(repeating: nil, count: interfaceCount)
    }

    var id: MemberID { member.id }
    var rank: MemberRank { MemberRank(health: health, steadiness: steadiness, priority: priority, member: id) }
}

/// A joining member's full sync of the connection table.
enum FullSyncProgress: Hashable, Sendable {
    /// Not received yet; asked from `requestedFrom` (nil: not asked yet).
    case pending(requestedFrom: MemberID?, atMilliseconds: UInt64)
    case done
}

/// Collects one step's output.
struct PendingClusterOutput: Sendable {
    var messages: [ClusterHeartbeat] = []
    var effects: [ClusterEffect] = []
    var reasons: [String] = []
    var routine = "tick"

    mutating func effect(_ effect: ClusterEffect) { effects.append(effect) }
    /// A decision worth a log line.
    mutating func decide(_ reason: String) { reasons.append(reason) }
    /// Routine bookkeeping, used only when nothing was decided.
    mutating func note(_ reason: String) { routine = reason }

    func finish() -> ClusterOutput {
        let reason = reasons.isEmpty ? routine : reasons.joined(separator: "; ")
        return ClusterOutput(messages: messages, effects: effects, reason: reason)
    }
}
