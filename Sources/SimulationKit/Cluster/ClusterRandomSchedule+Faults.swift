import ClusterCore

extension ClusterRandomSchedule {
    mutating func injectFaults() {
        if random.chance(perMillion: profile.partitionPerMillion) { networkFault() }
        if random.chance(perMillion: profile.networkHealPerMillion) { cluster.healNetwork() }
        if random.chance(perMillion: profile.linkCutPerMillion) {
            cluster.setLink(pick(ids, &random), pick(cluster.setup.interfaces, &random), up: false)
        }
        if random.chance(perMillion: profile.linkRestorePerMillion) {
            cluster.setLink(pick(ids, &random), pick(cluster.setup.interfaces, &random), up: true)
        }
        if random.chance(perMillion: profile.crashPerMillion) {
            cluster.crash(pick(ids, &random), restartAfterTicks: random.int(in: 1...profile.restartTicksMax))
        }
        if random.chance(perMillion: profile.devicePerMillion) { deviceFault() }
        if random.chance(perMillion: profile.policyPerMillion) {
            let id = pick(ids, &random)
            cluster.setPolicy(id, installed: !cluster.member(id).policyInstalled)
        }
        if random.chance(perMillion: profile.loadPerMillion) {
            let id = pick(ids, &random)
            cluster.setLoad(id, percent: cluster.member(id).loadPercent >= 80 ? random.int(in: 0...50) : random.int(in: 80...100))
        }
        if random.chance(perMillion: profile.adminPerMillion) { adminCommand() }
    }

    mutating func networkFault() {
        let a = pick(ids, &random)
        let b = pick(ids, &random)
        let interface = pick(cluster.setup.interfaces, &random)
        switch random.below(5) {
        case 0: cluster.isolate(a)
        case 1: if a != b { cluster.partition(a, b) }
        case 2: if a != b { cluster.cut(from: a, to: b, on: interface) }
        case 3: if a != b { cluster.clog(from: a, to: b, on: interface) }
        default:
            // One interface (the sync link or another) cut both ways: the members may still hear each
            // other on the other one.
            if a != b { cluster.partition(a, b, on: interface) }
        }
    }

    mutating func deviceFault() {
        let id = pick(ids, &random)
        switch random.below(4) {
        case 0: cluster.setProbe(id, .problem)
        case 1: cluster.setProbe(id, cluster.member(id).probeState, reporting: false)
        case 2:
            // The script unregisters its device and registers it again later (on its next restart).
            cluster.command(.unregisterDevice(name: SimulatedGatewayCluster.probeDevice), on: id)
        default: cluster.setProbe(id, .ok)
        }
    }

    mutating func adminCommand() {
        let id = pick(ids, &random)
        switch random.below(16) {
        case 0..<7: cluster.command(.adminUp, on: id)
        case 7..<13: cluster.command(.adminDown(force: false), on: id)
        case 13..<15: cluster.command(.adminDown(force: true), on: id)
        default: cluster.command(.resetFailoverCounter, on: id)
        }
    }

    /// Heals everything (network, links, devices, policy, load, admin down, crashed members), then some
    /// healthy member must be ACTIVE within `healthyActiveWithinMilliseconds` and the whole cluster
    /// converged within `convergedWithinMilliseconds`. Returns both, in ticks after the heal.
    mutating func liveness() -> (healthyActive: Int?, converged: Int?) {
        cluster.traceLine { "t=\(cluster.nowMilliseconds)ms HEAL everything" }
        healEverything()
        let tick = cluster.setup.tickMilliseconds
        let activeTicksMax = Int(healthyActiveWithinMilliseconds / tick)
        let convergedTicksMax = Int(convergedWithinMilliseconds / tick)
        var healthyActive: Int?
        for elapsed in 1...convergedTicksMax {
            cluster.runTick()
            if cluster.violation != nil { return (healthyActive, nil) }
            if healthyActive == nil, cluster.healthyActive != nil { healthyActive = elapsed }
            if healthyActive == nil, elapsed == activeTicksMax {
                cluster.fail(
                    "liveness: some healthy member is ACTIVE within \(healthyActiveWithinMilliseconds) ms of the heal",
                    "none is: \(cluster.convergenceProblem ?? "")")
                return (nil, nil)
            }
            if cluster.isConverged { return (healthyActive, elapsed) }
        }
        cluster.fail(
            "after the heal, exactly one member is ACTIVE (Primary Up: the first in priority) within \(convergedWithinMilliseconds) ms",
            "not converged: \(cluster.convergenceProblem ?? "")")
        return (healthyActive, nil)
    }

    mutating func healEverything() {
        cluster.healNetwork()
        cluster.setNetworkProfile(.perfect)
        cluster.viewsFreshSinceMilliseconds = cluster.nowMilliseconds
        for id in ids {
            let member = cluster.member(id)
            for interface in cluster.setup.interfaces { cluster.setLink(id, interface, up: true) }
            cluster.setPolicy(id, installed: true)
            if member.loadPercent > 0 { cluster.setLoad(id, percent: 0) }
            if member.probeState != .ok || !member.probeReporting { cluster.setProbe(id, .ok) }
            if member.isUp {
                cluster.command(.adminUp, on: id)
                // An unregistered probe comes back (a no-op refusal when it is registered).
                cluster.command(
                    .registerDevice(name: SimulatedGatewayCluster.probeDevice, state: .ok, timeoutMilliseconds: cluster.setup.probeTimeoutMilliseconds), on: id)
            } else {
                cluster.restart(id)
            }
        }
    }

    /// Once converged, nothing changes: the same single member stays ACTIVE and holds the address.
    mutating func stability() {
        let changesBefore = cluster.transitions.count
        for _ in 0..<options.stableTicks {
            cluster.runTick()
            if cluster.violation != nil { return }
            if let problem = cluster.convergenceProblem { return cluster.fail("a converged cluster stays converged", problem) }
        }
        if cluster.transitions.count != changesBefore {
            cluster.fail("a converged cluster stays converged", "\(cluster.transitions.count - changesBefore) state changes after convergence")
        }
    }
}

/// Many seeds, for tests and `rampart sim --cluster`: the report says what failed and what ran.
public enum ClusterSimulation {
    public struct Report: Sendable {
        public var seedsRun = 0
        public var violations: [ClusterViolation] = []
        public var totalTicks = 0
        public var totalSteps = 0
        public var healthyActiveAfterTicksMax = 0
        public var convergedAfterTicksMax = 0
        public var statistics = SimulatedGatewayCluster.Statistics()

        public init() {}

        public var passed: Bool { violations.isEmpty }

        public mutating func add(_ result: ClusterSimulationResult) {
            seedsRun += 1
            totalTicks += result.ticks
            totalSteps += result.steps
            statistics.add(result.statistics)
            if let violation = result.violation { violations.append(violation) }
            healthyActiveAfterTicksMax = max(healthyActiveAfterTicksMax, result.healthyActiveAfterTicks ?? 0)
            convergedAfterTicksMax = max(convergedAfterTicksMax, result.convergedAfterTicks ?? 0)
        }
    }

    public static func run(
        seeds: some Sequence<UInt64>, memberCount: Int? = nil, faultTicks: Int = 1_000,
        stopAtFirstFailure: Bool = true
    ) -> Report {
        var report = Report()
        for seed in seeds {
            report.add(ClusterRandomSchedule.run(ClusterSimulationOptions(seed: seed, memberCount: memberCount, faultTicks: faultTicks)))
            if stopAtFirstFailure, !report.passed { break }
        }
        return report
    }
}
