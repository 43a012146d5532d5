import Foundation
import GRDB
import ManagementModel

/// A log record with the sequence number its gateway gave it: what a gateway ships and what a
/// management server stores. (gateway, sequence) identifies a record, so a batch sent twice is
/// stored once.
public struct SequencedLogRecord: Codable, Sendable, Equatable {
    public var sequence: UInt64
    public var record: PolicyLogRecord
    public init(sequence: UInt64, record: PolicyLogRecord) {
        self.sequence = sequence
        self.record = record
    }
}

/// A stored record as a query returns it.
public struct StoredLogRecord: Sendable, Equatable {
    /// This store's own order (not the gateway's sequence).
    public var id: Int64
    public var gateway: String
    public var sequence: UInt64
    public var receivedAtMilliseconds: Int64
    public var record: PolicyLogRecord
}

/// What `show-logs` asks for. nil fields do not filter; time bounds are inclusive; `upToID` pins a
/// query to the records that existed when it started, so its pages do not shift as logs arrive.
public struct LogQuery: Sendable, Equatable {
    public var gateway: String?
    public var action: CompiledAction?
    /// A rule number, name or uid.
    public var rule: String?
    public var source: String?
    public var destination: String?
    public var destinationPort: Int?
    public var startMilliseconds: Int64?
    public var endMilliseconds: Int64?
    public var upToID: Int64?

    public init(
        gateway: String? = nil, action: CompiledAction? = nil, rule: String? = nil, source: String? = nil, destination: String? = nil,
        destinationPort: Int? = nil, startMilliseconds: Int64? = nil, endMilliseconds: Int64? = nil, upToID: Int64? = nil
    ) {
        self.gateway = gateway
        self.action = action
        self.rule = rule
        self.source = source
        self.destination = destination
        self.destinationPort = destinationPort
        self.startMilliseconds = startMilliseconds
        self.endMilliseconds = endMilliseconds
        self.upToID = upToID
    }
}

public enum LogStoreError: Error, Sendable, Equatable, CustomStringConvertible {
    case batchTooLarge(count: Int, max: Int)
    public var description: String {
        switch self {
        case .batchTooLarge(let count, let max): return "a log batch of \(count) records is larger than the limit of \(max)"
        }
    }
}

/// Logs in their own SQLite file (DIR/logs.sqlite, WAL), never synchronized by HA. On a management
/// server it holds what gateways sent (`append(_:receivedFrom:)`); on a gateway it is the outbox
/// (`appendLocal`, then `records(after:)` to ship). Commits use synchronous=NORMAL: a process crash
/// loses nothing, a power loss at most the last moments of logs, never the database.
public final class LogStore: Sendable {
    public static let fileName = "logs.sqlite"
    /// Records per append.
    public static let batchRecordsMax = 10_000
    /// Records kept; beyond it the oldest go first.
    public static let retainedRecordsMax: Int64 = 1_000_000

    let queue: DatabaseQueue
    public let path: String

    public convenience init(directory: URL) throws {
        try self.init(path: directory.appendingPathComponent(Self.fileName).path)
    }

