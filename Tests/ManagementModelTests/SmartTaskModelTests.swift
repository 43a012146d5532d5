import ManagementModel
import Testing

/// smart-task and repository-script: what add/set accept and refuse, the stored form, and the one
/// parser (`SmartTaskDefinition`, `RepositoryScript`) the engine reads them back with.
@Suite("SmartTask objects")
struct SmartTaskModelTests {
    static let pin = "AB:" + String(repeating: "cd:", count: 29) + "ef:01"  // 32 bytes with colons

    func world() throws -> World {
        let world = World()
        try world.add(.repositoryScript, ["name": "notify", "script-body": "echo \"$1\" | base64 -d >> /tmp/events"])
        return world
    }

    func error(_ body: () throws -> Void) -> ManagementError? {
        do {
            try body()
            return nil
        } catch let error as ManagementError {
            return error
        } catch {
            return ManagementError.internalError("\(error)")
        }
    }

    @Test func triggers() {
        #expect(SmartTaskTrigger.allCases.filter(\.beforeOperation) == [.beforePublish])
        #expect(SmartTaskTrigger.named("after publish") == .afterPublish)
        #expect(SmartTaskTrigger.named(SmartTaskTrigger.clusterFailover.uid) == .clusterFailover)
        #expect(Set(SmartTaskTrigger.allCases.map(\.uid)).count == SmartTaskTrigger.allCases.count)
        #expect(!SmartTaskTrigger.beforeLogin.isFiredByRampart && SmartTaskTrigger.haStateChanged.isFiredByRampart)
        #expect(SmartTaskTrigger.beforePublish.json["type"] == "smart-task-trigger")
    }

    @Test func aWebRequestTaskIsStoredAndParsedBack() throws {
        let world = try world()
        let task = try world.add(
            .smartTask,
            [
                "name": "hook", "trigger": "After Publish", "enabled": true, "fail-open": false,
                "custom-data": "{\"ticket\": \"CR-1\"}",
                "action": ["send-web-request": ["url": "https://receiver.example.com/hook", "fingerprint": .string(Self.pin), "shared-secret": "s3cret"]],
            ])
        let definition = try SmartTaskDefinition(task)
        #expect(definition.trigger == .afterPublish && definition.enabled && !definition.failOpen)
        #expect(definition.customData == ["ticket": "CR-1"])
        guard case .webRequest(let url, let fingerprint, let secret, let timeout) = definition.action else {
            Issue.record("not a web request: \(definition.action)")
            return
        }
        #expect(url == "https://receiver.example.com/hook" && secret == "s3cret" && timeout == Limits.smartTaskWebRequestTimeoutSecondsDefault)
        #expect(fingerprint == "ab" + String(repeating: "cd", count: 29) + "ef01")
        // The secret is an internal field: never in the action, never rendered.
        #expect(task["action"]?["send-web-request"]?["shared-secret"] == nil)
        let shown = Renderer(reader: world.reader).render(task, level: .full)
        #expect(!shown.canonicalString.contains("s3cret"))
        #expect(shown["action"]?["send-web-request"]?["shared-secret-set"] == true)
        #expect(shown["trigger"]?["name"] == "After Publish")
        #expect(!task.jsonWithoutSecrets.canonicalString.contains("s3cret"))
    }

    @Test func aSecretStaysForTheSameURLAndNeverFollowsTheTaskElsewhere() throws {
        let world = try world()
        try world.add(
            .smartTask, ["name": "hook", "trigger": "After Publish", "action": ["send-web-request": ["url": "https://a.example.com/", "shared-secret": "k1"]]])
        var task = try world.set(.smartTask, ["name": "hook", "action": ["send-web-request": ["url": "https://a.example.com/", "time-out": 5]]])
        #expect(task[ManagedObject.smartTaskSecretField] == "k1")
        task = try world.set(.smartTask, ["name": "hook", "action": ["send-web-request": ["url": "https://b.example.com/"]]])
        #expect(task[ManagedObject.smartTaskSecretField] == "")
    }

    @Test func aRunScriptTaskRefersToItsScript() throws {
        let world = try world()
        let task = try world.add(
            .smartTask, ["name": "run", "trigger": "HA State Changed", "action": ["run-script": ["repository-script": "notify", "time-out": 10]]])
        let script = world.reader.objects(named: "notify")[0]
        guard case .runScript(let uid, let targets, 10) = try SmartTaskDefinition(task).action else {
            Issue.record("not a run-script")
            return
        }
        #expect(uid == script.uid && targets.isEmpty)
        #expect(try RepositoryScript(script).body.hasPrefix("echo"))
        // The script is in use: it cannot be deleted while the task refers to it.
        #expect(error { try world.delete(.repositoryScript, ["name": "notify"]) }?.code == "generic_err_object_deletion")
    }

    @Test func aSendMailTaskIsAccepted() throws {
        let world = try world()
        let task = try world.add(
            .smartTask,
            [
                "name": "mail", "trigger": "Backup Failed",
                "action": [
                    "send-mail": [
                        "mail-settings": [
                            "recipients": "ops@example.com; oncall@example.com", "sender-email": "rampart@example.com", "subject": "Backup failed",
                            "body": "See the history.",
                        ]
                    ]
                ],
            ])
        guard case .sendMail(let mail) = try SmartTaskDefinition(task).action else {
            Issue.record("not a mail")
            return
        }
        #expect(mail.recipients == ["ops@example.com", "oncall@example.com"] && mail.attachment == "no attachment")
    }

