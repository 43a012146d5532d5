import Crypto
import Foundation
import ManagementModel
import Store
import TrustCore

/// `rampart migrate export` / `import`: the configuration (every published object — network
/// objects, rules, layers, packages, administrators, management servers — and the Internal CA),
/// no logs, no journal history, in a documented JSON format that a later Rampart can read (README:
/// "Migrate export format").
public enum Migration {
    public static let formatName = "rampart-migrate"
    public static let formatVersion = 1

    /// What an export holds, as read back from a file (or as just written).
    public struct Export: Sendable {
        public var document: JSONValue
        public var objects: [ManagedObject]
        public var source: JSONValue { document["source"] ?? .null }
        public var sourceEpochTerm: UInt64 { UInt64(max(0, document["source"]?["epoch-term"]?.intValue ?? 0)) }
        public var icaCertificate: String? { document["ica"]?["certificate"]?.stringValue }
        public var icaKey: String? { document["ica"]?["key"]?.stringValue }
        public var settings: [String: String] {
            (document["settings"]?.objectValue ?? [:]).compactMapValues { $0.stringValue }
        }

        /// Objects per type, for reports.
        public var counts: [String: Int] { Dictionary(grouping: objects, by: \.type.rawValue).mapValues(\.count) }
        public var administrators: [String] { objects.filter { $0.type == .administrator }.map(\.name).sorted() }
    }

    // MARK: export

    /// Exports the data directory's configuration to `file` (0600, written durably). Runs while the
    /// server works: the database is first copied consistently, then read from the copy.
    /// `settingKeys`: the database settings that travel (synchronized state, never node-local).
    public static func export(dataDirectory: URL, to file: URL, serverName: String, settingKeys: [String],
                              nowMilliseconds: Int64) throws -> Export {
        let staging = try StagingDirectory(in: file.deletingLastPathComponent())
        defer { staging.remove() }
        let copy = staging.file(DataDirectoryLayout.database)
        let database = dataDirectory.appendingPathComponent(DataDirectoryLayout.database)
        guard FileManager.default.fileExists(atPath: database.path) else {
            throw OperationsError("no-database", "\(dataDirectory.path) holds no management database (rampart.sqlite)")
        }
        try DatabaseFiles.consistentCopy(of: database.path, to: copy.path)
        let facts = try DatabaseFacts.read(path: copy.path, verifyJournal: true)
        let store = try ManagementStore(readOnlyPath: copy.path)
        let objects = try store.allObjects()
        var settings: [String: JSONValue] = [:]
        for key in settingKeys { if let value = try store.setting(key) { settings[key] = .string(value) } }
        var ica: JSONValue = .null
        let certificate = dataDirectory.appendingPathComponent(DataDirectoryLayout.icaCertificate)
        let key = dataDirectory.appendingPathComponent(DataDirectoryLayout.icaKey)
        if let certificateText = try? String(contentsOf: certificate, encoding: .utf8), let keyText = try? String(contentsOf: key, encoding: .utf8) {
            ica = ["certificate": .string(certificateText), "key": .string(keyText)]
        }
        let source: JSONValue = ["server": .string(serverName), "rampart-version": .string(RampartRelease.version),
                                 "schema": .array(facts.schema.map(JSONValue.string)),
                                 "head": facts.head.map { ["number": .int(Int64($0.number)), "hash": .string($0.hash)] } ?? .null,
                                 "epoch-term": facts.epochTerm.map { .int(Int64($0)) } ?? .null]
        return try write(objects: objects, source: source, ica: ica, settings: settings, to: file, nowMilliseconds: nowMilliseconds)
    }

