import ClusterCore

/// A broken invariant: which one, where, and the seed that reproduces it.
struct ClusterViolation: Hashable, Sendable, CustomStringConvertible {
    var seed: UInt64
    var tick: Int
    var invariant: String
    var detail: String

    var description: String { "seed \(seed), t=\(tick * 10)ms: \(invariant): \(detail)" }
}

/// One gateway of the simulated cluster: its core (nil while crashed) and what its runtime holds.
final class SimulatedMember {
    let id: MemberID
    let configuration: ClusterConfiguration
    var core: ClusterStateMachine?
    var incarnation: UInt64 = 0
    /// Physical link state per monitored interface.
    var linksUp: [Bool]
    var policyInstalled = true
    var loadPercent = 0
    var holdsVirtualAddress = false
    var committedTableSinceActive = false
    var restartAtTick: Int?
    var startedAtTick = 0
    /// A full sync under way: from which member, done at which tick.
    var fullSync: (source: Int, dueTick: Int)?
    /// Link changes the runtime has not noticed yet (it polls link state).
    var linkReports: [(dueTick: Int, lane: Int, up: Bool)] = []
    /// The registered `probe` device: the state the script reports, and whether it reports at all.
    var probeState: DeviceState = .ok
    var probeReporting = true
    /// For the no-flapping check: when (ms) this member last left ACTIVE (a crash while active included).
    var lostActiveAtMilliseconds: UInt64?
    /// Since when (tick) it is ACTIVE or ACTIVE(!).
    var activeSinceTick: Int?

    init(configuration: ClusterConfiguration) {
        id = configuration.localMember
        self.configuration = configuration
        linksUp = Array(repeating: true, count: configuration.monitoredInterfaces.count)
    }

    var isUp: Bool { core != nil }
}

/// A whole gateway cluster in simulated time: members, their runtimes (virtual address, full sync, link
/// state, load, a script reporting a device), the network, and the invariant checks that run after every
/// step. Scenario tests drive it by hand; `ClusterRandomSchedule` drives it with seeded faults.
final class SimulatedGatewayCluster {
    struct Setup {
        var priorities: [UInt8] = [100, 90, 80]
        var mode: HighAvailabilityMode = .activeUp
        var limits = ClusterLimits()
        var interfaces: [InterfaceName] = ["eth1", "sync"]
        var tickMilliseconds: UInt64 = 10
        /// Every member registers a `probe` device with this report timeout, reported every 200 ms.
        var probeTimeoutMilliseconds: UInt64? = 1_000
        /// How long a full sync takes, in ticks.
        var fullSyncTicks: ClosedRange<Int> = 5...40
    }

    struct Statistics: Hashable, Sendable {
        var takeovers = 0
        var stateChanges = 0
        var splitBrainsResolved = 0
        var attentions = 0
        var preemptions = 0
        var fullSyncs = 0
        var deadTimerStretches = 0
        var heartbeats = 0
        var crashes = 0
        var refusals = 0

        mutating func add(_ other: Statistics) {
            takeovers += other.takeovers
            stateChanges += other.stateChanges
            splitBrainsResolved += other.splitBrainsResolved
            attentions += other.attentions
            preemptions += other.preemptions
            fullSyncs += other.fullSyncs
            deadTimerStretches += other.deadTimerStretches
            heartbeats += other.heartbeats
            crashes += other.crashes
            refusals += other.refusals
        }
    }

    static let probeDevice = "probe"
    static let probeReportTicks = 20
    static let loadSampleTicks = 50
    /// A loaded member's heartbeats leave up to this many ticks late.
    static let loadedSendDelayTicksMax = 20

    let seed: UInt64
    let setup: Setup
    let members: [SimulatedMember]
    var network: DatagramNetwork<ClusterHeartbeat>
    var random: SplitMix64
    private(set) var tick = 0
    private(set) var steps = 0
    private(set) var violation: ClusterViolation?
    var statistics = Statistics()
    /// One line per event, when set.
    var trace: ((String) -> Void)?
    /// Every state change, in order.
    private(set) var transitions: [(tick: Int, member: MemberID, change: StateChange)] = []
    /// Every decision and effect, when `keepsLog` is on.
    var keepsLog = false
    private(set) var log: [(tick: Int, member: MemberID, reason: String)] = []
    private(set) var effectLog: [(tick: Int, member: MemberID, effect: ClusterEffect)] = []
    /// Per pair of members (a < b): since when they can hear each other, and since when both are active.
    private var connectedSinceTick: [Int?]
    private var bothActiveSinceTick: [Int?]

