import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `rampart demo` as people run it: killed servers to try the failover, a pipe to `tee`, Ctrl-C.
@Suite("End to end: rampart demo", .serialized, .endToEndSlot)
struct DemoEndToEndTests {
    /// A demo started in a shell pipeline of its own process group, as a terminal runs
    /// `rampart demo | tee LOG`; `group` is that process group (Ctrl-C sends SIGINT to it).
    final class Demo: Sendable {
        let shell: Process
        let record = ExitRecord()
        let directory: String
        let logPath: String
        let input: FileHandle

        init(scratch: TemporaryDirectory, pipeline: String = "tee") throws {
            directory = scratch.path("demo")
            logPath = scratch.path("output.log")
            let rampart = try Executable.rampart().path
            let shell = Process()
            shell.executableURL = URL(fileURLWithPath: "/bin/sh")
            // Foundation starts the shell in a process group of its own; without job control the
            // shell runs the whole pipeline in it, as a terminal's foreground job.
            shell.arguments = ["-c", "exec 2>&1; '\(rampart)' demo --dir '\(directory)' --api-port 0 | \(pipeline) '\(logPath)'"]
            let stdin = Pipe()
            shell.standardInput = stdin
            shell.standardOutput = FileHandle.nullDevice
            self.shell = shell
            input = stdin.fileHandleForWriting
            let record = self.record
            shell.terminationHandler = { record.record($0) }
            try shell.run()
        }

        var group: Int32 { shell.processIdentifier }
        var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        func waitUntilRunning() async throws {
            let ready = try await pollUntil(seconds: Bounds.serverStartSeconds) {
                output.contains("Management HA demo is running") || record.exit != nil
            }
            guard ready, record.exit == nil else { throw E2EFailure("the demo did not come up:\n\(output)") }
        }

        /// The demo's servers and gateway: the processes with a data directory in the demo's.
        var processes: [Int32] { ProcessTable.mentioning("--data \(directory)/") }

        func type(_ line: String) throws { try input.write(contentsOf: Data((line + "\n").utf8)) }

        /// Whatever happens, nothing of the demo survives the test.
        func killAll() {
            kill(-group, SIGKILL)
            for pid in processes { kill(pid, SIGKILL) }
        }
    }

    @Test(
        "a killed server leaves the demo up; it prints the exact command and restarts it on `restart NAME`",
        .timeLimit(.minutes(10)))
    func killedServerCanBeRestarted() async throws {
        let scratch = try TemporaryDirectory()
        let demo = try Demo(scratch: scratch)
        defer { demo.killAll() }
        try await demo.waitUntilRunning()
        let primary = "\(demo.directory)/mgmt-a"
        let standby = "\(demo.directory)/mgmt-b"
        let primaryPID = try #require(ProcessTable.mentioning(primary + " ").first, "mgmt-a runs")

        kill(primaryPID, SIGKILL)
        #expect(try await pollUntil(seconds: 60) { demo.output.contains("mgmt-a was killed by signal 9") }, "\(demo.output)")
        #expect(demo.output.contains("The demo keeps the others running."))
        let rampart = try Executable.rampart().resolvingSymlinksInPath().path
        #expect(demo.output.contains("\(rampart) server --data \(primary) --server-name mgmt-a"), "the exact command: \(demo.output)")
        #expect(demo.output.contains("restart mgmt-a"))
        // The demo and the standby go on: the runbook's commands work on it.
        try await Task.sleep(for: .seconds(1))
        #expect(demo.record.exit == nil, "the demo keeps running: \(demo.output)")
        let status = try await CLI.run(["ha", "status", "--data", standby], scratch: scratch)
        #expect(status.stdout.contains("mgmt-b"), "\(status)")

        try demo.type("restart mgmt-a")
        #expect(try await pollUntil(seconds: 60) { demo.output.contains("mgmt-a started again") }, "\(demo.output)")
        #expect(
            try await pollUntil(seconds: Bounds.serverStartSeconds) {
                try await CLI.run(["ha", "status", "--data", primary], scratch: scratch).status == 0
            }, "the restarted mgmt-a comes back synchronized")

        // SIGTERM stops everything, the restarted server included.
        kill(-demo.group, SIGTERM)
        #expect(try await demo.record.wait(seconds: 120) != nil)
        #expect(try await pollUntil(seconds: 60) { demo.processes.isEmpty }, "left running: \(demo.processes)")
    }

    @Test("`rampart demo | tee LOG` then Ctrl-C stops every process of the demo", .timeLimit(.minutes(10)))
    func interruptedPipelineStopsEverything() async throws {
        let scratch = try TemporaryDirectory()
        let demo = try Demo(scratch: scratch)
        defer { demo.killAll() }
        try await demo.waitUntilRunning()
        #expect(demo.processes.count == 3, "two servers and a gateway: \(demo.processes)")
        // Ctrl-C: SIGINT to the foreground job, in the order that used to orphan the servers: tee ends
        // first, so the demo's output pipe is closed when it gets its SIGINT and says it is stopping.
        let tee = ProcessTable.mentioning("tee \(demo.logPath)")
        #expect(tee.count == 1)
        // SIGKILL: children of the test process inherit its blocked signals; tee must end now either way.
        for pid in tee { kill(pid, SIGKILL) }
        #expect(try await pollUntil(seconds: 60) { ProcessTable.mentioning("tee \(demo.logPath)").isEmpty })
        kill(-demo.group, SIGINT)
        #expect(try await demo.record.wait(seconds: 120) != nil)
        #expect(try await pollUntil(seconds: 60) { demo.processes.isEmpty }, "left running: \(demo.processes)")
    }

    @Test("the end of the demo's output pipe stops every process of the demo, even while it starts", .timeLimit(.minutes(10)))
    func closedOutputStopsEverything() async throws {
        let scratch = try TemporaryDirectory()
        // `head` reads a few lines of progress and exits: nobody reads the demo any more.
        let demo = try Demo(scratch: scratch, pipeline: "head -n 3 >")
        defer { demo.killAll() }
        #expect(try await demo.record.wait(seconds: 300) != nil, "the pipeline ends")
        #expect(try await pollUntil(seconds: 120) { demo.processes.isEmpty }, "left running: \(demo.processes)")
    }
}

/// The machine's processes, read from /proc.
enum ProcessTable {
    /// Every process (but this one) whose command line contains `text`.
    static func mentioning(_ text: String) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            guard pid != getpid(), let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let commandLine = String(decoding: data.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
            return commandLine.contains(text) && !commandLine.hasPrefix("/bin/sh")
        }.sorted()
    }
}
