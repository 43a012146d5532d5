import Dispatch
import Foundation
import Gateway
import HARuntime
import ManagementClient
import ManagementModel
import Operations
import Store
import Synchronization
import TrustCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// `rampart demo`: a whole Management HA pair on loopback, as real processes of this executable, so
/// people can try publish, delta sync, a read-only standby and `ha status` with one command.
public struct DemoRun {
    /// Directory of the demo's data directories and logs (created when missing).
    let directory: String
    /// Web API port of the primary (0 picks a free port).
    let apiPort: Int
    /// One JSON object with the addresses and paths once synchronized (progress goes to stderr).
    let json: Bool

    public init(directory: String, apiPort: Int, json: Bool) {
        self.directory = directory
        self.apiPort = apiPort
        self.json = json
    }

    /// Runs the demo until it is told to stop; returns the exit status (0: stopped normally, 1: a
    /// process died before the demo was ready).
    public func run() async throws -> Int32 {
        let stop = DemoStop()
        stop.catchSignals()
        let console = DemoConsole(json: json, apiPort: apiPort, stop: stop)
        let layout = try DemoLayout(directory: directory)
        let lock = try layout.claim()
        defer { close(lock) }
        let children = ChildProcessSupervisor(stopGrace: .seconds(DemoLimits.stopGraceSeconds))
        let pair: DemoPair
        do {
            pair = try await DemoBringUp(layout: layout, apiPort: apiPort, stop: stop, children: children, console: console).run()
        } catch let interrupted as DemoInterrupted {
            return await finish(interrupted.reason, children: children, layout: layout, console: console)
        } catch {
            console.progress("the demo could not start; stopping what was started")
            await Self.stopAll(children, console: console)
            throw error
        }
        console.announce(pair, layout: layout)
        let reason = await DemoWatch(layout: layout, pair: pair, stop: stop, children: children, console: console).run()
        return await finish(reason, children: children, layout: layout, console: console)
    }

    /// Stops every process the demo started; a signal or the end of its output is the normal end
    /// (exit 0), a child that died before the demo was ready is a failure (exit 1).
    func finish(_ reason: DemoStopReason, children: ChildProcessSupervisor, layout: DemoLayout, console: DemoConsole) async -> Int32 {
        switch reason {
        case .signal(let number):
            console.progress("signal \(DemoStop.signalName(number)): stopping the servers")
            await Self.stopAll(children, console: console)
        case .outputClosed:
            // Nobody reads what the demo says any more (`rampart demo | tee`, then Ctrl-C ended tee).
            await Self.stopAll(children, console: console)
        case .childExited(let name, let how):
            console.progress("\(name) \(how) unexpectedly; its log (\(layout.log(name))) ends with:\n\(DemoLog.tail(layout.log(name)))")
            await Self.stopAll(children, console: console)
            return 1
        }
        return 0
    }

    /// Stops every process and says how each (the last of each name) ended.
    static func stopAll(_ children: ChildProcessSupervisor, console: DemoConsole) async {
        for child in await children.stopAll() {
            console.progress("\(child.name) stopped (\(child.termination.map { "\($0.signaled ? "signal" : "status") \($0.status)" } ?? "still running"))")
        }
    }
}

/// Bounds of the demo's waits: upper limits for a slow machine, never the condition itself.
enum DemoLimits {
    /// The first start creates the Internal CA and keys; a loaded 2-core machine needs time.
    static let serverStartSeconds = 120
    static let synchronizedSeconds = 180
    /// A server finishes requests in flight on SIGTERM; after this it gets SIGKILL.
    static let stopGraceSeconds = 30
    static let pollMilliseconds = 100
    static let progressEverySeconds = 10
    static let logTailLines = 20
    /// sockaddr_un.sun_path holds 108 bytes with its terminating NUL.
    static let socketPathBytesMax = 107
}

/// Where the demo keeps things. Names are fixed so a restart finds the previous demo's servers.
struct DemoLayout {
    static let primaryName = "mgmt-a"
    static let secondaryName = "mgmt-b"
    static let gatewayName = "gw-1"
    /// Marks DIR as a demo's, so a restart may reuse it and a foreign directory is refused.
    static let markerName = "rampart-demo.json"

