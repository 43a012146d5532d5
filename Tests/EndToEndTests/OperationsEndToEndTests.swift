import Foundation
import ManagementModel
import Operations
import Synchronization
import Testing
import TrustCore

#if canImport(Glibc)
    import Glibc
#endif

/// Backup, restore, migrate and snapshot with real `rampart` processes.
@Suite("End to end: backup, restore, migrate, snapshot", .serialized, .endToEndSlot)
struct OperationsEndToEndTests {
    typealias Fixture = EndToEndTests.Fixture

    func password(_ fixture: Fixture) throws -> String {
        try String(contentsOfFile: fixture.passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
    }

    /// Adds one host and publishes, through the Web API; true when both succeeded.
    func publishHost(_ client: APIClient, sid: String, name: String) async throws -> Bool {
        let add = try await client.call("add-host", ["name": name, "ip-address": "192.0.2.7"], sid: sid)
        let publish = try await client.call("publish", [:], sid: sid)
        return add.status == 200 && publish.status == 200
    }

    @Test(
        "backup during continuous publishing restores to a consistent state whose head verifies; ha status shows it; a running server is refused",
        .timeLimit(.minutes(15)))
    func backupWhilePublishing() async throws {
        let fixture = try Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server")
        let adminPassword = try password(fixture)
        let published = Atomic<Int>(0)
        let stop = Atomic<Bool>(false)
        async let publisher: Void = APIClient.with(caFile: "\(fixture.data)/pki/ica.pem", port: server.port) { client in
            let sid = try await client.login(user: "admin", password: adminPassword)
            var index = 0
            while !stop.load(ordering: .relaxed), index < 2_000 {
                if try await publishHost(client, sid: sid, name: "busy-\(index)") { published.add(1, ordering: .relaxed) }
                index += 1
            }
        }
        #expect(try await pollUntil(seconds: 60) { published.load(ordering: .relaxed) >= 5 })
        var files: [String] = []
        for _ in 0..<3 {
            let before = published.load(ordering: .relaxed)
            let backup = try await fixture.rampart(["backup", "create", "--data", fixture.data, "--json"])
            try #require(backup.status == 0, "\(backup)")
            files.append(try #require(backup.json().string("file")))
            _ = try await pollUntil(seconds: 60) { published.load(ordering: .relaxed) > before + 2 }
        }
        stop.store(true, ordering: .relaxed)
        try await publisher
        // ha status shows this node's last backup: time, size and result.
        let status = try await fixture.rampart(["ha", "status", "--data", fixture.data, "--json"])
        let last = try #require(try status.json().object("last-backup"), "\(status)")
        #expect(last.string("result") == "succeeded" && (last.int("size-bytes") ?? 0) > 0 && last.string("file") == files.last)
        let text = try await fixture.rampart(["ha", "status", "--data", fixture.data])
        #expect(text.stdout.contains("last backup:"), "\(text)")
        // Restoring onto the running server is refused with an explanation, and changes nothing.
        let refused = try await fixture.rampart(["backup", "restore", files[0], "--data", fixture.data, "--replace", "--json"])
        #expect(refused.status == 1)
        #expect(try refused.json().string("code") == "server-running", "\(refused)")
        let listed = try await fixture.rampart(["backup", "list", "--data", fixture.data])
        #expect(files.allSatisfy { listed.stdout.contains(($0 as NSString).lastPathComponent) }, "\(listed)")
        _ = try await server.stop()

        // Each backup restores into a fresh directory; the server verifies the journal and serves it.
        for (index, file) in files.enumerated() {
            let verify = try await fixture.rampart(["backup", "verify", file, "--json"])
            try #require(verify.status == 0, "\(verify)")
            let head = try #require(verify.json().object("manifest")?.object("head"))
            let number = try #require(head.int("number"))
            let target = fixture.scratch.path("restored-\(index)")
            let restore = try await fixture.rampart(["backup", "restore", file, "--data", target])
            try #require(restore.status == 0, "\(restore)")
            let restored = try await ServerProcess.start(dataDirectory: target, logName: "restored-\(index)", createsAdminPassword: false)
            let (hash, hostCount) = try await APIClient.with(caFile: "\(target)/pki/ica.pem", port: restored.port) { client -> (String?, Int?) in
                let sid = try await client.login(user: "admin", password: adminPassword)
                let revision = try await client.call("show-revisions", ["number": number], sid: sid)
                let hosts = try await client.call("show-hosts", ["limit": 1, "filter": "busy-"], sid: sid)
                return (revision.body["hash"] as? String, hosts.body["total"] as? Int)
            }
            // The restored journal holds the backup's head (a restarted server may add its own address change after it).
            #expect(hash == head.string("hash"), "the restored server holds exactly the backup's journal")
            // Objects and journal agree: each published busy host is a revision after the initial ones.
            #expect(hostCount != nil && hostCount! > 0 && hostCount! <= number)
            #expect(restored.log.contains("journal verified"))
            _ = try await restored.stop()
        }
    }

    @Test(
        "export → import on a fresh directory gives identical objects, rules and administrators, and a working primary; export-management runs as a task",
        .timeLimit(.minutes(15)))
    func exportImport() async throws {
        let fixture = try Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "source")
        let adminPassword = try password(fixture)
        try await APIClient.with(caFile: "\(fixture.data)/pki/ica.pem", port: server.port) { client in
            let sid = try await client.login(user: "admin", password: adminPassword)
            for index in 0..<30 { _ = try await client.call("add-host", ["name": "h\(index)", "ip-address": "198.51.100.\(index)"], sid: sid) }
            _ = try await client.call("add-network", ["name": "net", "subnet": "10.1.0.0", "mask-length": 16], sid: sid)
            _ = try await client.call(
                "add-access-rule",
                [
                    "layer": "Network", "position": 1, "name": "web", "source": "net", "destination": "h1",
                    "service": "https", "action": "Accept",
                ], sid: sid)
            _ = try await client.call("add-administrator", ["name": "ops", "password": "ops-password-123", "permissions-profile": "read-only"], sid: sid)
            #expect(try await client.call("publish", [:], sid: sid).status == 200)
        }
        let exportFile = fixture.scratch.path("config.json")
        let exported = try await fixture.rampart(["migrate", "export", exportFile, "--data", fixture.data, "--json"])
        try #require(exported.status == 0, "\(exported)")
        // The Web API's export-management: a task that writes the same export on the server.
        let apiExport = fixture.scratch.path("api-export.json")
        let sourceView = try await APIClient.with(caFile: "\(fixture.data)/pki/ica.pem", port: server.port) { client -> [String: String] in
            let sid = try await client.login(user: "admin", password: adminPassword)
            let started = try await client.call("export-management", ["file-path": apiExport], sid: sid)
            let taskID = try #require(started.body["task-id"] as? String, "\(started.body)")
            #expect(
                try await pollUntil(seconds: 60) {
                    let task = try await client.call("show-task", ["task-id": taskID], sid: sid)
                    return ((task.body["tasks"] as? [[String: Any]])?.first?["status"] as? String) == "succeeded"
                })
            let refused = try await client.call("export-management", ["file-path": apiExport, "include-logs": true], sid: sid)
            #expect(refused.status == 400)
            return try await view(client, sid: sid)
        }
        #expect(FileManager.default.fileExists(atPath: apiExport))
        #expect(sourceView["show-hosts"]?.contains("h29") == true && sourceView["show-networks"]?.contains("10.1.0.0") == true)
        #expect(sourceView["rulebase"]?.contains("\"web\"") == true && sourceView["show-administrators"]?.contains("\"ops\"") == true)
        _ = try await server.stop()

        let target = fixture.scratch.path("new")
        let dry = try await fixture.rampart(["migrate", "import", exportFile, "--data", target, "--server-name", "mgmt-new", "--dry-run", "--json"])
        try #require(dry.status == 0, "\(dry)")
        #expect(try dry.json().int("objects") == (try exported.json().int("objects")))
        #expect(!FileManager.default.fileExists(atPath: "\(target)/rampart.sqlite"), "a dry run changes nothing")
        // The source's own server is named primary: a new group's server needs a name of its own.
        let unnamed = try await fixture.rampart(["migrate", "import", exportFile, "--data", target, "--json"])
        #expect(try unnamed.status == 1 && unnamed.json().string("code") == "server-name-taken", "\(unnamed)")
        let imported = try await fixture.rampart(["migrate", "import", exportFile, "--data", target, "--server-name", "mgmt-new"])
        try #require(imported.status == 0, "\(imported)")
        #expect(imported.stdout.contains("start it with: rampart server --data \(target) --server-name mgmt-new"), "\(imported)")
        let again = try await fixture.rampart(["migrate", "import", exportFile, "--data", target, "--server-name", "mgmt-new", "--json"])
        #expect(try again.status == 1 && again.json().string("code") == "target-not-empty")

        let primary = try await ServerProcess.start(
            dataDirectory: target, logName: "imported", extraArguments: ["--server-name", "mgmt-new"],
            createsAdminPassword: false)
        try await APIClient.with(caFile: "\(target)/pki/ica.pem", port: primary.port) { client in
            let sid = try await client.login(user: "admin", password: adminPassword)
            #expect(try await view(client, sid: sid) == sourceView)
            _ = try await client.login(user: "ops", password: "ops-password-123")
            // A working primary: it takes and publishes changes.
            #expect(try await publishHost(client, sid: sid, name: "after-import"))
        }
        _ = try await primary.stop()
    }

