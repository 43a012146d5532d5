import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Bounds for waiting on real processes. They are upper limits for a slow machine, never the
/// condition itself: every wait polls for the condition and returns as soon as it holds.
enum Bounds {
    static let serverStartSeconds = 180.0
    static let serverStopSeconds = 120.0
    static let commandSeconds = 300.0
    static let pollMilliseconds = 25
    static let portAttemptsMax = 5
}

struct E2EFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Finds the `rampart` executable that SwiftPM built next to this test bundle.
enum Executable {
    static func rampart() throws -> URL {
        let environment = ProcessInfo.processInfo.environment
        if let given = environment["RAMPART_EXECUTABLE"] { return URL(fileURLWithPath: given) }
        var directories: [URL] = []
        // On Linux the tests run as .build/<config>/<Package>PackageTests.xctest, an executable in the
        // same directory as `rampart`; on macOS the .xctest bundle sits there instead.
        directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent())
        directories.append(Bundle.main.bundleURL)
        directories.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            directories.append(bundle.bundleURL.deletingLastPathComponent())
        }
        var candidates: [URL] = []
        for start in directories {
            var directory = start
            for _ in 0..<4 {
                candidates.append(directory.appendingPathComponent("rampart"))
                directory = directory.deletingLastPathComponent()
            }
        }
        for candidate in candidates {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: candidate.path)
            {
                try checkFresh(candidate)
                return candidate
            }
        }
        throw E2EFailure(
            """
            no `rampart` executable next to the test bundle; build it first (swift build --product rampart) \
            or set RAMPART_EXECUTABLE. Looked at: \(candidates.map(\.path).joined(separator: ", "))
            """)
    }

    /// `swift build --build-tests` compiles the rampart module for the tests but does not relink the
    /// `rampart` executable, so these tests could silently run yesterday's server. Refuse that.
    static func checkFresh(_ executable: URL) throws {
        let objects = executable.deletingLastPathComponent().appendingPathComponent("rampart.build")
        let files = FileManager.default
        guard let linked = (try? files.attributesOfItem(atPath: executable.path))?[.modificationDate] as? Date,
            let names = try? files.contentsOfDirectory(atPath: objects.path)
        else { return }
        for name in names where name.hasSuffix(".o") {
            if let compiled = (try? files.attributesOfItem(atPath: objects.appendingPathComponent(name).path))?[.modificationDate] as? Date,
                compiled > linked
            {
                throw E2EFailure(
                    """
                    \(executable.path) is older than its compiled code (\(name)): run `swift build --product rampart` \
                    (swift build --build-tests does not relink it) before these tests
                    """)
            }
        }
    }
}

/// A temporary directory removed at the end (unless RAMPART_E2E_KEEP is set, to look at it).
final class TemporaryDirectory: Sendable {
    let url: URL
    init() throws {
        // Short: the server's socket path (DIR/rampart.sock) must fit in sockaddr_un.
        let base = URL(fileURLWithPath: "/tmp", isDirectory: true)
        url = base.appendingPathComponent("rampart-e2e-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit {
        if ProcessInfo.processInfo.environment["RAMPART_E2E_KEEP"] == nil { try? FileManager.default.removeItem(at: url) }
    }
}

enum Network {
    /// A TCP port that was free a moment ago: bind 127.0.0.1:0 and read back the port. Another
    /// process may take it before the server binds it; callers retry with a new port then.
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(streamSocketType), 0)
        guard fd >= 0 else { throw E2EFailure("socket() failed: \(errno)") }
        defer { close(fd) }
        var address = loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw E2EFailure("bind(127.0.0.1:0) failed: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw E2EFailure("getsockname failed: \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts TCP connections on 127.0.0.1:port right now.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(streamSocketType), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return connected == 0
    }

    static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    #if canImport(Glibc) || canImport(Musl)
        static let streamSocketType = Int(SOCK_STREAM.rawValue)
    #else
        static let streamSocketType = Int(SOCK_STREAM)
    #endif
}

/// How a child process ended.
struct Exit: Sendable, Equatable, CustomStringConvertible {
    let status: Int32
    let bySignal: Bool
    var description: String { bySignal ? "killed by signal \(status)" : "exited with \(status)" }
}

/// Records a process's end from its termination handler, for polling without blocking a thread.
final class ExitRecord: Sendable {
    private let state = Mutex<Exit?>(nil)
    func record(_ process: Process) {
        let exit = Exit(status: process.terminationStatus, bySignal: process.terminationReason == .uncaughtSignal)
        state.withLock { $0 = exit }
    }
    var exit: Exit? { state.withLock { $0 } }

