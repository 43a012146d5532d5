import Foundation
import Testing

/// `rampart bench cluster-failover` builds a namespace lab of its own: its figures come out one JSON
/// object per line, and whatever ends it, no namespace, agent or file of it stays behind.
extension NamespaceLabs {
    @Suite("End to end: bench cluster-failover measures and cleans up after itself", .serialized)
    struct ClusterBenchEndToEndTests {
        static let available =
            NetworkNamespace.available
            && ["/usr/bin/arping", "/usr/sbin/nft", "/usr/sbin/conntrackd"].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }

        @Test(
            "two failovers (kill -9, then link cut) give cluster_failover_kill, cluster_failover_link and cluster_flaps with zero flaps; nothing is left behind",
            .timeLimit(.minutes(5)), .enabled(if: available, "needs root, ip, arping, python3, nft, conntrackd"))
        func measuresTwoFailoversAndCleansUp() async throws {
            let scratch = try TemporaryDirectory()
            let namespacesBefore = await Self.benchNamespaces()
            // The other suites load the machine: a longer dead timer keeps late heartbeats from failing over a live member.
            let bench = try Self.start(["--failovers", "2", "--dead-timer-ms", String(ClusterLab.deadTimerMilliseconds)], scratch: scratch)
            defer { if bench.process.isRunning { kill(bench.process.processIdentifier, SIGKILL) } }
            #expect(try await pollUntil(seconds: 240) { !bench.process.isRunning }, "bench cluster-failover did not finish")
            let output = (try? String(contentsOfFile: bench.outputPath, encoding: .utf8)) ?? ""
            #expect(bench.process.terminationStatus == 0, "\(output)")
            let figures = output.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let byMetric = Dictionary(figures.compactMap { figure in figure.string("metric").map { ($0, figure) } }) { first, _ in first }
            #expect(byMetric["cluster_failover_kill"]?.int("n") == 1 && byMetric["cluster_failover_link"]?.int("n") == 1, "\(output)")
            #expect(byMetric["cluster_flaps"]?.int("flaps") == 0 && byMetric["cluster_flaps"]?.int("failover_count_increments") == 2, "\(output)")
            #expect((byMetric["cluster_failover_kill"]?["p50_ms"] as? NSNumber)?.doubleValue ?? 0 > 0, "\(output)")
            // The held connection through the routed lab survives both failovers (conntrackd sync).
            let survived = byMetric["cluster_connections_survived"]
            #expect(survived?.int("n") == 2 && survived?.int("survived") == 2 && survived?.string("rate_unit") == "fraction", "\(output)")
            await Self.expectNothingLeft(scratch, namespacesBefore: namespacesBefore)
        }

        @Test(
            "SIGTERM in the middle of bench cluster-failover stops its agents and removes its namespaces and files",
            .timeLimit(.minutes(5)), .enabled(if: available, "needs root, ip, arping, python3, nft, conntrackd"))
        func stopsAgentsAndRemovesNamespacesOnSIGTERM() async throws {
            let scratch = try TemporaryDirectory()
            let namespacesBefore = await Self.benchNamespaces()
            let bench = try Self.start(["--failovers", "1000"], scratch: scratch)
            defer { if bench.process.isRunning { kill(bench.process.processIdentifier, SIGKILL) } }
            let running = try await pollUntil(seconds: 120) {
                Self.runDirectories(scratch).contains { FileManager.default.fileExists(atPath: $0 + "/logs/agent-m2.log") }
            }
            #expect(running, "bench cluster-failover never started its agents")
            try await Task.sleep(for: .seconds(2))
            kill(bench.process.processIdentifier, SIGTERM)
            #expect(try await pollUntil(seconds: 60) { !bench.process.isRunning }, "bench cluster-failover did not exit after SIGTERM")
            await Self.expectNothingLeft(scratch, namespacesBefore: namespacesBefore)
        }

        static func start(_ arguments: [String], scratch: TemporaryDirectory) throws -> (process: Process, outputPath: String) {
            let bench = Process()
            bench.executableURL = try Executable.rampart()
            bench.arguments = ["bench", "cluster-failover", "--json"] + arguments
            // The run's directory is made under TMPDIR: here, where this test can see it.
            bench.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": scratch.url.path]) { $1 }
            let outputPath = scratch.path("bench-output.txt")
            _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
            bench.standardOutput = output
            bench.standardError = output
            try bench.run()
            try? output.close()
            return (bench, outputPath)
        }

        static func expectNothingLeft(_ scratch: TemporaryDirectory, namespacesBefore: Set<String>) async {
            #expect(runDirectories(scratch).isEmpty, "left behind: \(runDirectories(scratch))")
            let left = await benchNamespaces().subtracting(namespacesBefore)
            #expect(left.isEmpty, "namespaces left behind: \(left)")
            #expect(processesUsing(scratch.url.path).isEmpty, "still running: \(processesUsing(scratch.url.path))")
        }

        static func runDirectories(_ scratch: TemporaryDirectory) -> [String] {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: scratch.url.path)) ?? []
            return names.filter { $0.hasPrefix("rampart-bench-cluster-") }.map { scratch.path($0) }
        }

        /// The bench's namespaces are named rbc<tag><role>.
        static func benchNamespaces() async -> Set<String> {
            let listing = (try? await NetworkNamespace.command(["ip", "netns", "list"])) ?? ""
            return Set(listing.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }.filter { $0.hasPrefix("rbc") })
        }

        /// Processes whose command line names `path` (the agents are started with --data under it).
        static func processesUsing(_ path: String) -> [String] {
            let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
            return pids.compactMap { pid in
                guard let bytes = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
                let commandLine = String(decoding: bytes.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
                return commandLine.contains(path) ? "\(pid): \(commandLine)" : nil
            }
        }
    }
}
