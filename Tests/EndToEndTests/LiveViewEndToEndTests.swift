import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `rampart view` on real servers: `--once` and `--json` on an HA pair show the role, the epoch and the
/// peer; under tmux the live screen draws the HA page, Tab turns to the gateways page and q ends it.
@Suite("End to end: rampart view", .serialized, .endToEndSlot)
struct LiveViewEndToEndTests {
    @Test("a primary and a standby: view --once and --json show each one's mode, the epoch and the peer", .timeLimit(.minutes(10)))
    func onceAndJSONOnAPair() async throws {
        let fixture = try EndToEndTests.Fixture()
        let primary = try await ServerProcess.start(dataDirectory: fixture.data, logName: "view-primary", extraArguments: ["--server-name", "mgmt-a"])
        defer { primary.kill() }
        let sicPort = try #require(primary.sicPort)
        try await fixture.mgmtJSON(
            ["add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1", "one-time-password-file=\(secretFile("activate-mgmt-b-2026", in: fixture.scratch))"]
                + fixture.asRoot)
        let secondaryData = fixture.scratch.path("secondary")
        try FileManager.default.createDirectory(atPath: secondaryData, withIntermediateDirectories: true)
        let secondary = try await ServerProcess.start(
            dataDirectory: secondaryData, logName: "view-secondary",
            extraArguments: [
                "--server-name", "mgmt-b", "--join", "127.0.0.1:\(sicPort)", "--activation-key-file", secretFile("activate-mgmt-b-2026", in: fixture.scratch),
            ],
            createsAdminPassword: false)
        defer { secondary.kill() }
        #expect(
            try await pollUntil(seconds: 60) { try await fixture.rampart(["ha", "status", "--data", secondaryData]).status == 0 },
            "the secondary never became synchronized; its log:\n\(secondary.logTail)")
        try await fixture.mgmtJSON(["add-host", "name=viewed", "ip-address=192.0.2.41"] + fixture.asRoot)
        let epoch = try #require(try await fixture.rampart(["ha", "status", "--data", fixture.data, "--json"]).json().object("epoch")?.int("term"))

        // The primary's screen, as plain text (stdout is a file here: no escape codes).
        let once = try await fixture.rampart(["view", "--data", fixture.data, "--once", "--interval", "0.2"])
        try #require(once.status == 0, "\(once)")
        #expect(!once.stdout.contains("\u{1B}"), "plain text without a terminal")
        #expect(once.stdout.contains("mgmt-a: active (primary), epoch \(epoch)/mgmt-a, held "), "\(once.stdout)")
        #expect(once.stdout.contains("PEERS (1)"))
        let peerRow = once.stdout.split(separator: "\n").first { $0.hasPrefix("  mgmt-b ") }
        #expect(peerRow?.contains("standby") == true, "\(once.stdout)")
        #expect(once.stdout.contains("revision-published"), "the last events include the publish")
        #expect(once.stdout.contains("node: cpu "))

        // The same as JSON: the server's snapshot with the view's figures.
        let json = try await fixture.rampart(["view", "--data", fixture.data, "--json", "--interval", "0.2"]).json()
        let ha = try #require(json.object("ha"))
        #expect(ha.string("mode") == "active")
        #expect(ha.object("epoch")?.int("term") == epoch)
        #expect(ha.objects("servers").map { $0.string("name") } == ["mgmt-b"])
        #expect((json.int("publishes-total") ?? 0) >= 1, "the add-host published")
        #expect(json.object("node")?.int("disk-total-bytes") ?? 0 > 0)
        #expect(json.int("mode-since-ms") ?? 0 > 0)

