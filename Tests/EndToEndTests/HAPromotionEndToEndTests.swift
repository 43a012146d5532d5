import Foundation
import Testing

/// An HA group of real `rampart server` processes on loopback: the primary (`primary`) and the
/// secondaries that joined it. Every process is killed when the group goes away.
final class HAGroup: @unchecked Sendable {
    let fixture: EndToEndTests.Fixture
    private(set) var servers: [String: ServerProcess] = [:]
    private var starts = 0
    /// Each server keeps its SIC port across restarts, as a production server keeps 18191: the
    /// addresses the group recorded stay true.
    private var sicPorts: [String: Int] = [:]

    /// A proxy in front of the primary's SIC port, when asked for: the primary advertises it, so every
    /// other server reaches the primary through it.
    private(set) var primaryProxy: TCPProxy?

    /// `primaryArguments` go to the primary's server process.
    init(proxyInFrontOfPrimary: Bool = false, primaryArguments: [String] = []) async throws {
        fixture = try EndToEndTests.Fixture()
        guard proxyInFrontOfPrimary else {
            try await start("primary", primaryArguments)
            return
        }
        let sicPort = try Network.freeLoopbackPort()
        sicPorts["primary"] = sicPort
        let proxy = try TCPProxy(targetPort: sicPort)
        primaryProxy = proxy
        try await start("primary", ["--advertise-sic", "127.0.0.1:\(proxy.port)"])
    }

    deinit {
        for server in servers.values { server.kill() }
        primaryProxy?.stop()
    }

    func data(_ name: String) -> String { name == "primary" ? fixture.data : fixture.scratch.path(name) }
    func server(_ name: String) -> ServerProcess { servers[name]! }

    /// The HA lines of a server's log (for failure messages).
    func haLog(_ name: String) -> String {
        let lines = server(name).log.split(separator: "\n").filter {
            !$0.contains("timers checked") && !$0.contains("[ManagementService] login") && !$0.contains("HummingbirdCore")
        }
        return lines.suffix(60).joined(separator: "\n")
    }

    /// Root over the local socket of `name`.
    func asRoot(_ name: String) -> [String] { ["-r", "true", "--data", data(name)] }

