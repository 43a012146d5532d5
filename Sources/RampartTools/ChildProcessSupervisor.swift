import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Where a child's standard output and error go.
public enum ChildOutput {
    /// Inherited from this process.
    case inherit
    /// A new log file (0600; an existing one is emptied).
    case newLog(path: String)
    /// Appended to a log file (created 0600 when missing), after a line with the time and `header`.
    case appendedLog(path: String, header: String)
    /// Standard output into `pipe` (the caller reads it); standard error discarded.
    case capture(Pipe)
}

/// One child process (this executable, usually), in a process group of its own (Foundation's Process
/// makes one), which is stopped as a whole.
public final class ChildProcess: Sendable {
    public let name: String
    public let arguments: [String]
    public let process: Process
    /// The log its output goes to, if any.
    public let logPath: String?
    private let restart = Mutex<[String]?>(nil)

    init(name: String, arguments: [String], process: Process, logPath: String?) {
        self.name = name
        self.arguments = arguments
        self.process = process
        self.logPath = logPath
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning && exitedUnreaped() == nil }

    /// How to start it again on its data once it is up (its ports fixed, no join); nil until known.
    public var restartArguments: [String]? {
        get { restart.withLock { $0 } }
        set { restart.withLock { $0 = newValue } }
    }

    /// How it ended: killed by a signal (`status` is the signal) or exited (`status` is the exit
    /// status); nil while it runs.
    public var termination: (signaled: Bool, status: Int32)? {
        if process.isRunning { return exitedUnreaped() }
        return (process.terminationReason == .uncaughtSignal, process.terminationStatus)
    }

    /// How it ended, in words ("exited with status 1", "was killed by signal 9"); nil while it runs.
    public var ending: String? {
        termination.map { $0.signaled ? "was killed by signal \($0.status)" : "exited with status \($0.status)" }
    }

    /// True once it has exited with status 0.
    public var succeeded: Bool { termination.map { !$0.signaled && $0.status == 0 } ?? false }

    /// Waits until it has ended.
    public func waitForExit() async {
        while isRunning { try? await Task.sleep(for: ChildProcessSupervisor.pollInterval) }
    }

    /// How the child ended, if it has and Foundation has not reaped it yet; read without reaping it.
    /// Foundation's Process learns of an exit only once every copy of a socket the child holds is
    /// closed: a grandchild left running, or a process another thread started at the same moment,
    /// keeps a copy, and `Process.isRunning` stays true as long as that one lives.
    private func exitedUnreaped() -> (signaled: Bool, status: Int32)? {
        var info = siginfo_t()
        guard waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0, info._sifields._sigchld.si_pid == pid else { return nil }
        return (info.si_code != CLD_EXITED, info._sifields._sigchld.si_status)
    }

    /// SIGTERM to its process group (a graceful stop, anything it started included), then SIGKILL
    /// after `grace`.
    func stop(grace: Duration) async {
        guard isRunning else { return }
        signalGroup(SIGTERM)
        let deadline = ContinuousClock.now + grace
        while isRunning, ContinuousClock.now < deadline {
            try? await Task.sleep(for: ChildProcessSupervisor.pollInterval)
        }
        if isRunning {
            signalGroup(SIGKILL)
            await waitForExit()
        }
    }

    private func signalGroup(_ number: Int32) {
        // Its own group when Process made one; never this process's own group.
        if getpgid(pid) == pid, pid != getpgrp() { kill(-pid, number) } else { kill(pid, number) }
    }
}

/// Every child process a tool starts (the demo's servers and gateway, the benchmarks' servers, agents
/// and one-shot commands), so every way out of the tool (its end, an error, a signal) stops all of them.
public final class ChildProcessSupervisor: Sendable {
    static let pollInterval = Duration.milliseconds(20)

    /// How long a child may take to stop after SIGTERM before it gets SIGKILL.
    public let stopGrace: Duration
    private let children = Mutex<(started: [ChildProcess], isStopping: Bool)>(([], false))

    public init(stopGrace: Duration) { self.stopGrace = stopGrace }

    /// This executable, as a tool starts it (and as an operator can paste it): a tool never runs another build.
    public static var executable: String { URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path }

    /// Starts `program` (by default this executable) with `arguments`. `onExit` runs (on another
    /// thread) when the child ends.
    @discardableResult
    public func start(
        name: String, program: String = executable, arguments: [String], output: ChildOutput,
        onExit: (@Sendable (ChildProcess) -> Void)? = nil
    ) throws -> ChildProcess {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        var logPath: String?
        var log: FileHandle?
        switch output {
        case .inherit:
            break
        case .newLog(let path):
            logPath = path
            log = try Self.openLog(path, header: nil)
        case .appendedLog(let path, let header):
            logPath = path
            log = try Self.openLog(path, header: header)
        case .capture(let pipe):
            process.standardOutput = pipe
            process.standardError = FileHandle.nullDevice
        }
        if let log {
            process.standardOutput = log
            process.standardError = log
        }
        defer { try? log?.close() }
        let child = ChildProcess(name: name, arguments: arguments, process: process, logPath: logPath)
        if let onExit { process.terminationHandler = { _ in onExit(child) } }
        // Registered before the child runs: a signal that arrives at once still finds it. None starts
        // once every child is being stopped: it would outlive the tool.
        try children.withLock { children in
            guard !children.isStopping else { throw ToolFailure("stopping: \(name) is not started") }
            try process.run()
            children.started.append(child)
        }
        return child
    }

    /// Runs a one-shot command to its end as a child (so stopping every child stops it too) and returns
    /// its standard output; throws when it does not exit with status 0.
    public func output(of name: String, program: String = executable, arguments: [String]) async throws -> String {
        let pipe = Pipe()
        let child = try start(name: name, program: program, arguments: arguments, output: .capture(pipe))
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        await child.waitForExit()
        children.withLock { $0.started.removeAll { $0 === child } }
        guard child.succeeded else {
            throw ToolFailure("\(([program] + arguments).joined(separator: " ")) \(child.ending ?? "ended"): \(output.prefix(300))")
        }
        return output
    }

    /// The last child started under `name` (a restarted one replaces the one that died).
    public func child(named name: String) -> ChildProcess? { children.withLock { $0.started.last { $0.name == name } } }

    /// The names of the children started so far, in order (a name once).
    public var names: [String] {
        children.withLock { children in
            var names: [String] = []
            for child in children.started where !names.contains(child.name) { names.append(child.name) }
            return names
        }
    }

    /// Stops `child` and forgets it.
    public func stop(_ child: ChildProcess) async {
        children.withLock { $0.started.removeAll { $0 === child } }
        await child.stop(grace: stopGrace)
    }

    /// Stops every child at once; returns the last child of each name, in the order they started.
    /// Called again while a first call stops them (a signal during the tool's own cleanup), it waits too.
    @discardableResult
    public func stopAll() async -> [ChildProcess] {
        let all = children.withLock { children in
            children.isStopping = true
            return children.started
        }
        await withTaskGroup(of: Void.self) { group in
            for child in all { group.addTask { await child.stop(grace: self.stopGrace) } }
        }
        return all.filter { child in all.last(where: { $0.name == child.name }) === child }
    }

    /// A new log replaces an old one; an appended one is created when missing.
    static func openLog(_ path: String, header: String?) throws -> FileHandle {
        if header == nil || !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw ToolFailure("cannot create the log \(path)")
            }
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        if let header { try handle.write(contentsOf: Data("\n=== \(Date()) \(header)\n".utf8)) }
        return handle
    }
}
