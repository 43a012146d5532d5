import Foundation
import HACore
import SimulationKit
import Testing

// The seeded fault simulator as a test: a fixed list of seeds, each a whole schedule of faults (safety)
// followed by a heal (liveness). Short schedules keep `swift test` quick in a debug build; the benchmark
// (`rampart sim --seeds 10000`) runs the long ones.

/// Runs seconds of CPU-bound work on a thread of its own. On one of Swift concurrency's threads (two on
/// a two-core machine, and dispatch's global queues share their pool) it would stall every other test
/// of the run, and those wait for servers and runtimes with deadlines: a CI run once failed them so.
func offCooperativeThreads<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}

@Suite("Random seeds")
struct RandomSeedTests {
    static let seedsPerChunk = 130
    static let chunks = 4

    /// Each fault, per chunk of seeds: a change that stops one from firing (a knob that no longer
    /// reaches the network, a counter no longer counted) fails here rather than passing vacuously.
    static let faultFiredMin = 3
    /// Paths every chunk of seeds takes at least once (failovers without force need sync mode and no
    /// lag, and take longer runs: `rampart sim --seeds 10000` prints them).
    static let pathsTaken = [
        "plain-promotions", "forced-promotions", "switchovers", "fencings", "full-syncs-completed",
        "collisions", "collision-resolutions", "sync-acknowledged",
    ]

    @Test("fixed seeds: no invariant breaks, every schedule converges after the heal, every fault fires", arguments: 0..<chunks)
    func fixedSeeds(chunk: Int) async {
        let first = UInt64(chunk * Self.seedsPerChunk) + 1
        let (violation, notConverged, statistics) = await offCooperativeThreads {
            var notConverged: [UInt64] = []
            var statistics = SimulatedCluster.Statistics()
            for seed in first..<(first + UInt64(Self.seedsPerChunk)) {
                let result = RandomSchedule.run(SimulationOptions(seed: seed, faultTicks: 400, livenessTicksMax: 2_000))
                if let violation = result.violation { return (Optional(violation), notConverged, statistics) }
                if result.convergedAfterTicks == nil { notConverged.append(seed) }
                statistics.add(result.statistics)
            }
            return (nil, notConverged, statistics)
        }
        #expect(violation == nil, "\(violation.map { "\($0)" } ?? "")")
        #expect(notConverged.isEmpty, "seeds that did not converge after the heal: \(notConverged)")
        guard violation == nil else { return }
        for fault in statistics.faults {
            #expect(fault.count >= Self.faultFiredMin, "fault \(fault.name) fired \(fault.count) times in seeds \(first)...")
        }
        let paths = Dictionary(uniqueKeysWithValues: statistics.paths.map { ($0.name, $0.count) })
        for path in Self.pathsTaken {
            #expect((paths[path] ?? 0) >= 1, "path \(path) never taken in seeds \(first)...")
        }
    }

    /// Seeds that broke an invariant (`rampart sim --seeds 20000`), replayed with their fault ticks.
    static let regressionSeeds: [(seed: UInt64, faultTicks: Int)] = [
        // A stale hello restarted the full sync of a standby that held the snapshot already and had
        // applied revisions after it: its acks named a later head, and the full sync never completed.
        // (Found before the swarm profiles: the seed now draws another schedule.)
        (13164, 2_000),
        // The target of a switchover crashed before the hand-over reached it: the active never sent
        // it again and waited forever; only a forced promotion got writes going (liveness operator).
        (52, 400),
    ]

    @Test("seeds that once failed converge", arguments: regressionSeeds)
    func regressionSeed(seed: UInt64, faultTicks: Int) async {
        let result = await offCooperativeThreads { RandomSchedule.run(SimulationOptions(seed: seed, faultTicks: faultTicks)) }
        #expect(result.violation == nil, "seed \(seed): \(result.violation.map { "\($0)" } ?? "")")
        #expect(result.convergedAfterTicks != nil)
    }

    @Test("a seed replays exactly: same trace, line for line")
    func replayIsExact() async {
        @Sendable func traceOf(_ seed: UInt64) -> [String] {
            var lines: [String] = []
            _ = RandomSchedule.run(SimulationOptions(seed: seed, faultTicks: 300), trace: { lines.append($0) })
            return lines
        }
        let (first, again, other) = await offCooperativeThreads { (traceOf(42), traceOf(42), traceOf(43)) }
        #expect(first.count > 100)
        #expect(first == again)
        #expect(first != other)
    }

    @Test("SplitMix64 is the reference generator")
    func splitMix() {
        // Reference values of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        var random = SplitMix64(seed: 0)
        #expect(random.next() == 0xe220_a839_7b1d_cdaf)
        #expect(random.next() == 0x6e78_9e6a_a1b9_65f4)
        var bounded = SplitMix64(seed: 9)
        for _ in 0..<1_000 { #expect((0..<7).contains(bounded.below(7))) }
    }
}
