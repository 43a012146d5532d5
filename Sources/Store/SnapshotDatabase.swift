import Foundation
import GRDB
import ManagementModel

/// Full-sync snapshots as database pages: the active copies its database file (SQLite's backup API)
/// at one head, without this server's own tables; the standby checks the copy and puts it in place of
/// its database, as a whole (`installSnapshot`). Shipping pages instead of replaying the journal
/// means the standby parses and re-applies nothing: a full sync costs what copying the file costs.
extension ManagementStore {
    /// Tables that are each server's own and never travel in a snapshot (DESIGN.md §3, "what is not
    /// synchronized"): `settings` holds the HA hard state, the epoch term, the server uid and the
    /// revocation list cache; `sessions` and `session_changes` are unpublished work and logins.
    public static let nodeLocalTables = ["settings", "sessions", "session_changes"]

    /// Begins a read transaction on a connection of its own: the database as this moment, however long
    /// the copy takes and whatever is committed meanwhile (WAL). Cheap: call it where the head must not
    /// move (the HA runtime's lock), copy later (`DatabaseSnapshotSource.copy`).
    public func openSnapshotSource() throws -> DatabaseSnapshotSource {
        try DatabaseSnapshotSource(path: path)
    }

    /// Replaces the whole published database by the snapshot file at `snapshotPath` (made by
    /// `DatabaseSnapshotSource.copy`, made durable by the caller), after checking it: the same schema,
    /// revisions numbered from 1 and chained, and whatever `check` asks of its facts (head, epochs).
    /// This server's settings (its HA hard state among them) are carried into the snapshot first, so
    /// they survive; unpublished sessions are dropped (drafts made against content that is gone).
    ///
    /// The snapshot file itself becomes the database (renamed over it: no page is copied again), with
    /// every other use of this store waiting meanwhile. When another connection has the database open
    /// (a backup, say: its write-ahead log must never meet the new file), the pages are copied into the
    /// database instead, in one durable transaction. Either way a crash leaves the old database or the
    /// new one, never a mix; a refused or failed install changes nothing here. Returns how it was done.
    @discardableResult
    public func installSnapshot(at snapshotPath: String, check: (SnapshotFacts) throws -> Void) throws -> SnapshotInstall {
        defer { countWholeDatabaseChange() }
        return try exclusively { live in
            try Self.prepareSnapshot(at: snapshotPath, settings: try live.read { try Row.fetchAll($0, sql: "SELECT key, value FROM settings") }, check: check)
            try live.close()
            guard !FileManager.default.fileExists(atPath: path + "-wal") else {
                live = try Self.open(path)
                try Self.copyPages(of: snapshotPath, into: live)
                return .pagesCopied
            }
            let renamed = Result { try Self.rename(snapshotPath, over: path) }
            live = try Self.reopen(path)
            try renamed.get()
            return .fileReplaced
        }
    }

    public enum SnapshotInstall: Sendable {
        /// The snapshot file became the database file.
        case fileReplaced
        /// Another connection had the database open: the snapshot's pages were copied into it.
        case pagesCopied
    }

    /// The connection again after the file was closed for a swap. A server cannot go on without its
    /// database: if even a second attempt fails it stops here, and its next start opens the file in place
    /// (the old database, or the whole new one).
    static func reopen(_ path: String) throws -> DatabaseQueue {
        if let connection = try? open(path) { return connection }
        do {
            return try open(path)
        } catch {
            preconditionFailure("the management database \(path) cannot be opened again after a full-sync install: \(error)")
        }
    }

    /// Checks the snapshot and writes this server's `settings` into it, durably.
    static func prepareSnapshot(at snapshotPath: String, settings: [Row], check: (SnapshotFacts) throws -> Void) throws {
        let snapshot = try DatabaseQueue(path: snapshotPath)
        defer { try? snapshot.close() }
        try snapshot.writeWithoutTransaction { db in
            let migrations = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid")
            guard migrations == migrator.migrations else {
                throw StoreError.undecodable("the snapshot's schema \(migrations) is not this server's \(migrator.migrations)")
            }
            if let problem = try journalLinkProblem(db) { throw StoreError.journal(problem) }
            try check(try SnapshotFacts(db))
            // A rollback-journal commit with synchronous=FULL (SQLite's default): durable when it returns.
            try db.inTransaction {
                try db.execute(sql: "DELETE FROM settings")
                for row in settings {
                    try db.execute(
                        sql: "INSERT INTO settings (key, value) VALUES (?, ?)",
                        arguments: [try row.decoded("key", as: String.self), try row.decoded("value", as: String.self)])
                }
                return .commit
            }
        }
    }

