import ClusterCore

/// A broken invariant: which one, where, and the seed that reproduces it.
public struct ClusterViolation: Hashable, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var tickMilliseconds: UInt64
    public var tick: Int
    public var invariant: String
    public var detail: String

    public var description: String {
        "seed \(seed), t=\(UInt64(tick) * tickMilliseconds)ms: \(invariant): \(detail) (replay: rampart sim --cluster --seed \(seed) --trace)"
    }
}

/// A heartbeat on the wire, with the tick its core made it (for the invariants only).
struct ClusterDatagram {
    var heartbeat: ClusterHeartbeat
    var madeAtTick: Int
}

/// The newest heartbeat a member received from another one.
struct DeliveredHeartbeat {
    var incarnation: UInt64
    var sequence: UInt64
    var state: MemberState
    var madeAtTick: Int
    var deliveredAtTick: Int

    func isOlder(than heartbeat: ClusterHeartbeat) -> Bool {
        (incarnation, sequence) < (heartbeat.incarnation, heartbeat.sequence)
    }
}

/// One gateway of the simulated cluster: its core (nil while crashed) and what its runtime holds.
public final class SimulatedMember {
    public let id: MemberID
    let configuration: ClusterConfiguration
    public internal(set) var core: ClusterStateMachine?
    var incarnation: UInt64 = 0
    /// Physical link state per monitored interface.
    public internal(set) var linksUp: [Bool]
    public internal(set) var policyInstalled = true
    public internal(set) var loadPercent = 0
    public internal(set) var holdsVirtualAddress = false
    var committedTableSinceActive = false
    var restartAtTick: Int?
    var startedAtTick = 0
    /// A full sync under way: from which member, done at which tick.
    var fullSync: (source: Int, dueTick: Int)?
    /// Link changes the runtime has not noticed yet (it polls link state).
    var linkReports: [(dueTick: Int, lane: Int, up: Bool)] = []
    /// Heartbeats a loaded member's sender has not sent yet.
    var outbox: [(dueTick: Int, heartbeat: ClusterHeartbeat, madeAtTick: Int)] = []
    /// The registered `probe` device: the state the script reports, and whether it reports at all.
    public internal(set) var probeState: DeviceState = .ok
    public internal(set) var probeReporting = true
    /// Truth for the no-flapping check: when (ms) it last left ACTIVE, a crash while active included.
    var lostActiveAtMilliseconds: UInt64?
    /// Since when (tick) it is in its current state, and since when it holds ACTIVE.
    var stateSinceTick = 0
    var activeSinceTick: Int?

    init(configuration: ClusterConfiguration) {
        id = configuration.localMember
        self.configuration = configuration
        linksUp = Array(repeating: true, count: configuration.monitoredInterfaces.count)
    }

    public var isUp: Bool { core != nil }
}

/// A whole gateway cluster in simulated time: members, their runtimes (virtual address, full sync, link
/// state, load, a script reporting a device), one `SimulatedNetwork` per monitored interface (each a
/// broadcast segment of its own, so the sync link can be partitioned alone), and the invariant checks
/// that run after every step. Scenario tests drive it by hand; `ClusterRandomSchedule` with seeded faults.
public final class SimulatedGatewayCluster {
    public struct Setup: Hashable, Sendable {
        public var priorities: [UInt8] = [100, 90, 80]
        public var mode: HighAvailabilityMode = .activeUp
        public var limits = ClusterLimits()
        public var interfaces: [InterfaceName] = ["eth1", "sync"]
        public var tickMilliseconds: UInt64 = 10
        /// Every member registers a `probe` device with this report timeout, reported every 200 ms.
        public var probeTimeoutMilliseconds: UInt64? = 1_000
        /// How long a full sync takes, in ticks.
        public var fullSyncTicks: ClosedRange<Int> = 5...40

        public init() {}
    }

    public static let probeDevice = "probe"
    static let probeReportTicks = 20
    static let loadSampleTicks = 50
    /// A loaded member's heartbeats leave up to this many ticks late.
    public static let loadedSendDelayTicksMax = 20