    init(setup: Setup = Setup(), seed: UInt64 = 1, network profile: DatagramProfile = .perfect) {
        self.seed = seed
        self.setup = setup
        random = SplitMix64(seed: seed)
        let records = setup.priorities.enumerated().map { index, priority in
            ClusterMember(id: MemberID(UInt8(index + 1)), name: "gw\(index + 1)", address: "192.0.2.\(index + 1)", priority: priority)
        }
        members = records.map { record in
            // The setup is the test's own: a refusal here is a broken test.
            guard let configuration = try? ClusterConfiguration(localMember: record.id, members: records, mode: setup.mode,
                                                               monitoredInterfaces: setup.interfaces, limits: setup.limits) else {
                preconditionFailure("invalid simulated cluster setup")
            }
            return SimulatedMember(configuration: configuration)
        }
        network = DatagramNetwork(nodeCount: records.count, laneCount: setup.interfaces.count, profile: profile)
        let pairs = records.count * records.count
        connectedSinceTick = Array(repeating: nil, count: pairs)
        bothActiveSinceTick = Array(repeating: nil, count: pairs)
    }

    var memberIDs: [MemberID] { members.map(\.id) }
    var nowMilliseconds: UInt64 { UInt64(tick) * setup.tickMilliseconds }
    var limits: ClusterLimits { setup.limits }

    func index(of id: MemberID) -> Int {
        guard let index = members.firstIndex(where: { $0.id == id }) else { preconditionFailure("no \(id)") }
        return index
    }

    func member(_ id: MemberID) -> SimulatedMember { members[index(of: id)] }
    func core(_ id: MemberID) -> ClusterStateMachine? { member(id).core }
    func lane(_ interface: InterfaceName) -> Int {
        guard let lane = setup.interfaces.firstIndex(of: interface) else { preconditionFailure("no interface \(interface)") }
        return lane
    }

    // MARK: - Members

    /// Starts every member at once (a cold start of the whole cluster).
    func startAll() {
        for member in members where !member.isUp { start(member) }
    }

    func start(_ member: SimulatedMember) {
        member.incarnation += 1
        member.startedAtTick = tick
        member.restartAtTick = nil
        member.fullSync = nil
        member.linkReports = []
        member.holdsVirtualAddress = false  // the runtime removes a leftover address at start
        member.committedTableSinceActive = false
        member.activeSinceTick = nil
        let linksUp = setup.interfaces.enumerated().filter { member.linksUp[$0.offset] }.map(\.element)
        member.core = ClusterStateMachine(configuration: member.configuration,
                                          start: ClusterStart(nowMilliseconds: nowMilliseconds, incarnation: member.incarnation,
                                                              linksUp: linksUp, policyInstalled: member.policyInstalled))
        traceLine { "t=\(self.nowMilliseconds)ms \(member.id) START (incarnation \(member.incarnation))" }
        if let timeout = setup.probeTimeoutMilliseconds {
            deliver(member, .registerDevice(name: Self.probeDevice, state: member.probeState, timeoutMilliseconds: timeout))
        }
        if member.loadPercent > 0 { deliver(member, .load(percent: member.loadPercent)) }
    }

    /// The machine dies (power, kernel panic): its address and connection table go with it.
    func crash(_ id: MemberID, restartAfterTicks: Int? = nil) {
        let member = member(id)
        guard member.isUp else { return }
        // Crashing while active loses ACTIVE too: the no-flapping rule holds across the restart.
        if member.core?.state.isActive == true { member.lostActiveAtMilliseconds = nowMilliseconds }
        member.core = nil
        member.holdsVirtualAddress = false
        member.activeSinceTick = nil
        member.fullSync = nil
        member.restartAtTick = restartAfterTicks.map { tick + $0 }
        statistics.crashes += 1
        traceLine { "t=\(self.nowMilliseconds)ms \(id) CRASH" }
    }

    func restart(_ id: MemberID) {
        let member = member(id)
        guard !member.isUp else { return }
        start(member)
    }

    /// The link of `interface` on `id` goes down or up (`ip link set … down`, a cable); the runtime
    /// notices within two ticks.
    func setLink(_ id: MemberID, _ interface: InterfaceName, up: Bool) {
        let member = member(id)
        let lane = lane(interface)
        guard member.linksUp[lane] != up else { return }
        member.linksUp[lane] = up
        member.linkReports.append((tick + random.below(3), lane, up))
        traceLine { "t=\(self.nowMilliseconds)ms \(id) LINK \(interface) \(up ? "up" : "down")" }
    }