    let directory: URL

    init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory).standardizedFileURL
        let socket = data(Self.primaryName) + "/" + DataDirectoryLayout.socket
        guard socket.utf8.count <= DemoLimits.socketPathBytesMax else {
            throw ToolFailure(
                "--dir: \(socket) is too long for a Unix socket path (at most \(DemoLimits.socketPathBytesMax) bytes); choose a shorter directory",
                isUsage: true)
        }
    }

    var marker: String { directory.appendingPathComponent(Self.markerName).path }
    var activationKeyFile: String { directory.appendingPathComponent("\(Self.secondaryName).activation-key").path }
    func data(_ name: String) -> String { directory.appendingPathComponent(name).path }
    func log(_ name: String) -> String { directory.appendingPathComponent("\(name).log").path }

    var gatewayKeyFile: String { directory.appendingPathComponent("\(Self.gatewayName).activation-key").path }
    /// Whether the gateway enrolled in an earlier run (its agent wrote its state file).
    var gatewayEnrolled: Bool { FileManager.default.fileExists(atPath: AgentState.file(URL(fileURLWithPath: data(Self.gatewayName))).path) }

    /// Whether the secondary completed its join in an earlier run (it wrote its membership).
    var secondaryJoined: Bool { FileManager.default.fileExists(atPath: HAMembership.file(URL(fileURLWithPath: data(Self.secondaryName))).path) }

    /// Makes DIR the demo's (or checks it already is) and locks it for this run, so two demos never
    /// run servers on the same data. Returns the open lock file.
    func claim() throws -> Int32 {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        if files.fileExists(atPath: directory.path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw ToolFailure("--dir: \(directory.path) is a file, not a directory", isUsage: true) }
            let entries = try files.contentsOfDirectory(atPath: directory.path)
            guard entries.isEmpty || entries.contains(Self.markerName) else {
                throw ToolFailure("--dir: \(directory.path) holds files of something else than a Rampart demo; choose an empty or new directory", isUsage: true)
            }
        }
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        if !files.fileExists(atPath: marker) {
            let note: JSONValue = ["rampart-demo": true, "primary": .string(Self.primaryName), "secondary": .string(Self.secondaryName)]
            try DurableFile.write(Array((note.canonicalString + "\n").utf8), to: URL(fileURLWithPath: marker), mode: 0o600)
        }
        let descriptor = open(marker, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw ToolFailure("cannot open \(marker): errno \(errno)") }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            throw ToolFailure("another `rampart demo` is running on \(directory.path); stop it first (Ctrl-C)")
        }
        return descriptor
    }
}

/// Why the demo ends.
enum DemoStopReason: Sendable, Equatable {
    case signal(Int32)
    /// Whatever read the demo's standard output is gone.
    case outputClosed
    /// Before the demo is ready only: a child died.
    case childExited(name: String, how: String)
}

/// Thrown out of a wait when the demo must end (a signal, or a server died) before it was ready.
struct DemoInterrupted: Error {
    let reason: DemoStopReason
}

/// The reasons to stop, noted by signal handlers, output writes and process termination handlers
/// on other threads and read by the demo's waits. Children's ends are also queued for the supervisor.
final class DemoStop: Sendable {
    private struct State {
        var signalNumber: Int32?
        var isOutputClosed = false
        var firstExit: (name: String, how: String)?
        var exits: [(name: String, how: String)] = []
    }
    private let state = Mutex(State())
    private let sources = Mutex<[any DispatchSourceSignal]>([])
    /// Standard output is a pipe or a socket: its reader can go away (poll says so).
    private let outputIsPipe: Bool = {
        var status = stat()
        guard fstat(STDOUT_FILENO, &status) == 0 else { return false }
        let type = status.st_mode & S_IFMT
        return type == S_IFIFO || type == S_IFSOCK
    }()

