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

/// The product as people use it: the `rampart` executable started as a server on a temporary data
/// directory, driven with `rampart mgmt`, stopped, killed and started again.
@Suite("End to end: rampart server and rampart mgmt", .serialized, .endToEndSlot)
struct EndToEndTests {
    /// One temporary data directory and the commands that use it.
    struct Fixture {
        let scratch: TemporaryDirectory
        var data: String { scratch.path("data") }
        var passwordFile: String { "\(data)/initial-admin-password" }
        var sessionFile: String { scratch.path("session.json") }

        init() throws {
            scratch = try TemporaryDirectory()
            try FileManager.default.createDirectory(atPath: scratch.path("data"), withIntermediateDirectories: true)
        }

        func rampart(_ arguments: [String], environment: [String: String] = [:]) async throws -> CLIResult {
            try await CLI.run(arguments, environment: environment, scratch: scratch)
        }

        /// `rampart mgmt` that must succeed; returns its JSON reply.
        @discardableResult
        func mgmtJSON(_ arguments: [String], sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String: Any] {
            let result = try await rampart(["mgmt"] + arguments + ["--format", "json"])
            try #require(result.status == 0, "\(result)", sourceLocation: sourceLocation)
            return try result.json()
        }

        /// Logs in with a fresh admin session of its own (mgmt_cli without -s).
        var asAdmin: [String] { ["-u", "admin", "--password-file", passwordFile, "--data", data] }
        var asRoot: [String] { ["-r", "true", "--data", data] }
        var inSession: [String] { ["-s", sessionFile] }
    }

    // MARK: - Objects survive a restart