    func setPolicy(_ id: MemberID, installed: Bool) {
        let member = member(id)
        member.policyInstalled = installed
        traceLine { "t=\(self.nowMilliseconds)ms \(id) POLICY \(installed ? "installed" : "uninstalled")" }
        if member.isUp { deliver(member, .policyChanged(installed: installed)) }
    }

    func setLoad(_ id: MemberID, percent: Int) {
        let member = member(id)
        member.loadPercent = percent
        traceLine { "t=\(self.nowMilliseconds)ms \(id) LOAD \(percent)%" }
        if member.isUp { deliver(member, .load(percent: percent)) }
    }

    /// The `probe` device's script reports `state` from now on (`reporting` false: it stops reporting).
    func setProbe(_ id: MemberID, _ state: DeviceState, reporting: Bool = true) {
        let member = member(id)
        member.probeState = state
        member.probeReporting = reporting
        traceLine { "t=\(self.nowMilliseconds)ms \(id) PROBE \(state)\(reporting ? "" : ", not reporting")" }
        if member.isUp, reporting, setup.probeTimeoutMilliseconds != nil {
            deliver(member, .reportDevice(name: Self.probeDevice, state: state))
        }
    }

    /// Feeds an input as an operator or script would; returns the core's reason.
    @discardableResult
    func command(_ input: ClusterInput, on id: MemberID) -> String {
        let member = member(id)
        guard member.isUp else { return "\(id) is down" }
        return deliver(member, input)
    }

    // MARK: - Network faults

    func partition(_ a: MemberID, _ b: MemberID) {
        network.partition(index(of: a), index(of: b))
        traceLine { "t=\(self.nowMilliseconds)ms NET partition \(a) | \(b)" }
    }

    func isolate(_ id: MemberID) {
        network.isolate(index(of: id))
        traceLine { "t=\(self.nowMilliseconds)ms NET isolate \(id)" }
    }

    /// Heartbeats from `from` to `to` on one interface are lost (a switch port, a VLAN), links stay up.
    func cut(from: MemberID, to: MemberID, on interface: InterfaceName) {
        network.setCut(from: index(of: from), to: index(of: to), lane: lane(interface), true)
        traceLine { "t=\(self.nowMilliseconds)ms NET cut \(from) -> \(to) on \(interface)" }
    }

    func healNetwork() {
        network.healAll()
        traceLine { "t=\(self.nowMilliseconds)ms NET heal" }
    }

    // MARK: - Driving

    /// One tick: restarts, what the runtimes noticed (links, full syncs, device reports, load samples),
    /// timers, then the datagrams due.
    func runTick() {
        tick += 1
        for member in members where !member.isUp {
            if let restartAt = member.restartAtTick, restartAt <= tick { start(member) }
        }
        for member in members where member.isUp { runtimeDuties(member) }
        let now = nowMilliseconds
        for member in members where member.isUp { deliver(member, .tick(now: now)) }
        for datagram in network.takeDue(at: tick) {
            let receiver = members[datagram.to]
            guard receiver.isUp, receiver.linksUp[datagram.lane] else { continue }
            deliver(receiver, .receive(datagram.message, on: setup.interfaces[datagram.lane]))
        }
        checkPairs()
    }

    func run(ticks: Int) {
        for _ in 0..<ticks where violation == nil { runTick() }
    }

    private func runtimeDuties(_ member: SimulatedMember) {
        while let report = member.linkReports.first, report.dueTick <= tick, member.isUp {
            member.linkReports.removeFirst()
            deliver(member, .linkChanged(setup.interfaces[report.lane], up: report.up))
        }
        if let sync = member.fullSync, sync.dueTick <= tick {
            member.fullSync = nil
            let source = members[sync.source]
            // The table comes over TCP from a member that still forwards and can be reached.
            if source.isUp, source.core?.state.isActive == true, connected(sync.source, index(of: member.id)) {
                statistics.fullSyncs += 1
                deliver(member, .fullSyncCompleted(from: source.id))
            } else {
                traceLine { "t=\(self.nowMilliseconds)ms \(member.id) full sync from \(source.id) failed" }
            }
        }
        if setup.probeTimeoutMilliseconds != nil, member.probeReporting, (tick - member.startedAtTick) % Self.probeReportTicks == 0 {
            deliver(member, .reportDevice(name: Self.probeDevice, state: member.probeState))
        }
        if member.loadPercent > 0, (tick - member.startedAtTick) % Self.loadSampleTicks == 0 {
            deliver(member, .load(percent: member.loadPercent))
        }
    }

