import Foundation
import ManagementModel
import Testing

@testable import ManagementService

/// The smart-task and repository-script commands: who may run them, secrets that are never shown,
/// triggers, export and import, and the engine's reads of the published head.
@Suite("SmartTask commands")
struct SmartTaskCommandTests {
    static let webTask: JSONValue = [
        "name": "hook", "trigger": "After Publish", "enabled": true,
        "action": ["send-web-request": ["url": "https://receiver.example.com/hook", "shared-secret": "top-s3cret-value"]],
    ]
    static let scriptTask: JSONValue = [
        "name": "runner", "trigger": "HA State Changed", "enabled": true,
        "action": ["run-script": ["repository-script": "notify", "time-out": 5]],
    ]
    static let script: JSONValue = ["name": "notify", "script-body": "echo \"$1\" >> /tmp/x"]

    /// A harness with a read-write `writer` and a read-only `auditor`, a published script and both tasks.
    func harness() async throws -> (Harness, admin: String) {
        let h = try await PermissionTests.harness()
        let admin = try await h.login()
        try await h.ok("add-repository-script", Self.script, sid: admin)
        try await h.ok("add-smart-task", Self.webTask, sid: admin)
        try await h.ok("add-smart-task", Self.scriptTask, sid: admin)
        _ = try await h.publish(sid: admin)
        return (h, admin)
    }

    func status(_ h: Harness, _ command: String, _ body: JSONValue, as user: String, _ password: String) async throws -> APIResponse {
        let sid = try await h.login(user, password)
        let reply = await h.call(command, body, sid: sid)
        _ = await h.call("discard", sid: sid)
        _ = await h.call("logout", sid: sid)
        return reply
    }