        // The standby's view: its own mode, the active as its peer, and (once measured) its clock.
        var standby: [String: Any] = [:]
        #expect(
            try await pollUntil(seconds: 60) {
                standby = try await fixture.rampart(["view", "--data", secondaryData, "--json", "--interval", "0.2"]).json()
                return standby.object("clock-offsets-ms")?["mgmt-a"] != nil
            }, "the standby never measured the active's clock: \(standby)")
        #expect(standby.object("ha")?.string("mode") == "standby")
        #expect(standby.object("ha")?.objects("servers").first?.string("ha-state") == "active")

        // Caught up, nothing is pending; with HA stopped on the standby, a publish is pending there:
        // the active counts the bytes of the revisions it lacks.
        #expect(json.object("pending-bytes")?.int("mgmt-b") == 0, "\(json)")
        #expect(try await fixture.rampart(["ha", "stop", "--data", secondaryData]).status == 0)
        try await fixture.mgmtJSON(["add-host", "name=pending", "ip-address=192.0.2.42", "comments=\(String(repeating: "x", count: 2_000))"] + fixture.asRoot)
        var pending = 0
        #expect(
            try await pollUntil(seconds: 60) {
                let view = try await fixture.rampart(["view", "--data", fixture.data, "--json", "--interval", "0.2"]).json()
                pending = view.object("pending-bytes")?.int("mgmt-b") ?? 0
                return pending > 2_000
            }, "the active never counted the revision mgmt-b lacks: \(pending)")
        let text = try await fixture.rampart(["view", "--data", fixture.data, "--once", "--interval", "0.2"])
        #expect(text.stdout.contains("PENDING") && text.stdout.contains("KiB"), "\(text.stdout)")
        print("rampart view --once on the active, its standby's HA stopped:\n\(text.stdout)")
    }

    @Test(
        "under tmux: the HA page with role and epoch, Tab shows the gateways page, a stopped server is said and followed back, q ends the view",
        .enabled(if: Tmux.available),
        .timeLimit(.minutes(10)))
    func liveUnderTmux() async throws {
        let fixture = try EndToEndTests.Fixture()
        let primary = try await ServerProcess.start(dataDirectory: fixture.data, logName: "view-tmux", extraArguments: ["--server-name", "mgmt-a"])
        defer { primary.kill() }
        let tmux = Tmux(socket: "/tmp/rampart-view-\(UUID().uuidString.prefix(8)).tmux", session: "view", scratch: fixture.scratch)
        try tmux.startSession(command: "\(try Executable.rampart().path) view --data \(fixture.data)", columns: 120, rows: 40)
        defer { tmux.killServer() }

        #expect(try await pollUntil(seconds: 30) { try await tmux.hasSession() }, "tmux never started the session")
        var screen = ""
        #expect(
            try await pollUntil(seconds: 60) {
                screen = try await tmux.capture()
                return screen.contains("mgmt-a: active (primary), epoch 1/mgmt-a") && screen.contains("[HA] Gateways")
            }, "the HA page never showed:\n\(screen)")
        #expect(screen.contains("LAG REV") && screen.contains("PENDING"), "the peers' columns, bytes pending among them:\n\(screen)")
        #expect(screen.split(separator: "\n").allSatisfy { $0.count <= 120 }, "every line fits the width")
        try await tmux.run(["send-keys", "-t", "view", "Tab"])
        #expect(
            try await pollUntil(seconds: 30) {
                screen = try await tmux.capture()
                return screen.contains("HA [Gateways]") && screen.contains("GATEWAYS (0)")
            }, "Tab never showed the gateways page:\n\(screen)")

        // The server stops: the view says so and keeps asking; the server back, the figures are back.
        _ = try await primary.stop()
        #expect(
            try await pollUntil(seconds: 60) {
                screen = try await tmux.capture()
                return screen.contains("! the server is not answering") && screen.contains("GATEWAYS (0)")
            }, "the view never said the server stopped answering:\n\(screen)")
        let restarted = try await ServerProcess.start(
            dataDirectory: fixture.data, preferredPort: primary.port, logName: "view-tmux-restarted", extraArguments: ["--server-name", "mgmt-a"])
        defer { restarted.kill() }
        #expect(
            try await pollUntil(seconds: 60) {
                screen = try await tmux.capture()
                return !screen.contains("not answering") && screen.contains("GATEWAYS (0)")
            }, "the view never came back to the restarted server:\n\(screen)")
        try await tmux.run(["send-keys", "-t", "view", "q"])
        #expect(
            try await pollUntil(seconds: 30) { !(try await tmux.hasSession()) }, "q did not end the view")
    }
}