    /// SIGINT, SIGTERM and SIGHUP become reasons to stop instead of killing the demo, so the children
    /// are always stopped by it. SIGPIPE is ignored: a write to a closed pipe then fails with EPIPE,
    /// which is another reason to stop, instead of killing the demo and orphaning the children.
    func catchSignals() {
        signal(SIGPIPE, SIG_IGN)
        sources.withLock { sources in
            for number in [SIGINT, SIGTERM, SIGHUP] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { [weak self] in self?.noteSignal(number) }
                source.resume()
                sources.append(source)
            }
        }
    }

    static func signalName(_ number: Int32) -> String {
        switch number {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case SIGHUP: "SIGHUP"
        default: "\(number)"
        }
    }

    func noteSignal(_ number: Int32) { state.withLock { if $0.signalNumber == nil { $0.signalNumber = number } } }
    func noteOutputClosed() { state.withLock { $0.isOutputClosed = true } }
    func noteExit(_ name: String, how: String) {
        state.withLock { state in
            if state.firstExit == nil { state.firstExit = (name, how) }
            state.exits.append((name, how))
        }
    }

    /// The children that ended since the last call, in order.
    func takeExits() -> [(name: String, how: String)] {
        state.withLock { state in
            defer { state.exits = [] }
            return state.exits
        }
    }

    /// Why the demo must end now whatever its phase: a signal, or nobody reads its output.
    var endReason: DemoStopReason? {
        if outputIsPipe, !state.withLock({ $0.isOutputClosed }) {
            var descriptor = pollfd(fd: STDOUT_FILENO, events: 0, revents: 0)
            if Glibc.poll(&descriptor, 1, 0) == 1, descriptor.revents & Int16(POLLERR | POLLHUP) != 0 { noteOutputClosed() }
        }
        return state.withLock { state in
            if let signalNumber = state.signalNumber { return .signal(signalNumber) }
            return state.isOutputClosed ? .outputClosed : nil
        }
    }

    /// Before the demo is ready, a child's end ends it too. A signal wins: a child may end because of
    /// the same signal (sent to its process group by a supervisor, say), and then the demo ends normally.
    var reason: DemoStopReason? {
        if let endReason { return endReason }
        return state.withLock { $0.firstExit.map { .childExited(name: $0.name, how: $0.how) } }
    }

    /// Throws DemoInterrupted when the demo must end; called between the steps of every wait.
    func check() throws {
        if let reason { throw DemoInterrupted(reason: reason) }
    }

    /// Polls `probe` until it gives a value, at most `seconds`; throws when the demo must end or
    /// time runs out. `waiting` names what is awaited, for the error.
    func poll<T: Sendable>(_ waiting: String, seconds: Int, _ probe: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < deadline {
            try check()
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(DemoLimits.pollMilliseconds))
        }
        throw ToolFailure("gave up after \(seconds) s waiting for \(waiting)")
    }
}

enum DemoLog {
    static func tail(_ path: String) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(DemoLimits.logTailLines)
            .map { "    " + $0 }.joined(separator: "\n")
    }
}

/// What a running server of the demo is, once ready.
struct DemoServer: Sendable {
    let name: String
    let role: String
    let dataDirectory: String
    let logPath: String
    let settings: NodeSettings
    let pid: Int32
    var mode = "?"

    var api: String { "https://\(settings.listen):\(settings.apiPort)/web_api" }
}

/// The gateway agent of the demo, once it talks to the active.
struct DemoGateway: Sendable {
    let name: String
    let dataDirectory: String
    let logPath: String
    let pid: Int32
}

/// The two servers, synchronized, and the gateway.
struct DemoPair: Sendable {
    let servers: [DemoServer]
    var gateway: DemoGateway?
    var active: DemoServer? { servers.first { $0.mode == "active" } }
    var standby: DemoServer? { servers.first { $0.mode == "standby" } }
}

/// The steps that make a synchronized pair: start the primary, enrol and start the secondary (first
/// run only), wait until both say synchronized.
struct DemoBringUp {
    let layout: DemoLayout
    let apiPort: Int
    let stop: DemoStop
    let children: ChildProcessSupervisor
    let console: DemoConsole

