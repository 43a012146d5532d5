import ClusterCore

/// What one seeded run does. The seed alone decides everything else: the cluster's size, mode and
/// priorities, the fault rates (swarm testing, as TigerBeetle's VOPR), and every fault.
struct ClusterSimulationOptions: Hashable, Sendable {
    var seed: UInt64
    /// Ticks (10 ms) with faults: the safety phase.
    var faultTicks = 1_000
    /// After the heal, the cluster must converge within this many ticks (liveness)...
    var livenessTicksMax = 2_000
    /// ...and then stay converged, with no state change at all, this long.
    var stableTicks = 300
    var faultsEnabled = true

    init(seed: UInt64, faultTicks: Int = 1_000, livenessTicksMax: Int = 2_000, stableTicks: Int = 300, faultsEnabled: Bool = true) {
        self.seed = seed
        self.faultTicks = faultTicks
        self.livenessTicksMax = livenessTicksMax
        self.stableTicks = stableTicks
        self.faultsEnabled = faultsEnabled
    }
}

/// Per-tick probabilities (per million) of the seed's faults.
struct ClusterFaultProfile: Hashable, Sendable, CustomStringConvertible {
    var network: DatagramProfile
    var partitionPerMillion: Int
    var networkHealPerMillion: Int
    var linkCutPerMillion: Int
    var linkRestorePerMillion: Int
    var crashPerMillion: Int
    var restartTicksMax: Int
    var devicePerMillion: Int
    var policyPerMillion: Int
    var loadPerMillion: Int
    var adminPerMillion: Int

    static func draw(_ random: inout SplitMix64) -> ClusterFaultProfile {
        let network = DatagramProfile(delayTicksMax: random.int(in: 1...12), longDelayPerMillion: random.int(in: 0...20_000),
                                      dropPerMillion: random.int(in: 0...150_000), duplicatePerMillion: random.int(in: 0...50_000))
        return ClusterFaultProfile(network: network,
                                   partitionPerMillion: random.int(in: 0...6_000), networkHealPerMillion: random.int(in: 1_000...10_000),
                                   linkCutPerMillion: random.int(in: 0...4_000), linkRestorePerMillion: random.int(in: 2_000...20_000),
                                   crashPerMillion: random.int(in: 0...3_000), restartTicksMax: random.int(in: 10...400),
                                   devicePerMillion: random.int(in: 0...4_000), policyPerMillion: random.int(in: 0...1_500),
                                   loadPerMillion: random.int(in: 0...3_000), adminPerMillion: random.int(in: 0...4_000))
    }

    var description: String {
        "\(network); per tick: partition \(partitionPerMillion)ppm, heal \(networkHealPerMillion)ppm, link cut \(linkCutPerMillion)ppm, link restore \(linkRestorePerMillion)ppm, crash \(crashPerMillion)ppm (restart within \(restartTicksMax) ticks), device \(devicePerMillion)ppm, policy \(policyPerMillion)ppm, load \(loadPerMillion)ppm, admin \(adminPerMillion)ppm"
    }
}

struct ClusterSimulationResult: Hashable, Sendable {
    var seed: UInt64
    var memberCount: Int
    var mode: HighAvailabilityMode
    var ticks: Int
    var steps: Int
    /// Ticks after the heal until the cluster converged; nil when it did not (or an invariant broke first).
    var convergedAfterTicks: Int?
    var violation: ClusterViolation?
    var statistics: SimulatedGatewayCluster.Statistics
}

/// Drives a `SimulatedGatewayCluster` with seeded faults (safety, checked after every step), then heals
/// everything and checks that the cluster converges to exactly one ACTIVE member and stays so (liveness).
struct ClusterRandomSchedule {
    let options: ClusterSimulationOptions
    let profile: ClusterFaultProfile
    let cluster: SimulatedGatewayCluster
    var random: SplitMix64
    let ids: [MemberID]

