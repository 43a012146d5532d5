import Foundation
import Testing

/// SmartTask objects over the Web API of a real `rampart server` (started with --smtp-relay): add a
/// script and tasks, publish, read them back after a restart, the shared secret never shown;
/// validation and permissions as a client sees them.
@Suite("End to end: SmartTask objects over the Web API", .endToEndSlot)
struct SmartTaskObjectsEndToEndTests {
    @Test(.timeLimit(.minutes(10))) func tasksArePublishedShownWithoutTheirSecretAndSurviveARestart() async throws {
        let scratch = try TemporaryDirectory()
        let data = scratch.path("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        var server = try await ServerProcess.start(dataDirectory: data, logName: "server", extraArguments: ["--smtp-relay", "127.0.0.1:2525"])
        defer { server.kill() }
        let password = try String(contentsOfFile: "\(data)/initial-admin-password", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let secret = "e2e-shared-s3cret"
        try await APIClient.with(caFile: "\(data)/pki/ica.pem", port: server.port) { client in
            let sid = try await client.login(user: "admin", password: password)
            func ok(_ command: String, _ body: [String: Any]) async throws -> [String: Any] {
                let reply = try await client.call(command, body, sid: sid)
                guard reply.status == 200 else { throw E2EFailure("\(command): HTTP \(reply.status) \(reply.body)") }
                return reply.body
            }
            _ = try await ok("add-repository-script", ["name": "e2e-script", "script-body": "echo \"$1\""])
            _ = try await ok(
                "add-smart-task",
                [
                    "name": "e2e-hook", "trigger": "After Publish", "enabled": true,
                    "action": ["send-web-request": ["url": "https://127.0.0.1:9/hook", "shared-secret": secret, "time-out": 5]],
                ])
            _ = try await ok(
                "add-smart-task",
                ["name": "e2e-run", "trigger": "Before Publish", "action": ["run-script": ["repository-script": "e2e-script"]]])
            _ = try await ok(
                "add-smart-task",
                [
                    "name": "e2e-mail", "trigger": "Backup Failed",
                    "action": [
                        "send-mail": ["mail-settings": ["recipients": "ops@example.com", "sender-email": "r@example.com", "subject": "s", "body": "b"]]
                    ],
                ])
            // Refused at the boundary, naming the field.
            let bad = try await client.call(
                "add-smart-task", ["name": "bad", "trigger": "After Publish", "action": ["send-web-request": ["url": "http://192.0.2.1/"]]], sid: sid)
            #expect(bad.status == 400 && bad.body.string("code") == "generic_err_invalid_parameter" && (bad.body.string("message") ?? "").contains("url"))
            _ = try await ok("publish", [:])
            _ = try await client.call("logout", [:], sid: sid)
        }
        try #require(await pollUntil(seconds: 60) { (try? await showHook(data: data, port: server.port, password: password)) != nil })
        // A restart reads them back from the database.
        _ = try await server.stop()
        server = try await ServerProcess.start(dataDirectory: data, preferredPort: server.port, logName: "server-again")
        let (hook, tasks, triggers, exported) = try await showHook(data: data, port: server.port, password: password)
        #expect(hook.object("trigger")?.string("name") == "After Publish")
        #expect(hook.object("action")?.object("send-web-request")?["shared-secret-set"] as? Bool == true)
        #expect(tasks.objects("objects").compactMap { $0.string("name") } == ["e2e-hook", "e2e-mail", "e2e-run"])
        #expect(triggers.int("total") ?? 0 >= 12)
        #expect((exported["left-out"] as? [String]) == ["action.send-web-request.shared-secret"])
        for body in [hook, tasks, exported] {
            let text = String(decoding: try JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            #expect(!text.contains(secret))
        }
        #expect(!server.log.contains(secret))
    }

    /// The hook, every task, the triggers and the hook's export, read in a session of their own.
    func showHook(data: String, port: Int, password: String) async throws -> ([String: Any], [String: Any], [String: Any], [String: Any]) {
        let replies = try await APIClient.with(caFile: "\(data)/pki/ica.pem", port: port) { client -> [APIClient.Reply] in
            let sid = try await client.login(user: "admin", password: password)
            var replies: [APIClient.Reply] = []
            for (command, body) in [
                ("show-smart-task", ["name": "e2e-hook", "details-level": "full"]), ("show-smart-tasks", ["details-level": "full"]),
                ("show-smart-task-triggers", ["limit": 50]), ("export-smart-task", ["name": "e2e-hook"]),
            ] as [(String, [String: Any])] {
                let reply = try await client.call(command, body, sid: sid)
                guard reply.status == 200 else { throw E2EFailure("\(command): HTTP \(reply.status) \(reply.body)") }
                replies.append(reply)
            }
            _ = try await client.call("logout", [:], sid: sid)
            return replies
        }
        return (replies[0].body, replies[1].body, replies[2].body, replies[3].body)
    }
}