    func run() async throws -> DemoPair {
        console.progress("rampart demo in \(layout.directory.path)")
        let joined = layout.secondaryJoined
        // The secondary reaches the primary at the SIC address it joined with (kept in its ha.json), so
        // a restarted primary must listen there again; a first run takes a free port.
        let primarySICPort = joined ? try previousPrimarySICPort() : 0
        let primary = try await startServer(
            DemoLayout.primaryName, role: "primary",
            options: ["--api-port", String(apiPort), "--sic-port", String(primarySICPort)])
        guard let sicPort = primary.settings.sicPort else { throw ToolFailure("\(primary.name) did not say which SIC port it bound") }
        var joinOptions: [String] = []
        if !joined {
            try await prepareJoin()
            joinOptions = ["--join", "127.0.0.1:\(sicPort)", "--activation-key-file", layout.activationKeyFile]
        }
        defer { try? FileManager.default.removeItem(atPath: layout.activationKeyFile) }
        let secondary = try await startServer(
            DemoLayout.secondaryName, role: "secondary",
            options: ["--api-port", "0", "--sic-port", "0"] + joinOptions)
        // Joined (the server writes node.json only after enrolment): the one-time key is spent.
        try? FileManager.default.removeItem(atPath: layout.activationKeyFile)
        var pair = try await waitUntilSynchronized([primary, secondary])
        if let active = pair.active { pair.gateway = try await startGateway(active: active, servers: pair.servers) }
        return pair
    }

    /// Enrols the gateway agent with the active (first run only) and waits until the active says it
    /// communicates. Later runs start it on its data: it finds the servers in its own state file.
    func startGateway(active: DemoServer, servers: [DemoServer]) async throws -> DemoGateway {
        let name = DemoLayout.gatewayName
        let data = layout.data(name)
        var arguments = ["gateway", "--data", data, "--enforce", "none"]
        if !layout.gatewayEnrolled {
            try? FileManager.default.removeItem(atPath: data)
            try await prepareGateway(active: active)
            let management = servers.compactMap { $0.settings.sicPort.map { "127.0.0.1:\($0)" } }.joined(separator: ",")
            arguments += ["--name", name, "--management", management, "--activation-key-file", layout.gatewayKeyFile]
        }
        defer { try? FileManager.default.removeItem(atPath: layout.gatewayKeyFile) }
        console.progress("starting \(name) (gateway agent, --enforce none)…")
        let child = try DemoWatch.launch(name, arguments: arguments, layout: layout, children: children, stop: stop)
        _ = try await stop.poll("\(name) to connect to \(active.name) (see \(layout.log(name)))", seconds: DemoLimits.serverStartSeconds) { () -> Bool? in
            let state = try? await LocalOperator.withRootSession(dataDirectory: active.dataDirectory) { transport, sid in
                try await LocalOperator.call(transport, "show-simple-gateway", ["name": .string(name)], sid: sid)
            }
            return state?["sic-state"]?.stringValue == "communicating" ? true : nil
        }
        // Enrolled: later starts need only its data.
        child.restartArguments = ["gateway", "--data", data, "--enforce", "none"]
        console.progress("\(name) is enrolled and connected to every management server")
        return DemoGateway(name: name, dataDirectory: data, logPath: layout.log(name), pid: child.pid)
    }

    /// On the active: a simple-gateway object with a new random one-time key (published), and the
    /// key in a 0600 file for the agent's --activation-key-file.
    func prepareGateway(active: DemoServer) async throws {
        let key = SecureRandom.password(length: 32)
        let name = DemoLayout.gatewayName
        try await LocalOperator.withRootSession(dataDirectory: active.dataDirectory) { transport, sid in
            let existing = try await transport.call("show-simple-gateway", ["name": .string(name)], sid: sid)
            let (command, body): (String, [String: JSONValue]) =
                existing.ok
                ? ("reset-sic", ["name": .string(name), "one-time-password": .string(key)])
                : ("add-simple-gateway", ["name": .string(name), "ip-address": "127.0.0.1", "one-time-password": .string(key)])
            _ = try await LocalOperator.call(transport, command, body, sid: sid)
            _ = try await LocalOperator.call(transport, "publish", [:], sid: sid)
        }
        try DurableFile.write(Array((key + "\n").utf8), to: URL(fileURLWithPath: layout.gatewayKeyFile), mode: 0o600)
    }

