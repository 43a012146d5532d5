import Foundation
import GRDB

/// Whole-file operations on SQLite databases (the management database, a gateway log file) that
/// backups, snapshots and restores need, done on connections of their own so the server's
/// connection is never held: in WAL mode a reader does not block the server's writers.
public enum DatabaseFiles {
    /// The schema of the management database this build writes: the identifiers of its migrations,
    /// in order. A copy whose applied migrations are not all known here comes from a newer Rampart.
    public static var managementSchema: [String] { ManagementStore.migrator.migrations }

    /// A consistent copy of the SQLite database at `source` into a new file at `destination`
    /// (SQLite's online backup API, all pages in one step inside one read transaction, from a
    /// read-only connection of its own). The copy is a single self-contained file (rollback journal
    /// mode, no -wal). Writers on other connections, in this or another process, go on
    /// meanwhile; the copy is the database as of the moment its read transaction began. Not fsynced:
    /// it is a scratch copy, read back at once; what is kept is made durable where it is written.
    /// A standby's full sync may put a new file in place of the database while this copies: the copy is
    /// made again then (the file's identity is compared before and after).
    public static func consistentCopy(of source: String, to destination: String) throws {
        for _ in 0..<copyAttemptsMax {
            let before = fileIdentity(source)
            try? FileManager.default.removeItem(atPath: destination)
            try copyOnce(of: source, to: destination)
            if before != nil, fileIdentity(source) == before { return }
        }
        throw StoreError.undecodable("\(source) was replaced during each of \(copyAttemptsMax) attempts to copy it")
    }

    static let copyAttemptsMax = 3

    /// Device and inode: a file renamed over the path has another.
    static func fileIdentity(_ path: String) -> [UInt64]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [UInt64(info.st_dev), UInt64(info.st_ino)]
    }

    /// A connection that never writes, waiting up to 10 s for a writer's lock (a live server's database).
    static func readOnlyConfiguration() -> Configuration {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        return configuration
    }

    static func copyOnce(of source: String, to destination: String) throws {
        let reader = try DatabaseQueue(path: source, configuration: readOnlyConfiguration())
        defer { try? reader.close() }
        let writer = try DatabaseQueue(path: destination)
        try reader.backup(to: writer)
        try writer.writeWithoutTransaction { db in
            _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = DELETE")
        }
        try writer.close()
    }

    /// The migrations applied to the management database at `path` (read-only; nil when the file is
    /// not a SQLite database or has no migration table).
    public static func appliedMigrations(path: String) -> [String]? {
        var configuration = Configuration()
        configuration.readonly = true
        guard let queue = try? DatabaseQueue(path: path, configuration: configuration) else { return nil }
        defer { try? queue.close() }
        return try? queue.read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid")
        }
    }

    /// SQLite's own check of a file (`PRAGMA quick_check`): nil when sound, else the first problem.
    public static func integrityProblem(path: String) -> String? {
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            let result = try queue.read { db in try String.fetchOne(db, sql: "PRAGMA quick_check") }
            return result == "ok" ? nil : (result ?? "no answer from quick_check")
        } catch {
            return "\(error)"
        }
    }
}