    /// Feeds one input to a member's core, carries out its output, and checks every invariant.
    @discardableResult
    private func deliver(_ member: SimulatedMember, _ input: ClusterInput) -> String {
        guard member.core != nil else { return "\(member.id) is down" }
        let before = member.core?.state ?? .initializing
        let awaitedFullSync = member.core?.awaitsFullSync ?? false
        guard let output = member.core?.step(input) else { return "down" }
        steps += 1
        if keepsLog, output.reason != "tick", output.reason != "heartbeat" { log.append((tick, member.id, output.reason)) }
        traceStep(member, input, output)
        for effect in output.effects { carryOut(effect, on: member) }
        send(output.messages, from: member)
        checkStep(member, input: input, before: before, awaitedFullSync: awaitedFullSync, output: output)
        return output.reason
    }

    private func carryOut(_ effect: ClusterEffect, on member: SimulatedMember) {
        if keepsLog { effectLog.append((tick, member.id, effect)) }
        switch effect {
        case .commitConnectionTable:
            member.committedTableSinceActive = true
        case .holdVirtualAddress:
            if !member.committedTableSinceActive {
                fail("a member commits the connection table before it holds the virtual address", "\(member.id) took the address first")
            }
            member.holdsVirtualAddress = true
        case .releaseVirtualAddress:
            member.holdsVirtualAddress = false
            member.committedTableSinceActive = false
        case .requestFullSync(let source):
            member.fullSync = (index(of: source), tick + random.int(in: setup.fullSyncTicks))
        case .stateChanged(let change):
            transitions.append((tick, member.id, change))
            statistics.stateChanges += 1
            if change.to.isActive, !change.from.isActive { statistics.takeovers += 1 }
            if case .splitBrainResolved = change.reason { statistics.splitBrainsResolved += 1 }
            if change.to == .activeAttention { statistics.attentions += 1 }
            if case .preemptionCompleted = change.reason { statistics.preemptions += 1 }
        case .deadTimerChanged(_, let code, _):
            if code == .deadTimerStretched { statistics.deadTimerStretches += 1 }
        case .commandRefused:
            statistics.refusals += 1
        }
    }

    private func send(_ heartbeats: [ClusterHeartbeat], from member: SimulatedMember) {
        let from = index(of: member.id)
        for heartbeat in heartbeats {
            let lane = lane(heartbeat.interface)
            statistics.heartbeats += 1
            // Nothing leaves through a link that is down, whatever the core believes.
            guard member.linksUp[lane] else { continue }
            let late = member.loadPercent >= Int(limits.loadThresholdPercent) ? random.below(Self.loadedSendDelayTicksMax + 1) : 0
            network.broadcast(from: from, lane: lane, heartbeat, at: tick, extraDelayTicks: late, random: &random)
        }
    }

    // MARK: - Invariants

    func fail(_ invariant: String, _ detail: String) {
        guard violation == nil else { return }
        violation = ClusterViolation(seed: seed, tick: tick, invariant: invariant, detail: detail)
        traceLine { "t=\(self.nowMilliseconds)ms VIOLATION \(invariant): \(detail)" }
    }

    /// Two members hear each other when both are up and some interface carries datagrams both ways.
    func connected(_ a: Int, _ b: Int) -> Bool {
        guard members[a].isUp, members[b].isUp else { return false }
        for lane in setup.interfaces.indices where members[a].linksUp[lane] && members[b].linksUp[lane] {
            if !network.isCut(from: a, to: b, lane: lane), !network.isCut(from: b, to: a, lane: lane) { return true }
        }
        return false
    }

    /// Ticks within which two active members that hear each other must have resolved it: a few heartbeats
    /// and the longest ordinary delay (one heartbeat getting through is enough).
    var splitBrainResolutionTicks: Int {
        Int((5 * limits.heartbeatIntervalMilliseconds) / setup.tickMilliseconds) + network.profile.delayTicksMax + Self.loadedSendDelayTicksMax
    }