    init(options: ClusterSimulationOptions, trace: ((String) -> Void)? = nil) {
        self.options = options
        var random = SplitMix64(seed: options.seed)
        let profile = ClusterFaultProfile.draw(&random)
        let memberCount = random.int(in: 2...4)
        var setup = SimulatedGatewayCluster.Setup()
        setup.mode = random.below(2) == 0 ? .activeUp : .primaryUp
        // Distinct priorities mostly; sometimes ties, which the member ID breaks.
        setup.priorities = (0..<memberCount).map { _ in UInt8(random.int(in: 1...(random.below(4) == 0 ? 2 : 250))) }
        self.profile = profile
        self.random = random
        cluster = SimulatedGatewayCluster(setup: setup, seed: options.seed ^ 0x5bd1_e995,
                                          network: options.faultsEnabled ? profile.network : .perfect)
        ids = cluster.memberIDs
        cluster.trace = trace
        if let trace {
            trace("seed \(options.seed): \(memberCount) members, \(setup.mode), priorities \(setup.priorities), \(options.faultTicks) fault ticks, profile \(profile)")
        }
        cluster.startAll()
    }

    static func run(_ options: ClusterSimulationOptions, trace: ((String) -> Void)? = nil) -> ClusterSimulationResult {
        var schedule = ClusterRandomSchedule(options: options, trace: trace)
        return schedule.run()
    }

    mutating func run() -> ClusterSimulationResult {
        for _ in 0..<options.faultTicks where cluster.violation == nil {
            if options.faultsEnabled { injectFaults() }
            cluster.runTick()
        }
        var converged: Int?
        if cluster.violation == nil { converged = liveness() }
        if cluster.violation == nil, let converged { stability(convergedAfter: converged) }
        var violation = cluster.violation
        violation?.seed = options.seed
        return ClusterSimulationResult(seed: options.seed, memberCount: ids.count, mode: cluster.setup.mode, ticks: cluster.tick,
                                       steps: cluster.steps, convergedAfterTicks: violation == nil ? converged : nil,
                                       violation: violation, statistics: cluster.statistics)
    }

    mutating func injectFaults() {
        if random.chance(perMillion: profile.partitionPerMillion) { networkFault() }
        if random.chance(perMillion: profile.networkHealPerMillion) { cluster.healNetwork() }
        if random.chance(perMillion: profile.linkCutPerMillion) {
            cluster.setLink(random.pick(ids), random.pick(cluster.setup.interfaces), up: false)
        }
        if random.chance(perMillion: profile.linkRestorePerMillion) {
            cluster.setLink(random.pick(ids), random.pick(cluster.setup.interfaces), up: true)
        }
        if random.chance(perMillion: profile.crashPerMillion) {
            cluster.crash(random.pick(ids), restartAfterTicks: random.int(in: 1...profile.restartTicksMax))
        }
        if random.chance(perMillion: profile.devicePerMillion) { deviceFault() }
        if random.chance(perMillion: profile.policyPerMillion) {
            let id = random.pick(ids)
            cluster.setPolicy(id, installed: !cluster.member(id).policyInstalled)
        }
        if random.chance(perMillion: profile.loadPerMillion) {
            let id = random.pick(ids)
            cluster.setLoad(id, percent: cluster.member(id).loadPercent >= 80 ? random.int(in: 0...50) : random.int(in: 80...100))
        }
        if random.chance(perMillion: profile.adminPerMillion) {
            let id = random.pick(ids)
            let input: ClusterInput = random.below(2) == 0 ? .adminUp : .adminDown(force: random.below(8) == 0)
            cluster.command(input, on: id)
        }
    }