    func previousPrimarySICPort() throws -> Int {
        let secondary = URL(fileURLWithPath: layout.data(DemoLayout.secondaryName))
        guard let membership = try HAMembership.load(secondary) else { throw ToolFailure("no ha.json in \(secondary.path)") }
        return membership.joinSICPort
    }

    /// Starts one server and waits until it has bound its listeners and its socket answers.
    func startServer(_ name: String, role: String, options: [String]) async throws -> DemoServer {
        let data = layout.data(name)
        // node.json is rewritten at every start once the listeners are bound; an old one would tell old ports.
        try? FileManager.default.removeItem(at: NodeSettings.file(dataDirectory: data))
        let joining = options.contains("--join")
        console.progress("starting \(name) (\(role))\(joining ? ", joining the primary with a one-time activation key" : "")…")
        let arguments = ["server", "--data", data, "--server-name", name, "--listen", "127.0.0.1"] + options
        let child = try DemoWatch.launch(name, arguments: arguments, layout: layout, children: children, stop: stop)
        let settings = try await stop.poll("\(name) to start (see \(layout.log(name)))", seconds: DemoLimits.serverStartSeconds) {
            FileManager.default.fileExists(atPath: data + "/" + DataDirectoryLayout.socket) ? try? NodeSettings.load(dataDirectory: data) : nil
        }
        // Again on the same ports: the other servers and the gateway know it by them; joined by now.
        child.restartArguments = [
            "server", "--data", data, "--server-name", name, "--listen", "127.0.0.1",
            "--api-port", String(settings.apiPort), "--sic-port", String(settings.sicPort ?? 0),
        ]
        console.progress("\(name) is up: Web API https://127.0.0.1:\(settings.apiPort)/web_api, SIC port \(settings.sicPort.map(String.init) ?? "?")")
        return DemoServer(name: name, role: role, dataDirectory: data, logPath: layout.log(name), settings: settings, pid: child.pid)
    }

    /// On the primary: a checkpoint-host object for the secondary with a new random one-time key
    /// (published), and the key in a 0600 file for the secondary's --activation-key-file.
    func prepareJoin() async throws {
        // A join that an earlier run left half done holds at most an enrolment; start it afresh.
        try? FileManager.default.removeItem(atPath: layout.data(DemoLayout.secondaryName))
        let key = SecureRandom.password(length: 32)
        let name = DemoLayout.secondaryName
        try await LocalOperator.withRootSession(dataDirectory: layout.data(DemoLayout.primaryName)) { transport, sid in
            let existing = try await transport.call("show-checkpoint-host", ["name": .string(name)], sid: sid)
            // A second try after an interrupted first run: the object exists; reset-sic gives it a new key.
            let (command, body): (String, [String: JSONValue]) =
                existing.ok
                ? ("reset-sic", ["name": .string(name), "one-time-password": .string(key)])
                : ("add-checkpoint-host", ["name": .string(name), "ip-address": "127.0.0.1", "one-time-password": .string(key)])
            _ = try await LocalOperator.call(transport, command, body, sid: sid)
            _ = try await LocalOperator.call(transport, "publish", [:], sid: sid)
        }
        try DurableFile.write(Array((key + "\n").utf8), to: URL(fileURLWithPath: layout.activationKeyFile), mode: 0o600)
    }