    /// Writes an export document (0600, durably). `rampart bench backup` also seeds databases with it.
    public static func write(objects: [ManagedObject], source: JSONValue, ica: JSONValue = .null, settings: [String: JSONValue] = [:],
                             to file: URL, nowMilliseconds: Int64) throws -> Export {
        let objectsJSON = JSONValue.array(objects.map(\.json))
        let document: JSONValue = .object([
            "format": .string(formatName), "format-version": .int(Int64(formatVersion)),
            "exported-at": .string(ArchiveManifest.iso8601(nowMilliseconds)), "source": source,
            "counts": .object(Dictionary(grouping: objects, by: \.type.rawValue).mapValues { .int(Int64($0.count)) }),
            "ica": ica, "settings": .object(settings), "objects": objectsJSON,
            "objects-sha256": .string(Hex.encode(SHA256.hash(data: objectsJSON.canonicalBytes))),
        ])
        try DurableFile.write(document.canonicalBytes + [UInt8(ascii: "\n")], to: file, mode: 0o600)
        return Export(document: document, objects: objects)
    }

    // MARK: reading

    /// Reads and checks an export file: size, format, version, checksum, every object.
    public static func read(_ file: URL) throws -> Export {
        let path = file.path
        guard let handle = FileHandle(forReadingAtPath: path) else { throw OperationsError("read-failed", "cannot read \(path)") }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: OperationsLimits.migrateFileBytesMax + 1) ?? Data()
        guard data.count <= OperationsLimits.migrateFileBytesMax else {
            throw OperationsError("too-large", "\(path) is larger than \(OperationsLimits.migrateFileBytesMax) bytes")
        }
        guard let document = try? JSONValue.parse(data) else {
            throw OperationsError.truncated(path, "it is not complete JSON (cut short, or not a migrate export)")
        }
        guard document["format"]?.stringValue == formatName, let version = document["format-version"]?.intValue else {
            throw OperationsError("not-an-export", "\(path) is not a Rampart migrate export (no format \"\(formatName)\")")
        }
        guard version >= 1, version <= Int64(formatVersion) else {
            throw OperationsError.incompatible(path, "export format version \(version) is newer than this Rampart's (\(formatVersion)); import it with a newer Rampart")
        }
        if let term = document["source"]?["epoch-term"], term != .null {
            // The import raises it by one, and journals store terms as signed 64-bit integers.
            guard let value = term.intValue, (0..<Int64.max).contains(value) else {
                throw OperationsError.corrupt(path, "source.epoch-term \(term.canonicalString.prefix(40)) is not an epoch term")
            }
        }
        guard let list = document["objects"], case .array(let items) = list else { throw OperationsError.corrupt(path, "it has no objects list") }
        guard document["objects-sha256"]?.stringValue == Hex.encode(SHA256.hash(data: list.canonicalBytes)) else {
            throw OperationsError.corrupt(path, "the objects do not match objects-sha256")
        }
        var objects: [ManagedObject] = []
        var seen = Set<String>()
        for (index, item) in items.enumerated() {
            guard let object = ManagedObject(json: item) else { throw OperationsError.corrupt(path, "objects[\(index)] is not a valid object") }
            guard seen.insert(object.uid).inserted else { throw OperationsError.corrupt(path, "objects[\(index)]: uid \(object.uid) appears twice") }
            objects.append(object)
        }
        return Export(document: document, objects: objects)
    }

    // MARK: import

    public struct ImportReport: Sendable {
        public var export: Export
        public var dryRun: Bool
        public var head: ArchiveManifest.Head?
        public var revisions: Int
        public var epochTerm: UInt64?
    }

    /// Imports an export into a fresh data directory: one or more revisions holding every object,
    /// the travelling settings, the Internal CA, and an HA hard state in a raised epoch (through
    /// `raiseEpoch`), so the directory starts as a working primary. `dryRun` checks everything and
    /// changes nothing.
    public static func importExport(_ file: URL, into dataDirectory: URL, serverName: String, dryRun: Bool, nowMilliseconds: Int64,
                                    raiseEpoch: Backups.EpochRaiser) throws -> ImportReport {
        let export = try read(file)
        let revisionCount = (export.objects.count + OperationsLimits.importChangesPerRevision - 1) / OperationsLimits.importChangesPerRevision
        if !dryRun { try DurableFile.ensureDirectory(dataDirectory, mode: 0o700) }
        let lock = FileManager.default.fileExists(atPath: dataDirectory.path) ? try NodeLock.tryAcquire(dataDirectory: dataDirectory) : nil
        defer { withExtendedLifetime(lock) {} }
        let running = FileManager.default.fileExists(atPath: dataDirectory.path) && (lock == nil || LivenessProbe.socketAnswers(dataDirectory: dataDirectory))
        if running {
            throw OperationsError("server-running", "a Rampart server is running on \(dataDirectory.path): migrate import needs a fresh directory and no server")
        }
        for path in [DataDirectoryLayout.database, DataDirectoryLayout.haMembership, DataDirectoryLayout.icaKey] {
            guard !FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent(path).path) else {
                throw OperationsError("target-not-empty", """
                    \(dataDirectory.path) is not a fresh data directory (it has \(path)): migrate import creates a new primary \
                    and never merges into an existing one. Import into an empty directory.
                    """)
            }
        }
        if dryRun { return ImportReport(export: export, dryRun: true, head: nil, revisions: revisionCount, epochTerm: export.sourceEpochTerm + 1) }

        let staging = try StagingDirectory(in: dataDirectory)
        defer { staging.remove() }
        let stagedDatabase = staging.file(DataDirectoryLayout.database)
        try writeDatabase(export, to: stagedDatabase.path, serverName: serverName, nowMilliseconds: nowMilliseconds)
        let epochTerm = try raiseEpoch(stagedDatabase.path, serverName, export.sourceEpochTerm)
        var moves = [DirectoryCommit.Move(staged: stagedDatabase, path: DataDirectoryLayout.database, mode: 0o600)]
        if let certificate = export.icaCertificate, let key = export.icaKey {
            for (text, path, mode) in [(certificate, DataDirectoryLayout.icaCertificate, UInt32(0o644)), (key, DataDirectoryLayout.icaKey, UInt32(0o600))] {
                let staged = staging.file((path as NSString).lastPathComponent)
                try DurableFile.write(Array(text.utf8), to: staged, mode: mode_t(mode))
                moves.append(DirectoryCommit.Move(staged: staged, path: path, mode: mode))
            }
        }
        let facts = try DatabaseFacts.read(path: stagedDatabase.path, verifyJournal: true)
        _ = try DirectoryCommit.commit(moves, into: dataDirectory, alsoSetAside: [], nowMilliseconds: nowMilliseconds)
        return ImportReport(export: export, dryRun: false, head: facts.head, revisions: revisionCount, epochTerm: epochTerm)
    }

    static func writeDatabase(_ export: Export, to path: String, serverName: String, nowMilliseconds: Int64) throws {
        let store = try ManagementStore(path: path)
        let epoch = RevisionEpoch(term: export.sourceEpochTerm + 1, server: serverName)
        let sourceName = export.source["server"]?.stringValue ?? "?"
        var head: (number: UInt64, hash: String)?
        var offset = 0
        repeat {
            let batch = export.objects[offset..<min(offset + OperationsLimits.importChangesPerRevision, export.objects.count)]
            let revision = Revision(after: head, epoch: epoch, publishedAtMilliseconds: nowMilliseconds, author: "System", sessionUID: "",
                                    sessionName: "migrate import from \(sourceName)", changes: batch.map { .upsert($0) })
            try store.append(revision)
            head = (revision.number, revision.hash)
            offset += batch.count
        } while offset < export.objects.count
        for (key, value) in export.settings.sorted(by: { $0.key < $1.key }) { try store.setSetting(key, value) }
        // Keep the SIC identity of the primary's own server object when the new primary has its name.
        if let own = export.objects.first(where: { $0.type == .checkpointHost && $0.name == serverName }) {
            try store.setSetting("server-uid", own.uid)
        }
    }
}
