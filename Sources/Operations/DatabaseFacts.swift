import Foundation
import ManagementModel
import Store

/// What a management database file says about itself, read without changing it.
public struct DatabaseFacts: Sendable, Equatable {
    public struct ManagementServer: Sendable, Equatable {
        public var name: String
        public var sicAddress: String?
    }

    public var schema: [String]
    public var head: ArchiveManifest.Head?
    /// The HA epoch's term stored with the database (its hard state), when it ran HA.
    public var epochTerm: UInt64?
    public var objectCount: Int
    public var managementServers: [ManagementServer]
    /// Its hard state says this server was the active of its HA group.
    public var wasHAActive = false
    /// The highest epoch term the database shows: its hard state, its head revision's epoch (a journal
    /// never goes back in epoch), the term its service publishes in. A new primary's epoch must exceed it.
    public var highestKnownEpochTerm: UInt64 = 0

    /// The management servers other than `server`: the rest of its HA group.
    public func groupPeers(of server: String) -> [ManagementServer] { managementServers.filter { $0.name != server } }

    /// How much of the journal `read` checks.
    public enum JournalCheck: Sendable {
        case none
        /// Numbering and the previous-hash links (fast).
        case links
        /// Links, and every revision's hash recomputed from its content.
        case full
    }

    /// Reads the facts of the database at `path`; with `verifyJournal`, also walks the journal's
    /// hash chain and throws when it is broken.
    public static func read(path: String, verifyJournal: Bool) throws -> DatabaseFacts {
        try read(path: path, journalCheck: verifyJournal ? .full : .none)
    }

    public static func read(path: String, journalCheck: JournalCheck) throws -> DatabaseFacts {
        guard let schema = DatabaseFiles.appliedMigrations(path: path) else {
            throw OperationsError("corrupt", "\(path) is not a management database")
        }
        let store = try ManagementStore(readOnlyPath: path)
        let problem: JournalBreak? =
            switch journalCheck {
            case .none: nil
            case .links: try store.verifyJournalLinks()
            case .full: try store.verifyJournal()
            }
        if let problem {
            throw OperationsError("corrupt", "the revision journal in \(path) does not verify: \(problem)")
        }
        let head = try store.head().map { ArchiveManifest.Head(number: $0.number, hash: $0.hash) }
        let servers = try store.objects(types: [.checkpointHost], offset: 0, limit: Limits.pageSizeMax, nameFilter: nil).objects.map {
            ManagementServer(name: $0.name, sicAddress: $0.fields[ManagedObject.haSICAddressField]?.stringValue.flatMap { $0.isEmpty ? nil : $0 })
        }
        let objectCount = try store.objectCounts().values.reduce(0, +)
        let hardState = try store.setting(hardStateSettingKey).flatMap { try? JSONValue.parse($0) }
        let headTerm = try head.flatMap { try store.revisions(from: $0.number, limit: 1).first?.epoch.term } ?? 0
        let publishingTerm = try store.setting(publishingTermSettingKey).flatMap(UInt64.init) ?? 0
        return DatabaseFacts(
            schema: schema, head: head, epochTerm: epochTerm(hardState), objectCount: objectCount, managementServers: servers,
            wasHAActive: hardState?["role"]?.stringValue == "active",
            highestKnownEpochTerm: max(epochTerm(hardState) ?? 0, headTerm, publishingTerm))
    }

    /// `read` for a stopped server's database in place (the caller holds the directory's lock): a
    /// read-only connection to a WAL database creates its -wal and -shm files; those it created are
    /// removed again, so a refused restore leaves the directory exactly as it was.
    public static func readInPlace(path: String) -> DatabaseFacts? {
        let companions = [path + "-wal", path + "-shm"].filter { !FileManager.default.fileExists(atPath: $0) }
        defer { for file in companions { try? FileManager.default.removeItem(atPath: file) } }
        return try? read(path: path, verifyJournal: false)
    }

    /// The term of the HA hard state (settings key `ha-hard-state`, `{"epoch":{"term":N,…}}`).
    static func epochTerm(_ hardState: JSONValue?) -> UInt64? {
        guard let term = hardState?["epoch"]?["term"]?.intValue, term >= 0 else { return nil }
        return UInt64(term)
    }

    /// The term the management service publishes in (`ManagementService.epoch`).
    public static let publishingTermSettingKey = "epoch-term"

    /// Where HARuntime keeps the hard state (`HardStateStore.settingKey`); HARuntime checks they agree.
    public static let hardStateSettingKey = "ha-hard-state"
}