    /// Waits until `ha status` on every server says synchronized, printing each change of state.
    func waitUntilSynchronized(_ servers: [DemoServer]) async throws -> DemoPair {
        console.progress("waiting until both servers are synchronized (at most \(DemoLimits.synchronizedSeconds) s)…")
        var shown: [String: String] = [:]
        var lastProgress = ContinuousClock.now
        let started = ContinuousClock.now
        let modes = try await stop.poll("synchronization (see `rampart ha status --data …`)", seconds: DemoLimits.synchronizedSeconds) {
            () -> [String: String]? in
            var modes: [String: String] = [:]
            for server in servers {
                guard let status = await Self.haStatus(server.dataDirectory) else { return nil }
                let line = Self.describe(status)
                if shown[server.name] != line {
                    console.progress("  \(server.name): \(line)")
                    shown[server.name] = line
                }
                guard status["successfully-synced"]?.boolValue == true else { continue }
                modes[server.name] = status["mode"]?.stringValue
            }
            if modes.count < servers.count, ContinuousClock.now - lastProgress > .seconds(DemoLimits.progressEverySeconds) {
                console.progress("  still waiting (\((ContinuousClock.now - started).components.seconds) s)…")
                lastProgress = ContinuousClock.now
            }
            return modes.count == servers.count ? modes : nil
        }
        return DemoPair(
            servers: servers.map {
                var server = $0
                server.mode = modes[server.name] ?? "?"
                return server
            })
    }

    /// show-ha-status over the server's local socket; nil while it does not answer.
    static func haStatus(_ dataDirectory: String) async -> JSONValue? {
        try? await LocalOperator.withRootSession(dataDirectory: dataDirectory) { transport, sid in
            try await LocalOperator.call(transport, "show-ha-status", [:], sid: sid)
        }
    }

    static func describe(_ status: JSONValue) -> String {
        var line = "\(status["mode"]?.stringValue ?? "?"), \(status["sync-status"]?.stringValue ?? "?"), head #\(status["head"]?["number"]?.scalarText ?? "?")"
        for peer in status["servers"]?.arrayValue ?? [] {
            line += "; peer \(peer["name"]?.stringValue ?? "?"): \(peer["rampart-sync-detail"]?.stringValue ?? "?")"
        }
        return line
    }
}

extension DemoConsole {
    /// What to try with the gateway: install from the active, its status, a packet against its policy.
    func gatewayCommands(_ gateway: DemoGateway, rampart: String, active: DemoServer) -> String {
        """
          # install the Standard policy on the gateway (from the active; after a promotion, from the new one)
          \(rampart) mgmt install-policy policy-package=Standard targets.1=\(gateway.name) -r true --data \(active.dataDirectory)
          \(rampart) mgmt show-simple-gateway name=\(gateway.name) -r true --data \(active.dataDirectory)
          # what the installed policy does with a packet
          \(rampart) gateway test-packet --data \(gateway.dataDirectory) src=10.0.0.1 dst=10.0.0.2 proto=tcp dport=22

        """
    }
}

/// What the demo says: progress to stdout, or to stderr with --json so stdout is one JSON object.
struct DemoConsole: Sendable {
    let json: Bool
    /// For the restart command shown at the end.
    let apiPort: Int
    /// Told when standard output's reader is gone.
    let stop: DemoStop

    func progress(_ line: String) {
        emit(line + "\n", to: json ? STDERR_FILENO : STDOUT_FILENO)
    }