    public let seed: UInt64
    public let setup: Setup
    public let members: [SimulatedMember]
    /// One network per monitored interface, in `setup.interfaces` order.
    var lanes: [SimulatedNetwork<ClusterDatagram>]
    /// Truth about hearing, per receiver and sender (`[to][from]`): the newest heartbeat delivered since
    /// the receiver started, as the core orders them. The invariants judge from it, not from the cores' views.
    var newestDelivered: [[DeliveredHeartbeat?]]
    var random: SplitMix64
    var clock: SimulatedClock
    public internal(set) var steps = 0
    public internal(set) var violation: ClusterViolation?
    var counters = Statistics()
    /// One line per event, when set.
    public var trace: ((String) -> Void)?
    /// Every state change, in order.
    public internal(set) var transitions: [(tick: Int, member: MemberID, change: StateChange)] = []
    /// Every decision and effect, when `keepsLog` is on.
    public var keepsLog = false
    public internal(set) var log: [(tick: Int, member: MemberID, reason: String)] = []
    public internal(set) var effectLog: [(tick: Int, member: MemberID, effect: ClusterEffect)] = []
    /// Per pair of members (a * count + b, a < b): since when they hear each other, and since when both are active.
    var connectedSinceTick: [Int?]
    var bothActiveSinceTick: [Int?]
    /// Convergence counts only views built from heartbeats heard since the last full heal.
    public var viewsFreshSinceMilliseconds: UInt64 = 0

    public init(setup: Setup = Setup(), seed: UInt64 = 1, network profile: NetworkProfile = .perfect) {
        self.seed = seed
        self.setup = setup
        random = SplitMix64(seed: seed)
        clock = SimulatedClock(tickMilliseconds: setup.tickMilliseconds)
        let records = setup.priorities.enumerated().map { index, priority in
            ClusterMember(id: MemberID(UInt8(index + 1)), name: "gw\(index + 1)", address: "192.0.2.\(index + 1)", priority: priority)
        }
        members = records.map { record in
            // The setup is the caller's own: a refusal here is a broken test or command line.
            guard
                let configuration = try? ClusterConfiguration(
                    localMember: record.id, members: records, mode: setup.mode,
                    monitoredInterfaces: setup.interfaces, limits: setup.limits)
            else {
                preconditionFailure("invalid simulated cluster setup")
            }
            return SimulatedMember(configuration: configuration)
        }
        lanes = setup.interfaces.map { _ in SimulatedNetwork(endpointCount: records.count, profile: profile) }
        newestDelivered = Array(repeating: Array(repeating: nil, count: records.count), count: records.count)
        let pairs = records.count * records.count
        connectedSinceTick = Array(repeating: nil, count: pairs)
        bothActiveSinceTick = Array(repeating: nil, count: pairs)
    }

    public var tick: Int { clock.tick }
    public var memberIDs: [MemberID] { members.map(\.id) }
    public var nowMilliseconds: UInt64 { clock.nowMilliseconds }
    public var limits: ClusterLimits { setup.limits }
    /// What happened: the faults injected (the networks' among them) and the paths taken.
    public var statistics: Statistics {
        var statistics = counters
        for lane in lanes { statistics.network.add(lane.faults) }
        return statistics
    }

    func index(of id: MemberID) -> Int {
        guard let index = members.firstIndex(where: { $0.id == id }) else { preconditionFailure("no \(id)") }
        return index
    }

    public func member(_ id: MemberID) -> SimulatedMember { members[index(of: id)] }
    public func core(_ id: MemberID) -> ClusterStateMachine? { member(id).core }
    func lane(_ interface: InterfaceName) -> Int {
        guard let lane = setup.interfaces.firstIndex(of: interface) else { preconditionFailure("no interface \(interface)") }
        return lane
    }

    public var activeMembers: [MemberID] { members.filter { $0.core?.state.isActive == true }.map(\.id) }

    func traceLine(_ line: () -> String) {
        if let trace { trace(line()) }
    }

    func fail(_ invariant: String, _ detail: String) {
        guard violation == nil else { return }
        violation = ClusterViolation(seed: seed, tickMilliseconds: setup.tickMilliseconds, tick: tick, invariant: invariant, detail: detail)
        traceLine { "t=\(self.nowMilliseconds)ms VIOLATION \(invariant): \(detail)" }
    }
}