    public init(path: String) throws {
        self.path = path
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, gateway TEXT NOT NULL, sequence INTEGER NOT NULL,
                        time INTEGER NOT NULL, received_at INTEGER NOT NULL, rule_uid TEXT NOT NULL, rule_number INTEGER NOT NULL,
                        rule_name TEXT NOT NULL, action TEXT NOT NULL, source TEXT NOT NULL, destination TEXT NOT NULL,
                        proto TEXT NOT NULL, dport INTEGER, origin TEXT NOT NULL, policy_revision INTEGER NOT NULL, hit_count INTEGER,
                        UNIQUE (gateway, sequence));
                    CREATE INDEX logs_time ON logs(time);
                    """)
        }
        try migrator.migrate(queue)
    }

    /// Stores records a gateway sent, under the gateway name the channel authenticated (not the one
    /// inside the records). Returns how many were new; records already stored are skipped.
    @discardableResult
    public func append(_ records: [SequencedLogRecord], receivedFrom gateway: String, receivedAtMilliseconds: Int64) throws -> Int {
        guard records.count <= Self.batchRecordsMax else { throw LogStoreError.batchTooLarge(count: records.count, max: Self.batchRecordsMax) }
        var inserted = 0
        try queue.inTransaction(.immediate) { db in
            for item in records {
                try Self.insert(item.record, gateway: gateway, sequence: item.sequence, receivedAt: receivedAtMilliseconds, ifNew: true, db)
                inserted += db.changesCount
            }
            try Self.prune(db)
            return .commit
        }
        return inserted
    }

    /// The outbox side: stores this gateway's own records under the next sequence numbers.
    @discardableResult
    public func appendLocal(_ records: [PolicyLogRecord], gateway: String, nowMilliseconds: Int64) throws -> [SequencedLogRecord] {
        guard records.count <= Self.batchRecordsMax else { throw LogStoreError.batchTooLarge(count: records.count, max: Self.batchRecordsMax) }
        // IMMEDIATE: the sequence read and the inserts are one step even with another process (the
        // agent and `test-packet`) appending to the same outbox.
        var out: [SequencedLogRecord] = []
        try queue.inTransaction(.immediate) { db in
            var next = UInt64(clamping: try Int64.fetchOne(db, sql: "SELECT MAX(sequence) FROM logs WHERE gateway = ?", arguments: [gateway]) ?? 0) + 1
            for record in records {
                try Self.insert(record, gateway: gateway, sequence: next, receivedAt: nowMilliseconds, ifNew: false, db)
                out.append(SequencedLogRecord(sequence: next, record: record))
                next += 1
            }
            try Self.prune(db)
            return .commit
        }
        return out
    }

    /// The highest sequence stored for a gateway (0 for none): where its next shipment starts.
    public func lastSequence(gateway: String) throws -> UInt64 {
        try queue.read { db in UInt64(clamping: try Int64.fetchOne(db, sql: "SELECT MAX(sequence) FROM logs WHERE gateway = ?", arguments: [gateway]) ?? 0) }
    }

    /// Records of `gateway` after `sequence`, in order, at most `limit`: the next batch to ship.
    public func records(gateway: String, after sequence: UInt64, limit: Int) throws -> [SequencedLogRecord] {
        try queue.read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM logs WHERE gateway = ? AND sequence > ? ORDER BY sequence LIMIT ?",
                arguments: [gateway, Int64(clamping: sequence), max(0, min(limit, Self.batchRecordsMax))]
            )
            .map { SequencedLogRecord(sequence: try $0.decodedUnsigned("sequence"), record: try Self.record(from: $0)) }
        }
    }

    /// Matching records, newest first, with paging; and how many match in all.
    public func query(_ query: LogQuery, offset: Int, limit: Int) throws -> (records: [StoredLogRecord], total: Int) {
        var conditions: [String] = []
        var arguments = StatementArguments()
        func add(_ condition: String, _ values: [any DatabaseValueConvertible]) {
            conditions.append(condition)
            arguments += StatementArguments(values)
        }
        if let gateway = query.gateway { add("gateway = ?", [gateway]) }
        if let action = query.action { add("action = ?", [action.rawValue]) }
        if let rule = query.rule {
            if let number = Int(rule) { add("rule_number = ?", [number]) } else { add("(rule_uid = ? OR rule_name = ?)", [rule, rule]) }
        }
        if let source = query.source { add("source = ?", [source]) }
        if let destination = query.destination { add("destination = ?", [destination]) }
        if let port = query.destinationPort { add("dport = ?", [port]) }
        if let start = query.startMilliseconds { add("time >= ?", [start]) }
        if let end = query.endMilliseconds { add("time <= ?", [end]) }
        if let upToID = query.upToID { add("id <= ?", [upToID]) }
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        return try queue.read { db in
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM logs \(whereClause)", arguments: arguments) ?? 0
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM logs \(whereClause) ORDER BY time DESC, id DESC LIMIT ? OFFSET ?",
                arguments: arguments + [max(0, limit), max(0, offset)])
            let records = try rows.map { row in
                StoredLogRecord(
                    id: try row.decoded("id", as: Int64.self), gateway: try row.decoded("gateway", as: String.self),
                    sequence: try row.decodedUnsigned("sequence"), receivedAtMilliseconds: try row.decoded("received_at", as: Int64.self),
                    record: try Self.record(from: row))
            }
            return (records, total)
        }
    }

    /// The newest record id (0 when empty): a query started now sees records up to it.
    public func lastID() throws -> Int64 {
        try queue.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM logs") ?? 0 }
    }

    /// `ifNew`: a record already stored under (gateway, sequence) is skipped, not an error.
    static func insert(_ record: PolicyLogRecord, gateway: String, sequence: UInt64, receivedAt: Int64, ifNew: Bool, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT \(ifNew ? "OR IGNORE " : "")INTO logs (gateway, sequence, time, received_at, rule_uid, rule_number, rule_name, action, source,
                    destination, proto, dport, origin, policy_revision, hit_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
            arguments: [
                gateway, Int64(clamping: sequence), record.timeMilliseconds, receivedAt, record.ruleUID, record.ruleNumber,
                record.ruleName, record.action.rawValue, record.source, record.destination, record.proto,
                record.destinationPort, record.origin, Int64(clamping: record.policyRevision), record.hitCount,
            ])
    }

    static func prune(_ db: Database) throws {
        try db.execute(sql: "DELETE FROM logs WHERE id <= (SELECT MAX(id) FROM logs) - ?", arguments: [retainedRecordsMax])
    }

    /// A stored row; a damaged or crafted file throws `StoreError.undecodable`, never traps.
    static func record(from row: Row) throws -> PolicyLogRecord {
        PolicyLogRecord(
            timeMilliseconds: try row.decoded("time", as: Int64.self), gatewayName: try row.decoded("gateway", as: String.self),
            ruleUID: try row.decoded("rule_uid", as: String.self), ruleNumber: try row.decoded("rule_number", as: Int.self),
            ruleName: try row.decoded("rule_name", as: String.self),
            action: CompiledAction(rawValue: try row.decoded("action", as: String.self)) ?? .drop, source: try row.decoded("source", as: String.self),
            destination: try row.decoded("destination", as: String.self), proto: try row.decoded("proto", as: String.self),
            destinationPort: try row.decoded("dport", as: Int?.self), origin: try row.decoded("origin", as: String.self),
            policyRevision: try row.decodedUnsigned("policy_revision"), hitCount: try row.decoded("hit_count", as: Int?.self))
    }
}