    @Test func whoMayDoWhat() async throws {
        let (h, _) = try await harness()
        let newScript: JSONValue = ["name": "other", "script-body": "true"]
        let newWeb: JSONValue = ["name": "hook2", "trigger": "Backup Failed", "action": ["send-web-request": ["url": "https://r.example.com/"]]]
        let newRun: JSONValue = ["name": "run2", "trigger": "Backup Failed", "action": ["run-script": ["repository-script": "notify"]]]
        let webToRun: JSONValue = ["name": "hook", "action": ["run-script": ["repository-script": "notify"]]]
        let runToWeb: JSONValue = ["name": "runner", "action": ["send-web-request": ["url": "https://r.example.com/"]]]
        // (command, body, super-user, read-write, read-only)
        let cases: [(String, JSONValue, Bool, Bool, Bool)] = [
            ("add-repository-script", newScript, true, false, false),
            ("set-repository-script", ["name": "notify", "script-body": "false"], true, false, false),
            ("delete-repository-script", ["name": "notify"], false, false, false),  // in use: refused for everyone (400)
            ("show-repository-script", ["name": "notify"], true, true, true),
            ("show-repository-scripts", [:], true, true, true),
            ("add-smart-task", newWeb, true, true, false),
            ("add-smart-task", newRun, true, false, false),
            ("set-smart-task", ["name": "hook", "enabled": false], true, true, false),
            ("set-smart-task", webToRun, true, false, false),
            ("set-smart-task", ["name": "runner", "enabled": false], true, false, false),
            ("set-smart-task", runToWeb, true, false, false),
            ("delete-smart-task", ["name": "hook"], true, true, false),
            ("delete-smart-task", ["name": "runner"], true, false, false),
            ("show-smart-task", ["name": "runner"], true, true, true),
            ("show-smart-tasks", [:], true, true, true),
            ("show-smart-task-trigger", ["name": "Before Publish"], true, true, true),
            ("show-smart-task-triggers", [:], true, true, true),
            ("export-smart-task", ["name": "runner"], true, true, true),
        ]
        let users = [("admin", "adminpw"), ("writer", "pw-writer"), ("auditor", "pw-auditor")]
        for (command, body, superUser, readWrite, readOnly) in cases {
            for (index, allowed) in [superUser, readWrite, readOnly].enumerated() {
                let (user, password) = users[index]
                let reply = try await status(h, command, body, as: user, password)
                let refused = reply.status == 403 && reply.body["code"] == "generic_err_no_permissions"
                if command == "delete-repository-script" {
                    #expect(reply.status == (index == 0 ? 400 : 403), "\(command) as \(user): \(reply.body.canonicalString)")
                    continue
                }
                #expect(refused == !allowed, "\(command) \(body.canonicalString) as \(user): HTTP \(reply.status) \(reply.body.canonicalString)")
                if allowed { #expect(reply.status == 200, "\(command) as \(user): \(reply.body.canonicalString)") }
                if refused { #expect(reply.body["message"]?.stringValue?.contains("[\(user)]") == true) }
            }
        }
    }

    @Test func theSharedSecretIsNeverShown() async throws {
        let (h, admin) = try await harness()
        let secret = "top-s3cret-value"
        var shown: [JSONValue] = []
        shown.append(try await h.ok("show-smart-task", ["name": "hook", "details-level": "full"], sid: admin))
        shown.append(try await h.ok("show-smart-tasks", ["details-level": "full"], sid: admin))
        shown.append(try await h.ok("show-objects", ["type": "smart-task", "details-level": "full"], sid: admin))
        shown.append(try await h.ok("export-smart-task", ["name": "hook"], sid: admin))
        shown.append(try await h.ok("show-revisions", ["number": 2], sid: admin))
        let changes = try await h.ok("show-changes", sid: admin)
        shown.append(try await h.ok("show-task", ["task-id": changes["task-id"]!, "details-level": "full"], sid: admin))
        // An error about the task never repeats it either.
        let refused = await h.call(
            "set-smart-task", ["name": "hook", "action": ["send-web-request": ["url": "ftp://x/", "shared-secret": .string(secret)]]], sid: admin)
        #expect(refused.status == 400)
        shown.append(refused.body)
        for body in shown { #expect(!body.canonicalString.contains(secret), "\(body.canonicalString.prefix(300))") }
        #expect(shown[0]["action"]?["send-web-request"]?["shared-secret-set"] == true)
        #expect(shown[3]["left-out"] == ["action.send-web-request.shared-secret"])
        #expect(shown[5].canonicalString.contains("\"shared-secret-set\":true"))
        // The engine's read has it.
        let tasks = try h.service.smartTasks(for: .afterPublish)
        #expect(tasks.map(\.name) == ["hook"])
        guard case .webRequest(_, _, let sharedSecret, _)? = tasks.first?.action else {
            Issue.record("no web request")
            return
        }
        #expect(sharedSecret == secret)
    }

    @Test func theEngineReadsEnabledPublishedTasks() async throws {
        let (h, admin) = try await harness()
        try await h.ok("set-smart-task", ["name": "runner", "enabled": false], sid: admin)
        try await h.ok(
            "add-smart-task",
            ["name": "pending", "trigger": "HA State Changed", "enabled": true, "action": ["send-web-request": ["url": "https://r.example.com/"]]], sid: admin)
        // Pending changes are not the published head.
        #expect(try h.service.smartTasks(for: .haStateChanged).map(\.name) == ["runner"])
        _ = try await h.publish(sid: admin)
        #expect(try h.service.smartTasks(for: .haStateChanged).map(\.name) == ["pending"])
        let script = h.service.repositoryScript("notify")
        #expect(script?.body == "echo \"$1\" >> /tmp/x")
        #expect(h.service.repositoryScript(script?.uid ?? "") == script)
        #expect(h.service.repositoryScript("hook") == nil)
    }

    @Test func triggers() async throws {
        let (h, admin) = try await harness()
        let all = try await h.ok("show-smart-task-triggers", ["limit": 500], sid: admin)
        #expect(all["total"]?.intValue == Int64(SmartTaskTrigger.allCases.count))
        let names = all["objects"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        for name in ["Before Publish", "After Publish", "After Install Policy", "HA State Changed", "Cluster Failover"] { #expect(names.contains(name)) }
        let before = try await h.ok("show-smart-task-trigger", ["name": "Before Publish"], sid: admin)
        #expect(before["before-operation"] == true && before["type"] == "smart-task-trigger")
        #expect(try await h.ok("show-smart-task-trigger", ["uid": before["uid"]!], sid: admin)["name"] == "Before Publish")
        #expect(await h.call("show-smart-task-trigger", ["name": "Never"], sid: admin).status == 404)
        let task = try await h.ok("show-smart-task", ["name": "hook"], sid: admin)
        #expect(task["trigger"]?["name"] == "After Publish" && task["trigger"]?["uid"] == .string(SmartTaskTrigger.afterPublish.uid))
    }

    @Test func exportThenImport() async throws {
        let (h, admin) = try await harness()
        let exported = try await h.ok("export-smart-task", ["name": "runner"], sid: admin)
        #expect(exported["smart-task"]?["action"]?["run-script"]?["repository-script"] == "notify")
        #expect(exported["repository-script"]?["script-body"] == "echo \"$1\" >> /tmp/x")
        try await h.ok("delete-smart-task", ["name": "runner"], sid: admin)
        try await h.ok("delete-repository-script", ["name": "notify"], sid: admin)
        _ = try await h.publish(sid: admin)
        let imported = try await h.ok("import-smart-task", exported, sid: admin)
        #expect(imported["name"] == "runner" && imported["action"]?["run-script"]?["repository-script"]?["name"] == "notify")
        _ = try await h.publish(sid: admin)
        #expect(try h.service.smartTasks(for: .haStateChanged).map(\.name) == ["runner"])
        // Importing again: the same script is reused, the task's name is taken.
        let again = await h.call("import-smart-task", exported, sid: admin)
        #expect(again.body["code"] == "generic_err_object_field_not_unique")
        #expect(await h.call("export-smart-task", ["name": "runner", "file-path": "/tmp/x"], sid: admin).status == 400)
        // A task refused after its script was added takes the script out of the session with it.
        guard case .object(var broken) = exported, case .object(var task)? = broken["smart-task"], case .object(var script)? = broken["repository-script"]
        else { throw HarnessError(reply: .init(body: exported)) }
        task["name"] = "runner-2"
        task["trigger"] = "Never"
        script["name"] = "notify-2"
        broken["smart-task"] = .object(task)
        broken["repository-script"] = .object(script)
        #expect(await h.call("import-smart-task", .object(broken), sid: admin).status == 404)
        #expect(await h.call("show-repository-script", ["name": "notify-2"], sid: admin).status == 404)
        // A read-write administrator may not bring a script in.
        let writer = try await h.login("writer", "pw-writer")
        #expect(await h.call("import-smart-task", exported, sid: writer).status == 403)
    }
}