    mutating func networkFault() {
        let a = random.pick(ids), b = random.pick(ids)
        switch random.below(4) {
        case 0: cluster.isolate(a)
        case 1: if a != b { cluster.partition(a, b) }
        case 2: if a != b { cluster.cut(from: a, to: b, on: random.pick(cluster.setup.interfaces)) }
        default:
            // One interface cut both ways: the members still hear each other on the other one.
            let interface = random.pick(cluster.setup.interfaces)
            if a != b {
                cluster.cut(from: a, to: b, on: interface)
                cluster.cut(from: b, to: a, on: interface)
            }
        }
    }

    mutating func deviceFault() {
        let id = random.pick(ids)
        switch random.below(3) {
        case 0: cluster.setProbe(id, .problem)
        case 1: cluster.setProbe(id, cluster.member(id).probeState, reporting: false)
        default: cluster.setProbe(id, .ok)
        }
    }

    /// Heals everything (network, links, devices, policy, load, admin down, crashed members) and runs
    /// until the cluster converges.
    mutating func liveness() -> Int? {
        cluster.traceLine { "t=\(cluster.nowMilliseconds)ms HEAL everything" }
        cluster.healNetwork()
        cluster.network.profile = .perfect
        cluster.viewsFreshSinceMilliseconds = cluster.nowMilliseconds
        for id in ids {
            let member = cluster.member(id)
            for interface in cluster.setup.interfaces { cluster.setLink(id, interface, up: true) }
            if !member.policyInstalled { cluster.setPolicy(id, installed: true) }
            if member.loadPercent > 0 { cluster.setLoad(id, percent: 0) }
            if member.probeState != .ok || !member.probeReporting { cluster.setProbe(id, .ok) }
            if member.isUp { cluster.command(.adminUp, on: id) } else { cluster.restart(id) }
        }
        for elapsed in 1...options.livenessTicksMax {
            cluster.runTick()
            if cluster.violation != nil { return nil }
            if cluster.isConverged { return elapsed }
        }
        cluster.fail("after the faults heal, exactly one member is ACTIVE and the others STANDBY",
                     "not converged \(options.livenessTicksMax) ticks after the heal: \(cluster.convergenceProblem ?? "")")
        return nil
    }

    /// Once converged, nothing changes: the same single member stays ACTIVE and holds the address.
    mutating func stability(convergedAfter: Int) {
        let changesBefore = cluster.transitions.count
        for _ in 0..<options.stableTicks {
            cluster.runTick()
            if cluster.violation != nil { return }
            if let problem = cluster.convergenceProblem {
                return cluster.fail("a converged cluster stays converged", problem)
            }
        }
        if cluster.transitions.count != changesBefore {
            cluster.fail("a converged cluster stays converged", "\(cluster.transitions.count - changesBefore) state changes after convergence")
        }
    }
}

/// The entry point for long runs (`rampart sim` can call it once this moves into SimulationKit):
/// every seed of `seeds`, stopping at the first violation (a liveness failure is one too); the report
/// says what failed and what ran.
enum ClusterSimulation {
    struct Report: Sendable {
        var seedsRun = 0
        var violations: [ClusterViolation] = []
        var totalTicks = 0
        var totalSteps = 0
        var convergedAfterTicksMax = 0
        var statistics = SimulatedGatewayCluster.Statistics()

        var passed: Bool { violations.isEmpty }
    }

    static func run(seeds: some Sequence<UInt64>, faultTicks: Int = 1_000, stopAtFirstFailure: Bool = true) -> Report {
        var report = Report()
        for seed in seeds {
            let result = ClusterRandomSchedule.run(ClusterSimulationOptions(seed: seed, faultTicks: faultTicks))
            report.seedsRun += 1
            report.totalTicks += result.ticks
            report.totalSteps += result.steps
            report.statistics.add(result.statistics)
            if let violation = result.violation { report.violations.append(violation) }
            if let converged = result.convergedAfterTicks { report.convergedAfterTicksMax = max(report.convergedAfterTicksMax, converged) }
            if stopAtFirstFailure, !report.passed { break }
        }
        return report
    }
}