    /// Objects, rules and administrators as the API shows them, without per-server fields.
    func view(_ client: APIClient, sid: String) async throws -> [String: String] {
        var result: [String: String] = [:]
        for command in ["show-hosts", "show-networks", "show-administrators"] {
            let reply = try await client.call(command, ["limit": 500, "details-level": "full"], sid: sid)
            result[command] = canonical((reply.body["objects"] as? [[String: Any]] ?? []).map { stripped($0) })
        }
        let rules = try await client.call("show-access-rulebase", ["name": "Network", "details-level": "full"], sid: sid)
        result["rulebase"] = canonical((rules.body["rulebase"] as? [[String: Any]] ?? []).map { stripped($0) })
        return result
    }

    func stripped(_ object: [String: Any]) -> [String: Any] {
        object.filter { !["read-only", "domain", "meta-info", "icon"].contains($0.key) }
    }

    func canonical(_ value: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
    }

    @Test("kill -9 during a backup leaves no file that looks valid; every finished backup verifies", .timeLimit(.minutes(15)))
    func killDuringBackup() async throws {
        let fixture = try Fixture()
        try await seedLargeDatabase(fixture, hosts: 60_000)
        let backups = "\(fixture.data)/backups"
        for delayMilliseconds in [0, 30, 80, 150, 300, 600] {
            let process = Process()
            process.executableURL = try Executable.rampart()
            process.arguments = ["backup", "create", "--data", fixture.data, "--passphrase-file", fixture.scratch.path("pass")]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            let record = ExitRecord()
            process.terminationHandler = { record.record($0) }
            try process.run()
            try await Task.sleep(for: .milliseconds(delayMilliseconds))
            Glibc.kill(process.processIdentifier, SIGKILL)
            _ = try await record.wait(seconds: 60)
        }
        let finals = ((try? FileManager.default.contentsOfDirectory(atPath: backups)) ?? []).filter { $0.hasSuffix(".rampart-backup") && !$0.hasPrefix(".") }
        for name in finals {
            let verify = try await fixture.rampart(["backup", "verify", "\(backups)/\(name)", "--passphrase-file", fixture.scratch.path("pass")])
            #expect(verify.status == 0, "a file with a backup's final name is complete: \(verify)")
        }
        // A backup after the kills works, and a truncated copy of it is refused as truncated.
        let good = try await fixture.rampart(["backup", "create", "--data", fixture.data, "--json", "--passphrase-file", fixture.scratch.path("pass")])
        try #require(good.status == 0, "\(good)")
        let file = try #require(good.json().string("file"))
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let cut = fixture.scratch.path("cut.rampart-backup")
        try bytes.prefix(bytes.count * 2 / 3).write(to: URL(fileURLWithPath: cut))
        let refused = try await fixture.rampart(["backup", "verify", cut, "--json"])
        #expect(try refused.status == 1 && refused.json().string("code") == "truncated", "\(refused)")
        let wrong = fixture.scratch.path("wrong")
        try Data("this is not the passphrase\n".utf8).write(to: URL(fileURLWithPath: wrong))
        let wrongRestore = try await fixture.rampart(["backup", "restore", file, "--data", fixture.scratch.path("t"), "--passphrase-file", wrong, "--json"])
        #expect(try wrongRestore.status == 1 && wrongRestore.json().string("code") == "wrong-passphrase", "\(wrongRestore)")
        #expect(!FileManager.default.fileExists(atPath: fixture.scratch.path("t") + "/rampart.sqlite"))
    }

