import Foundation
import Logging
import ManagementModel
import ManagementService
import SmartTasks
import Store
import Testing

/// A management service on a temporary database with the SmartTasks engine attached, as a node composes them.
struct EngineHarness {
    let directory: URL
    let store: ManagementStore
    let service: ManagementService
    let engine: SmartTaskEngine
    let deliveries: DeliveryStore
    let active: Flag

    /// `journalReads` counts the revisions the engine reads from the journal; each read passes `journalGate` first.
    init(
        tasks: StaticCatalog, limits: SmartTaskLimits = EngineHarness.fastLimits, active: Flag = Flag(true), journalReads: Counter? = nil,
        journalGate: Gate? = nil
    ) async throws {
        directory = try temporaryDirectory("engine")
        store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        service = try ManagementService(
            store: store, identity: ServerIdentity(name: "primary", ipAddress: "127.0.0.1", apiPort: 8443), logger: quietLogger, passwordIterations: 1_000)
        _ = try await service.initializeIfEmpty(adminPassword: "adminpw")
        deliveries = try DeliveryStore(path: directory.appendingPathComponent(DeliveryStore.fileName).path, limits: limits)
        self.active = active
        let store = self.store
        let journal = JournalSource(
            head: { try store.head()?.number },
            revisions: { from, limit in
                journalGate?.pass()
                let revisions = try store.revisions(from: from, limit: limit)
                journalReads?.add(revisions.count)
                return revisions
            })
        engine = try SmartTaskEngine(
            store: deliveries, catalog: tasks, journal: journal, events: service.events,
            environment: EngineEnvironment(serverName: "primary", limits: limits, isActive: { active.isSet }), logger: quietLogger)
        await service.attachSmartTaskPort(engine)
    }

    static var fastLimits: SmartTaskLimits {
        var limits = SmartTaskLimits()
        limits.attemptsMax = 3
        limits.retryDelayBaseMilliseconds = 50
        limits.taskIntervalMinimumMilliseconds = 0
        limits.pollIntervalMilliseconds = 20
        return limits
    }

    func call(_ command: String, _ body: JSONValue = [:], sid: String?) async -> APIResponse {
        await service.handle(command: command, body: body, sid: sid, client: ClientInfo(address: "127.0.0.1", isLocalSocket: false))
    }

    func login() async throws -> String {
        try #require(await call("login", ["user": "admin", "password": "adminpw"], sid: nil).body["sid"]?.stringValue)
    }

    /// Adds a host in the session and publishes; the publish's answer.
    func addAndPublish(_ name: String, sid: String) async throws -> APIResponse {
        let added = await call("add-host", ["name": .string(name), "ip-address": "10.1.1.1"], sid: sid)
        #expect(added.status == 200, "\(added.body.canonicalString)")
        return await call("publish", sid: sid)
    }

    func history(_ query: ExecutionQuery = ExecutionQuery()) throws -> [ExecutionRecord] { try deliveries.executions(query).records }