    private func checkPairs() {
        for a in members.indices {
            for b in members.indices where a < b {
                let pair = a * members.count + b
                connectedSinceTick[pair] = connected(a, b) ? (connectedSinceTick[pair] ?? tick) : nil
                let bothActive = members[a].core?.state.isActive == true && members[b].core?.state.isActive == true
                bothActiveSinceTick[pair] = bothActive ? (bothActiveSinceTick[pair] ?? tick) : nil
                guard let connectedSince = connectedSinceTick[pair], let activeSince = bothActiveSinceTick[pair] else { continue }
                if tick - max(connectedSince, activeSince) > splitBrainResolutionTicks {
                    fail("two members that hear each other are never both ACTIVE for long",
                         "\(members[a].id) and \(members[b].id) both active and connected for \(tick - max(connectedSince, activeSince)) ticks")
                }
            }
        }
    }

    func connectedSince(_ a: Int, _ b: Int) -> Int? {
        connectedSinceTick[min(a, b) * members.count + max(a, b)]
    }

    private func checkStep(_ member: SimulatedMember, input: ClusterInput, before: MemberState, awaitedFullSync: Bool, output: ClusterOutput) {
        guard let core = member.core else { return }
        let after = core.state
        let changes = output.effects.compactMap { effect -> StateChange? in
            if case .stateChanged(let change) = effect { change } else { nil }
        }
        if before != after {
            guard changes.count == 1, let change = changes.first, change.from == before, change.to == after else {
                return fail("no state change without a reason", "\(member.id) went \(before) -> \(after) with changes \(changes)")
            }
            if change.reason.description.isEmpty || !EventCode.table.contains(where: { $0.code == change.eventCode }) {
                fail("every state change has a reason and a documented event code", "\(member.id): \(change)")
            }
        } else if !changes.isEmpty {
            fail("no state change without a reason", "\(member.id) reported \(changes) but stayed \(after)")
        }
        if member.holdsVirtualAddress != after.isActive {
            fail("a member holds the virtual address exactly while it is active",
                 "\(member.id) is \(after), holds the address: \(member.holdsVirtualAddress)")
        }
        if after.isActive, !before.isActive { checkNoFlap(member, core: core) }
        if before.isActive, !after.isActive {
            member.lostActiveAtMilliseconds = core.nowMilliseconds
            member.activeSinceTick = nil
        }
        if after.isActive, member.activeSinceTick == nil { member.activeSinceTick = tick }
        if awaitedFullSync, !core.awaitsFullSync, !isFullSyncCompleted(input) { checkFullSyncSkip(member) }
    }

    private func isFullSyncCompleted(_ input: ClusterInput) -> Bool {
        if case .fullSyncCompleted = input { true } else { false }
    }

    /// A member that lost ACTIVE (a crash while active included) takes it back within the hysteresis
    /// only if, in its view, no other member at least as healthy and steadier could take it. And it knows
    /// its own trouble: it reports that it lost ACTIVE recently, or (after a restart, which nothing
    /// survives) that it started recently.
    private func checkNoFlap(_ member: SimulatedMember, core: ClusterStateMachine) {
        guard let lost = member.lostActiveAtMilliseconds, core.nowMilliseconds - lost < limits.flapHysteresisMilliseconds else { return }
        let startedAt = UInt64(member.startedAtTick) * setup.tickMilliseconds
        let known: Steadiness = lost >= startedAt ? .lostActiveRecently : .startedRecently
        let own = core.steadiness
        if own > known {
            return fail("no flapping: a member knows it lost ACTIVE or started recently",
                        "\(member.id) lost ACTIVE at \(lost) ms, started at \(startedAt) ms, but reports itself \(own)")
        }
        let status = core.status
        guard let health = status.members.first(where: { $0.isLocal })?.health else { return }
        for peer in status.members where !peer.isLocal {
            guard let state = peer.state, let peerHealth = peer.health, let steadiness = peer.steadiness,
                  peerHealth >= health, steadiness > own else { continue }
            let couldTakeIt = state == .standby || state == .ready || (state == .down && peerHealth == .impaired)
            if couldTakeIt {
                fail("no flapping: a member that lost ACTIVE does not take it back within the hysteresis unless it is the only one",
                     "\(member.id) (\(own)) lost ACTIVE at \(lost) ms and took it back at \(core.nowMilliseconds) ms although \(peer.id) (\(state), \(peerHealth), \(steadiness)) could")
                return
            }
        }
    }

    /// A joining member skips the full sync only when no member can give it: none was active and
    /// reachable during the whole startup wait.
    private func checkFullSyncSkip(_ member: SimulatedMember) {
        let window = Int(limits.startupWaitMilliseconds / setup.tickMilliseconds)
        let index = index(of: member.id)
        for (other, candidate) in members.enumerated() where other != index {
            guard let activeSince = candidate.activeSinceTick, candidate.core?.state.isActive == true,
                  let connectedSince = connectedSince(index, other) else { continue }
            if tick - max(activeSince, connectedSince) > window, tick - member.startedAtTick > window {
                fail("a joining member stays DOWN until it has the connection table",
                     "\(member.id) skipped the full sync although \(candidate.id) was active and reachable for \(tick - max(activeSince, connectedSince)) ticks")
            }
        }
    }