    @Test("login, add objects and a rule, publish, restart, read them back", .timeLimit(.minutes(15)))
    func restartKeepsPublishedObjects() async throws {
        let fixture = try Fixture()
        var server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server-first")
        defer { server.kill() }

        // The first start wrote the administrator's password where only its owner can read it.
        let passwordMode = try #require(try FileManager.default.attributesOfItem(atPath: fixture.passwordFile)[.posixPermissions] as? NSNumber)
        #expect(passwordMode.intValue & 0o077 == 0, "initial-admin-password must be 0600")

        // mgmt_cli login -s: the session file holds the sid and is private.
        let login = try await fixture.rampart([
            "mgmt", "login", "-u", "admin", "--password-file", fixture.passwordFile,
            "--data", fixture.data, "-s", fixture.sessionFile,
        ])
        try #require(login.status == 0, "\(login)")
        let sessionMode = try #require(try FileManager.default.attributesOfItem(atPath: fixture.sessionFile)[.posixPermissions] as? NSNumber)
        #expect(sessionMode.intValue & 0o777 == 0o600, "the session file must be 0600")

        let host = try await fixture.mgmtJSON(["add-host", "name=e2e-web", "ip-address=192.0.2.10", "comments=end to end"] + fixture.inSession)
        #expect(host.string("name") == "e2e-web")
        try await fixture.mgmtJSON(["add-network", "name=e2e-net", "subnet=198.51.100.0", "mask-length=24"] + fixture.inSession)
        let group = try await fixture.mgmtJSON(["add-group", "name=e2e-group", "members.1=e2e-web", "members.2=e2e-net"] + fixture.inSession)
        #expect(Set(group.objects("members").compactMap { $0.string("name") }) == ["e2e-web", "e2e-net"])
        let rule = try await fixture.mgmtJSON(
            [
                "add-access-rule", "layer=Network", "position=1", "name=e2e-rule",
                "source.1=e2e-group", "destination.1=e2e-net", "action=Accept",
                "track.type=Log", "enabled=true",
            ] + fixture.inSession)
        #expect(rule.string("name") == "e2e-rule")

        // Unpublished: another session (root over the local socket) does not see the host yet.
        let hidden = try await fixture.rampart(["mgmt", "show-host", "name=e2e-web"] + fixture.asRoot)
        #expect(hidden.status == 1, "a pending object must be invisible to other sessions: \(hidden)")

        // publish waits for its task and prints it.
        let published = try await fixture.mgmtJSON(["publish"] + fixture.inSession)
        #expect(published.objects("tasks").first?.string("status") == "succeeded", "\(published)")

        let logout = try await fixture.rampart(["mgmt", "logout"] + fixture.inSession)
        #expect(logout.status == 0, "\(logout)")
        #expect(!FileManager.default.fileExists(atPath: fixture.sessionFile), "logout -s removes the session file")

        // Graceful stop, then a new process on the same directory and port.
        let stopped = try await server.stop()
        #expect(stopped == Exit(status: 0, bySignal: false), "SIGTERM must stop the server cleanly; log:\n\(server.logTail)")
        server = try await ServerProcess.start(dataDirectory: fixture.data, preferredPort: server.port, logName: "server-second")

        let hostAgain = try await fixture.mgmtJSON(["show-host", "name=e2e-web"] + fixture.asAdmin)
        #expect(hostAgain.string("ipv4-address") == "192.0.2.10")
        #expect(hostAgain.string("comments") == "end to end")

        let groupAgain = try await fixture.mgmtJSON(["show-group", "name=e2e-group"] + fixture.asAdmin)
        #expect(Set(groupAgain.objects("members").compactMap { $0.string("name") }) == ["e2e-web", "e2e-net"])

        let rulebase = try await fixture.mgmtJSON(["show-access-rulebase", "name=Network"] + fixture.asAdmin)
        let rules = Self.rules(in: rulebase.objects("rulebase"))
        let first = try #require(rules.first { $0.int("rule-number") == 1 }, "no rule 1 in \(rulebase)")
        #expect(first.string("name") == "e2e-rule")
        // With the object dictionary (the default), the rule's source is a uid naming the group.
        let dictionary = Dictionary(
            rulebase.objects("objects-dictionary").compactMap { item in item.string("uid").map { ($0, item) } },
            uniquingKeysWith: { a, _ in a })
        let sourceNames = (first["source"] as? [Any] ?? []).compactMap { entry -> String? in
            if let uid = entry as? String { return dictionary[uid]?.string("name") }
            return (entry as? [String: Any])?.string("name")
        }
        #expect(sourceNames == ["e2e-group"], "\(first)")

        // Without -s a change is published by the command itself, and its session logged out.
        let recolor = try await fixture.rampart(["mgmt", "set-host", "name=e2e-web", "color=red"] + fixture.asAdmin)
        #expect(recolor.status == 0, "\(recolor)")
        let seenByRoot = try await fixture.mgmtJSON(["show-host", "name=e2e-web"] + fixture.asRoot)
        #expect(seenByRoot.string("color") == "red", "set-host without -s must publish: \(seenByRoot)")
        let sessions = try await fixture.mgmtJSON(["show-sessions", "details-level=full"] + fixture.asRoot)
        #expect(sessions.objects("objects").allSatisfy { ($0.int("changes") ?? 0) == 0 }, "no session may keep changes: \(sessions)")

        // The text rendering, and an error reply.
        let text = try await fixture.rampart(["mgmt", "show-host", "name=e2e-web"] + fixture.asRoot)
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.split(separator: "\n").contains("name: e2e-web"), "\(text)")
        #expect(text.stdout.split(separator: "\n").contains("ipv4-address: 192.0.2.10"), "\(text)")
        let missing = try await fixture.rampart(["mgmt", "show-host", "name=no-such-host"] + fixture.asRoot)
        #expect(missing.status == 1, "\(missing)")
        #expect(missing.stderr.contains("code: ") && missing.stderr.contains("not found"), "\(missing)")

