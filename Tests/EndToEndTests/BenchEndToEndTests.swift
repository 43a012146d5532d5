import Foundation
import Testing

/// `rampart bench` starts servers of its own: whatever ends it, none may outlive it and nothing of
/// theirs may stay on disk.
@Suite("End to end: a benchmark cleans up after itself", .endToEndSlot)
struct BenchEndToEndTests {
    static let publishesBeforeSignal = 20

    @Test(
        "SIGTERM in the middle of bench ha stops every server it started and removes their directories",
        .timeLimit(.minutes(5)))
    func benchHAStopsItsServersAndRemovesTheirFilesOnSIGTERM() async throws {
        let scratch = try TemporaryDirectory()
        let bench = Process()
        bench.executableURL = try Executable.rampart()
        bench.arguments = ["bench", "ha", "--json", "--figure", "ha_publish_visible_async", "--samples", "1000000"]
        // The run's directory is made under TMPDIR: here, where this test can see it.
        bench.environment = ProcessInfo.processInfo.environment.merging(["TMPDIR": scratch.url.path]) { $1 }
        bench.standardOutput = FileHandle.nullDevice
        bench.standardError = FileHandle.nullDevice
        try bench.run()
        defer { if bench.isRunning { kill(bench.processIdentifier, SIGKILL) } }

        // In the middle of the figure: the secondary started, and the primary has published for it.
        let measuring = try await pollUntil(seconds: 180) {
            runDirectories(scratch).contains { run in
                let primaryLog = (try? String(contentsOfFile: run + "/logs/mgmt-a.log", encoding: .utf8)) ?? ""
                return FileManager.default.fileExists(atPath: run + "/mgmt-b/node.json")
                    && primaryLog.components(separatedBy: "event revision-published: ").count > Self.publishesBeforeSignal
            }
        }
        #expect(measuring, "bench ha never started publishing to its secondary")
        kill(bench.processIdentifier, SIGTERM)
        let exited = try await pollUntil(seconds: 60) { !bench.isRunning }
        #expect(exited, "bench ha did not exit after SIGTERM")

        #expect(runDirectories(scratch).isEmpty, "left behind: \(runDirectories(scratch))")
        #expect(processesUsing(scratch.url.path).isEmpty, "still running: \(processesUsing(scratch.url.path))")
    }

    func runDirectories(_ scratch: TemporaryDirectory) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: scratch.url.path)) ?? []
        return names.filter { $0.hasPrefix("rampart-bench-ha-") }.map { scratch.path($0) }
    }

    /// Processes whose command line names `path` (the servers are started with --data under it).
    func processesUsing(_ path: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.filter { Int($0) != nil } ?? []
        return pids.compactMap { pid in
            guard let bytes = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let commandLine = String(decoding: bytes.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
            return commandLine.contains(path) ? "\(pid): \(commandLine)" : nil
        }
    }
}