extension LiveViewEndToEndTests {
    @Test(
        "SIGTERM and ^C end the view with the terminal restored: main screen, cursor shown, line mode and echo back",
        .enabled(if: Tmux.available), .timeLimit(.minutes(10)))
    func restoresTheTerminal() async throws {
        let fixture = try EndToEndTests.Fixture()
        let primary = try await ServerProcess.start(dataDirectory: fixture.data, logName: "view-restore", extraArguments: ["--server-name", "mgmt-a"])
        defer { primary.kill() }
        let tmux = Tmux(socket: "/tmp/rampart-view-\(UUID().uuidString.prefix(8)).tmux", session: "shell", scratch: fixture.scratch)
        try tmux.startSession(command: "/bin/sh", columns: 120, rows: 40)
        defer { tmux.killServer() }
        #expect(try await pollUntil(seconds: 30) { try await tmux.hasSession() }, "tmux never started the session")
        let view = "\(try Executable.rampart().path) view --data \(fixture.data)"
        let stty = "stty -a | tr ' ' '\\n' | grep -x -e icanon -e echo | tr '\\n' ' '"

        for (ending, marker) in [("SIGTERM", "ended-by-term"), ("^C", "ended-by-interrupt")] {
            try await tmux.run(["send-keys", "-t", "shell", "clear; \(view); echo \(marker) $(\(stty))", "Enter"])
            #expect(
                try await pollUntil(seconds: 60) { try await tmux.display("#{alternate_on}") == "1" }, "\(ending): the view never took the alternate screen")
            if ending == "SIGTERM" {
                let shell = try #require(Int32(try await tmux.display("#{pane_pid}")))
                let child = try #require(Self.children(of: shell).first, "the view runs under the pane's shell")
                kill(child, SIGTERM)
            } else {
                try await tmux.run(["send-keys", "-t", "shell", "C-c"])
            }
            var screen = ""
            #expect(
                try await pollUntil(seconds: 30) {
                    screen = try await tmux.capture()
                    return screen.contains("\(marker) icanon echo")
                }, "\(ending): the shell never got its terminal back:\n\(screen)")
            #expect(try await tmux.display("#{alternate_on} #{cursor_flag}") == "0 1", "\(ending): main screen, cursor shown")
        }
    }

    /// The processes `pid` started (Linux /proc).
    static func children(of pid: Int32) -> [Int32] {
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return tasks.flatMap { task in
            ((try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/children", encoding: .utf8)) ?? "").split(separator: " ").compactMap { Int32($0) }
        }
    }
}

/// tmux on a private socket: a test's sessions never meet the user's.
struct Tmux {
    let socket: String
    let session: String
    let scratch: TemporaryDirectory

    static let program = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static var available: Bool { program != nil }

    @discardableResult
    func run(_ arguments: [String]) async throws -> CLIResult {
        let program = try #require(Self.program)
        let result = try await CLI.run(
            program: URL(fileURLWithPath: program), ["-S", socket] + arguments, environment: ["TERM": "xterm-256color"], scratch: scratch)
        try #require(result.status == 0, "\(result)")
        return result
    }

    /// `new-session -d`. The client is spawned with a clean signal mask and default handlers (see
    /// `spawn`), and waited for; `has-session` says when the session runs.
    func startSession(command: String, columns: Int, rows: Int) throws {
        let arguments = ["-S", socket, "new-session", "-d", "-s", session, "-x", String(columns), "-y", String(rows), command]
        let status = try Self.spawn(try #require(Self.program), arguments)
        try #require(status == 0, "tmux new-session exited with \(status)")
    }

    /// A tmux format of the session's pane (`#{alternate_on}`, `#{pane_pid}`…).
    func display(_ format: String) async throws -> String {
        try await run(["display-message", "-p", "-t", session, format]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func capture() async throws -> String { try await run(["capture-pane", "-p", "-t", session]).stdout }

    func hasSession() async throws -> Bool {
        let program = try #require(Self.program)
        return try await CLI.run(program: URL(fileURLWithPath: program), ["-S", socket, "has-session", "-t", session], scratch: scratch).status == 0
    }

    func killServer() {
        guard let program = Self.program else { return }
        _ = try? Self.spawn(program, ["-S", socket, "kill-server"])
        try? FileManager.default.removeItem(atPath: socket)
    }

    /// Runs tmux and waits for its client. posix_spawn with an empty signal mask and every signal at
    /// its default: a process started from the test's threads inherits their blocked signals, and a
    /// tmux server (and the panes it starts) with SIGCHLD and SIGTERM blocked never ends on kill-server.
    /// The client gets /dev/null for its standard streams and no other descriptor of the test.
    static func spawn(_ program: String, _ arguments: [String]) throws -> Int32 {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for descriptor: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, descriptor, "/dev/null", descriptor == 0 ? O_RDONLY : O_WRONLY, 0) }
        let environment = ProcessInfo.processInfo.environment.merging(["TERM": "xterm-256color"]) { $1 }.map { "\($0.key)=\($0.value)" }
        let argv = ([program] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, program, &actions, &attributes, argv, envp)
        guard spawned == 0 else { throw E2EFailure("posix_spawn \(program): error \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : -1
    }
}