    /// Adds `name` on the active `via` (checkpoint-host with a one-time key), starts it with --join and
    /// waits until it is synchronized.
    /// `extra` and `environment` go to its server process.
    func join(_ name: String, via active: String = "primary", extra: [String] = [], environment: [String: String] = [:]) async throws {
        let key = "activate-\(name)-2026"
        try await fixture.mgmtJSON(
            ["add-checkpoint-host", "name=\(name)", "ip-address=127.0.0.1", "one-time-password-file=\(secretFile(key, in: fixture.scratch))"] + asRoot(active))
        let keyFile = fixture.scratch.path("\(name).key")
        FileManager.default.createFile(atPath: keyFile, contents: Data("\(key)\n".utf8), attributes: [.posixPermissions: 0o600])
        try FileManager.default.createDirectory(atPath: data(name), withIntermediateDirectories: true)
        let sicPort = try active == "primary" ? primaryProxy?.port ?? #require(server(active).sicPort) : #require(server(active).sicPort)
        try await start(name, ["--join", "127.0.0.1:\(sicPort)", "--activation-key-file", keyFile] + extra, environment: environment)
        try #require(try await eventually { try await self.isHealthy(name) }, "\(name) never became synchronized; its log:\n\(server(name).logTail)")
        // The active recorded where the new server listens: every server can reach it from now on.
        try #require(
            try await eventually {
                let object = try await self.fixture.rampart(["mgmt", "show-checkpoint-host", "name=\(name)", "--format", "json"] + self.asRoot(active))
                return ((try? object.json())?.string("rampart-sic-address") ?? "").hasSuffix(":\(self.sicPorts[name]!)")
            }, "the active never recorded the address of \(name)")
    }

    /// Starts (or restarts, on the same API port) the server `name`.
    func start(_ name: String, _ extra: [String] = [], environment: [String: String] = [:]) async throws {
        starts += 1
        let previousPort = servers[name]?.port
        let sicPort = try sicPorts[name] ?? Network.freeLoopbackPort()
        sicPorts[name] = sicPort
        servers[name] = try await ServerProcess.start(
            dataDirectory: data(name), preferredPort: previousPort, logName: "\(name)-\(starts)",
            extraArguments: ["--server-name", name, "--sic-port", String(sicPort)] + extra,
            createsAdminPassword: name == "primary", environment: environment)
    }

    func status(_ name: String) async throws -> [String: Any] {
        let result = try await fixture.rampart(["ha", "status", "--data", data(name), "--json"])
        return (try? result.json()) ?? [:]
    }

    /// `ha status` exits 0: synchronized, nothing wrong.
    func isHealthy(_ name: String) async throws -> Bool {
        try await fixture.rampart(["ha", "status", "--data", data(name)]).status == 0
    }

    /// The servers (among `names`) that take writes now.
    func writers(_ names: [String]) async throws -> [String] {
        var found: [String] = []
        for name in names where servers[name]?.record.exit == nil {
            if try await status(name)["writes-enabled"] as? Bool == true { found.append(name) }
        }
        return found
    }

    func head(_ name: String) async throws -> Int? { try await status(name).object("head")?.int("number") }

    func addHost(_ host: String, on name: String) async throws -> CLIResult {
        try await fixture.rampart(["mgmt", "add-host", "name=\(host)", "ip-address=192.0.2.\(Int.random(in: 1...250))"] + asRoot(name))
    }

    func hasHost(_ host: String, on name: String) async throws -> Bool {
        try await fixture.rampart(["mgmt", "show-host", "name=\(host)"] + asRoot(name)).status == 0
    }

    func ha(_ arguments: [String], on name: String) async throws -> CLIResult {
        try await fixture.rampart(["ha"] + arguments + ["--data", data(name)])
    }

    /// Polls `condition` until it holds, at most `seconds` (waits for a state, not a guessed time).
    func eventually(seconds: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
        try await pollUntil(seconds: seconds, condition)
    }
}

/// Promotion between real processes: switchover, forced failover after kill -9, the old active's
/// return (as a standby, or in collision), a third server, and sync replication mode.
@Suite("End to end: HA promotion, fencing and collisions", .serialized, .endToEndSlot)
struct HAPromotionEndToEndTests {
    @Test("switchover loses nothing; the old active follows as a standby; switch back", .timeLimit(.minutes(10)))
    func switchoverAndBack() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        #expect(try await group.addHost("before-switchover", on: "primary").status == 0)
        #expect(try await group.eventually { try await group.hasHost("before-switchover", on: "mgmt-b") })

