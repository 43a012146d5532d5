import Foundation
import GRDB
import ManagementModel

/// A delivery waiting in the node-local queue.
public struct QueuedDelivery: Sendable, Equatable {
    public var id: Int64
    public var planned: PlannedDelivery
    /// Attempts made so far.
    public var attempts: Int
    public var createdMilliseconds: Int64
}

/// One execution of a task, as the history keeps it (no secret is ever part of it).
public struct ExecutionRecord: Sendable, Equatable {
    public enum Result: String, Sendable, CaseIterable {
        /// The action succeeded.
        case succeeded
        /// The action failed; it will be tried again.
        case failed
        /// The last attempt failed: the delivery is given up.
        case deadLetter = "dead-letter"
        /// A before-publish action failed without fail-open: the publish was refused.
        case vetoed
        /// A before-publish action failed with fail-open: the publish went on.
        case failedOpen = "failed-open"
        /// The task was deleted or disabled before its delivery.
        case skipped
        /// Dropped from a standby's held queue by the retention bounds before any promotion.
        case expired
    }

    public var id: Int64
    public var eventID: String
    public var taskUID: String
    public var taskName: String
    public var trigger: String
    public var startedMilliseconds: Int64
    public var durationMilliseconds: Int64
    public var result: Result
    public var attempt: Int
    /// The bounded output: a script's stdout and stderr, a receiver's status and answer, or the error.
    public var output: String

    public init(
        id: Int64 = 0, eventID: String, taskUID: String, taskName: String, trigger: String, startedMilliseconds: Int64, durationMilliseconds: Int64,
        result: Result, attempt: Int, output: String
    ) {
        self.id = id
        self.eventID = eventID
        self.taskUID = taskUID
        self.taskName = taskName
        self.trigger = trigger
        self.startedMilliseconds = startedMilliseconds
        self.durationMilliseconds = durationMilliseconds
        self.result = result
        self.attempt = attempt
        self.output = output
    }
}

/// What `show-smart-task-executions` asks for: nil fields do not filter.
public struct ExecutionQuery: Sendable, Equatable {
    /// A task's name or uid.
    public var task: String?
    public var trigger: String?
    public var result: ExecutionRecord.Result?
    public var offset = 0
    public var limit = 50

    public init(task: String? = nil, trigger: String? = nil, result: ExecutionRecord.Result? = nil, offset: Int = 0, limit: Int = 50) {
        self.task = task
        self.trigger = trigger
        self.result = result
        self.offset = offset
        self.limit = limit
    }
}

/// The node's SmartTasks database (DIR/smarttasks.sqlite, WAL, never synchronized): the queue of pending
/// deliveries, the history of executions, and the journal cursor (the last revision whose After
/// Publish this node derived).
public final class DeliveryStore: Sendable {
    public static let fileName = "smarttasks.sqlite"

    let queue: DatabaseQueue
    let limits: SmartTaskLimits