        let finalStop = try await server.stop()
        #expect(finalStop == Exit(status: 0, bySignal: false), "log:\n\(server.logTail)")
    }

    /// Rules of a rulebase page, sections unwrapped.
    static func rules(in items: [[String: Any]]) -> [[String: Any]] {
        items.flatMap { item in item.string("type") == "access-section" ? rules(in: item.objects("rulebase")) : [item] }
    }

    // MARK: - kill -9 during publishes

    /// Publishes acknowledged by the server, in the order they were acknowledged.
    final class Acknowledged: Sendable {
        private let names = Mutex<[String]>([])
        func append(_ name: String) { names.withLock { $0.append(name) } }
        var all: [String] { names.withLock { $0 } }
    }

    @Test(
        "kill -9 during a burst of publishes: the next start verifies the journal and keeps every acknowledged revision",
        .timeLimit(.minutes(15)))
    func killDuringPublishBurst() async throws {
        let fixture = try Fixture()
        var server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server-first")
        defer { server.kill() }
        let password =
            try String(contentsOfFile: fixture.passwordFile, encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let caFile = "\(fixture.data)/pki/ica.pem"

        let before = try await fixture.mgmtJSON(["show-revisions", "limit=1"] + fixture.asRoot)
        let headBefore = try #require(before.objects("objects").first?.int("number"), "show-revisions: \(before)")

        let acknowledged = Acknowledged()
        let workers = 2
        let acknowledgementsBeforeKill = 12
        let iterationsMax = 400  // bounds the burst if the kill never comes
        let killedServer = server
        try await APIClient.with(caFile: caFile, port: server.port) { client in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        guard let sid = try? await client.login(user: "admin", password: password) else { return }
                        for i in 0..<iterationsMax {
                            let name = "burst-\(worker)-\(i)"
                            // Any failure means the server is gone: the burst of this worker ends.
                            guard
                                let added = try? await client.call(
                                    "add-host", ["name": name, "ip-address": "10.\(worker).\(i / 250).\(i % 250 + 1)"], sid: sid),
                                added.status == 200
                            else { return }
                            guard let published = try? await client.call("publish", [:], sid: sid), published.status == 200 else { return }
                            acknowledged.append(name)
                        }
                    }
                }
                // The killer: as soon as enough publishes were acknowledged, with the workers still going.
                group.addTask {
                    let deadline = ContinuousClock.now + .seconds(Bounds.serverStartSeconds)
                    while acknowledged.all.count < acknowledgementsBeforeKill, ContinuousClock.now < deadline, killedServer.record.exit == nil {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                    killedServer.kill()
                }
                try await group.waitForAll()
            }
        }
        let killed = try #require(try await server.record.wait(seconds: Bounds.serverStopSeconds), "the server did not die")
        #expect(killed == Exit(status: SIGKILL, bySignal: true))
        let acks = acknowledged.all
        #expect(acks.count >= acknowledgementsBeforeKill, "the burst acknowledged only \(acks.count) publishes; log:\n\(server.logTail)")

        // Started again on the same directory (stale socket, WAL and all), it comes up by itself, and
        // answers over the local socket (-r true) as well as HTTPS.
        server = try await ServerProcess.start(dataDirectory: fixture.data, preferredPort: server.port, logName: "server-after-kill")
        let revisions = try await fixture.mgmtJSON(["show-revisions", "limit=500"] + fixture.asRoot)
        let listed = revisions.objects("objects")
        let head = try #require(listed.first?.int("number"), "\(revisions)")
        #expect(head >= headBefore + acks.count, "head revision \(head) lost acknowledged publishes (\(headBefore) + \(acks.count))")
        #expect(revisions.int("total") == head, "revision numbers must be contiguous from 1")
        // The chain as the server reports it: each revision names its predecessor's hash.
        for (newer, older) in zip(listed, listed.dropFirst()) {
            #expect(newer.int("number") == (older.int("number") ?? 0) + 1)
            #expect(newer.string("previous-hash") == older.string("hash"), "broken chain at revision \(newer.int("number") ?? -1)")
        }
        // Every acknowledged publish is durable: its host is there.
        try await APIClient.with(caFile: caFile, port: server.port) { client in
            let sid = try await client.login(user: "admin", password: password)
            for name in acks {
                let reply = try await client.call("show-host", ["name": name], sid: sid)
                #expect(reply.status == 200, "acknowledged host \(name) is missing after kill -9: \(reply.body)")
            }
            _ = try await client.call("logout", sid: sid)
        }
        let stopped = try await server.stop()
        #expect(stopped == Exit(status: 0, bySignal: false), "log:\n\(server.logTail)")
    }

    // MARK: - The command line itself

    @Test("rampart mgmt refuses bad arguments and passwords on the command line, with exit code 2")
    func usageErrors() async throws {
        let fixture = try Fixture()
        let noEquals = try await fixture.rampart(["mgmt", "add-host", "name=a", "ip-address"])
        #expect(noEquals.status == 2, "\(noEquals)")
        #expect(noEquals.stderr.contains("'ip-address'"), "the error must name the argument: \(noEquals)")

        let gap = try await fixture.rampart(["mgmt", "add-group", "name=g", "members.2=b", "-r", "true", "--data", fixture.data])
        #expect(gap.status == 2, "\(gap)")
        #expect(gap.stderr.contains("members.2"), "\(gap)")

        let password = try await fixture.rampart(["mgmt", "show-hosts", "-u", "admin", "-p", "secret"])
        #expect(password.status == 2, "\(password)")
        #expect(password.stderr.contains("ps"), "\(password)")

        let rootWithoutData = try await fixture.rampart(["mgmt", "show-hosts", "-r", "true"])
        #expect(rootWithoutData.status == 2, "\(rootWithoutData)")

        let help = try await fixture.rampart(["mgmt", "--help"])
        #expect(help.status == 0)
        #expect(help.stdout.contains("members.1=") && help.stdout.contains("--password-file") && help.stdout.contains("-r true"), "\(help)")
    }
}
