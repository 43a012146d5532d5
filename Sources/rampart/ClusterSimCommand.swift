import ArgumentParser
import ClusterCore
import Dispatch
import Foundation
import SimulationKit

/// `rampart sim --cluster`: the seeded gateway-cluster simulator (ClusterCore over SimulationKit), with
/// the same verdict, rates and fault/path counts as the HA simulator.
extension SimCommand {
    func clusterOptions(_ seed: UInt64) -> ClusterSimulationOptions {
        ClusterSimulationOptions(seed: seed, memberCount: members, faultTicks: ticks)
    }

    func runCluster() throws {
        if let seed {
            let result = ClusterRandomSchedule.run(clusterOptions(seed), trace: trace ? { print($0) } : nil)
            reportCluster(single: result)
            if result.violation != nil { throw ExitCode(1) }
            return
        }
        try runManyClusters()
    }

    func reportCluster(single result: ClusterSimulationResult) {
        if let violation = result.violation { return printError("FAIL \(violation)") }
        let stats = result.statistics
        print(
            "seed \(result.seed): ok — \(result.memberCount) members, \(result.mode), \(result.ticks) ticks, \(result.steps) steps; a healthy member ACTIVE \(result.healthyActiveAfterTicks ?? -1) ticks and converged \(result.convergedAfterTicks ?? -1) ticks after the heal; \(stats.failovers) failovers, \(stats.splitBrainResolutions) split brains resolved"
        )
        printClusterCounts(stats)
    }

    func printClusterCounts(_ statistics: SimulatedGatewayCluster.Statistics) {
        print("faults injected: " + Self.listed(statistics.faults))
        print("paths taken: " + Self.listed(statistics.paths))
    }

    func runManyClusters() throws {
        let workerCount = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)
        let collector = ResultCollector<ClusterSimulationResult>(count: seeds)
        let start = ContinuousClock.now
        let seedsCount = seeds
        let base = baseSeed
        let template = clusterOptions(0)
        DispatchQueue.concurrentPerform(iterations: workerCount) { worker in
            for index in stride(from: worker, to: seedsCount, by: workerCount) {
                let began = ContinuousClock.now
                var options = template
                options.seed = base &+ UInt64(index)
                let result = ClusterRandomSchedule.run(options)
                collector.store(index, result: result, took: ContinuousClock.now - began)
            }
        }
        let wallSeconds = Self.seconds(ContinuousClock.now - start)
        let (results, durations) = collector.snapshot()
        var report = ClusterSimulation.Report()
        for case let result? in results { report.add(result) }
        let failures = report.violations.sorted { $0.seed < $1.seed }
        if json {
            printClusterJSON(report, durations: durations, wallSeconds: wallSeconds, workerCount: workerCount)
        } else {
            printClusterSummary(report, wallSeconds: wallSeconds)
        }
        for failure in failures.prefix(20) { printError("FAIL \(failure)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    func printClusterSummary(_ report: ClusterSimulation.Report, wallSeconds: Double) {
        let failed = report.violations.count
        let rate = String(format: "%.0f", Double(seeds) / wallSeconds)
        let tickRate = String(format: "%.0f", Double(report.totalTicks) / wallSeconds)
        print(
            "cluster: \(seeds) seeds (\(baseSeed)...\(baseSeed &+ UInt64(seeds - 1))), \(members.map { "\($0) members" } ?? "2 to 4 members"): \(seeds - failed) ok, \(failed) failed in \(String(format: "%.2f", wallSeconds)) s — \(rate) schedules/s, \(tickRate) ticks/s, \(report.totalSteps) steps"
        )
        print(
            "after the heal: a healthy member ACTIVE within \(report.healthyActiveAfterTicksMax) ticks, converged within \(report.convergedAfterTicksMax) ticks (worst seeds)"
        )
        printClusterCounts(report.statistics)
    }

    func printClusterJSON(_ report: ClusterSimulation.Report, durations: [Duration], wallSeconds: Double, workerCount: Int) {
        let note =
            "cluster, \(members.map { "\($0)" } ?? "2-4") members, \(ticks) fault ticks + liveness, \(workerCount) workers, \(report.violations.count) violations"
        let summary = BenchmarkLine(
            metric: "sim_cluster_schedules", milliseconds: durations.map { Self.seconds($0) * 1e3 }.sorted(),
            rate: Double(seeds) / wallSeconds, rateUnit: "schedules/s", note: note)
        print(summary.json)
        func object(_ counts: [(name: String, count: Int)]) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: counts.map { ($0.name, $0.count) })
        }
        let fields: [String: Any] = [
            "metric": "sim_cluster_counts", "n": seeds, "violations": report.violations.count, "ticks": report.totalTicks,
            "steps": report.totalSteps, "healthy_active_after_ticks_max": report.healthyActiveAfterTicksMax,
            "converged_after_ticks_max": report.convergedAfterTicksMax,
            "faults": object(report.statistics.faults), "paths": object(report.statistics.paths),
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        print(String(decoding: data, as: UTF8.self))
    }
}