    /// Runs the engine while `body` runs, and returns once it has stopped.
    func running(_ body: () async throws -> Void) async throws {
        let runner = Task { try await engine.run() }
        var failure: (any Error)?
        do { try await body() } catch { failure = error }
        runner.cancel()
        _ = await runner.result
        if let failure { throw failure }
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

@Suite(.serialized) struct EngineTests {
    static func scriptTask(_ trigger: String, body: String, failOpen: Bool = false, uid: String = "task-script") -> SmartTaskSpec {
        SmartTaskSpec(
            uid: uid, name: "check", trigger: trigger, action: .runScript(.init(name: "check.sh", body: body, timeoutSeconds: 10)), failOpen: failOpen)
    }

    @Test func aFailingBeforePublishScriptRefusesThePublishWithItsMessageAndNothingIsPublished() async throws {
        let harness = try await EngineHarness(
            tasks: StaticCatalog([Self.scriptTask(TriggerName.beforePublish, body: "echo 'change window closed until 18:00' >&2\nexit 1\n")]))
        defer { harness.remove() }
        let sid = try await harness.login()
        let headBefore = try harness.store.head()?.number
        let reply = try await harness.addAndPublish("web-1", sid: sid)
        #expect(reply.status == 400)
        #expect(reply.body["code"]?.stringValue == "err_publish_failed")
        #expect(reply.body["message"]?.stringValue?.contains("change window closed until 18:00") == true)
        #expect(try harness.store.head()?.number == headBefore)
        #expect(harness.store.reader.objects(named: "web-1").isEmpty)
        #expect(try harness.history().map(\.result) == [.vetoed])
        // The session keeps its changes: fixed, it publishes.
        #expect(await harness.call("show-session", sid: sid).body["changes"]?.intValue == 1)
    }

    @Test func withFailOpenAFailingBeforePublishScriptIsRecordedAndThePublishGoesOn() async throws {
        let harness = try await EngineHarness(tasks: StaticCatalog([Self.scriptTask(TriggerName.beforePublish, body: "exit 1\n", failOpen: true)]))
        defer { harness.remove() }
        let sid = try await harness.login()
        let reply = try await harness.addAndPublish("web-1", sid: sid)
        #expect(reply.status == 200, "\(reply.body.canonicalString)")
        #expect(!harness.store.reader.objects(named: "web-1").isEmpty)
        #expect(try harness.history().map(\.result) == [.failedOpen])
    }

    @Test func aBeforePublishScriptSeesTheChangesAboutToBePublished() async throws {
        let harness = try await EngineHarness(
            tasks: StaticCatalog([
                Self.scriptTask(
                    TriggerName.beforePublish,
                    body: "#!/bin/sh\nprintf '%s' \"$1\" | base64 -d | grep -q '\"name\":\"web-9\"' || { echo 'web-9 missing' >&2; exit 1; }\n")
            ]))
        defer { harness.remove() }
        let sid = try await harness.login()
        #expect(try await harness.addAndPublish("web-9", sid: sid).status == 200)
        #expect(try harness.history().map(\.result) == [.succeeded])
    }

    @Test func aStandbyHoldsAfterPublishAndDeliversItOnceActiveWithTheEventIDTheActiveUsed() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let task = SmartTaskSpec(
            uid: "task-web", name: "notify", trigger: TriggerName.afterPublish,
            action: .sendWebRequest(.init(url: receiver.url, fingerprint: receiver.fingerprint, sharedSecret: receiver.secret, timeoutSeconds: 10)))
        let harness = try await EngineHarness(tasks: StaticCatalog([task]), active: Flag(false))
        defer { harness.remove() }
        try await harness.running {
            let sid = try await harness.login()
            #expect(try await harness.addAndPublish("web-1", sid: sid).status == 200)
            let held = await eventually { (try? harness.deliveries.pending().count) == 1 }
            #expect(held)
            try await Task.sleep(for: .milliseconds(200))
            #expect(receiver.received().isEmpty, "a standby delivered")
            harness.active.set(true)
            let delivered = await eventually { receiver.received().count == 1 }
            #expect(delivered)
            // The receiver answers before the engine writes the history: wait for the record, not a guessed time.
            let recorded = await eventually { (try? harness.history().map(\.result)) == [.succeeded] }
            #expect(recorded, "\(String(describing: try? harness.history().map { "\($0.result) attempt \($0.attempt): \($0.output)" }))")
        }
        let headNumber = try #require(try harness.store.head()?.number)
        let head = try #require(try harness.store.revisions(from: headNumber, limit: 1).first)
        let expected = DeliveryPlanner.eventID(taskUID: "task-web", trigger: TriggerName.afterPublish, identity: DeliveryPlanner.afterPublish(head).identity)
        #expect(receiver.received().first?["event-id"]?.stringValue == expected)
        #expect(receiver.received().first?["session"]?["revision-number"]?.intValue == Int64(head.number))
    }

    @Test func aDeliveryCutShortByTheEngineStoppingIsNotRecordedAndIsMadeAgainAtTheNextStart() async throws {
        let marker = try temporaryDirectory("marker").appendingPathComponent("runs")
        defer { try? FileManager.default.removeItem(at: marker.deletingLastPathComponent()) }
        // The first run hangs (the engine is stopped under it); the second finishes.
        let body = "echo run >> '\(marker.path)'\n[ \"$(wc -l < '\(marker.path)')\" -ge 2 ] || sleep 30\n"
        let harness = try await EngineHarness(tasks: StaticCatalog([Self.scriptTask(TriggerName.afterPublish, body: body)]))
        defer { harness.remove() }
        let runs = { (try? String(contentsOf: marker, encoding: .utf8))?.split(separator: "\n").count ?? 0 }
        try await harness.running {
            let sid = try await harness.login()
            #expect(try await harness.addAndPublish("web-1", sid: sid).status == 200)
            #expect(await eventually { runs() == 1 })
        }
        #expect(try harness.history().isEmpty, "an interrupted attempt is no failure: \((try? harness.history().map(\.output)) ?? [])")
        #expect(try harness.deliveries.pending().count == 1)
        try await harness.running {
            let succeeded = await eventually { (try? harness.history().map(\.result)) == [.succeeded] }
            // A failure says what the engine did instead (CI run 13 saw one run, not two, once).
            #expect(succeeded, "runs \(runs()); \(Self.describe(harness))")
        }
        #expect(runs() == 2, "\(Self.describe(harness))")
    }

    /// The history and the queue, for a failure's message.
    static func describe(_ harness: EngineHarness) -> String {
        let history = (try? harness.history().map { "\($0.result) attempt \($0.attempt): \($0.output)" }) ?? []
        let pending = (try? harness.deliveries.pending().map { "attempts \($0.attempts) not before \($0.planned.notBeforeMilliseconds)" }) ?? []
        return "history \(history), pending \(pending)"
    }

    @Test func withoutAnAfterPublishTaskNoRevisionIsReadAndTheCursorFollowsTheHead() async throws {
        let reads = Counter()
        let harness = try await EngineHarness(
            tasks: StaticCatalog([Self.scriptTask(TriggerName.beforePublish, body: "exit 0\n")]), journalReads: reads)
        defer { harness.remove() }
        try await harness.running {
            let sid = try await harness.login()
            for name in ["web-1", "web-2", "web-3"] { #expect(try await harness.addAndPublish(name, sid: sid).status == 200) }
            let head = try harness.store.head()?.number
            #expect(await eventually { (try? harness.deliveries.derivedRevision()) == head })
        }
        #expect(reads.value == 0, "revisions read with no After Publish task: \(reads.value)")
    }

    @Test func revisionsQueuedTogetherKeepATasksMinimumIntervalBetweenThem() async throws {
        var limits = EngineHarness.fastLimits
        limits.taskIntervalMinimumMilliseconds = 60_000
        let gate = Gate()
        // A standby: it queues and holds, so the planned starts stay to be read.
        let harness = try await EngineHarness(
            tasks: StaticCatalog([Self.scriptTask(TriggerName.afterPublish, body: "exit 0\n")]), limits: limits, active: Flag(false), journalGate: gate)
        defer { harness.remove() }
        try await harness.running {
            let sid = try await harness.login()
            #expect(try await harness.addAndPublish("web-1", sid: sid).status == 200)
            #expect(await eventually { gate.entered })
            // Held at web-1's revision until two more are published: the engine's next read takes them together.
            for name in ["web-2", "web-3"] { #expect(try await harness.addAndPublish(name, sid: sid).status == 200) }
            gate.open()
            #expect(await eventually { (try? harness.deliveries.pending().count) == 3 })
        }
        let starts = try harness.deliveries.pending().map(\.planned.notBeforeMilliseconds)
        #expect(starts.count == 3 && zip(starts, starts.dropFirst()).allSatisfy { $1 - $0 == 60_000 }, "\(starts)")
    }

    @Test func aPublishDoesNotWaitForTheEngineWhileItQueuesDeliveries() async throws {
        let gate = Gate()
        let harness = try await EngineHarness(
            tasks: StaticCatalog([
                Self.scriptTask(TriggerName.beforePublish, body: "exit 0\n"),
                Self.scriptTask(TriggerName.afterPublish, body: "exit 0\n", uid: "task-after"),
            ]), journalGate: gate)
        defer { harness.remove() }
        try await harness.running {
            let sid = try await harness.login()
            #expect(try await harness.addAndPublish("web-1", sid: sid).status == 200)
            // The engine reads web-1's revision to queue its After Publish, and is held there, on its actor.
            #expect(await eventually { gate.entered })
            let second = try await harness.addAndPublish("web-2", sid: sid)
            let heldThroughout = !gate.opened
            gate.open()
            #expect(second.status == 200, "\(second.body.canonicalString)")
            #expect(heldThroughout, "the publish (its Before Publish tasks) waited for the engine's journal read")
        }
    }

    @Test func aReceiverThatIsDownGetsRetriesThenADeadLetterWhilePublishesGoOn() async throws {
        let receiver = try await Receiver(mode: "fail")
        defer { receiver.stop() }
        let task = SmartTaskSpec(
            uid: "task-web", name: "notify", trigger: TriggerName.afterPublish,
            action: .sendWebRequest(.init(url: receiver.url, fingerprint: receiver.fingerprint, sharedSecret: receiver.secret, timeoutSeconds: 10)))
        let harness = try await EngineHarness(tasks: StaticCatalog([task]))
        defer { harness.remove() }
        try await harness.running {
            let sid = try await harness.login()
            #expect(try await harness.addAndPublish("web-1", sid: sid).status == 200)
            let dead = await eventually { (try? harness.history(ExecutionQuery(result: .deadLetter)).count) == 1 }
            #expect(dead)
            #expect(try await harness.addAndPublish("web-2", sid: sid).status == 200)
        }
        let deadEventID = try harness.history(ExecutionQuery(result: .deadLetter)).first?.eventID
        let attempts = try harness.history().filter { $0.eventID == deadEventID }
        #expect(attempts.map(\.attempt) == [3, 2, 1])
        #expect(attempts.map(\.result) == [.deadLetter, .failed, .failed])
        // The receiver's answer is recorded; on a loaded machine an attempt may fail before it (a time-out),
        // and says so instead.
        #expect(attempts.contains { $0.output.contains("HTTP 503") } && attempts.allSatisfy { !$0.output.isEmpty }, "\(attempts.map(\.output))")
        #expect(try harness.deliveries.pending().allSatisfy { $0.planned.eventID != attempts.first?.eventID })
    }

    @Test func theSharedSecretNeverReachesTheHistoryEvenWhenTheReceiverEchoesIt() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let task = SmartTaskSpec(
            uid: "task-web", name: "notify", trigger: TriggerName.beforePublish,
            action: .sendWebRequest(
                .init(url: receiver.url.replacingOccurrences(of: "/hook", with: "/echo"), fingerprint: receiver.fingerprint, sharedSecret: receiver.secret)),
            failOpen: true)
        let harness = try await EngineHarness(tasks: StaticCatalog([task]))
        defer { harness.remove() }
        let sid = try await harness.login()
        #expect(try await harness.addAndPublish("web-1", sid: sid).status == 200)
        let record = try #require(try harness.history().first)
        #expect(record.result == .failedOpen)
        #expect(record.output.contains("[shared-secret]"))
        #expect(!record.output.contains(receiver.secret))
    }

    @Test func sendMailWithoutARelayFailsWithAClearError() async throws {
        let task = SmartTaskSpec(
            uid: "task-mail", name: "mail ops", trigger: TriggerName.beforePublish,
            action: .sendMail(SmartTaskMail(recipients: ["ops@example.com"], senderEmail: "rampart@example.com", subject: "s", body: "b")),
            failOpen: false)
        let harness = try await EngineHarness(tasks: StaticCatalog([task]))
        defer { harness.remove() }
        let sid = try await harness.login()
        let reply = try await harness.addAndPublish("web-1", sid: sid)
        #expect(reply.status == 400)
        #expect(reply.body["message"]?.stringValue?.contains("send-mail needs an SMTP relay") == true)
    }

    @Test func showSmartTaskExecutionsPagesAndFiltersTheHistory() async throws {
        let harness = try await EngineHarness(tasks: StaticCatalog([Self.scriptTask(TriggerName.beforePublish, body: "exit 0\n")]))
        defer { harness.remove() }
        let sid = try await harness.login()
        for index in 0..<3 { #expect(try await harness.addAndPublish("web-\(index)", sid: sid).status == 200) }
        let page = await harness.call("show-smart-task-executions", ["limit": 2, "offset": 1, "trigger": "Before Publish"], sid: sid)
        #expect(page.status == 200)
        #expect(page.body["total"]?.intValue == 3)
        #expect(page.body["objects"]?.arrayValue?.count == 2)
        #expect(page.body["objects"]?.arrayValue?.first?["result"]?.stringValue == "succeeded")
        let none = await harness.call("show-smart-task-executions", ["result": "dead-letter"], sid: sid)
        #expect(none.body["total"]?.intValue == 0)
    }
}