    @Test(
        "a daily schedule in node.json makes the running server take a backup, shown in ha status; the schedule survives a restart",
        .timeLimit(.minutes(10)))
    func scheduledBackup() async throws {
        let fixture = try Fixture()
        var server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "scheduled")
        defer { server.kill() }
        // Two minutes ahead (UTC): the server first sees the schedule within 5 s, before that minute starts.
        var clock = Calendar(identifier: .gregorian)
        clock.timeZone = TimeZone(identifier: "UTC")!
        let due = clock.dateComponents([.hour, .minute], from: Date().addingTimeInterval(120))
        let at = String(format: "%02d:%02d", due.hour!, due.minute!)
        let bad = try await fixture.rampart(["backup", "schedule", "--data", fixture.data, "--daily-at", "25:00"])
        #expect(bad.status != 0 && bad.stderr.contains("daily-at"), "\(bad)")
        let set = try await fixture.rampart(["backup", "schedule", "--data", fixture.data, "--daily-at", at, "--retention", "2"])
        try #require(set.status == 0 && set.stdout.contains("daily at \(at) UTC, keep 2"), "\(set)")
        _ = try await server.stop()
        server = try await ServerProcess.start(dataDirectory: fixture.data, preferredPort: server.port, logName: "scheduled-restart")
        let kept = try await fixture.rampart(["backup", "schedule", "--data", fixture.data])
        #expect(kept.stdout.contains("daily at \(at) UTC"), "the server kept the schedule when it rewrote node.json: \(kept)")
        var last: [String: Any]?
        #expect(
            try await pollUntil(seconds: 200) {
                last = try? await fixture.rampart(["ha", "status", "--data", fixture.data, "--json"]).json().object("last-backup")
                return last?.string("trigger") == "scheduled"
            }, "no scheduled backup; server log:\n\(server.logTail)")
        #expect(last?.string("result") == "succeeded" && (last?.int("size-bytes") ?? 0) > 0)
        #expect(last?.string("file")?.hasSuffix("-scheduled.rampart-backup") == true)
        let verify = try await fixture.rampart(["backup", "verify", last?.string("file") ?? "-"])
        #expect(verify.status == 0, "\(verify)")
        #expect(
            server.log.contains("event backup-finished: scheduled backup written to \(last?.string("file") ?? "-")"),
            "the backup is an event, which the log shows: \(server.logTail)")
        _ = try await server.stop()
    }

    /// A data directory holding `hosts` objects, made the fast way: a generated migrate export imported.
    func seedLargeDatabase(_ fixture: Fixture, hosts: Int) async throws {
        try Data("a passphrase for the tests\n".utf8).write(to: URL(fileURLWithPath: fixture.scratch.path("pass")))
        let file = URL(fileURLWithPath: fixture.scratch.path("seed.json"))
        // Seconds of CPU in a debug build: off the cooperative threads, which other suites share.
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result {
                        let meta = MetaInfo(creator: "admin", creationTimeMilliseconds: 1, lastModifier: "admin", lastModifyTimeMilliseconds: 1)
                        var objects = (0..<hosts).map { index in
                            ManagedObject(
                                uid: "h-\(index)", type: .host, name: "host-\(index)",
                                fields: ["ipv4-address": .string("10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)")], meta: meta)
                        }
                        objects.append(
                            ManagedObject(
                                uid: "a-admin", type: .administrator, name: "admin",
                                fields: [
                                    "password-hash": .string(PasswordHasher.hash("admin-password-1", iterations: 1_000)),
                                    "permissions-profile": "super-user",
                                ], meta: meta))
                        _ = try Migration.write(objects: objects, source: ["server": "primary"], to: file, nowMilliseconds: 1)
                    })
            }
        }
        try FileManager.default.removeItem(atPath: fixture.data)
        let imported = try await fixture.rampart(["migrate", "import", file.path, "--data", fixture.data])
        try #require(imported.status == 0, "\(imported)")
        try Data("{\"server-name\": \"primary\", \"listen\": \"127.0.0.1\", \"api-port\": 1}".utf8).write(to: URL(fileURLWithPath: "\(fixture.data)/node.json"))
    }
}
