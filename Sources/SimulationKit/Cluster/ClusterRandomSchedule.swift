import ClusterCore

/// What one seeded run of the gateway-cluster simulation does. The seed alone decides everything else:
/// the cluster's size (unless given), mode and priorities, the fault rates (swarm testing, as
/// TigerBeetle's VOPR), and every fault.
public struct ClusterSimulationOptions: Hashable, Sendable {
    public var seed: UInt64
    /// Members (2 to 5); nil: the seed draws 2 to 4.
    public var memberCount: Int?
    /// Ticks (10 ms) with faults: the safety phase.
    public var faultTicks: Int
    /// Ticks the cluster must stay converged, with no state change at all, after it converged.
    public var stableTicks: Int
    public var faultsEnabled: Bool

    public init(seed: UInt64, memberCount: Int? = nil, faultTicks: Int = 1_000, stableTicks: Int = 300, faultsEnabled: Bool = true) {
        precondition(memberCount.map { (2...5).contains($0) } ?? true, "2 to 5 members")
        self.seed = seed
        self.memberCount = memberCount
        self.faultTicks = faultTicks
        self.stableTicks = stableTicks
        self.faultsEnabled = faultsEnabled
    }
}

/// Per-tick probabilities (per million) of the seed's faults.
public struct ClusterFaultProfile: Hashable, Sendable, CustomStringConvertible {
    public var network: NetworkProfile
    public var partitionPerMillion: Int
    public var networkHealPerMillion: Int
    public var linkCutPerMillion: Int
    public var linkRestorePerMillion: Int
    public var crashPerMillion: Int
    public var restartTicksMax: Int
    public var devicePerMillion: Int
    public var policyPerMillion: Int
    public var loadPerMillion: Int
    public var adminPerMillion: Int

    static func draw(_ random: inout SplitMix64) -> ClusterFaultProfile {
        // No corruption: a heartbeat's checksum is the runtime's (item 2); the core sees whole ones.
        let network = NetworkProfile(
            delayTicksMax: random.int(in: 1...12), longDelayPerMillion: random.int(in: 0...20_000),
            dropPerMillion: random.int(in: 0...150_000), duplicatePerMillion: random.int(in: 0...50_000))
        return ClusterFaultProfile(
            network: network,
            partitionPerMillion: random.int(in: 0...6_000), networkHealPerMillion: random.int(in: 1_000...10_000),
            linkCutPerMillion: random.int(in: 0...4_000), linkRestorePerMillion: random.int(in: 2_000...20_000),
            crashPerMillion: random.int(in: 0...3_000), restartTicksMax: random.int(in: 10...400),
            devicePerMillion: random.int(in: 0...4_000), policyPerMillion: random.int(in: 0...1_500),
            loadPerMillion: random.int(in: 0...3_000), adminPerMillion: random.int(in: 0...4_000))
    }

    public var description: String {
        "\(network); per tick: partition \(partitionPerMillion)ppm, heal \(networkHealPerMillion)ppm, link cut \(linkCutPerMillion)ppm, link restore \(linkRestorePerMillion)ppm, crash \(crashPerMillion)ppm (restart within \(restartTicksMax) ticks), device \(devicePerMillion)ppm, policy \(policyPerMillion)ppm, load \(loadPerMillion)ppm, admin \(adminPerMillion)ppm"
    }
}

public struct ClusterSimulationResult: Hashable, Sendable {
    public var seed: UInt64
    public var memberCount: Int
    public var mode: HighAvailabilityMode
    public var ticks: Int
    public var steps: Int
    /// Ticks after the final heal until some healthy member was ACTIVE, and until the cluster converged;
    /// nil when it did not (or an invariant broke first).
    public var healthyActiveAfterTicks: Int?
    public var convergedAfterTicks: Int?
    public var violation: ClusterViolation?
    public var statistics: SimulatedGatewayCluster.Statistics
}

/// Drives a `SimulatedGatewayCluster` with seeded faults (safety, checked after every step), then heals
/// everything and checks liveness within explicit bounds, then stability.
public struct ClusterRandomSchedule {
    public let options: ClusterSimulationOptions
    public let profile: ClusterFaultProfile
    public let cluster: SimulatedGatewayCluster
    var random: SplitMix64
    let ids: [MemberID]

    public init(options: ClusterSimulationOptions, trace: ((String) -> Void)? = nil) {
        self.options = options
        var random = SplitMix64(seed: options.seed)
        let profile = ClusterFaultProfile.draw(&random)
        let drawnCount = random.int(in: 2...4)
        let memberCount = options.memberCount ?? drawnCount
        var setup = SimulatedGatewayCluster.Setup()
        setup.mode = random.below(2) == 0 ? .activeUp : .primaryUp
        // Distinct priorities mostly; sometimes ties, which the member ID breaks.
        setup.priorities = (0..<memberCount).map { _ in UInt8(random.int(in: 1...(random.below(4) == 0 ? 2 : 250))) }
        self.profile = profile
        self.random = random
        cluster = SimulatedGatewayCluster(
            setup: setup, seed: options.seed ^ 0x5bd1_e995,
            network: options.faultsEnabled ? profile.network : .perfect)
        ids = cluster.memberIDs
        cluster.trace = trace
        trace?(
            "seed \(options.seed): \(memberCount) members, \(setup.mode), priorities \(setup.priorities), \(options.faultTicks) fault ticks, profile \(profile)"
        )
        cluster.startAll()
    }

    public static func run(_ options: ClusterSimulationOptions, trace: ((String) -> Void)? = nil) -> ClusterSimulationResult {
        var schedule = ClusterRandomSchedule(options: options, trace: trace)
        return schedule.run()
    }

    /// After the final heal some healthy member is ACTIVE within this long: a restarted member's startup
    /// wait and full sync, a dead timer stretched by load, a READY member's timeout, and the settle time.
    public var healthyActiveWithinMilliseconds: UInt64 {
        let limits = cluster.limits
        let fullSync = UInt64(cluster.setup.fullSyncTicks.upperBound) * cluster.setup.tickMilliseconds
        return limits.startupWaitMilliseconds + fullSync + limits.deadTimerUnderLoadMilliseconds + limits.readyTimeoutMilliseconds
            + cluster.settleMilliseconds
    }

    /// ...and the cluster converges within this long: the above, a failed full sync's retry, and in
    /// Primary Up the hysteresis and hold before the first in priority claims ACTIVE back.
    public var convergedWithinMilliseconds: UInt64 {
        let limits = cluster.limits
        return healthyActiveWithinMilliseconds + limits.fullSyncRetryMilliseconds + limits.flapHysteresisMilliseconds
            + limits.preemptHoldMilliseconds + limits.readyTimeoutMilliseconds
    }

    public mutating func run() -> ClusterSimulationResult {
        for _ in 0..<options.faultTicks where cluster.violation == nil {
            if options.faultsEnabled { injectFaults() }
            cluster.runTick()
        }
        var healthyActive: Int?
        var converged: Int?
        if cluster.violation == nil { (healthyActive, converged) = liveness() }
        if cluster.violation == nil, converged != nil { stability() }
        var violation = cluster.violation
        violation?.seed = options.seed
        return ClusterSimulationResult(
            seed: options.seed, memberCount: ids.count, mode: cluster.setup.mode, ticks: cluster.tick,
            steps: cluster.steps, healthyActiveAfterTicks: violation == nil ? healthyActive : nil,
            convergedAfterTicks: violation == nil ? converged : nil,
            violation: violation, statistics: cluster.statistics)
    }

    func pick<T>(_ items: [T], _ random: inout SplitMix64) -> T { items[random.below(items.count)] }
}