    /// Unbuffered writes, so progress shows at once even when stdout is a file or a pipe. A closed pipe
    /// (EPIPE; SIGPIPE is ignored) is a reason to stop, never a crash that would orphan the servers.
    func emit(_ text: String, to descriptor: Int32) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                if descriptor == STDOUT_FILENO { stop.noteOutputClosed() }
                return
            }
            offset += written
        }
    }

    func announce(_ pair: DemoPair, layout: DemoLayout) {
        guard let active = pair.active, let standby = pair.standby else {
            progress("synchronized, but no server says it is the active one and the other the standby: \(pair.servers.map { "\($0.name) \($0.mode)" })")
            return
        }
        let passwordFile = layout.data(DemoLayout.primaryName) + "/" + DataDirectoryLayout.initialAdminPassword
        let text =
            json
            ? Self.json(pair, active: active, layout: layout, passwordFile: passwordFile).canonicalString
            : text(active: active, standby: standby, gateway: pair.gateway, layout: layout, passwordFile: passwordFile)
        emit(text + "\n", to: STDOUT_FILENO)
    }

    static func json(_ pair: DemoPair, active: DemoServer, layout: DemoLayout, passwordFile: String) -> JSONValue {
        let servers: [JSONValue] = pair.servers.map { server in
            [
                "name": .string(server.name), "role": .string(server.role), "mode": .string(server.mode), "api": .string(server.api),
                "api-port": .int(Int64(server.settings.apiPort)), "sic-port": server.settings.sicPort.map { .int(Int64($0)) } ?? .null,
                "data": .string(server.dataDirectory), "log": .string(server.logPath), "pid": .int(Int64(server.pid)),
            ]
        }
        let gateway: JSONValue =
            pair.gateway.map {
                ["name": .string($0.name), "data": .string($0.dataDirectory), "log": .string($0.logPath), "pid": .int(Int64($0.pid))]
            } ?? .null
        return [
            "directory": .string(layout.directory.path), "active-api": .string(active.api),
            "admin-password-file": .string(passwordFile), "ca-file": .string(active.dataDirectory + "/" + DataDirectoryLayout.icaCertificate),
            "servers": .array(servers), "gateway": gateway,
        ]
    }

    func text(active: DemoServer, standby: DemoServer, gateway: DemoGateway?, layout: DemoLayout, passwordFile: String) -> String {
        // The commands are shown with the program as it was started (say .build/debug/rampart), so
        // they can be pasted as they are.
        let rampart = CommandLine.arguments[0].contains("/") ? CommandLine.arguments[0] : "rampart"
        return """

            Management HA demo is running: both servers are synchronized.
              active:   \(active.name) (\(active.role))   \(active.api)   data \(active.dataDirectory)   log \(active.logPath)
              standby:  \(standby.name) (\(standby.role))   \(standby.api)   data \(standby.dataDirectory)   log \(standby.logPath)
              admin password: \(passwordFile)
              CA of the active's API: \(active.dataDirectory + "/" + DataDirectoryLayout.icaCertificate)
            \(gateway.map { "  gateway:  \($0.name), connected to both servers   data \($0.dataDirectory)   log \($0.logPath)\n" } ?? "")
            Try:
              # publish a change on the active (logs in, publishes, logs out, as mgmt_cli does)
              \(rampart) mgmt add-host name=demo-web ip-address=192.0.2.10 -u admin --password-file \(passwordFile) --data \(active.dataDirectory)
              # read it on the standby; a change there is refused, naming the active
              \(rampart) mgmt show-host name=demo-web -r true --data \(standby.dataDirectory)
              # HA state, epoch, head and sync status of each server
              \(rampart) ha status --data \(active.dataDirectory)
              \(rampart) ha status --data \(standby.dataDirectory)
              # make the standby the active one (switchover)
              \(rampart) ha promote --data \(standby.dataDirectory)
            \(gateway.map { gatewayCommands($0, rampart: rampart, active: active) } ?? "")
            Kill a server to try the failover: the demo keeps the others running and tells how to start it
            again (type `restart NAME` here). Ctrl-C stops them all; `\(rampart) demo --dir \(layout.directory.path)\(apiPort == 8443 ? "" : " --api-port \(apiPort)")` starts them again on their data.
            """
    }
}

/// The demo once it is ready: it keeps the processes that live running when one dies (so the runbook's
/// failover can be tried), says how to start the dead one again, and starts it again when asked on
/// standard input (`restart NAME`), until a signal or the end of its output.
struct DemoWatch {
    let layout: DemoLayout
    let pair: DemoPair
    let stop: DemoStop
    let children: ChildProcessSupervisor
    let console: DemoConsole

    func run() async -> DemoStopReason {
        _ = stop.takeExits()
        let input = DemoInput.start()
        while true {
            if let reason = stop.endReason { return reason }
            for exit in stop.takeExits() { console.progress(died(exit.name, how: exit.how)) }
            for line in input.takeLines() { handle(line) }
            try? await Task.sleep(for: .milliseconds(DemoLimits.pollMilliseconds))
        }
    }