    /// Polls until the process has ended, at most `seconds`.
    func wait(seconds: Double) async throws -> Exit? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if let exit { return exit }
            try await Task.sleep(for: .milliseconds(Bounds.pollMilliseconds))
        }
        return exit
    }
}

/// One `rampart mgmt ...` run: its exit status and output.
struct CLIResult: Sendable, CustomStringConvertible {
    let arguments: [String]
    let exit: Exit
    let stdout: String
    let stderr: String
    var status: Int32 { exit.bySignal ? -1 : exit.status }
    var description: String { "rampart \(arguments.joined(separator: " ")) → \(exit)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }

    /// stdout parsed as a JSON object (for `--format json`).
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any] else {
            throw E2EFailure("stdout is not a JSON object: \(self)")
        }
        return object
    }
}

enum CLI {
    /// Runs `rampart` with `arguments` and waits for it (at most `Bounds.commandSeconds`, then kills it).
    /// Output goes to files, so a chatty child cannot block on a full pipe.
    static func run(_ arguments: [String], environment extra: [String: String] = [:], scratch: TemporaryDirectory) async throws -> CLIResult {
        try await run(program: try Executable.rampart(), arguments, environment: extra, scratch: scratch)
    }

    /// Runs another program the same way (a test tool, say).
    static func run(
        program: URL, _ arguments: [String], environment extra: [String: String] = [:],
        scratch: TemporaryDirectory
    ) async throws -> CLIResult {
        let process = Process()
        process.executableURL = program
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["RAMPART_PASSWORD"] = nil
        for (key, value) in extra { environment[key] = value }
        process.environment = environment
        let id = UUID().uuidString.prefix(8)
        let outPath = scratch.path("cli-\(id).out")
        let errPath = scratch.path("cli-\(id).err")
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let record = ExitRecord()
        process.terminationHandler = { record.record($0) }
        try process.run()
        try? out.close()
        try? err.close()
        let pid = process.processIdentifier
        guard let exit = try await record.wait(seconds: Bounds.commandSeconds) else {
            kill(pid, SIGKILL)
            _ = try await record.wait(seconds: 30)
            throw E2EFailure("\(program.lastPathComponent) \(arguments.joined(separator: " ")) did not finish within \(Bounds.commandSeconds) s")
        }
        let stdout = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        try? FileManager.default.removeItem(atPath: outPath)
        try? FileManager.default.removeItem(atPath: errPath)
        return CLIResult(arguments: arguments, exit: exit, stdout: stdout, stderr: stderr)
    }
}

/// A `rampart server` child process on a data directory and a fixed loopback port. Deinit kills a
/// server still running, so a failing test never leaves one behind.
final class ServerProcess: Sendable {
    let process: Process
    let record = ExitRecord()
    let dataDirectory: String
    let port: Int
    let logPath: String
    /// A secondary has no administrator of its own, so no initial-admin-password file.
    let createsAdminPassword: Bool

    private init(process: Process, dataDirectory: String, port: Int, logPath: String, createsAdminPassword: Bool) {
        self.process = process
        self.dataDirectory = dataDirectory
        self.port = port
        self.logPath = logPath
        self.createsAdminPassword = createsAdminPassword
    }

    var pid: Int32 { process.processIdentifier }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
    var logTail: String { String(log.suffix(4000)) }

    /// Starts a server and waits until it answers, on `preferredPort` when given (a restart keeps its
    /// address), else on a free port. When the process exits before it is ready (another process
    /// took the port meanwhile, say), it is started again on a new free port, a bounded number of times.
    static func start(
        dataDirectory: String, preferredPort: Int? = nil, logName: String, extraArguments: [String] = [],
        createsAdminPassword: Bool = true, environment: [String: String] = [:]
    ) async throws -> ServerProcess {
        var lastFailure: (any Error)?
        for attempt in 1...Bounds.portAttemptsMax {
            let port = try (attempt == 1 ? preferredPort : nil) ?? Network.freeLoopbackPort()
            let server = try launch(
                dataDirectory: dataDirectory, port: port, logPath: "\(dataDirectory)/../\(logName)-\(attempt).log",
                extraArguments: extraArguments, createsAdminPassword: createsAdminPassword, environment: environment)
            do {
                try await server.waitUntilReady()
                return server
            } catch {
                // A server that is still running but never got ready will not do better on another port.
                guard server.record.exit != nil else {
                    server.kill()
                    throw error
                }
                lastFailure = error
            }
        }
        throw lastFailure!
    }

