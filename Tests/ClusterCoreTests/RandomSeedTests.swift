import ClusterCore
import Foundation
import SimulationKit
import Testing

// The seeded cluster simulator as a test: a fixed list of seeds, each a whole schedule of faults (safety,
// checked after every step) followed by a heal (liveness, then stability). More seeds:
//     CLUSTER_SIM_SEEDS=1-100000 [CLUSTER_SIM_FAULT_TICKS=1000] swift test --skip-build --filter ClusterRandomSeedTests/manySeeds
// and one seed's whole run, one line per event:
//     CLUSTER_SIM_TRACE=<seed> [CLUSTER_SIM_FAULT_TICKS=1000] swift test --skip-build --filter ClusterRandomSeedTests/traceSeed

@Suite("Cluster random seeds")
struct ClusterRandomSeedTests {
    static let seedsPerChunk = 60
    static let chunks = 4
    static let faultTicks = 800

    /// Faults and paths every chunk of seeds must see: a change that stops one from firing (a knob that no
    /// longer reaches the cluster, a counter no longer counted) fails here rather than passing vacuously.
    static let faultFiredMin = 1
    static let pathsTaken = [
        "takeovers", "failovers", "dead-timer-failovers", "split-brain-resolutions", "flaps-avoided",
        "dead-timer-stretches", "active-attention", "attention-resolved", "preemptions", "full-syncs",
        "admin-downs-refused", "device-deadlines-missed",
    ]

    @Test(
        "fixed seeds: no invariant breaks, every schedule converges after the heal and stays so, every fault and path fires",
        arguments: 0..<chunks)
    func fixedSeeds(chunk: Int) async {
        let first = UInt64(chunk * Self.seedsPerChunk) + 1
        let report = await onBackgroundThread {
            ClusterSimulation.run(seeds: first..<(first + UInt64(Self.seedsPerChunk)), faultTicks: Self.faultTicks)
        }
        #expect(report.passed, "\(report.violations.map(\.description))")
        #expect(report.seedsRun == Self.seedsPerChunk)
        guard report.passed else { return }
        for fault in report.statistics.faults {
            #expect(fault.count >= Self.faultFiredMin, "fault \(fault.name) fired \(fault.count) times in seeds \(first)...")
        }
        let paths = Dictionary(uniqueKeysWithValues: report.statistics.paths.map { ($0.name, $0.count) })
        for path in Self.pathsTaken {
            #expect((paths[path] ?? 0) >= 1, "path \(path) never taken in seeds \(first)...")
        }
    }

    @Test("two- and three-member clusters alone pass too", arguments: [2, 3])
    func fixedSize(members: Int) async {
        let report = await onBackgroundThread { ClusterSimulation.run(seeds: 1_001...1_030, memberCount: members, faultTicks: Self.faultTicks) }
        #expect(report.passed, "\(report.violations.map(\.description))")
    }

    /// Seeds from the environment (`CLUSTER_SIM_SEEDS=first-last`); nothing when unset.
    @Test("many seeds from CLUSTER_SIM_SEEDS")
    func manySeeds() async {
        guard let range = ProcessInfo.processInfo.environment["CLUSTER_SIM_SEEDS"], let seeds = Self.parse(range) else { return }
        let started = ContinuousClock.now
        let faultTicks = ProcessInfo.processInfo.environment["CLUSTER_SIM_FAULT_TICKS"].flatMap { Int($0) } ?? 1_000
        let report = await onBackgroundThread { ClusterSimulation.run(seeds: seeds, faultTicks: faultTicks) }
        let elapsed = ContinuousClock.now - started
        print(
            "cluster simulation: \(report.seedsRun) seeds in \(elapsed), \(report.totalSteps) steps, longest convergence \(report.convergedAfterTicksMax) ticks; \(report.statistics)"
        )
        #expect(report.passed, "\(report.violations.map(\.description))")
    }

    /// `CLUSTER_SIM_TRACE=<seed>` prints that seed's whole run, one line per event.
    @Test("trace of CLUSTER_SIM_TRACE")
    func traceSeed() async {
        guard let text = ProcessInfo.processInfo.environment["CLUSTER_SIM_TRACE"], let seed = UInt64(text) else { return }
        let faultTicks = ProcessInfo.processInfo.environment["CLUSTER_SIM_FAULT_TICKS"].flatMap { Int($0) } ?? 1_000
        let result = await onBackgroundThread {
            ClusterRandomSchedule.run(ClusterSimulationOptions(seed: seed, faultTicks: faultTicks), trace: { print($0) })
        }
        print("seed \(seed): \(result.violation.map { "\($0)" } ?? "passed"), converged after \(result.convergedAfterTicks.map { "\($0)" } ?? "-") ticks")
    }

    static func parse(_ text: String) -> ClosedRange<UInt64>? {
        let parts = text.split(separator: "-").compactMap { UInt64($0) }
        guard parts.count == 2, parts[0] <= parts[1] else { return parts.count == 1 ? parts[0]...parts[0] : nil }
        return parts[0]...parts[1]
    }

    @Test("a seed replays exactly: same trace, line for line")
    func replayIsExact() async {
        @Sendable func traceOf(_ seed: UInt64) -> [String] {
            var lines: [String] = []
            _ = ClusterRandomSchedule.run(ClusterSimulationOptions(seed: seed, faultTicks: 400), trace: { lines.append($0) })
            return lines
        }
        let (first, again, other) = await onBackgroundThread { (traceOf(42), traceOf(42), traceOf(43)) }
        #expect(first.count > 20)
        #expect(first == again)
        #expect(first != other)
    }
}