        let dryRun = try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b")
        #expect(dryRun.status == 0 && (try? dryRun.json())?.string("path") == "switchover", "\(dryRun)")
        // Trust, clock and versions between two real servers on one machine: all ok, each said. The clock
        // needs an ha-clock message from the primary: it comes every second.
        let checks = try await group.eventually {
            let checks = try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json().objects("checks")
            return checks.map { $0.string("name") } == ["trust", "clock", "versions"] && checks.allSatisfy { $0.string("status") == "ok" }
                && checks.first { $0.string("name") == "clock" }?.string("detail")?.contains("primary") == true
        }
        let lastDryRun = try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b")
        #expect(checks, "\(lastDryRun)")
        let promoted = try await group.ha(["promote"], on: "mgmt-b")
        #expect(promoted.status == 0 && promoted.stdout.contains("done: active in epoch"), "\(promoted)\n\(group.server("mgmt-b").logTail)")
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["mgmt-b"])
        #expect(try await group.hasHost("before-switchover", on: "mgmt-b"), "nothing published before the switchover is lost")

        // The new active takes changes; the old one refuses them, naming the new active, and follows.
        #expect(try await group.addHost("after-switchover", on: "mgmt-b").status == 0)
        let refused = try await group.addHost("on-old-active", on: "primary")
        #expect(refused.status != 0 && (refused.stdout + refused.stderr).contains("active server mgmt-b"), "\(refused)")
        #expect(try await group.eventually { try await group.hasHost("after-switchover", on: "primary") })
        #expect(try await group.eventually { try await group.isHealthy("mgmt-b") }, "\(group.server("mgmt-b").logTail)")

        // The Web API's HA commands, as a Check Point client sends them.
        let state = try await group.fixture.mgmtJSON(["show-ha-state"] + group.asRoot("primary"))
        let listed = (state["domains"] as? [[String: Any]])?.first?.objects("servers").compactMap { $0.string("name") } ?? []
        #expect(Set(listed) == ["primary", "mgmt-b"], "show-ha-state lists every server: \(state)")
        let fullSyncOnStandby = try await group.fixture.rampart(["mgmt", "ha-full-sync", "name=mgmt-b"] + group.asRoot("primary"))
        #expect(fullSyncOnStandby.status != 0 && (fullSyncOnStandby.stdout + fullSyncOnStandby.stderr).contains("err_ha_invalid_operation"))
        let fullSync = try await group.fixture.mgmtJSON(["ha-full-sync", "name=primary"] + group.asRoot("mgmt-b"))
        #expect(fullSync.objects("tasks").first?.string("status") == "succeeded", "rampart mgmt waits for the task: \(fullSync)")
        #expect(try await group.eventually { try await group.isHealthy("mgmt-b") }, "a full sync on request ends synchronized")

        // Switch back with Check Point's set-ha-state, then demote and promote again.
        let back = try await group.fixture.mgmtJSON(["set-ha-state", "new-state=active"] + group.asRoot("primary"))
        #expect(back.objects("tasks").first?.string("status") == "succeeded", "\(back)")
        #expect(try await group.addHost("after-switch-back", on: "primary").status == 0)
        #expect(try await group.eventually { try await group.hasHost("after-switch-back", on: "mgmt-b") })
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["primary"])

        // set-ha-state standby: the active stops writes and ends the caller's session; the task is
        // read after a new login, as Check Point's clients do.
        let fixture = group.fixture
        let session = ["-s", fixture.sessionFile]
        try await fixture.mgmtJSON(["login", "-u", "admin", "--password-file", fixture.passwordFile, "--data", group.data("primary")] + session)
        let demoted = try await fixture.mgmtJSON(["set-ha-state", "new-state=standby"] + session)
        let taskID = try #require(demoted.string("task-id"), "\(demoted)")
        #expect(demoted["login-required"] as? Bool == true)
        let stale = try await fixture.rampart(["mgmt", "show-task", "task-id=\(taskID)"] + session)
        #expect(stale.status != 0 && (stale.stdout + stale.stderr).contains("generic_err_wrong_session_id"), "\(stale)")
        let task = try await fixture.mgmtJSON([
            "show-task", "task-id=\(taskID)", "-u", "admin", "--password-file", fixture.passwordFile, "--data", group.data("primary"),
        ])
        #expect(task.objects("tasks").first?.string("status") == "succeeded", "\(task)")
        #expect(try await group.writers(["primary", "mgmt-b"]).isEmpty, "demoted: nobody takes writes until a promotion")
        #expect(try await group.ha(["promote"], on: "mgmt-b").status == 0, "the standby takes over from a demoted active")
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["mgmt-b"])
    }

    @Test("kill -9 the active: failover needs force in async mode; the old active returns as a standby and catches up", .timeLimit(.minutes(10)))
    func forcedFailoverAndReturnAsStandby() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        #expect(try await group.addHost("before-crash", on: "primary").status == 0)
        #expect(try await group.eventually { try await group.hasHost("before-crash", on: "mgmt-b") })
        group.server("primary").kill()

        // Within a second the standby counts the active as unreachable: a promotion is then a failover.
        #expect(
            try await group.eventually {
                try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json().string("path") == "failover"
            })
        let dryRun = try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b")
        #expect((try? dryRun.json())?["may-lose-revisions"] as? Bool == true, "\(dryRun)")
        let unforced = try await group.ha(["promote"], on: "mgmt-b")
        #expect(unforced.status != 0 && (unforced.stdout + unforced.stderr).contains("rampart ha promote --force"), "\(unforced)")
        #expect(!(unforced.stdout + unforced.stderr).contains("Use force (ignore-errors"), "the CLI's flag is --force: \(unforced)")
        #expect(try await group.writers(["mgmt-b"]).isEmpty, "a refused failover changes nothing")
        let forced = try await group.ha(["promote", "--force"], on: "mgmt-b")
        #expect(forced.status == 0, "\(forced)")
        #expect(try await group.addHost("after-failover", on: "mgmt-b").status == 0)

        // The old active restarts in its old epoch, meets the new one, steps down and catches up.
        try await group.start("primary")
        #expect(
            try await group.eventually { try await group.hasHost("after-failover", on: "primary") },
            "the old active did not catch up; its log:\n\(group.haLog("primary"))\n--- mgmt-b:\n\(group.haLog("mgmt-b"))")
        #expect(try await group.eventually { try await group.status("primary").string("mode") == "standby" })
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["mgmt-b"], "never two actives")
        #expect(try await group.hasHost("before-crash", on: "primary"))
    }

    @Test("a diverged old active enters collision, exports its divergent revisions, and resolves keeping the peer's data", .timeLimit(.minutes(10)))
    func collisionExportAndResolve() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        // The standby stops syncing; the active publishes something only it will hold, then dies.
        #expect(try await group.ha(["stop"], on: "mgmt-b").status == 0)
        #expect(try await group.addHost("only-on-old-active", on: "primary").status == 0)
        group.server("primary").kill()
        #expect(try await group.ha(["start"], on: "mgmt-b").status == 0)
        #expect(try await group.ha(["promote", "--force"], on: "mgmt-b").status == 0)
        #expect(try await group.addHost("on-new-active", on: "mgmt-b").status == 0)

        try await group.start("primary")
        #expect(
            try await group.eventually { try await group.status("primary").string("sync-status") == "collision" },
            "no collision reported:\n\(group.haLog("primary"))\n--- mgmt-b:\n\(group.haLog("mgmt-b"))")
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["mgmt-b"], "never two actives")
        #expect(!(try await group.isHealthy("primary")), "ha status exits non-zero in collision")
        #expect(try await group.hasHost("only-on-old-active", on: "primary"), "divergent revisions are kept until resolved")

        let exportFile = group.fixture.scratch.path("divergent.jsonl")
        let exported = try await group.ha(["export-divergent", exportFile], on: "primary")
        #expect(exported.status == 0 && exported.stdout.contains("1 divergent revision"), "\(exported)")
        let exportedText = (try? String(contentsOfFile: exportFile, encoding: .utf8)) ?? ""
        #expect(exportedText.contains("only-on-old-active"))

        let resolved = try await group.ha(["resolve-collision", "--keep", "peer"], on: "primary")
        #expect(resolved.status == 0 && resolved.stdout.contains("exported to"), "\(resolved)")
        #expect(try await group.eventually { try await group.hasHost("on-new-active", on: "primary") })
        #expect(!(try await group.hasHost("only-on-old-active", on: "primary")))
        #expect(try await group.eventually { try await group.isHealthy("primary") })
        let exports = try FileManager.default.contentsOfDirectory(atPath: group.data("primary") + "/ha-exports")
        #expect(exports.contains { $0.hasSuffix(".jsonl") }, "resolution exported before dropping: \(exports)")
    }

    @Test("a third server joins; the three form a mesh; promoting the third moves everyone", .timeLimit(.minutes(10)))
    func thirdServer() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        try await group.join("mgmt-c")
        #expect(try await group.eventually { try await group.isHealthy("primary") }, "\(group.server("primary").logTail)")
        let servers = try await group.status("primary").objects("servers").compactMap { $0.string("name") }
        #expect(Set(servers) == ["mgmt-b", "mgmt-c"])

        let promoted = try await group.ha(["promote"], on: "mgmt-c")
        #expect(promoted.status == 0, "\(promoted)\n\(group.server("mgmt-c").logTail)")
        #expect(try await group.addHost("from-third", on: "mgmt-c").status == 0)
        for name in ["primary", "mgmt-b"] {
            #expect(try await group.eventually { try await group.hasHost("from-third", on: name) }, "\(name) did not follow mgmt-c")
        }
        #expect(try await group.eventually { try await group.isHealthy("mgmt-c") }, "\(group.server("mgmt-c").logTail)")
        #expect(try await group.writers(["primary", "mgmt-b", "mgmt-c"]) == ["mgmt-c"])
    }

    @Test("sync mode: an acknowledged publish survives an unforced failover; without a standby it is reported unprotected", .timeLimit(.minutes(10)))
    func syncModeNeverLosesAnAcknowledgedPublish() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        // A timeout no loaded test machine reaches while the standby is there.
        let mode = try await group.ha(["set-mode", "sync", "--timeout-ms", "60000"], on: "primary")
        #expect(mode.status == 0, "\(mode)")
        #expect(try await group.eventually { try await group.status("mgmt-b").string("replication-mode")?.hasPrefix("sync") == true })
        let published = try await group.addHost("acknowledged", on: "primary")
        #expect(published.status == 0 && !published.stderr.contains("warning"), "\(published)")

        group.server("primary").kill()
        #expect(
            try await group.eventually {
                try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json().string("path") == "failover"
            })
        let promoted = try await group.ha(["promote"], on: "mgmt-b")
        #expect(promoted.status == 0, "sync mode, nothing behind: failover without force\n\(promoted)")
        #expect(try await group.hasHost("acknowledged", on: "mgmt-b"))

        // The new active alone: a publish waits for the timeout and says it is not protected.
        #expect(try await group.ha(["set-mode", "sync", "--timeout-ms", "1000"], on: "mgmt-b").status == 0)
        let unprotected = try await group.addHost("unprotected", on: "mgmt-b")
        #expect(unprotected.status == 0 && unprotected.stderr.contains("no standby confirmed"), "\(unprotected)")
    }

    @Test("a black-holed link: both sides report it, nobody promotes itself, and sync resumes when it heals", .timeLimit(.minutes(10)))
    func blackHoledLink() async throws {
        let group = try await HAGroup(proxyInFrontOfPrimary: true)
        let proxy = try #require(group.primaryProxy)
        try await group.join("mgmt-b")
        proxy.setMode(.blackhole)
        #expect(try await group.addHost("during-blackhole", on: "primary").status == 0, "the active keeps taking changes (async mode)")
        #expect(
            try await group.eventually { try await group.status("mgmt-b").objects("servers").first?.string("rampart-sync-status") == "communication-error" },
            "the standby reports the silent link:\n\(group.haLog("mgmt-b"))")
        #expect(try await group.eventually { !(try await group.isHealthy("primary")) }, "the active reports its unreachable standby")
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["primary"], "no automatic failover: one active")
        #expect(!(try await group.hasHost("during-blackhole", on: "mgmt-b")))

        // Long enough for both sides to close the silent channel and redial into the black hole.
        #expect(try await group.eventually { proxy.counters.accepted >= 2 + 2 }, "the silent channel was closed and redialed: \(proxy.counters)")
        proxy.setMode(.pass)
        #expect(
            try await group.eventually { try await group.hasHost("during-blackhole", on: "mgmt-b") },
            "sync resumed after the link healed:\n\(group.haLog("mgmt-b"))")
        #expect(try await group.eventually { try await group.isHealthy("primary") })
        #expect(try await group.eventually { try await group.isHealthy("mgmt-b") })
    }
}