    private static func launch(
        dataDirectory: String, port: Int, logPath: String, extraArguments: [String],
        createsAdminPassword: Bool, environment: [String: String] = [:]
    ) throws -> ServerProcess {
        let process = Process()
        process.executableURL = try Executable.rampart()
        process.arguments = ["server", "--data", dataDirectory, "--api-port", String(port), "--sic-port", "0", "--listen", "127.0.0.1"] + extraArguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        let server = ServerProcess(
            process: process, dataDirectory: dataDirectory, port: port, logPath: logPath,
            createsAdminPassword: createsAdminPassword)
        let record = server.record
        process.terminationHandler = { record.record($0) }
        try process.run()
        try? log.close()
        return server
    }

    /// Ready means: node.json names our port, the port accepts connections, and the socket and the
    /// first administrator's password file exist. The process must stay alive meanwhile.
    func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .milliseconds(Int(Bounds.serverStartSeconds * 1000))
        while ContinuousClock.now < deadline {
            if let exit = record.exit {
                throw E2EFailure("the server \(exit) before it was ready; its log:\n\(logTail)")
            }
            if nodePort == port, Network.accepts(port: port),
                FileManager.default.fileExists(atPath: "\(dataDirectory)/rampart.sock"),
                !createsAdminPassword || FileManager.default.fileExists(atPath: "\(dataDirectory)/initial-admin-password")
            {
                return
            }
            try await Task.sleep(for: .milliseconds(Bounds.pollMilliseconds))
        }
        throw E2EFailure("the server did not become ready within \(Bounds.serverStartSeconds) s; its log:\n\(logTail)")
    }

    /// The SIC port the server bound (it asks for any free one).
    var sicPort: Int? {
        guard let data = FileManager.default.contents(atPath: "\(dataDirectory)/node.json"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return (object["sic-port"] as? NSNumber)?.intValue
    }

    var nodePort: Int? {
        guard let data = FileManager.default.contents(atPath: "\(dataDirectory)/node.json"),
            let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return (object["api-port"] as? NSNumber)?.intValue
    }

    /// SIGTERM, then waits for the end.
    func stop() async throws -> Exit {
        if record.exit == nil { Foundation.kill(pid, SIGTERM) }
        guard let exit = try await record.wait(seconds: Bounds.serverStopSeconds) else {
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            let signals = status?.split(separator: "\n").filter { $0.hasPrefix("Sig") || $0.hasPrefix("State") }
            let state = "process state: \(signals?.joined(separator: "; ") ?? "gone")"
            kill()
            throw E2EFailure("the server did not stop within \(Bounds.serverStopSeconds) s of SIGTERM (\(state)); its log:\n\(logTail)")
        }
        return exit
    }

    /// SIGSTOP / SIGCONT: the process stays, its sockets accept, but it answers nothing meanwhile.
    func pause() { if record.exit == nil { Foundation.kill(pid, SIGSTOP) } }
    func resume() { if record.exit == nil { Foundation.kill(pid, SIGCONT) } }

    /// SIGKILL (no clean-up of any kind in the server).
    func kill() {
        if record.exit == nil, process.isRunning { Foundation.kill(pid, SIGKILL) }
    }

    deinit { kill() }
}

extension Dictionary where Key == String, Value == Any {
    func string(_ key: String) -> String? { self[key] as? String }
    func int(_ key: String) -> Int? { (self[key] as? NSNumber)?.intValue }
    func object(_ key: String) -> [String: Any]? { self[key] as? [String: Any] }
    func objects(_ key: String) -> [[String: Any]] { self[key] as? [[String: Any]] ?? [] }
}

/// Polls `condition` until it holds, at most `seconds` (tests wait for a state, not for a guessed time).
func pollUntil(seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(Bounds.pollMilliseconds))
    }
    return try await condition()
}

/// Writes `secret` to a new private file in `scratch` and returns its path, for `KEY-file=PATH`
/// arguments: `rampart mgmt` refuses secrets on the command line.
func secretFile(_ secret: String, in scratch: TemporaryDirectory) -> String {
    let path = scratch.path("secret-\(UUID().uuidString.prefix(8))")
    _ = FileManager.default.createFile(atPath: path, contents: Data("\(secret)\n".utf8), attributes: [.posixPermissions: 0o600])
    return path
}
