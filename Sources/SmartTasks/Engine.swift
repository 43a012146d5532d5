import Foundation
import Logging
import ManagementModel
import ManagementService
import ServiceLifecycle
import Store

/// The journal the engine derives After Publish from: this node's revisions, published here or applied
/// from the active.
public struct JournalSource: Sendable {
    public var head: @Sendable () throws -> UInt64?
    public var revisions: @Sendable (_ from: UInt64, _ limit: Int) throws -> [Revision]

    public init(head: @escaping @Sendable () throws -> UInt64?, revisions: @escaping @Sendable (UInt64, Int) throws -> [Revision]) {
        self.head = head
        self.revisions = revisions
    }

    public init(store: ManagementStore) {
        self.init(head: { try store.head()?.number }, revisions: { try store.revisions(from: $0, limit: $1) })
    }
}

/// Sends a `send-mail` action through the configured SMTP relay (nil in the engine: none configured).
public typealias MailSender = @Sendable (_ mail: SmartTaskSpec.Mail, _ payload: String, _ timeoutSeconds: Int) async -> ActionOutcome

/// What the engine runs on besides its store: this node's name and role, its clock and randomness.
public struct EngineEnvironment: Sendable {
    public var serverName: String
    public var limits: SmartTaskLimits
    /// Whether this node is the active (delivers); a standby only queues and holds.
    public var isActive: @Sendable () -> Bool
    public var clockMilliseconds: @Sendable () -> Int64
    /// A number in 0..<1, for retry jitter.
    public var random: @Sendable () -> Double

    public init(
        serverName: String, limits: SmartTaskLimits = SmartTaskLimits(), isActive: @escaping @Sendable () -> Bool,
        clockMilliseconds: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.serverName = serverName
        self.limits = limits
        self.isActive = isActive
        self.clockMilliseconds = clockMilliseconds
        self.random = random
    }
}

