import Foundation
import GRDB
import ManagementModel
import Synchronization

/// The management database in one SQLite file (WAL): published objects, the revision journal,
/// sessions with their pending changes, and node settings. A publish is one transaction committed
/// with synchronous=FULL: when `append` returns, the revision is on disk. Session drafts are written
/// with synchronous=NORMAL: they survive a process crash (kill -9) and are made durable by the next
/// FULL commit; only a power loss can take an unpublished draft with it, never a revision.
public final class ManagementStore: Sendable {
    /// The connection. Replaced only when a full-sync snapshot is put in place of the file
    /// (`installSnapshot`); every use holds this lock, so none runs on a connection being closed, and
    /// none is left holding the old one. (A `DatabaseQueue` runs one use at a time anyway: one lock for
    /// all of them costs no concurrency.) Not re-entrant: a use never calls another.
    private let connection: Mutex<DatabaseQueue>
    public let path: String
    /// Per object type, the commits that changed objects of that type, plus the whole-database
    /// replacements (a journal replaced, a snapshot installed), which change every type.
    private let objectChanges = Mutex<(byType: [ObjectType: UInt64], wholeDatabase: UInt64)>(([:], 0))

    public init(path: String) throws {
        self.path = path
        let queue = try Self.open(path)
        try ManagementStore.migrator.migrate(queue)
        connection = Mutex(queue)
    }

    /// Opens a management database file without changing it: no migration, no journal mode change,
    /// every write refused (inspecting a backup or a stopped server's database).
    public init(readOnlyPath path: String) throws {
        self.path = path
        connection = Mutex(try DatabaseQueue(path: path, configuration: DatabaseFiles.readOnlyConfiguration()))
    }

    /// The server's connection to the database at `path`, in WAL mode.
    static func open(_ path: String) throws -> DatabaseQueue {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
            // Deleted rows and freed pages are zeroed, so a full-sync snapshot (a copy of the pages)
            // carries nothing of discarded drafts or logged-out sessions. Debian's SQLite is built
            // with this on; it is asked for here rather than left to how SQLite was built.
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        configuration.busyMode = .timeout(10)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        return queue
    }

    // MARK: the connection, under its lock