    // MARK: - Convergence

    /// Convergence counts only views built from heartbeats heard since then (the last heal): a member
    /// may still act on what it heard before, e.g. declare dead a member it was cut off from.
    var viewsFreshSinceMilliseconds: UInt64 = 0

    /// One member ACTIVE holding the address, every other one a STANDBY that sees the cluster as it is
    /// (from heartbeats heard since `viewsFreshSinceMilliseconds`); in Primary Up the active one is the
    /// first in priority.
    var isConverged: Bool { convergenceProblem == nil }

    var convergenceProblem: String? {
        var actives: [SimulatedMember] = []
        for member in members {
            guard let core = member.core else { return "\(member.id) is down" }
            switch core.state {
            case .active: actives.append(member)
            case .standby: break
            default: return "\(member.id) is \(core.state)"
            }
            if core.awaitsFullSync { return "\(member.id) awaits a full sync" }
            if member.holdsVirtualAddress != (core.state == .active) { return "\(member.id) address held: \(member.holdsVirtualAddress)" }
        }
        guard actives.count == 1, let active = actives.first else { return "\(actives.count) members are active" }
        for member in members {
            guard let status = member.core?.status else { continue }
            for view in status.members where !view.isLocal {
                guard let ago = view.lastHeardMillisecondsAgo, status.nowMilliseconds - ago >= viewsFreshSinceMilliseconds else {
                    return "\(member.id) has not heard \(view.id) since the heal"
                }
                let truth = self.member(view.id).core?.state
                if view.state != truth { return "\(member.id) sees \(view.id) as \(view.stateText), it is \(truth.map { "\($0)" } ?? "down")" }
            }
        }
        if setup.mode == .primaryUp {
            let first = members.max { ($0.configuration.local.priority, $1.id) < ($1.configuration.local.priority, $0.id) }
            if first?.id != active.id { return "Primary Up: \(active.id) is active, \(first.map { "\($0.id)" } ?? "") ranks first" }
        }
        return nil
    }

    var activeMembers: [MemberID] { members.filter { $0.core?.state.isActive == true }.map(\.id) }

    // MARK: - Trace

    func traceLine(_ line: () -> String) {
        if let trace { trace(line()) }
    }

    private func traceStep(_ member: SimulatedMember, _ input: ClusterInput, _ output: ClusterOutput) {
        guard let trace else { return }
        let interesting = !output.effects.isEmpty || (output.reason != "tick" && output.reason != "heartbeat"
            && output.reason != "device report" && !output.reason.hasPrefix("load "))
        guard interesting else { return }
        let event: String
        switch input {
        case .tick: event = "timers"
        case .receive(let heartbeat, let interface): event = "<- \(heartbeat.member) \(heartbeat.state) on \(interface)"
        case .linkChanged(let interface, let up): event = "link \(interface) \(up ? "up" : "down")"
        case .policyChanged(let installed): event = installed ? "policy installed" : "policy removed"
        case .fullSyncCompleted(let source): event = "full sync from \(source) done"
        case .load(let percent): event = "load \(percent)%"
        case .registerDevice(let name, _, _): event = "register \(name)"
        case .reportDevice(let name, let state): event = "report \(name) \(state)"
        case .unregisterDevice(let name): event = "unregister \(name)"
        case .adminDown(let force): event = "ADMIN down\(force ? " --force" : "")"
        case .adminUp: event = "ADMIN up"
        case .resetFailoverCounter: event = "reset failover counter"
        }
        var line = "t=\(nowMilliseconds)ms \(member.id) \(event): \(output.reason)"
        for effect in output.effects {
            switch effect {
            case .commitConnectionTable: line += " | commit-table"
            case .holdVirtualAddress: line += " | hold-vip"
            case .releaseVirtualAddress: line += " | release-vip"
            case .requestFullSync(let source): line += " | full-sync<-\(source)"
            case .stateChanged: break
            case .deadTimerChanged(let status, _, _): line += " | dead-timer \(status.effectiveMilliseconds)ms"
            case .commandRefused(let code): line += " | refused \(code)"
            }
        }
        trace(line)
    }
}
