import ArgumentParser
import Dispatch
import Foundation
import HACore
import SimulationKit
import Synchronization

/// `rampart sim`: the seeded fault simulator of management HA, for replaying a failing seed and for
/// benchmarking. It runs the same HACore and HA driver the server runs, with simulated time, network and disks.
struct SimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Run the seeded management-HA fault simulator (safety, then liveness).",
        discussion: """
                Each seed drives a simulated HA group, the server's own HA driver over a simulated disk, through \
                network faults (delay, loss, duplication, reordering, corrupted snapshot chunks, one-way cuts, \
                partitions, clogged links), crashes that lose unpersisted writes (an active's last publishes, sent before their fsync, included), random publishes and \
                random administrator commands (including forced promotions). Invariants are checked after every \
                step; after the faults heal, every server must converge. A failing run prints its seed and exits \
                non-zero; `rampart sim --seed S --trace` replays it exactly, one line per event. Every run prints \
                how often each fault was injected and each path taken (promotions plain and forced, \
                switchovers, failovers, full syncs, collisions, ...): with --json as a "sim_counts" object.

                Invariants: at most one server takes writes per epoch; epochs never go backwards on a \
                server; a server that saw a higher epoch never takes writes in a lower one; a revision \
                acknowledged in sync mode survives every promotion that was not forced; a standby's journal \
                is a prefix of its active's, but for revisions the active lost before their fsync; divergent \
                revisions are never dropped without an export, nor any revision its author held durably; \
                no publish is answered after a higher epoch took its first write (but the two sides of a \
                forced split); a publish waiting for a standby is answered once its mode's timeout passed; \
                after the heal, every server converges within --liveness-ticks.

            With --cluster, each seed drives a simulated gateway cluster (ClusterCore, Active Up or Primary Up) \
            through kill -9 and restarts, link loss per interface, partitions of the sync link, loss, \
            duplication, reordering, load spikes, admin down/up and critical-device problems; see the README.

            Examples:
              rampart sim --seeds 1000            run seeds 1...1000
              rampart sim --cluster --seeds 2000 --members 3
              rampart sim --seed 42 --trace       replay seed 42, one line per event
              rampart sim --seeds 10000 --json    benchmark, one JSON object per metric
            """)

    @Option(help: "Replay exactly this one seed.")
    var seed: UInt64?

    @Option(help: "How many seeds to run (starting at --base-seed).")
    var seeds: Int = 1_000

    @Option(
        help: "Run seeds from --base-seed on until this many minutes of wall time have passed (or one fails), then print the first failing seed and the rate.")
    var minutes: Double?

    @Option(name: .customLong("base-seed"), help: "The first seed of a --seeds run.")
    var baseSeed: UInt64 = 1

    @Option(help: "Servers in the simulated HA group (1 to 8).")
    var servers: Int = 3

    @Option(help: "Simulated ticks (10 ms each) with faults, before the heal.")
    var ticks: Int = 2_000

    @Option(name: .customLong("liveness-ticks"), help: "Ticks allowed after the heal for every server to converge.")
    var livenessTicks: Int = 2_000

    @Option(help: "Worker threads for a --seeds run (default: the machine's cores).")
    var workers: Int?

    @Flag(help: "Simulate a gateway cluster (ClusterXL High Availability) instead of management HA.")
    var cluster = false

    @Option(help: "Members of the simulated gateway cluster, 2 to 5 (with --cluster; default: each seed draws 2 to 4).")
    var members: Int?

    @Flag(help: "Print one readable line per event (use with --seed).")
    var trace = false

    @Flag(help: "Print benchmark results as JSON objects, one per line.")
    var json = false

    mutating func validate() throws {
        guard (1...8).contains(servers) else { throw ValidationError("--servers must be 1 to 8") }
        guard ticks >= 0, livenessTicks >= 1 else { throw ValidationError("--ticks must be >= 0, --liveness-ticks >= 1") }
        guard seeds >= 1 else { throw ValidationError("--seeds must be >= 1") }
        if trace && seed == nil && seeds > 1 { throw ValidationError("--trace needs --seed S (one run)") }
        if let minutes, !(minutes > 0) || seed != nil || cluster { throw ValidationError("--minutes is positive, and not with --seed or --cluster") }
        if let members, !cluster || !(2...5).contains(members) { throw ValidationError("--members needs --cluster and is 2 to 5") }
    }

    func options(_ seed: UInt64) -> SimulationOptions {
        SimulationOptions(seed: seed, serverCount: servers, faultTicks: ticks, livenessTicksMax: livenessTicks)
    }

    func run() throws {
        if cluster { return try runCluster() }
        if let seed {
            let result = RandomSchedule.run(options(seed), trace: trace ? { print($0) } : nil)
            report(single: result)
            if result.violation != nil { throw ExitCode(1) }
            return
        }
        if let minutes { return try runFor(minutes: minutes) }
        try runMany()
    }

    /// Runs seeds on every worker until the time is up or one fails. The wall clock only decides
    /// when to stop: each seed's verdict is its own, and `--seed S` replays it.
    func runFor(minutes: Double) throws {
        let workerCount = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)
        let progress = SeedProgress(base: baseSeed)
        let start = ContinuousClock.now
        let deadline = start + .milliseconds(Int64(minutes * 60_000))
        let template = options(0)
        DispatchQueue.concurrentPerform(iterations: workerCount) { _ in
            var local = SeedProgress.Tally()
            while ContinuousClock.now < deadline, let seed = progress.nextSeed() {
                var options = template
                options.seed = seed
                let result = RandomSchedule.run(options)
                local.add(result)
                if let violation = result.violation {
                    progress.failed(violation)
                    break
                }
            }
            progress.merge(local)
        }
        let wallSeconds = Self.seconds(ContinuousClock.now - start)
        let (tally, failure) = progress.result()
        let perMinute = Double(tally.schedules) * 60 / wallSeconds
        if json {
            print(
                BenchmarkLine(
                    metric: "sim_schedules_per_minute", milliseconds: [], rate: perMinute, rateUnit: "schedules/min",
                    note:
                        "\(servers) servers, \(ticks) fault ticks + liveness, \(workerCount) workers, \(tally.schedules) schedules in \(String(format: "%.1f", wallSeconds)) s, \(failure == nil ? 0 : 1) violations",
                    n: tally.schedules
                ).json)
            print(Self.countsJSON(tally.statistics, seeds: tally.schedules, violations: failure == nil ? 0 : 1))
        } else {
            print(
                "\(tally.schedules) seeds from \(baseSeed) in \(String(format: "%.1f", wallSeconds)) s (\(workerCount) workers): \(String(format: "%.0f", perMinute)) schedules/min, \(String(format: "%.0f", Double(tally.ticks) / wallSeconds)) ticks/s, \(failure == nil ? "no violation" : "stopped at a violation")"
            )
            printCounts(tally.statistics)
        }
        if let failure {
            printError("FAIL seed \(failure.seed): \(failure)")
            throw ExitCode(1)
        }
    }

    func report(single result: SimulationResult) {
        let stats = result.statistics
        if let violation = result.violation {
            printError("FAIL seed \(result.seed): \(violation)")
            return
        }
        print(
            "seed \(result.seed): ok — \(result.ticks) ticks, \(result.steps) steps, converged \(result.convergedAfterTicks ?? -1) ticks after the heal; \(stats.publishes) publishes, \(stats.promotions) promotions (\(stats.forcedPromotions) forced), \(stats.syncAcknowledged) sync-acknowledged, \(stats.fullSyncsCompleted) full syncs, \(stats.exports) exports, \(stats.crashes) crashes"
        )
        printCounts(stats)
    }

    /// The faults injected, the paths taken, the share of seeds that took each path of `ha promote`
    /// and the liveness operator's interventions, one line each.
    func printCounts(_ statistics: SimulatedCluster.Statistics) {
        print("faults injected: " + Self.listed(statistics.faults))
        print("paths taken: " + Self.listed(statistics.paths))
        let runs = max(statistics.runs, 1)
        let shares = PromotePath.allCases.map { path in
            "\(path.name) \(statistics.promotePaths[path]) (\(String(format: "%.1f", Double(statistics.promotePathSeeds[path]) * 100 / Double(runs)))% of seeds)"
        }
        print("promote paths: " + shares.joined(separator: ", "))
        print("operator after the heal: " + Self.listed(statistics.interventions))
    }

    static func listed(_ counts: [(name: String, count: Int)]) -> String {
        counts.map { "\($0.count) \($0.name)" }.joined(separator: ", ")
    }

    func runMany() throws {
        let workerCount = max(1, workers ?? ProcessInfo.processInfo.activeProcessorCount)
        let collector = ResultCollector<SimulationResult>(count: seeds)
        let start = ContinuousClock.now
        let seedsCount = seeds
        let base = baseSeed
        let template = options(0)
        // One thread per worker (the schedules are CPU-bound and synchronous).
        DispatchQueue.concurrentPerform(iterations: workerCount) { worker in
            var index = worker
            while index < seedsCount {
                let began = ContinuousClock.now
                var options = template
                options.seed = base &+ UInt64(index)
                let result = RandomSchedule.run(options)
                collector.store(index, result: result, took: ContinuousClock.now - began)
                index += workerCount
            }
        }
        let wallSeconds = Self.seconds(ContinuousClock.now - start)
        let (results, durations) = collector.snapshot()
        let failures = results.compactMap { $0?.violation }.sorted { $0.seed < $1.seed }
        let totalTicks = results.reduce(0) { $0 + ($1?.ticks ?? 0) }
        let totalSteps = results.reduce(0) { $0 + ($1?.steps ?? 0) }
        let note = "\(servers) servers, \(ticks) fault ticks + liveness, faults on, \(workerCount) workers, \(failures.count) violations"
        var total = SimulatedCluster.Statistics()
        for case let result? in results { total.add(result.statistics) }
        if json {
            let milliseconds = durations.map { Self.seconds($0) * 1e3 }.sorted()
            let summary = BenchmarkLine(
                metric: "sim_schedules", milliseconds: milliseconds, rate: Double(seeds) / wallSeconds, rateUnit: "schedules/s", note: note)
            // Per-tick latency of each schedule (its wall time divided by its ticks).
            var perTick: [Double] = []
            for (index, result) in results.enumerated() {
                if let result, result.ticks > 0 { perTick.append(Self.seconds(durations[index]) * 1e3 / Double(result.ticks)) }
            }
            let tickLine = BenchmarkLine(
                metric: "sim_ticks", milliseconds: perTick.sorted(), rate: Double(totalTicks) / wallSeconds, rateUnit: "ticks/s",
                note: "\(totalTicks) ticks, \(totalSteps) core steps in \(String(format: "%.2f", wallSeconds)) s wall; latencies are per tick", n: totalTicks)
            print(summary.json)
            print(tickLine.json)
            print(Self.countsJSON(total, seeds: seeds, violations: failures.count))
        } else {
            print(
                "\(seeds) seeds (\(baseSeed)...\(baseSeed &+ UInt64(seeds - 1))): \(seeds - failures.count) ok, \(failures.count) failed in \(String(format: "%.2f", wallSeconds)) s — \(String(format: "%.0f", Double(seeds) / wallSeconds)) schedules/s, \(String(format: "%.0f", Double(totalTicks) / wallSeconds)) ticks/s, \(totalSteps) steps"
            )
        }
        if !json {
            print(
                "totals: \(total.publishes) publishes, \(total.promotions) promotions (\(total.forcedPromotions) forced), \(total.syncAcknowledged) sync-acknowledged, \(total.syncTimedOut) sync timeouts, \(total.fullSyncsCompleted) full syncs, \(total.collisions) collisions, \(total.unsyncedDiscards) unsynced tails dropped, \(total.exports) exports, \(total.crashes) crashes, \(total.messagesSent) messages"
            )
            printCounts(total)
        }
        for failure in failures.prefix(20) { printError("FAIL seed \(failure.seed): \(failure)") }
        if !failures.isEmpty { throw ExitCode(1) }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The counts of a run as one JSON object: every fault injected and every path taken, by name.
    static func countsJSON(_ total: SimulatedCluster.Statistics, seeds: Int, violations: Int) -> String {
        func object(_ counts: [(name: String, count: Int)]) -> [String: Int] {
            Dictionary(uniqueKeysWithValues: counts.map { ($0.name, $0.count) })
        }
        let fields: [String: Any] = [
            "metric": "sim_counts", "n": seeds, "violations": violations, "publishes": total.publishes,
            "messages": total.messagesSent, "faults": object(total.faults), "paths": object(total.paths),
            "promote_paths": object(total.promotePaths.named), "promote_path_seeds": object(total.promotePathSeeds.named),
            "operator": object(total.interventions),
        ]
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    func printError(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// A `--minutes` run shared by its workers: the next seed, what the workers ran, the first failure.
final class SeedProgress: Sendable {
    struct Tally {
        var schedules = 0
        var ticks = 0
        var statistics = SimulatedCluster.Statistics()

        mutating func add(_ result: SimulationResult) {
            schedules += 1
            ticks += result.ticks
            statistics.add(result.statistics)
        }
    }

    private struct State {
        var next: UInt64
        var stopped = false
        var tally = Tally()
        var failure: SimulationViolation?
    }

    private let state: Mutex<State>

    init(base: UInt64) { state = Mutex(State(next: base)) }

    /// The next seed to run; nil once a seed failed.
    func nextSeed() -> UInt64? {
        state.withLock { state in
            guard !state.stopped else { return nil }
            defer { state.next &+= 1 }
            return state.next
        }
    }

    /// Stops every worker after its current seed; the lowest failing seed is reported.
    func failed(_ violation: SimulationViolation) {
        state.withLock { state in
            state.stopped = true
            if state.failure.map({ violation.seed < $0.seed }) ?? true { state.failure = violation }
        }
    }

    func merge(_ tally: Tally) {
        state.withLock { state in
            state.tally.schedules += tally.schedules
            state.tally.ticks += tally.ticks
            state.tally.statistics.add(tally.statistics)
        }
    }

    func result() -> (Tally, SimulationViolation?) { state.withLock { ($0.tally, $0.failure) } }
}

/// Results from the worker threads, each stored once at its own index.
final class ResultCollector<Result: Sendable>: Sendable {
    private struct Collected {
        var results: [Result?]
        var durations: [Duration]
    }

    private let collected: Mutex<Collected>

    init(count: Int) {
        collected = Mutex(Collected(results: Array(repeating: nil, count: count), durations: Array(repeating: .zero, count: count)))
    }

    func store(_ index: Int, result: Result, took duration: Duration) {
        collected.withLock {
            $0.results[index] = result
            $0.durations[index] = duration
        }
    }

    func snapshot() -> ([Result?], [Duration]) {
        collected.withLock { ($0.results, $0.durations) }
    }
}

/// One benchmark metric as a JSON object.
struct BenchmarkLine {
    var metric: String
    var milliseconds: [Double]
    var rate: Double
    var rateUnit: String
    var note: String
    var n: Int?

    func percentile(_ fraction: Double) -> Double {
        guard !milliseconds.isEmpty else { return 0 }
        return milliseconds[min(milliseconds.count - 1, Int(Double(milliseconds.count - 1) * fraction + 0.5))]
    }

    var json: String {
        let mean = milliseconds.isEmpty ? 0 : milliseconds.reduce(0, +) / Double(milliseconds.count)
        let object: [String: Any] = [
            "metric": metric, "n": n ?? milliseconds.count,
            "p50_ms": round3(percentile(0.5)), "p99_ms": round3(percentile(0.99)),
            "mean_ms": round3(mean), "max_ms": round3(milliseconds.last ?? 0),
            "rate": round3(rate), "rate_unit": rateUnit, "note": note,
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    func round3(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }
}