    func read<T>(_ body: (Database) throws -> T) throws -> T { try exclusively { try $0.read(body) } }
    func write<T>(_ body: (Database) throws -> T) throws -> T { try exclusively { try $0.write(body) } }
    func unsafeRead<T>(_ body: (Database) throws -> T) throws -> T { try exclusively { try $0.unsafeRead(body) } }
    func writeWithoutTransaction<T>(_ body: (Database) throws -> T) throws -> T {
        try exclusively { try $0.writeWithoutTransaction(body) }
    }
    func inTransaction(_ kind: Database.TransactionKind, _ body: (Database) throws -> Database.TransactionCompletion) throws {
        try exclusively { try $0.inTransaction(kind, body) }
    }
    /// The connection itself, under its lock (a snapshot install replaces it).
    func exclusively<T, E: Error>(_ body: (inout DatabaseQueue) throws(E) -> T) throws(E) -> T {
        try connection.withLock { (queue) throws(E) -> T in try body(&queue) }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE objects (uid TEXT PRIMARY KEY NOT NULL, type TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL);
                    CREATE INDEX objects_name ON objects(name);
                    CREATE INDEX objects_type_name ON objects(type, name);
                    CREATE TABLE refs (from_uid TEXT NOT NULL, to_uid TEXT NOT NULL, PRIMARY KEY (from_uid, to_uid)) WITHOUT ROWID;
                    CREATE INDEX refs_to ON refs(to_uid);
                    CREATE TABLE revisions (number INTEGER PRIMARY KEY NOT NULL, hash TEXT NOT NULL, previous_hash TEXT NOT NULL,
                        epoch_term INTEGER NOT NULL, epoch_server TEXT NOT NULL, published_at INTEGER NOT NULL,
                        author TEXT NOT NULL, body TEXT NOT NULL);
                    CREATE TABLE sessions (uid TEXT PRIMARY KEY NOT NULL, body TEXT NOT NULL);
                    CREATE TABLE session_changes (session_uid TEXT NOT NULL, object_uid TEXT NOT NULL, seq INTEGER NOT NULL,
                        body TEXT NOT NULL, PRIMARY KEY (session_uid, object_uid));
                    CREATE TABLE settings (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                    """)
        }
        return migrator
    }

    // MARK: objects

    public var reader: PublishedReader { PublishedReader(store: self) }

    /// Counts of published objects by type.
    public func objectCounts() throws -> [String: Int] {
        try read { db in
            var counts: [String: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT type, COUNT(*) AS n FROM objects GROUP BY type") {
                counts[try row.decoded("type", as: String.self)] = try row.decoded("n", as: Int.self)
            }
            return counts
        }
    }

    /// Published objects of some types, ordered by name, with paging. `nameFilter` matches names that
    /// contain it, literally (`%`, `_` and `\` are characters, not patterns), ignoring ASCII case.
    public func objects(types: [ObjectType], offset: Int, limit: Int, nameFilter: String?) throws -> (objects: [ManagedObject], total: Int) {
        try read { db in
            let marks = types.map { _ in "?" }.joined(separator: ",")
            var arguments = StatementArguments(types.map(\.rawValue))
            var condition = "type IN (\(marks))"
            if let nameFilter, !nameFilter.isEmpty {
                condition += " AND name LIKE ? ESCAPE '\\'"
                arguments += ["%" + Self.likeLiteral(nameFilter) + "%"]
            }
            let total = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM objects WHERE \(condition)", arguments: arguments) ?? 0
            // SQLite reads a negative LIMIT as "no limit" and a negative OFFSET as 0: both are kept at 0 or more.
            let bodies = try String.fetchAll(
                db, sql: "SELECT body FROM objects WHERE \(condition) ORDER BY name, uid LIMIT ? OFFSET ?",
                arguments: arguments + [max(0, limit), max(0, offset)])
            return (bodies.compactMap(PublishedReader.decode), total)
        }
    }

    /// `text` for a LIKE pattern with ESCAPE '\': the escape character itself first, then the wildcards.
    static func likeLiteral(_ text: String) -> String {
        // By code point, not by Character: a backslash followed by a combining mark is one Character.
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if scalar == "\\" || scalar == "%" || scalar == "_" { out.append("\\") }
            out.append(scalar)
        }
        return String(out)
    }

    /// Every published object, ordered by type and uid (an export reads them all in one transaction).
    public func allObjects() throws -> [ManagedObject] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT body FROM objects ORDER BY type, uid").map { body in
                guard let object = PublishedReader.decode(body) else {
                    throw StoreError.undecodable("a stored object cannot be decoded: \(body.prefix(80))")
                }
                return object
            }
        }
    }

    // MARK: journal

    /// One statement, atomic on its own: no transaction around it (a publish asks for it every time).
    public func head() throws -> (number: UInt64, hash: String)? {
        try unsafeRead { db in try Self.head(db) }
    }

    static func head(_ db: Database) throws -> (number: UInt64, hash: String)? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT number, hash FROM revisions ORDER BY number DESC LIMIT 1"))
            .map { (try $0.decodedUnsigned("number"), try $0.decoded("hash", as: String.self)) }
    }

    /// Appends a revision and applies its changes to the objects, in one durable transaction.
    /// Refuses a revision that does not follow the head (a gap or a broken chain).
    /// With `session`, the session that published it: its pending changes are deleted and its record
    /// saved in the same transaction. `checkedBody`: as in `appendVisible`, the revision's canonical JSON
    /// from a caller that knows its hash is its content's (it built the revision just now).
    public func append(_ revision: Revision, session: SessionRecord? = nil, checkedBody: String? = nil) throws {
        try durableWrite { db in try Self.insert(revision, session: session, checkedBody: checkedBody, db) }
        countChanges(of: revision)
    }

    /// Appends like `append`, committed without waiting for the disk (synchronous=NORMAL): visible at
    /// once and safe from a process crash, durable against power loss only after `syncToDisk`. A standby
    /// applies replicated revisions this way and reports them durable after one sync per batch; an HA
    /// active publishes this way, sends, then syncs. `checkedBody`: the revision's canonical JSON, whose
    /// hash the caller has checked already (a replicated payload, or a revision it built just now):
    /// stored as it is, and only numbering and chaining are checked here.
    public func appendVisible(_ revision: Revision, session: SessionRecord? = nil, checkedBody: String? = nil) throws {
        try inTransaction(.immediate) { db in
            try Self.insert(revision, session: session, checkedBody: checkedBody, db)
            return .commit
        }
        countChanges(of: revision)
    }

    /// A number that grows with every commit that may have changed objects of `type`: a cache of such
    /// objects (the management-server list a status call reads) stays valid while it does not. Read it
    /// before reading the objects: it grows only after a commit, so older rows are never cached under a
    /// newer number.
    public func changeCount(of type: ObjectType) -> UInt64 {
        objectChanges.withLock { $0.wholeDatabase &+ ($0.byType[type] ?? 0) }
    }

    func countChanges(of revision: Revision) {
        objectChanges.withLock { counts in
            for change in revision.changes { counts.byType[change.type, default: 0] &+= 1 }
        }
    }

    func countWholeDatabaseChange() {
        objectChanges.withLock { $0.wholeDatabase &+= 1 }
    }

    /// Makes every commit so far durable: fdatasync of the write-ahead log, where WAL mode keeps commits
    /// until a checkpoint (which SQLite syncs itself). fdatasync as SQLite syncs its own log: the log's
    /// bytes and length are what recovery reads, its timestamps are not worth a second device write.
    public func syncToDisk() throws {
        let descriptor = Glibc.open(path + "-wal", O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            // No log: every commit is in the database file already, which SQLite synced at its checkpoint.
            if errno == ENOENT { return }
            throw StoreError.io("cannot open \(path)-wal to sync it: \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(descriptor) }
        guard fdatasync(descriptor) == 0 else {
            throw StoreError.io("cannot sync \(path)-wal: \(String(cString: strerror(errno)))")
        }
    }

    static func insert(_ revision: Revision, session: SessionRecord?, checkedBody: String? = nil, _ db: Database) throws {
        let head = try Self.head(db)
        let expectedNumber = (head?.number ?? 0) + 1
        let expectedPrevious = head?.hash ?? Revision.genesisHash
        let problem =
            checkedBody == nil
            ? JournalVerifier.check(revision, expectedNumber: expectedNumber, expectedPrevious: expectedPrevious)
            : JournalVerifier.checkLinks(revision, expectedNumber: expectedNumber, expectedPrevious: expectedPrevious)
        if let problem { throw StoreError.journal(problem) }
        // SQLite integers are signed: a number or term beyond Int64 (which only a hostile peer could
        // announce) is refused, never converted with a trap.
        guard let number = Int64(exactly: revision.number), let term = Int64(exactly: revision.epoch.term) else {
            throw StoreError.undecodable("revision \(revision.number) of epoch term \(revision.epoch.term) is beyond what the journal stores")
        }
        try db.cachedStatement(
            sql: """
                INSERT INTO revisions (number, hash, previous_hash, epoch_term, epoch_server, published_at, author, body)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """
        ).execute(arguments: [
            number, revision.hash, revision.previousHash, term,
            revision.epoch.server, revision.publishedAtMilliseconds, revision.author, checkedBody ?? revision.json.canonicalString,
        ])
        for change in revision.changes { try ManagementStore.apply(change, db) }
        if let session {
            try db.cachedStatement(sql: "DELETE FROM session_changes WHERE session_uid = ?").execute(arguments: [session.uid])
            try saveSession(session, db)
        }
    }

    /// Replaces the whole published database by `revisions` (1, 2, ... in order) in one durable
    /// transaction: it either lands completely or leaves the old content untouched. The chain and every
    /// hash are checked as in `append`. Unpublished sessions are dropped: their drafts were made against
    /// content that no longer exists.
    public func replaceJournal(with revisions: [Revision]) throws {
        defer { countWholeDatabaseChange() }
        try durableWrite { db in
            try db.execute(sql: "DELETE FROM refs; DELETE FROM objects; DELETE FROM revisions; DELETE FROM session_changes; DELETE FROM sessions")
            for revision in revisions { try Self.insert(revision, session: nil, db) }
        }
    }

    /// Drops every revision after `number` and rebuilds the objects from the revisions kept, in one
    /// durable transaction (collision resolution, after the dropped revisions were exported).
    public func truncateJournal(after number: UInt64) throws {
        var kept: [Revision] = []
        while UInt64(kept.count) < number {
            let batch = try revisions(from: UInt64(kept.count) + 1, limit: Int(min(1_000, number - UInt64(kept.count))))
            guard !batch.isEmpty else { break }
            kept += batch
        }
        try replaceJournal(with: kept)
    }

    /// A consistent copy of the whole database at `path` (SQLite's VACUUM INTO).
    public func copyDatabase(to path: String) throws {
        try writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [path]) }
    }

    /// Rows are upserted (`ON CONFLICT DO UPDATE`), never `INSERT OR REPLACE`: a replace deletes the row
    /// and inserts it again under a new rowid, rewriting a page of every index, and each written page is
    /// one more 4 KB frame that the publish's fsync waits for (on a database of 3,000 hosts, a publish
    /// of a new host writes 7 frames instead of 9, of a changed one 6 instead of 12).
    static func apply(_ change: ObjectChange, _ db: Database) throws {
        try db.cachedStatement(sql: "DELETE FROM refs WHERE from_uid = ?").execute(arguments: [change.uid])
        switch change {
        case .upsert(let object):
            try db.cachedStatement(
                sql: """
                    INSERT INTO objects (uid, type, name, body) VALUES (?, ?, ?, ?)
                    ON CONFLICT (uid) DO UPDATE SET type = excluded.type, name = excluded.name, body = excluded.body
                    """
            )
            .execute(arguments: [object.uid, object.type.rawValue, object.name, object.json.canonicalString])
            for target in Set(object.referencedUIDs) where !target.isEmpty {
                try db.cachedStatement(sql: "INSERT OR IGNORE INTO refs (from_uid, to_uid) VALUES (?, ?)").execute(arguments: [object.uid, target])
            }
        case .delete(let uid, _, _):
            try db.cachedStatement(sql: "DELETE FROM objects WHERE uid = ?").execute(arguments: [uid])
        }
    }

    /// Up to `limit` revisions from number `first` on (none for a negative limit: SQLite would read it as no limit).
    public func revisions(from first: UInt64, limit: Int) throws -> [Revision] {
        guard let first = Int64(exactly: first) else { return [] }
        let bodies = try read { db in
            try String.fetchAll(db, sql: "SELECT body FROM revisions WHERE number >= ? ORDER BY number LIMIT ?", arguments: [first, max(0, limit)])
        }
        // Decoded after the connection is free: a publish need not wait for a reader's parsing.
        return bodies.compactMap { try? JSONValue.parse($0) }.compactMap(Revision.init(json:))
    }

    /// What HA keeps in memory of each revision from number `first` on, up to `limit` of them: its place
    /// in the chain and its body's size, read without the bodies (a journal of any length loads fast).
    public func journalEntries(from first: UInt64, limit: Int) throws -> [JournalEntry] {
        guard let first = Int64(exactly: first) else { return [] }
        return try read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT number, hash, previous_hash, epoch_term, epoch_server, LENGTH(CAST(body AS BLOB)) AS body_bytes
                    FROM revisions WHERE number >= ? ORDER BY number LIMIT ?
                    """, arguments: [first, max(0, limit)]
            ).map(JournalEntry.init(row:))
        }
    }

    /// The bodies (the canonical JSON HA replicates) of revisions `first...last` with their hashes, in
    /// order; fewer when the journal does not hold them all.
    public func revisionBodies(from first: UInt64, through last: UInt64) throws -> [(number: UInt64, hash: String, body: [UInt8])] {
        guard let first = Int64(exactly: first), let last = Int64(exactly: last) else { return [] }
        return try read { db in
            try Row.fetchAll(
                db, sql: "SELECT number, hash, CAST(body AS BLOB) AS body FROM revisions WHERE number BETWEEN ? AND ? ORDER BY number",
                arguments: [first, last]
            )
            .map { row in
                (
                    number: try row.decodedUnsigned("number"), hash: try row.decoded("hash", as: String.self),
                    body: [UInt8](try row.decoded("body", as: Data.self))
                )
            }
        }
    }

    /// The stored size in bytes of every revision from number `first` on (what a standby that lacks them
    /// still has to receive); 0 when there are none.
    public func revisionBytes(from first: UInt64) throws -> Int64 {
        guard let first = Int64(exactly: first) else { return 0 }
        return try read { db in
            try Int64.fetchOne(db, sql: "SELECT COALESCE(SUM(LENGTH(CAST(body AS BLOB))), 0) FROM revisions WHERE number >= ?", arguments: [first]) ?? 0
        }
    }

    public func revisionCount() throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM revisions") ?? 0 }
    }

    /// Walks the whole journal in batches: numbering, chain and every hash. Nil when intact.
    public func verifyJournal(batchSize: Int = 1_000) throws -> JournalBreak? {
        var next: UInt64 = 1
        var previous = Revision.genesisHash
        while true {
            let rows = try read { db in
                try String.fetchAll(
                    db, sql: "SELECT body FROM revisions WHERE number >= ? ORDER BY number LIMIT ?",
                    arguments: [Int64(clamping: next), batchSize])
            }
            if rows.isEmpty {
                let last = try read { db in try Int64.fetchOne(db, sql: "SELECT MAX(number) FROM revisions") }
                if let last, last > 0, UInt64(last) >= next { return JournalBreak(revision: next, reason: "revision missing") }
                return nil
            }
            for body in rows {
                guard let json = try? JSONValue.parse(body), let revision = Revision(json: json) else {
                    return JournalBreak(revision: next, reason: "stored revision cannot be decoded")
                }
                if let problem = JournalVerifier.check(revision, expectedNumber: next, expectedPrevious: previous) { return problem }
                next = revision.number + 1
                previous = revision.hash
            }
        }
    }

    /// The journal's structure without decoding a revision: numbers contiguous from 1 and every
    /// revision's previous-hash equal to the hash before it. Fast (one column scan); `verifyJournal`
    /// also recomputes every revision's hash from its content. Nil when intact.
    public func verifyJournalLinks() throws -> JournalBreak? {
        try read { db in try Self.journalLinkProblem(db) }
    }

    /// A write transaction committed with synchronous=FULL (fsync before it returns).
    func durableWrite(_ updates: (Database) throws -> Void) throws {
        try writeWithoutTransaction { db in
            try db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute()
            defer { try? db.cachedStatement(sql: "PRAGMA synchronous = NORMAL").execute() }
            try db.inTransaction(.immediate) {
                try updates(db)
                return .commit
            }
        }
    }

    // MARK: sessions

    /// A session's record (its uid and state), saved with the revision it publishes.
    public struct SessionRecord: Sendable {
        public let uid: String
        public let body: JSONValue
        public init(uid: String, body: JSONValue) {
            self.uid = uid
            self.body = body
        }
    }

    /// A session's record (at login and when its state changes).
    public func saveSession(uid: String, body: JSONValue) throws {
        try write { db in try Self.saveSession(SessionRecord(uid: uid, body: body), db) }
    }

    static func saveSession(_ session: SessionRecord, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT INTO sessions (uid, body) VALUES (?, ?) ON CONFLICT (uid) DO UPDATE SET body = excluded.body")
            .execute(arguments: [session.uid, session.body.canonicalString])
    }

    /// A session's new pending changes, and the ones it dropped, in one transaction. The order of
    /// changes is their `seq`; a reloaded session continues after the highest.
    public func savePendingChanges(session: String, _ changes: [(seq: Int64, change: ObjectChange)], removing removedUIDs: [String] = []) throws {
        try write { db in
            for objectUID in removedUIDs {
                try db.cachedStatement(sql: "DELETE FROM session_changes WHERE session_uid = ? AND object_uid = ?").execute(arguments: [session, objectUID])
            }
            for (seq, change) in changes {
                try db.cachedStatement(
                    sql: """
                        INSERT INTO session_changes (session_uid, object_uid, seq, body) VALUES (?, ?, ?, ?)
                        ON CONFLICT (session_uid, object_uid) DO UPDATE SET seq = excluded.seq, body = excluded.body
                        """
                )
                .execute(arguments: [session, change.uid, seq, Revision.encode(change).canonicalString])
            }
        }
    }

    public func deleteSession(uid: String) throws {
        try write { db in
            try db.execute(sql: "DELETE FROM session_changes WHERE session_uid = ?", arguments: [uid])
            try db.execute(sql: "DELETE FROM sessions WHERE uid = ?", arguments: [uid])
        }
    }

    public func clearPendingChanges(session: String) throws {
        try write { db in
            try db.execute(sql: "DELETE FROM session_changes WHERE session_uid = ?", arguments: [session])
        }
    }

    public struct StoredSession: Sendable {
        public let uid: String
        public let body: JSONValue
        public let changes: [(seq: Int64, change: ObjectChange)]
    }

    public func loadSessions() throws -> [StoredSession] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT uid, body FROM sessions ORDER BY uid").map { row in
                let uid = try row.decoded("uid", as: String.self)
                let changes = try Row.fetchAll(
                    db, sql: "SELECT seq, body FROM session_changes WHERE session_uid = ? ORDER BY seq",
                    arguments: [uid]
                ).compactMap { change -> (Int64, ObjectChange)? in
                    guard let json = try? JSONValue.parse(try change.decoded("body", as: String.self)), let decoded = Revision.decode(json) else { return nil }
                    return (try change.decoded("seq", as: Int64.self), decoded)
                }
                return StoredSession(uid: uid, body: (try? JSONValue.parse(try row.decoded("body", as: String.self))) ?? .object([:]), changes: changes)
            }
        }
    }

    // MARK: settings

    public func setting(_ key: String) throws -> String? {
        try read { db in try String.fetchOne(db, sql: "SELECT value FROM settings WHERE key = ?", arguments: [key]) }
    }

    public func setSetting(_ key: String, _ value: String) throws {
        try durableWrite { db in
            try db.execute(sql: "INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)", arguments: [key, value])
        }
    }
}

