import Foundation
import Synchronization
import Testing

@testable import RampartTools

/// The one supervisor of the demo's and the benchmarks' child processes.
@Suite("RampartTools: the child-process supervisor")
struct ChildProcessSupervisorTests {
    @Test("stopAll stops every child: SIGTERM first, SIGKILL after the grace for one that ignores it", .timeLimit(.minutes(2)))
    func stopAll() async throws {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("supervisor-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let supervisor = ChildProcessSupervisor(stopGrace: .milliseconds(500))
        let ended = Mutex<[String]>([])
        // A child inherits the signal mask of the thread that started it (a pool thread may block
        // SIGTERM): this one unblocks it, as a server's signal handling does.
        let politeLog = scratch.appendingPathComponent("polite.log").path
        let polite = try supervisor.start(
            name: "polite", program: "/usr/bin/env",
            arguments: [
                "python3", "-c",
                """
                import signal, time
                signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGTERM])
                print("ready", flush=True)
                time.sleep(600)
                """,
            ],
            output: .newLog(path: politeLog), onExit: { child in ended.withLock { $0.append(child.name) } })
        let stubbornLog = scratch.appendingPathComponent("stubborn.log").path
        let stubborn = try supervisor.start(
            name: "stubborn", program: "/bin/sh",
            arguments: ["-c", "trap '' TERM; echo ready; while true; do sleep 1; done"],
            output: .newLog(path: stubbornLog))
        // Only once both are set up: a signal before would end them at once.
        for log in [politeLog, stubbornLog] {
            try await poll { (try? String(contentsOfFile: log, encoding: .utf8))?.contains("ready") == true }
        }
        #expect(supervisor.names == ["polite", "stubborn"])
        #expect(supervisor.child(named: "stubborn") === stubborn)

        let stopped = await supervisor.stopAll()
        #expect(stopped.map(\.name) == ["polite", "stubborn"])
        #expect(!polite.isRunning && !stubborn.isRunning)
        #expect(polite.ending == "was killed by signal \(SIGTERM)")
        #expect(stubborn.ending == "was killed by signal \(SIGKILL)", "it ignored SIGTERM")
        try await poll { ended.withLock { $0 } == ["polite"] }
    }

    @Test("an appended log keeps what each start wrote, after a line that says what started")
    func appendedLog() async throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("supervisor-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let supervisor = ChildProcessSupervisor(stopGrace: .seconds(5))
        for run in ["one", "two"] {
            let child = try supervisor.start(
                name: "echo", program: "/bin/sh", arguments: ["-c", "echo run \(run)"],
                output: .appendedLog(path: log, header: "starting echo \(run)"))
            try await poll { !child.isRunning }
        }
        let text = try String(contentsOfFile: log, encoding: .utf8)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.count == 4, "\(text)")
        #expect(lines[0].hasPrefix("=== ") && lines[0].hasSuffix("starting echo one") && lines[1] == "run one")
        #expect(lines[2].hasSuffix("starting echo two") && lines[3] == "run two")
        let mode = try FileManager.default.attributesOfItem(atPath: log)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("a child that ended is seen to end, with its status, while a process holding its descriptors lives on")
    func endSeenWhileItsDescriptorsLiveOn() async throws {
        // Foundation's Process learns of an exit only when every copy of a private socket the child holds
        // is closed: a grandchild left running (here) or a process started at the same moment from another
        // thread keeps one, and Process.isRunning stays true as long as it lives (CI: a 60 s wait ran out).
        let supervisor = ChildProcessSupervisor(stopGrace: .seconds(1))
        let child = try supervisor.start(name: "leaves-one-behind", program: "/bin/sh", arguments: ["-c", "sleep 30 & exit 3"], output: .inherit)
        defer { kill(-child.pid, SIGKILL) }  // the sleep, in the child's process group
        let deadline = ContinuousClock.now + .seconds(20)
        while child.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!child.isRunning, "the child exited at once; still running after 20 s")
        #expect(child.ending == "exited with status 3")
        await supervisor.stopAll()
    }

    /// Polls `condition` until it holds, at most 60 s (an upper bound for a loaded machine).
    func poll(_ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        Issue.record("condition not met within 60 s")
    }
}