    func handle(_ line: String) {
        let words = line.split(separator: " ").map(String.init)
        guard words.first == "restart" else {
            if !words.isEmpty { console.progress("type `restart NAME` (\(children.names.joined(separator: ", "))) to start a stopped process again") }
            return
        }
        let names =
            words.count > 1
            ? Array(words.dropFirst())
            : children.names.filter { name in children.child(named: name)?.isRunning == false }
        if names.isEmpty { console.progress("every process of the demo is running") }
        for name in names {
            switch restart(name) {
            case .success(let child):
                console.progress(
                    "\(name) started again (pid \(child.pid), log \(child.logPath ?? layout.log(name))); `rampart ha status` shows when it has caught up")
            case .failure(let failure):
                console.progress("restart \(name): \(failure.description)")
            }
        }
    }

    /// Starts one process of the demo (its output in DIR/<name>.log); its end is noted in `stop`.
    static func launch(
        _ name: String, arguments: [String], layout: DemoLayout, children: ChildProcessSupervisor,
        stop: DemoStop
    ) throws -> ChildProcess {
        try children.start(
            name: name, arguments: arguments,
            output: .appendedLog(path: layout.log(name), header: "rampart demo: starting \(name): rampart \(arguments.joined(separator: " "))"),
            onExit: { child in stop.noteExit(child.name, how: child.ending ?? "ended") })
    }

    /// Starts `name` again on its data, as it ran before; the reason when it cannot.
    func restart(_ name: String) -> Result<ChildProcess, ToolFailure> {
        guard let previous = children.child(named: name) else {
            return .failure(ToolFailure("no process named \(name); the demo's are \(children.names.joined(separator: ", "))"))
        }
        guard !previous.isRunning else { return .failure(ToolFailure("\(name) is running (pid \(previous.pid))")) }
        guard let arguments = previous.restartArguments else { return .failure(ToolFailure("\(name) never came up; stop the demo and start it again")) }
        do {
            let child = try Self.launch(name, arguments: arguments, layout: layout, children: children, stop: stop)
            child.restartArguments = arguments
            return .success(child)
        } catch {
            return .failure(ToolFailure("cannot start \(name): \(error)"))
        }
    }

    /// What the operator reads when a process of the demo dies: the demo goes on, what to try, and
    /// the exact command that starts it again.
    func died(_ name: String, how: String) -> String {
        let rampart = ChildProcessSupervisor.executable
        let others = pair.servers.filter { $0.name != name }
        let command = children.child(named: name)?.restartArguments.map { ([rampart] + $0).joined(separator: " ") }
        var lines = ["\(name) \(how) (its log: \(layout.log(name))). The demo keeps the others running."]
        for server in others {
            lines.append("  \(rampart) ha status --data \(server.dataDirectory)")
        }
        if pair.servers.contains(where: { $0.name == name }), let survivor = others.first {
            lines.append("  # if \(name) was the active: the runbook's failover on \(survivor.name) (--dry-run first)")
            lines.append("  \(rampart) ha promote --dry-run --data \(survivor.dataDirectory)")
        }
        if let command {
            lines.append("Type `restart \(name)` and Enter here to start it again on its data, as:")
            lines.append("  \(command)")
            lines.append("(or run that yourself in another terminal; the demo then does not stop it)")
        }
        return lines.joined(separator: "\n")
    }
}

/// Lines typed on the demo's standard input, read on a thread of their own (a blocking read must
/// not hold a thread of the cooperative pool); ends at end of input.
final class DemoInput: Sendable {
    private let lines = Mutex<[String]>([])

    static func start() -> DemoInput {
        let input = DemoInput()
        let thread = Thread {
            while let line = readLine(strippingNewline: true) {
                input.lines.withLock { $0.append(line.trimmingCharacters(in: .whitespaces)) }
            }
        }
        thread.start()
        return input
    }

    func takeLines() -> [String] {
        lines.withLock { lines in
            defer { lines = [] }
            return lines
        }
    }
}