/// What HA keeps in memory of one stored revision: its place in the chain and its body's size.
public struct JournalEntry: Sendable, Equatable {
    public let number: UInt64
    public let hash: String
    public let previousHash: String
    public let epochTerm: UInt64
    public let epochServer: String
    public let bodyByteCount: Int

    init(row: Row) throws {
        number = try row.decodedUnsigned("number")
        hash = try row.decoded("hash", as: String.self)
        previousHash = try row.decoded("previous_hash", as: String.self)
        epochTerm = try row.decodedUnsigned("epoch_term")
        epochServer = try row.decoded("epoch_server", as: String.self)
        bodyByteCount = Int(clamping: try row.decodedUnsigned("body_bytes"))
    }
}

extension Row {
    /// A column's value; a NULL or a value of another type (a damaged or crafted file) throws
    /// `StoreError.undecodable` naming the column, where `row[column]` would trap.
    func decoded<Value: DatabaseValueConvertible>(_ column: String, as type: Value.Type) throws -> Value {
        do { return try decode(type, forColumn: column) } catch { throw StoreError.undecodable("column \(column): \(error)") }
    }

    /// A column that holds a non-negative integer (revision numbers, epoch terms, sequences).
    func decodedUnsigned(_ column: String) throws -> UInt64 {
        let value = try decoded(column, as: Int64.self)
        guard let unsigned = UInt64(exactly: value) else { throw StoreError.undecodable("column \(column) holds \(value), below 0") }
        return unsigned
    }
}

