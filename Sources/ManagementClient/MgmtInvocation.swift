import Foundation
import ManagementModel
import ManagementService
import Operations
import Store

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One run of `rampart mgmt` (Check Point's `mgmt_cli` for Rampart): the options the command was
/// given, and the flow. One Web API command per run, given as `key=value` arguments; it logs in (or
/// reuses a session file), runs the command, and for a change made in its own session publishes and
/// logs out, as mgmt_cli does.
public struct MgmtInvocation: Sendable {
    public enum OutputFormat: String, CaseIterable, Sendable {
        case json, text
    }

    public var command: String
    public var parameters: [String]
    /// `--help`: after a command, that command's parameters; alone, `genericHelp`.
    public var help: Bool
    public var genericHelp: String
    public var format: OutputFormat
    public var sessionFile: String?
    /// `-r true`: log in as root over DIR/rampart.sock.
    public var root: Bool
    public var dataDirectory: String?
    public var host: String?
    public var port: Int?
    public var user: String?
    public var passwordFile: String?
    public var caFile: String?
    public var unsafe: Bool
    public var wait: Bool
    public var waitTimeoutSeconds: Int
    public var apiVersion: String?
    /// Given only to be refused with an explanation: a password on the command line is visible to
    /// every user through `ps`.
    public var passwordOnCommandLine: String?

    public init(
        command: String, parameters: [String], help: Bool, genericHelp: String, format: OutputFormat, sessionFile: String?,
        root: Bool, dataDirectory: String?, host: String?, port: Int?, user: String?, passwordFile: String?, caFile: String?,
        unsafe: Bool, wait: Bool, waitTimeoutSeconds: Int, apiVersion: String?, passwordOnCommandLine: String?
    ) {
        self.command = command
        self.parameters = parameters
        self.help = help
        self.genericHelp = genericHelp
        self.format = format
        self.sessionFile = sessionFile
        self.root = root
        self.dataDirectory = dataDirectory
        self.host = host
        self.port = port
        self.user = user
        self.passwordFile = passwordFile
        self.caFile = caFile
        self.unsafe = unsafe
        self.wait = wait
        self.waitTimeoutSeconds = waitTimeoutSeconds
        self.apiVersion = apiVersion
        self.passwordOnCommandLine = passwordOnCommandLine
    }

    static let commandNameLengthMax = 128
    static let taskStatusRetriesMax = 5

    /// Runs the invocation and returns its exit status: 0 done, 1 failed (the reason is on stderr), 2 a usage error.
    public func run() async throws -> Int32 {
        do {
            try await execute()
            return 0
        } catch let exit as Exit {
            return exit.status
        } catch let failure as MgmtFailure {
            Self.printError("rampart mgmt: \(failure.description)")
            if failure.exitCode == 2 { Self.printError("See 'rampart mgmt --help'.") }
            return failure.exitCode
        } catch let failure as MgmtParameters.Failure {
            Self.printError("rampart mgmt: \(failure.description)")
            Self.printError("See 'rampart mgmt --help'.")
            return 2
        }
    }

    /// The run ends with this status; what went wrong is printed already.
    struct Exit: Error {
        let status: Int32
    }

    // MARK: - The flow

    func execute() async throws {
        if help || command == "show-commands" { return try showCatalog() }
        try checkUsage()
        let body = try MgmtParameters.body(from: parameters, readSecret: MgmtSecrets.read)

        if command == "login" {
            try await login(extra: body)
            return
        }
        if let sessionFile {
            try await runInSavedSession(sessionFile, body: body)
            return
        }
        guard command != "logout" else {
            throw MgmtFailure.usage("logout needs -s SESSIONFILE: without a session file every rampart mgmt call logs out by itself")
        }
        try await runInOwnSession(body: body)
    }

    /// Help and show-commands come from the command catalog; no server is asked.
    func showCatalog() throws(MgmtFailure) {
        if help && command.isEmpty { return print(genericHelp) }
        if !help { return print(format == .json ? MgmtRendering.json(MgmtHelp.commandListJSON) : MgmtHelp.commandList(), terminator: "") }
        guard let spec = CommandCatalog.spec(named: command) else {
            throw .usage("no command '\(command.prefix(Self.commandNameLengthMax))'; rampart mgmt show-commands lists them")
        }
        print(MgmtHelp.text(for: spec), terminator: "")
    }

    func checkUsage() throws(MgmtFailure) {
        if passwordOnCommandLine != nil {
            throw .usage(
                "a password is not accepted on the command line, where `ps` shows it to every user: use --password-file FILE, the environment variable RAMPART_PASSWORD, or type it at the prompt"
            )
        }
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789-")
        guard !command.isEmpty else { throw .usage("give a Web API command, such as show-hosts (rampart mgmt show-commands lists them)") }
        guard !command.isEmpty, command.count <= Self.commandNameLengthMax, command.allSatisfy(allowed.contains), command.first != "-" else {
            throw .usage("'\(command)' is not a Web API command name (lower-case words joined by '-', such as add-host or show-access-rulebase)")
        }
        guard (1...7 * 24 * 3600).contains(waitTimeoutSeconds) else { throw .usage("--wait-timeout must be 1 to 604800 seconds") }
        if let apiVersion, apiVersion.isEmpty || apiVersion.count > 16 || !apiVersion.allSatisfy({ $0.isNumber || $0 == "." }) {
            throw .usage("--api-version '\(apiVersion)' is not a version such as 1.9.1")
        }
        if let port, !(1...65535).contains(port) { throw .usage("--port must be 1 to 65535") }
        if root {
            guard dataDirectory != nil else { throw .usage("-r true needs --data DIR: the server's data directory, where its socket rampart.sock is") }
            guard host == nil, port == nil else { throw .usage("-r true talks to DIR/rampart.sock; -m and --port do not apply") }
            guard user == nil else { throw .usage("-r true logs in as root; -u does not apply") }
        }
    }

    /// `rampart mgmt login`: prints the reply, or saves the session to `-s FILE`.
    func login(extra: [String: JSONValue]) async throws {
        for key in ["password", "user", "login-as-root"] where extra[key] != nil {
            throw MgmtFailure.usage("give '\(key)' through -u, --password-file or -r, not as \(key)=...: a password on the command line is visible in `ps`")
        }
        let endpoint = try resolveEndpoint()
        let credentials = try loginBody()
        try await MgmtTransport.with(endpoint) { transport in
            let reply = try await transport.call("login", credentials.merging(extra) { _, given in given }, sid: nil)
            guard reply.ok else {
                printErrorReply(reply)
                throw Exit(status: 1)
            }
            guard let sid = reply.body["sid"]?.stringValue else {
                throw MgmtFailure.runtime("the login reply has no sid")
            }
            guard let sessionFile else {
                printReply(reply.body)
                return
            }
            var saved = reply.body.objectValue ?? [:]
            saved["sid"] = .string(sid)
            for (key, value) in endpoint.json.objectValue! { saved[key] = value }
            do {
                try MgmtFiles.writePrivate(.object(saved), to: sessionFile)
            } catch {
                // The session would otherwise stay open, unreachable, until it times out.
                _ = try? await transport.call("logout", [:], sid: sid)
                throw error
            }
            var shown = reply.body.objectValue ?? [:]
            shown["sid"] = nil
            shown["session-file"] = .string(sessionFile)
            printReply(.object(shown))
        }
    }

    /// A command in the session of `-s FILE`: no publish and no logout of our own.
    func runInSavedSession(_ path: String, body: [String: JSONValue]) async throws {
        let saved = try MgmtFiles.readSessionFile(path)
        let sid = saved.sid
        var endpoint = saved.endpoint
        if let caFile { endpoint.caFile = absolute(caFile) }
        if unsafe { endpoint.unsafe = true }
        if let apiVersion { endpoint.apiVersion = apiVersion }
        if endpoint.unsafe, case .https = endpoint.target { warnUnsafe() }
        let succeeded = try await MgmtTransport.with(endpoint) { transport in
            let reply = try await transport.call(command, body, sid: sid)
            if command == "logout", reply.ok || reply.status == 401 {
                // The session is over either way; the file would only hold a dead sid.
                unlink(path)
            }
            if reply.status == 401 {
                Self.printError("rampart mgmt: the session in \(path) has expired or was logged out; log in again with rampart mgmt login ... -s \(path)")
            }
            return try await report(reply, transport: transport, sid: sid)
        }
        if !succeeded { throw Exit(status: 1) }
    }

    /// mgmt_cli without a session file: log in, run, publish a change, log out.
    func runInOwnSession(body: [String: JSONValue]) async throws {
        let endpoint = try resolveEndpoint()
        let credentials = try loginBody()
        let succeeded = try await MgmtTransport.with(endpoint) { transport in
            let login = try await transport.call("login", credentials, sid: nil)
            guard login.ok, let sid = login.body["sid"]?.stringValue else {
                printErrorReply(login)
                return false
            }
            var succeeded = false
            var published = false
            do {
                let reply = try await transport.call(command, body, sid: sid)
                succeeded = try await report(reply, transport: transport, sid: sid)
                if succeeded && Self.changesDatabase(command) {
                    published = try await publish(transport: transport, sid: sid)
                    succeeded = published
                }
            } catch {
                await endSession(transport: transport, sid: sid, discard: Self.changesDatabase(command) && !published)
                throw error
            }
            await endSession(transport: transport, sid: sid, discard: Self.changesDatabase(command) && !published)
            return succeeded
        }
        if !succeeded { throw Exit(status: 1) }
    }

    func endSession(transport: MgmtTransport, sid: String, discard: Bool) async {
        // A failed change must not linger as a disconnected session that holds locks.
        if discard { _ = try? await transport.call("discard", [:], sid: sid) }
        _ = try? await transport.call("logout", [:], sid: sid)
    }

    /// Publishes the session's change and waits for the publish task.
    func publish(transport: MgmtTransport, sid: String) async throws -> Bool {
        let reply = try await transport.call("publish", [:], sid: sid)
        guard reply.ok else {
            Self.printError("rampart mgmt: the command succeeded but publishing it failed; the change is discarded")
            printErrorReply(reply)
            return false
        }
        let ids = Self.taskIDs(in: reply.body, command: "publish")
        guard !ids.isEmpty else { return true }
        let tasks = try await waitForTasks(ids, transport: transport, sid: sid)
        return checkTasks(tasks, what: "publish")
    }

    /// Prints a reply (waiting for its task first when it has one) and says whether it succeeded.
    func report(_ reply: MgmtReply, transport: MgmtTransport, sid: String) async throws -> Bool {
        guard reply.ok else {
            printErrorReply(reply)
            return false
        }
        let ids = Self.taskIDs(in: reply.body, command: command)
        // set-ha-state to standby ends the session (Check Point): the task is read after a new login.
        let loginRequired = reply.body["login-required"]?.boolValue == true
        guard wait, !ids.isEmpty, !loginRequired else {
            printReply(reply.body)
            if loginRequired {
                Self.printError("rampart mgmt: this server is now a standby and ended the session; log in again to follow task \(ids.first ?? "")")
            }
            return true
        }
        if format == .text {
            for id in ids { print("task-id: \(id)") }
        }
        let tasks = try await waitForTasks(ids, transport: transport, sid: sid)
        printReply(tasks)
        return checkTasks(tasks, what: command)
    }

    /// Polls `show-task` until no task is "in progress" (the exact status Check Point uses), with a
    /// delay that grows from 10 ms to 1 s so quick tasks return quickly and slow ones cost little.
    func waitForTasks(_ ids: [String], transport: MgmtTransport, sid: String) async throws -> JSONValue {
        let deadline = ContinuousClock.now + .seconds(waitTimeoutSeconds)
        var delayMilliseconds = 10
        var failures = 0
        let idValue: JSONValue = ids.count == 1 ? .string(ids[0]) : .array(ids.map(JSONValue.string))
        while true {
            let reply = try await transport.call("show-task", ["task-id": idValue, "details-level": .string("full")], sid: sid)
            if reply.ok {
                failures = 0
                let tasks = reply.body["tasks"]?.arrayValue ?? []
                if !tasks.isEmpty, !tasks.contains(where: { $0["status"]?.stringValue == "in progress" }) { return reply.body }
            } else {
                failures += 1
                if failures > Self.taskStatusRetriesMax {
                    printErrorReply(reply)
                    throw MgmtFailure.runtime("cannot read the status of task \(ids.joined(separator: ", "))")
                }
            }
            guard ContinuousClock.now < deadline else {
                throw MgmtFailure.runtime(
                    "task \(ids.joined(separator: ", ")) is still in progress after \(waitTimeoutSeconds) s; follow it with: rampart mgmt show-task task-id=\(ids[0])"
                )
            }
            try await Task.sleep(for: .milliseconds(delayMilliseconds))
            delayMilliseconds = min(delayMilliseconds * 2, 1000)
        }
    }

    func checkTasks(_ reply: JSONValue, what: String) -> Bool {
        var ok = true
        for task in reply["tasks"]?.arrayValue ?? [] where task["status"]?.stringValue == "failed" {
            ok = false
            let details = task["task-details"]?.arrayValue?.first?["statusDescription"]?.stringValue
            let comments = task["comments"]?.stringValue ?? ""
            let reason = [comments, details ?? ""].filter { !$0.isEmpty }.joined(separator: "; ")
            Self.printError("rampart mgmt: \(what): task \(task["task-id"]?.stringValue ?? "?") failed\(reason.isEmpty ? "" : ": \(reason)")")
        }
        // Sync replication mode: committed on the active, but no standby confirmed it in time.
        for task in reply["tasks"]?.arrayValue ?? [] where task["status"]?.stringValue == "partially succeeded" {
            Self.printError("rampart mgmt: warning: \(what): \(task["comments"]?.stringValue ?? "partially succeeded")")
        }
        return ok
    }

    // MARK: - Pieces

    /// Whether mgmt_cli publishes after this command when it runs in its own session: after a change
    /// (the catalog says), but not after publish itself nor an HA command, which ends or hands over the
    /// session rather than drafting in it; a command the catalog does not know, when not a show.
    public static func changesDatabase(_ command: String) -> Bool {
        if let spec = CommandCatalog.spec(named: command) { return spec.refusedOnStandby && command != "publish" }
        if command.hasPrefix("show") { return false }
        return !["login", "logout", "where-used", "equals", "publish", "discard", "keepalive"].contains(command)
    }

    /// Tasks a reply points to: `task-id`, or the ids in `tasks[]` (never for show-task itself).
    static func taskIDs(in body: JSONValue, command: String) -> [String] {
        guard !command.hasPrefix("show-task") else { return [] }
        if let id = body["task-id"]?.stringValue { return [id] }
        return body["tasks"]?.arrayValue?.compactMap { $0["task-id"]?.stringValue } ?? []
    }

    func absolute(_ path: String) -> String { URL(fileURLWithPath: path).standardizedFileURL.path }

    func resolveEndpoint() throws(MgmtFailure) -> MgmtEndpoint {
        let data = dataDirectory.map(absolute)
        if root, let data {
            let socket = (data as NSString).appendingPathComponent(DataDirectoryLayout.socket)
            // sockaddr_un.sun_path holds 108 bytes with the terminating zero.
            guard socket.utf8.count < 108 else { throw .usage("the socket path \(socket) is too long for a Unix socket; use a shorter --data path") }
            return MgmtEndpoint(target: .unixSocket(path: socket), caFile: nil, unsafe: false, apiVersion: apiVersion)
        }
        var resolvedHost = host
        var resolvedPort = port
        if let data, resolvedHost == nil || resolvedPort == nil {
            let node = try MgmtFiles.readNode(dataDirectory: data)
            if resolvedHost == nil { resolvedHost = Self.connectableAddress(node.listen) }
            if resolvedPort == nil { resolvedPort = node.apiPort }
        }
        let ca = caFile.map(absolute) ?? data.map { Self.apiCAFile(dataDirectory: $0) }
        if unsafe { warnUnsafe() }
        return MgmtEndpoint(
            target: .https(host: resolvedHost ?? "127.0.0.1", port: resolvedPort ?? 8443),
            caFile: ca, unsafe: unsafe, apiVersion: apiVersion)
    }

    /// The CA of a server's API certificate: the group's Internal CA (pki/ica.pem) on every server, but
    /// a secondary's node-local one (DIR/api-tls) while it serves a certificate from it (it started
    /// without the group CA's key and could reach no server to get it).
    static func apiCAFile(dataDirectory: String) -> String {
        let secondary = [dataDirectory, DataDirectoryLayout.apiTLS, DataDirectoryLayout.icaCertificate].joined(separator: "/")
        if FileManager.default.fileExists(atPath: secondary) { return secondary }
        return dataDirectory + "/" + DataDirectoryLayout.icaCertificate
    }

    /// A server listening on every address is reached on loopback.
    static func connectableAddress(_ listen: String) -> String {
        switch listen {
        case "", "0.0.0.0", "*": return "127.0.0.1"
        case "::", "[::]": return "::1"
        default: return listen.hasPrefix("[") && listen.hasSuffix("]") ? String(listen.dropFirst().dropLast()) : listen
        }
    }

    func loginBody() throws(MgmtFailure) -> [String: JSONValue] {
        if root { return ["login-as-root": .bool(true)] }
        guard let user, !user.isEmpty else {
            throw .usage("say who logs in: -u USER (password from --password-file, RAMPART_PASSWORD or a prompt), -r true --data DIR, or -s SESSIONFILE")
        }
        let password: String
        if let passwordFile {
            password = try MgmtFiles.readPassword(file: passwordFile)
        } else if let fromEnvironment = ProcessInfo.processInfo.environment["RAMPART_PASSWORD"], !fromEnvironment.isEmpty {
            password = fromEnvironment
        } else {
            password = try MgmtFiles.promptPassword(user: user)
        }
        return ["user": .string(user), "password": .string(password)]
    }

    func warnUnsafe() {
        Self.printError(
            "rampart mgmt: warning: --unsafe: the server's certificate is not verified, so anyone on the network path could read the password and the session")
    }

    func printReply(_ body: JSONValue) {
        print(format == .json ? MgmtRendering.json(body) : MgmtRendering.text(MgmtRendering.withNames(body)), terminator: "")
    }

    func printErrorReply(_ reply: MgmtReply) {
        if format == .json { print(MgmtRendering.json(reply.body), terminator: "") }
        var lines = ["code: \(reply.code)", "message: \(reply.message)"]
        for key in ["blocking-errors", "errors", "warnings"] {
            for item in reply.body[key]?.arrayValue ?? [] {
                lines.append("\(key.hasSuffix("errors") ? "error" : "warning"): \(item["message"]?.stringValue ?? item.canonicalString)")
            }
        }
        Self.printError(lines.joined(separator: "\n"))
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