    public init(path: String, limits: SmartTaskLimits = SmartTaskLimits()) throws {
        self.limits = limits
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE, task_uid TEXT NOT NULL,
                        task_name TEXT NOT NULL, trigger TEXT NOT NULL, payload TEXT NOT NULL, attempts INTEGER NOT NULL,
                        not_before INTEGER NOT NULL, created_at INTEGER NOT NULL);
                    CREATE INDEX deliveries_due ON deliveries(not_before);
                    CREATE TABLE executions (id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL, task_uid TEXT NOT NULL,
                        task_name TEXT NOT NULL, trigger TEXT NOT NULL, started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL,
                        result TEXT NOT NULL, attempt INTEGER NOT NULL, output TEXT NOT NULL);
                    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                    """)
        }
        // The minimum interval asks for one task's latest pending start at every revision derived:
        // a lookup, not a scan of a queue that grows while a receiver is slow.
        migrator.registerMigration("v2") { db in
            try db.execute(sql: "CREATE INDEX deliveries_task_start ON deliveries(task_uid, not_before)")
        }
        try migrator.migrate(queue)
    }

    // MARK: queue

    /// Queues deliveries; one whose event id is queued already (the same event derived again) is skipped.
    /// With `derivedRevision`, the journal cursor moves in the same transaction (a crash neither loses
    /// nor repeats a revision's deliveries). Returns how many were new.
    @discardableResult
    public func enqueue(_ deliveries: [PlannedDelivery], nowMilliseconds: Int64, derivedRevision: UInt64? = nil) throws -> Int {
        var inserted = 0
        try queue.inTransaction(.immediate) { db in
            for delivery in deliveries {
                try db.execute(
                    sql: """
                        INSERT OR IGNORE INTO deliveries (event_id, task_uid, task_name, trigger, payload, attempts, not_before, created_at)
                        VALUES (?, ?, ?, ?, ?, 0, ?, ?)
                        """,
                    arguments: [
                        delivery.eventID, delivery.taskUID, delivery.taskName, delivery.trigger, delivery.payload, delivery.notBeforeMilliseconds,
                        nowMilliseconds,
                    ])
                inserted += db.changesCount
            }
            if let derivedRevision {
                try db.execute(
                    sql: "INSERT OR REPLACE INTO settings (key, value) VALUES ('derived-revision', ?)", arguments: [String(derivedRevision)])
            }
            return .commit
        }
        return inserted
    }

    /// Drops pending deliveries beyond the queue's bounds (oldest first, and older than the age limit),
    /// recording each as expired. Returns how many went.
    @discardableResult
    public func applyRetention(nowMilliseconds: Int64) throws -> Int {
        var dropped: [QueuedDelivery] = []
        try queue.inTransaction(.immediate) { db in
            let tooOld = try Self.deliveries(
                db, sql: "SELECT * FROM deliveries WHERE created_at < ? ORDER BY id", [nowMilliseconds - limits.queuedAgeMaxMilliseconds])
            let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM deliveries") ?? 0
            let excess = max(count - tooOld.count - limits.queuedDeliveriesMax, 0)
            let oldest = try Self.deliveries(
                db, sql: "SELECT * FROM deliveries WHERE created_at >= ? ORDER BY id LIMIT ?", [nowMilliseconds - limits.queuedAgeMaxMilliseconds, excess])
            dropped = tooOld + oldest
            for delivery in dropped {
                try db.execute(sql: "DELETE FROM deliveries WHERE id = ?", arguments: [delivery.id])
                try insertExecution(
                    ExecutionRecord(
                        eventID: delivery.planned.eventID, taskUID: delivery.planned.taskUID, taskName: delivery.planned.taskName,
                        trigger: delivery.planned.trigger, startedMilliseconds: nowMilliseconds, durationMilliseconds: 0, result: .expired,
                        attempt: delivery.attempts, output: "dropped by the queue's retention bounds"), db)
            }
            return .commit
        }
        return dropped.count
    }

    /// Pending deliveries due at `nowMilliseconds`, oldest first.
    public func due(nowMilliseconds: Int64, limit: Int) throws -> [QueuedDelivery] {
        try queue.read { db in
            try Self.deliveries(db, sql: "SELECT * FROM deliveries WHERE not_before <= ? ORDER BY not_before, id LIMIT ?", [nowMilliseconds, limit])
        }
    }

    /// Every pending delivery (tests, and what a standby holds).
    public func pending() throws -> [QueuedDelivery] {
        try queue.read { db in try Self.deliveries(db, sql: "SELECT * FROM deliveries ORDER BY id", []) }
    }

    /// The latest planned start of each of `tasks`' pending deliveries (for the minimum interval).
    public func lastStarts(tasks: [String]) throws -> [String: Int64] {
        try queue.read { db in
            let statement = try db.cachedStatement(sql: "SELECT MAX(not_before) FROM deliveries WHERE task_uid = ?")
            var out: [String: Int64] = [:]
            for task in tasks { out[task] = try Int64.fetchOne(statement, arguments: [task]) }
            return out
        }
    }

    /// Records an attempt's execution and settles its delivery: done (removed), or tried again at `retryAt`.
    public func settle(_ delivery: QueuedDelivery, execution: ExecutionRecord, retryAtMilliseconds: Int64?) throws {
        try queue.inTransaction(.immediate) { db in
            if let retryAtMilliseconds {
                try db.execute(
                    sql: "UPDATE deliveries SET attempts = ?, not_before = ? WHERE id = ?",
                    arguments: [execution.attempt, retryAtMilliseconds, delivery.id])
            } else {
                try db.execute(sql: "DELETE FROM deliveries WHERE id = ?", arguments: [delivery.id])
            }
            try insertExecution(execution, db)
            return .commit
        }
    }

    static func deliveries(_ db: Database, sql: String, _ arguments: StatementArguments) throws -> [QueuedDelivery] {
        try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
            QueuedDelivery(
                id: row["id"],
                planned: PlannedDelivery(
                    eventID: row["event_id"], taskUID: row["task_uid"], taskName: row["task_name"], trigger: row["trigger"],
                    payload: row["payload"], notBeforeMilliseconds: row["not_before"]),
                attempts: row["attempts"], createdMilliseconds: row["created_at"])
        }
    }

    // MARK: history

    /// Records one execution (a before-publish one, or one outside the queue).
    @discardableResult
    public func record(_ execution: ExecutionRecord) throws -> ExecutionRecord {
        try queue.inTransaction(.immediate) { db in
            try insertExecution(execution, db)
            return .commit
        }
        var stored = execution
        stored.id = try queue.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM executions") ?? 0 }
        return stored
    }

    func insertExecution(_ execution: ExecutionRecord, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT INTO executions (event_id, task_uid, task_name, trigger, started_at, duration_ms, result, attempt, output)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                execution.eventID, execution.taskUID, execution.taskName, execution.trigger, execution.startedMilliseconds,
                execution.durationMilliseconds, execution.result.rawValue, execution.attempt,
                OutputBounds.truncated(execution.output, bytesMax: limits.outputBytesMax),
            ])
        try db.execute(
            sql: "DELETE FROM executions WHERE id <= (SELECT MAX(id) FROM executions) - ?", arguments: [limits.historyEntriesMax])
    }

    /// A page of the history, newest first, and the total matching.
    public func executions(_ query: ExecutionQuery) throws -> (records: [ExecutionRecord], total: Int) {
        var conditions: [String] = []
        var arguments: [(any DatabaseValueConvertible)?] = []
        if let task = query.task {
            conditions.append("(task_name = ? OR task_uid = ?)")
            arguments += [task, task]
        }
        if let trigger = query.trigger {
            conditions.append("trigger = ?")
            arguments.append(trigger)
        }
        if let result = query.result {
            conditions.append("result = ?")
            arguments.append(result.rawValue)
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try queue.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM executions \(filter)", arguments: StatementArguments(arguments)) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM executions \(filter) ORDER BY id DESC LIMIT ? OFFSET ?",
                arguments: StatementArguments(arguments + [query.limit, query.offset]))
            let records = rows.compactMap { row -> ExecutionRecord? in
                guard let result = ExecutionRecord.Result(rawValue: row["result"]) else { return nil }
                return ExecutionRecord(
                    id: row["id"], eventID: row["event_id"], taskUID: row["task_uid"], taskName: row["task_name"], trigger: row["trigger"],
                    startedMilliseconds: row["started_at"], durationMilliseconds: row["duration_ms"], result: result, attempt: row["attempt"],
                    output: row["output"])
            }
            return (records, total)
        }
    }

    // MARK: journal cursor

    /// The last revision whose After Publish this node derived (nil: never; the engine starts at the head).
    public func derivedRevision() throws -> UInt64? {
        try queue.read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = 'derived-revision'").flatMap(UInt64.init) }
    }

    public func setDerivedRevision(_ number: UInt64) throws {
        try queue.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO settings (key, value) VALUES ('derived-revision', ?)", arguments: [String(number)])
        }
    }
}

/// Output kept within a byte bound, cut at a character boundary, with a mark when cut.
public enum OutputBounds {
    public static func truncated(_ text: String, bytesMax: Int) -> String {
        guard text.utf8.count > bytesMax else { return text }
        var cut = ""
        var bytes = 0
        for character in text {
            let size = character.utf8.count
            guard bytes + size <= bytesMax else { break }
            cut.append(character)
            bytes += size
        }
        return cut + "\n[output truncated at \(bytesMax) bytes]"
    }
}