    @Test(
        arguments: [
            // (action, field the error names)
            (["send-web-request": ["url": "http://receiver.example.com/"]], "url"),
            (["send-web-request": ["url": "ftp://127.0.0.1/"]], "url"),
            (["send-web-request": ["url": "https://user:pw@receiver.example.com/"]], "url"),
            (["send-web-request": ["url": "https://receiver example.com/"]], "url"),
            (["send-web-request": ["url": "https://r.example.com/", "fingerprint": "3FDD902286DBF130EF4CEC7939EF81060AB0FEB6"]], "fingerprint"),
            (["send-web-request": ["url": "https://r.example.com/", "time-out": 0]], "time-out"),
            (["send-web-request": ["url": "https://r.example.com/", "time-out": 100_000]], "time-out"),
            (["send-web-request": ["url": "https://r.example.com/", "shared-secret": "a\r\nX-Injected: 1"]], "shared-secret"),
            (["send-web-request": ["url": "https://r.example.com/", "proxy-url": "http://proxy:3128"]], "override-proxy"),
            (["send-web-request": ["url": "https://r.example.com/", "bogus": 1]], "bogus"),
            (["send-web-request": ["url": "https://r.example.com/"], "run-script": ["repository-script": "notify"]], "action"),
            ([:], "action"),
            (["run-script": ["repository-script": "no such script"]], "repository-script"),
            (["run-script": [:]], "repository-script"),
            (["send-mail": ["mail-settings": ["recipients": "a@b.c", "sender-email": "x@y.z", "subject": "a\nBcc: evil@x.y", "body": "b"]]], "subject"),
            (["send-mail": ["mail-settings": ["recipients": "not an address", "sender-email": "x@y.z", "subject": "s", "body": "b"]]], "recipients"),
            (["send-mail": ["mail-settings": ["sender-email": "x@y.z", "subject": "s", "body": "b"]]], "recipients"),
            (["explode": [:]], "action"),
        ] as [(JSONValue, String)])
    func aBadActionIsRefusedNamingTheField(action: JSONValue, field: String) throws {
        let world = try world()
        let refused = error { try world.add(.smartTask, ["name": "t", "trigger": "After Publish", "action": action]) }
        #expect(refused != nil, "accepted \(action.canonicalString)")
        #expect(refused?.message.contains(field) == true, "\(refused?.message ?? "") names \(field)")
        #expect(refused?.httpStatus == 400 || refused?.httpStatus == 404)
    }

    @Test func loopbackHTTPIsAllowed() throws {
        let world = try world()
        for url in ["http://127.0.0.1:8080/hook", "http://localhost/x", "http://[::1]:9000/"] {
            try world.add(.smartTask, ["name": .string(url), "trigger": "After Publish", "action": ["send-web-request": ["url": .string(url)]]])
        }
    }

    @Test func triggerAndCustomDataAreChecked() throws {
        let world = try world()
        let action: JSONValue = ["send-web-request": ["url": "https://r.example.com/"]]
        #expect(error { try world.add(.smartTask, ["name": "t", "trigger": "Sometime", "action": action]) }?.code == "generic_err_object_not_found")
        #expect(error { try world.add(.smartTask, ["name": "t", "action": action]) }?.code == "generic_err_missing_required_parameters")
        #expect(error { try world.add(.smartTask, ["name": "t", "trigger": "After Publish"]) }?.code == "generic_err_missing_required_parameters")
        for bad: JSONValue in ["not json", "[1, 2]", .string("{\"a\": \"" + String(repeating: "x", count: Limits.smartTaskCustomDataBytesMax) + "\"}")] {
            #expect(
                error { try world.add(.smartTask, ["name": "t", "trigger": "After Publish", "action": action, "custom-data": bad]) }?.message.contains(
                    "custom-data") == true)
        }
        // A JSON object given as such is kept as its text.
        let task = try world.add(.smartTask, ["name": "t", "trigger": "after publish", "action": action, "custom-data": ["a": 1]])
        #expect(task["custom-data"] == "{\"a\":1}" && task["trigger"] == "After Publish")
    }

    @Test func repositoryScriptBodies() throws {
        let world = World()
        #expect(error { try world.add(.repositoryScript, ["name": "empty"]) }?.code == "generic_err_missing_required_parameters")
        let big = String(repeating: "x", count: Limits.repositoryScriptBodyBytesMax + 1)
        #expect(error { try world.add(.repositoryScript, ["name": "big", "script-body": .string(big)]) }?.message.contains("script-body") == true)
        let script = try world.add(.repositoryScript, ["name": "b64", "script-body-base64": "ZWNobyBoaQ=="])
        #expect(script["script-body"] == "echo hi")
        #expect(error { try world.add(.repositoryScript, ["name": "bad", "script-body-base64": "%%%"]) }?.code == "generic_err_invalid_parameter")
    }

    @Test func aStoredTaskFromElsewhereIsCheckedAgain() {
        var object = ManagedObject(
            uid: "u", type: .smartTask, name: "peer", fields: ["trigger": "After Publish", "action": ["send-web-request": ["url": "http://10.0.0.1/"]]],
            meta: MetaInfo(creator: "x", creationTimeMilliseconds: 0, lastModifier: "x", lastModifyTimeMilliseconds: 0))
        #expect(error { _ = try SmartTaskDefinition(object) } != nil)
        object.fields["action"] = ["send-web-request": ["url": "https://10.0.0.1/"]]
        #expect(error { _ = try SmartTaskDefinition(object) } == nil)
        object.fields["enabled"] = "maybe"
        #expect(error { _ = try SmartTaskDefinition(object) }?.message.contains("enabled") == true)
    }
}