/// The delivery engine: every node derives deliveries (After Publish from its journal, the other
/// triggers from its event bus) into its own durable queue; only the active delivers, a standby holds
/// them (bounded by count and age) so that after a promotion it delivers what the old active may not
/// have, under the same event ids. Before Publish runs inline (`beforePublish`). Each execution goes
/// to the history and onto the event bus.
public actor SmartTaskEngine: Service, SmartTaskPort {
    public static let bufferedEventsMax = 4_096
    /// Deliveries started per poll at most.
    static let claimsPerPollMax = 64

    let store: DeliveryStore
    let catalog: any SmartTaskCatalog
    let journal: JournalSource
    let events: EventBus<ManagementEvent>
    let deliveries: AsyncStream<EventBus<ManagementEvent>.Delivery>
    let environment: EngineEnvironment
    let scripts: ScriptRunner
    let web: WebRequestRunner
    let mail: MailSender?
    let logger: Logger
    /// The actor's own thread: its work is synchronous SQLite and payload building (see `StoreThread`).
    let thread: StoreThread
    public nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
    var sync = DeliveryPlanner.SyncMemory()
    /// Tasks with a delivery running: one at a time per task, so a task's deliveries keep their order.
    var tasksInFlight: Set<String> = []
    var lastRetentionMilliseconds: Int64 = 0

    /// Subscribes to `events` at once, so what happens before `run` is queued too.
    public init(
        store: DeliveryStore, catalog: any SmartTaskCatalog, journal: JournalSource, events: EventBus<ManagementEvent>, environment: EngineEnvironment,
        mail: MailSender? = nil, logger: Logger
    ) throws {
        self.store = store
        self.catalog = catalog
        self.journal = journal
        self.events = events
        self.deliveries = try events.subscribe(bufferedEventsMax: Self.bufferedEventsMax)
        self.environment = environment
        self.scripts = ScriptRunner(outputBytesMax: environment.limits.outputBytesMax)
        self.web = WebRequestRunner(outputBytesMax: environment.limits.outputBytesMax)
        self.mail = mail
        self.logger = logger
        thread = StoreThread(name: "smarttasks")
        // A node's first start begins at its head, now: a revision published before the first poll is
        // derived like any later one (history before this node ran SmartTasks fires nothing).
        if try store.derivedRevision() == nil, let head = try journal.head() { try store.setDerivedRevision(head) }
    }

    deinit { thread.stop() }

    /// Revisions read from the journal at once when deriving After Publish.
    static let derivedRevisionsPerRead = 4

    nonisolated var limits: SmartTaskLimits { environment.limits }
    nonisolated var now: Int64 { environment.clockMilliseconds() }

    public nonisolated func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.consumeEvents() }
                group.addTask { await self.pollLoop() }
            }
        }
    }

    // MARK: queueing

    nonisolated func consumeEvents() async {
        for await delivery in deliveries {
            switch delivery {
            case .event(let event, _): await enqueue(event)
            case .lost(let count): logger.error("smart tasks fell behind the event bus: \(count) event(s) were not queued")
            }
        }
    }

    /// Queues the deliveries an event of the bus makes (on any node: a standby holds them).
    func enqueue(_ event: ManagementEvent) async {
        let at = now
        for firing in DeliveryPlanner.firings(for: event, sync: &sync, observedAtMilliseconds: at) { await enqueue(firing) }
    }

    func enqueue(_ firing: TriggerFiring) async {
        let tasks = await catalog.tasks(for: firing.trigger)
        do {
            guard !tasks.isEmpty else { return }
            let planned = DeliveryPlanner.deliveries(
                for: firing, tasks: tasks, server: environment.serverName, nowMilliseconds: now,
                lastStartMilliseconds: try store.lastStarts(tasks: tasks.map(\.uid)), limits: limits)
            try store.enqueue(planned, nowMilliseconds: now)
        } catch {
            logger.error("smart tasks: cannot queue \(firing.trigger): \(error)")
        }
    }

    /// After Publish for every revision of the journal past the cursor (a fresh node starts at its head;
    /// revisions older than the queue's age bound, as a full sync brings, fire nothing).
    func deriveFromJournal() async {
        do {
            guard let head = try journal.head() else { return }
            guard let cursor = try store.derivedRevision(), cursor <= head else {
                try store.setDerivedRevision(head)
                return
            }
            guard cursor < head else { return }
            // Without an After Publish task nothing is read: a revision may hold 100,000 changes, and
            // decoding it and building its payload would cost a standby applying it as much again.
            let tasks = await catalog.tasks(for: TriggerName.afterPublish)
            guard !tasks.isEmpty else {
                try store.setDerivedRevision(head)
                return
            }
            var next = cursor + 1
            while next <= head {
                // A few at a time: each may be tens of megabytes.
                let batch = try journal.revisions(next, Self.derivedRevisionsPerRead)
                guard let last = batch.last else { break }
                try enqueueAfterPublish(of: batch, tasks: tasks)
                next = last.number + 1
            }
        } catch {
            logger.error("smart tasks: cannot read the journal: \(error)")
        }
    }

    /// The After Publish deliveries of consecutive revisions, queued in one transaction with the cursor
    /// moved past the last (one too old for the queue fires nothing).
    func enqueueAfterPublish(of revisions: [Revision], tasks: [SmartTaskSpec]) throws {
        guard let last = revisions.last else { return }
        let at = now
        var lastStarts = try store.lastStarts(tasks: tasks.map(\.uid))
        var planned: [PlannedDelivery] = []
        for revision in revisions where revision.publishedAtMilliseconds >= at - limits.queuedAgeMaxMilliseconds {
            let deliveries = DeliveryPlanner.deliveries(
                for: DeliveryPlanner.afterPublish(revision), tasks: tasks, server: environment.serverName, nowMilliseconds: at,
                lastStartMilliseconds: lastStarts, limits: limits)
            for delivery in deliveries { lastStarts[delivery.taskUID] = delivery.notBeforeMilliseconds }
            planned += deliveries
        }
        try store.enqueue(planned, nowMilliseconds: at, derivedRevision: last.number)
    }

    // MARK: delivering

    nonisolated func pollLoop() async {
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled {
                for claimed in await claimDue() {
                    group.addTask { await self.deliver(claimed) }
                }
                try? await Task.sleep(for: .milliseconds(environment.limits.pollIntervalMilliseconds))
            }
        }
    }

    /// One poll: derive from the journal, keep the queue within its bounds, and on the active claim
    /// the deliveries due (at most one per task at a time).
    func claimDue() async -> [QueuedDelivery] {
        await deriveFromJournal()
        do {
            if now - lastRetentionMilliseconds >= 1_000 {
                lastRetentionMilliseconds = now
                try store.applyRetention(nowMilliseconds: now)
            }
            guard environment.isActive() else { return [] }
            var claimed: [QueuedDelivery] = []
            for delivery in try store.due(nowMilliseconds: now, limit: Self.claimsPerPollMax)
            where !tasksInFlight.contains(delivery.planned.taskUID) {
                tasksInFlight.insert(delivery.planned.taskUID)
                claimed.append(delivery)
            }
            return claimed
        } catch {
            logger.error("smart tasks: cannot read the queue: \(error)")
            return []
        }
    }

    /// One attempt of a queued delivery, settled in the store: done, tried again later, or a dead letter.
    func deliver(_ delivery: QueuedDelivery) async {
        defer { tasksInFlight.remove(delivery.planned.taskUID) }
        let planned = delivery.planned
        let attempt = delivery.attempts + 1
        let started = now
        let clock = ContinuousClock.now
        var retryAt: Int64?
        let result: ExecutionRecord.Result
        let output: String
        if let task = await catalog.task(uid: planned.taskUID), task.enabled {
            let outcome = await perform(task, payload: planned.payload, eventID: planned.eventID)
            // The engine is stopping: the attempt was cut short, not answered. Left unsettled, the
            // delivery stays due and the next start (or the next active) makes it again: at least once.
            if Task.isCancelled {
                logger.info("smart tasks: stopping: the delivery of \(planned.taskName) (\(planned.trigger)) was interrupted and stays queued")
                return
            }
            output = outcome.output
            if outcome.succeeded {
                result = .succeeded
            } else if case .retry(let at) = DeliveryPlanner.afterFailure(attempt: attempt, nowMilliseconds: now, random: environment.random(), limits: limits) {
                (result, retryAt) = (.failed, at)
            } else {
                result = .deadLetter
            }
        } else {
            (result, output) = (.skipped, "the task was deleted or disabled before this delivery")
        }
        let execution = ExecutionRecord(
            eventID: planned.eventID, taskUID: planned.taskUID, taskName: planned.taskName, trigger: planned.trigger, startedMilliseconds: started,
            durationMilliseconds: Self.milliseconds(ContinuousClock.now - clock), result: result, attempt: attempt, output: output)
        do {
            try store.settle(delivery, execution: execution, retryAtMilliseconds: retryAt)
        } catch {
            logger.error("smart tasks: cannot record the delivery of \(planned.taskName): \(error)")
        }
        announce(execution)
    }

    /// Runs a task's action on a payload with its time-out. Outputs never carry the task's secret.
    nonisolated func perform(_ task: SmartTaskSpec, payload: String, eventID: String) async -> ActionOutcome {
        let timeout = task.timeoutSeconds(limits: limits)
        var outcome: ActionOutcome
        switch task.action {
        case .sendWebRequest(let request):
            outcome = await web.send(request, payload: payload, eventID: eventID, timestampSeconds: now / 1000, timeoutSeconds: timeout)
            if let secret = request.sharedSecret, !secret.isEmpty {
                outcome.output = outcome.output.replacingOccurrences(of: secret, with: "[shared-secret]")
            }
        case .runScript(let script):
            outcome = await scripts.run(
                script, payload: payload, timeoutSeconds: timeout,
                environment: ["RAMPART_EVENT_ID": eventID, "RAMPART_TRIGGER": task.trigger, "RAMPART_SMART_TASK": task.name])
        case .sendMail(let message):
            guard let mail else { return ActionOutcome(succeeded: false, output: MailRelayClient.notConfigured.description) }
            outcome = await mail(message, payload, timeout)
        }
        return outcome
    }

    /// send-mail through `relay`: the task's body, then the trigger's payload (JSON) below it.
    public static func mailSender(relay: MailRelayAddress) -> MailSender {
        { mail, payload, timeoutSeconds in
            let client = MailRelayClient(relay: relay, timeoutSeconds: Int64(timeoutSeconds))
            do {
                try await client.send(mail, body: mail.body + "\n\n" + payload)
                return ActionOutcome(
                    succeeded: true,
                    output: "sent through \(relay) to \(mail.recipients.count + mail.ccRecipients.count + mail.bccRecipients.count) recipient(s)")
            } catch {
                return ActionOutcome(succeeded: false, output: "send-mail through \(relay) failed: \(error)")
            }
        }
    }

    nonisolated func announce(_ execution: ExecutionRecord) {
        events.publish(
            .smartTaskExecuted(
                SmartTaskExecuted(
                    task: execution.taskName, trigger: execution.trigger, eventID: execution.eventID, result: execution.result.rawValue,
                    attempt: execution.attempt, durationMilliseconds: execution.durationMilliseconds)))
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }

    // MARK: Before Publish

    /// Runs the Before Publish tasks one after the other, each with its time-out: the first that fails
    /// without fail-open refuses the publish with its message; one with fail-open is recorded and the
    /// publish goes on. Off the engine's actor: a publish never waits for deliveries being queued or settled.
    public nonisolated func beforePublish(_ context: BeforePublishContext) async -> BeforePublishVerdict {
        let tasks = await catalog.tasks(for: TriggerName.beforePublish).filter(\.enabled)
        guard !tasks.isEmpty else { return .proceed }
        let firing = DeliveryPlanner.beforePublish(
            sessionUID: context.sessionUID, sessionName: context.sessionName, user: context.user, changes: context.changes, attemptMilliseconds: now)
        for task in tasks {
            let eventID = DeliveryPlanner.eventID(taskUID: task.uid, trigger: firing.trigger, identity: firing.identity)
            let payload = DeliveryPlanner.payload(firing, task: task, eventID: eventID, server: environment.serverName, nowMilliseconds: now)
            let started = now
            let clock = ContinuousClock.now
            let outcome = await perform(task, payload: payload.canonicalString, eventID: eventID)
            let result: ExecutionRecord.Result = outcome.succeeded ? .succeeded : task.failOpen ? .failedOpen : .vetoed
            let execution = ExecutionRecord(
                eventID: eventID, taskUID: task.uid, taskName: task.name, trigger: firing.trigger, startedMilliseconds: started,
                durationMilliseconds: Self.milliseconds(ContinuousClock.now - clock), result: result, attempt: 1, output: outcome.output)
            do { try store.record(execution) } catch { logger.error("smart tasks: cannot record \(task.name): \(error)") }
            announce(execution)
            if result == .vetoed { return .refused(task: task.name, message: Self.vetoMessage(outcome.output)) }
        }
        return .proceed
    }

    /// The action's message as an API error carries it: its last non-empty line (a script's own reason), bounded.
    static func vetoMessage(_ output: String) -> String {
        let lines = output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let message = lines.last ?? "the action failed"
        return OutputBounds.truncated(message, bytesMax: 512)
    }

    // MARK: history

    public nonisolated func executions(task: String?, trigger: String?, result: String?, offset: Int, limit: Int) async throws -> (
        items: [JSONValue], total: Int
    ) {
        let parsedResult = result.flatMap(ExecutionRecord.Result.init(rawValue:))
        guard result == nil || parsedResult != nil else { return ([], 0) }
        let (records, total) = try store.executions(ExecutionQuery(task: task, trigger: trigger, result: parsedResult, offset: offset, limit: limit))
        return (records.map(Self.render), total)
    }

    public static func render(_ record: ExecutionRecord) -> JSONValue {
        .object([
            "id": .int(record.id), "event-id": .string(record.eventID),
            "smart-task": .object(["uid": .string(record.taskUID), "name": .string(record.taskName)]), "trigger": .string(record.trigger),
            "start-time": Renderer.timestamp(record.startedMilliseconds), "duration-ms": .int(record.durationMilliseconds),
            "result": .string(record.result.rawValue), "attempt": .int(Int64(record.attempt)), "output": .string(record.output),
        ])
    }
}