    /// The snapshot's pages into the live database in one durable transaction; the checkpoint of those
    /// pages into the database file is left to `checkpoint()`, off the caller's path.
    static func copyPages(of snapshotPath: String, into live: DatabaseQueue) throws {
        let snapshot = try DatabaseQueue(path: snapshotPath)
        defer { try? snapshot.close() }
        try live.writeWithoutTransaction { target in
            try target.execute(sql: "PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0")
            defer { try? target.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 1000") }
            try snapshot.inDatabase { source in try source.backup(to: target) }
        }
    }

    /// rename(2), then fsync of the directory so the new name survives a power loss.
    static func rename(_ source: String, over destination: String) throws {
        guard Foundation.rename(source, destination) == 0 else {
            throw StoreError.io("cannot rename \(source) to \(destination): \(String(cString: strerror(errno)))")
        }
        let directory = (destination as NSString).deletingLastPathComponent
        let descriptor = Foundation.open(directory.isEmpty ? "." : directory, O_RDONLY)
        guard descriptor >= 0 else { return }
        defer { close(descriptor) }
        _ = fsync(descriptor)
    }

    /// Copies what the write-ahead log holds into the database file and empties the log, on a
    /// connection of its own (the server's goes on meanwhile). After a snapshot install by copying
    /// pages the log holds the whole database. Best effort: SQLite checkpoints on its own later if this
    /// cannot finish.
    public func checkpoint() throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(1)
        let connection = try DatabaseQueue(path: path, configuration: configuration)
        defer { try? connection.close() }
        try connection.writeWithoutTransaction { db in _ = try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    /// Numbers contiguous from 1 and every revision's previous-hash equal to the hash before it (one
    /// column scan, no decoding). Nil when intact.
    static func journalLinkProblem(_ db: Database) throws -> JournalBreak? {
        var expected: Int64 = 1
        var previous = Revision.genesisHash
        let rows = try Row.fetchCursor(db, sql: "SELECT number, hash, previous_hash FROM revisions ORDER BY number")
        while let row = try rows.next() {
            let number = try row.decoded("number", as: Int64.self)
            // `expected` counts from 1, so both conversions below see a positive number.
            guard number == expected else { return JournalBreak(revision: UInt64(expected), reason: "revision missing") }
            guard try row.decoded("previous_hash", as: String.self) == previous else {
                return JournalBreak(revision: UInt64(number), reason: "previous hash does not match the revision before")
            }
            previous = try row.decoded("hash", as: String.self)
            expected += 1
        }
        return nil
    }
}

/// What a snapshot file holds, for the installer to compare with what was offered.
public struct SnapshotFacts: Sendable {
    public struct EpochRun: Sendable, Equatable {
        public var term: UInt64
        public var server: String
        public var firstNumber: UInt64
        public var lastNumber: UInt64

        public init(term: UInt64, server: String, firstNumber: UInt64, lastNumber: UInt64) {
            self.term = term
            self.server = server
            self.firstNumber = firstNumber
            self.lastNumber = lastNumber
        }
    }

    public var head: (number: UInt64, hash: String)?
    /// The revisions' epochs, as runs in revision order.
    public var epochRuns: [EpochRun]

    init(_ db: Database) throws {
        head = try ManagementStore.head(db)
        epochRuns = try Row.fetchAll(
            db,
            sql: """
                SELECT epoch_term, epoch_server, MIN(number) AS first, MAX(number) AS last FROM revisions
                GROUP BY epoch_term, epoch_server ORDER BY first
                """
        ).map {
            EpochRun(
                term: try $0.decodedUnsigned("epoch_term"), server: try $0.decoded("epoch_server", as: String.self),
                firstNumber: try $0.decodedUnsigned("first"), lastNumber: try $0.decodedUnsigned("last"))
        }
    }
}

/// A read transaction on the management database, on a connection of its own, held open until the
/// copy is made (or `close`). Used by one thread at a time (the HA runtime begins it, its worker copies).
public final class DatabaseSnapshotSource: @unchecked Sendable {
    private let queue: DatabaseQueue
    /// The head as of the transaction (nil: no revision yet).
    public let head: (number: UInt64, hash: String)?

    init(path: String) throws {
        var configuration = DatabaseFiles.readOnlyConfiguration()
        // The transaction outlives this call on purpose: it pins the database as of now for the copy.
        configuration.allowsUnsafeTransactions = true
        queue = try DatabaseQueue(path: path, configuration: configuration)
        head = try queue.inDatabase { db in
            try db.beginTransaction(.deferred)
            return try ManagementStore.head(db)
        }
    }

    /// Writes the database as of the transaction to a new file at `destination`: its pages (SQLite's
    /// backup API), then the node-local tables emptied with their freed pages zeroed (nothing of this
    /// server's own travels). A single file in rollback-journal mode. Not fsynced: it is a cache the
    /// active rebuilds after a restart, read back at once. Ends the transaction.
    public func copy(to destination: String) throws {
        defer { close() }
        var configuration = Configuration()
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = OFF") }
        let copy = try DatabaseQueue(path: destination, configuration: configuration)
        defer { try? copy.close() }
        try copy.writeWithoutTransaction { target in
            try queue.inDatabase { source in try source.backup(to: target) }
            _ = try String.fetchOne(target, sql: "PRAGMA journal_mode = DELETE")
            try target.execute(sql: "PRAGMA secure_delete = ON")
            for table in ManagementStore.nodeLocalTables { try target.execute(sql: "DELETE FROM \(table)") }
        }
    }

    /// Ends the transaction and closes the connection (also when no copy was made).
    public func close() {
        try? queue.inDatabase { db in if db.isInsideTransaction { try db.rollback() } }
        try? queue.close()
    }
}