public enum StoreError: Error, Sendable, CustomStringConvertible {
    case journal(JournalBreak)
    case undecodable(String)
    /// A file operation of the operating system's failed (the text names the file and the reason).
    case io(String)
    public var description: String {
        switch self {
        case .journal(let problem): return problem.description
        case .undecodable(let what), .io(let what): return what
        }
    }
}

/// The published view, read straight from SQLite (nothing cached, so memory stays flat at any size).
/// Each lookup is one statement, atomic on its own, so it runs without a wrapping transaction: the
/// BEGIN/COMMIT pair would cost more than the lookup.
public struct PublishedReader: ObjectReader, Sendable {
    let store: ManagementStore

    static func decode(_ body: String) -> ManagedObject? {
        (try? JSONValue.parse(body)).flatMap(ManagedObject.init(json:))
    }

    public func object(uid: String) -> ManagedObject? {
        (try? store.unsafeRead { db in try String.fetchOne(db.cachedStatement(sql: "SELECT body FROM objects WHERE uid = ?"), arguments: [uid]) })
            .flatMap { $0 }.flatMap(PublishedReader.decode)
    }

    public func objects(named name: String) -> [ManagedObject] {
        ((try? store.unsafeRead { db in try String.fetchAll(db.cachedStatement(sql: "SELECT body FROM objects WHERE name = ? ORDER BY uid"), arguments: [name])
        }) ?? [])
        .compactMap(PublishedReader.decode)
    }

    public func referrers(of uid: String) -> [ManagedObject] {
        ((try? store.unsafeRead { db in
            try String.fetchAll(
                db.cachedStatement(sql: "SELECT o.body FROM refs r JOIN objects o ON o.uid = r.from_uid WHERE r.to_uid = ? ORDER BY o.uid"), arguments: [uid])
        }) ?? []).compactMap(PublishedReader.decode)
    }
}
