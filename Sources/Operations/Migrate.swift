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
    public static func export(
        dataDirectory: URL, to file: URL, serverName: String, settingKeys: [String],
        nowMilliseconds: Int64
    ) throws -> Export {
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
        let source: JSONValue = [
            "server": .string(serverName), "rampart-version": .string(RampartRelease.version),
            "schema": .array(facts.schema.map(JSONValue.string)),
            "head": facts.head.map { ["number": .int(Int64($0.number)), "hash": .string($0.hash)] } ?? .null,
            "epoch-term": facts.epochTerm.map { .int(Int64($0)) } ?? .null,
        ]
        return try write(objects: objects, source: source, ica: ica, settings: settings, to: file, nowMilliseconds: nowMilliseconds)
    }

    /// Writes an export document (0600, durably). `rampart bench backup` also seeds databases with it.
    public static func write(
        objects: [ManagedObject], source: JSONValue, ica: JSONValue = .null, settings: [String: JSONValue] = [:],
        to file: URL, nowMilliseconds: Int64
    ) throws -> Export {
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
            throw OperationsError.incompatible(
                path, "export format version \(version) is newer than this Rampart's (\(formatVersion)); import it with a newer Rampart")
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

    /// What an import is asked to do.
    public struct ImportOptions: Sendable {
        public var file: URL
        public var dataDirectory: URL
        /// The new server's name. Without --as-new-primary: "primary" by default, and never the name of
        /// one of the exported group's servers. With it: the exporting server's name by default.
        public var serverName: String?
        /// Disaster recovery: every server of the exported group is lost, and this import takes its
        /// place (its Internal CA, its servers and gateways), refused while any of them answers.
        public var asNewPrimary: Bool
        /// The new epoch's term must also exceed this one (what gateways last saw).
        public var minimumEpochTerm: UInt64
        public var dryRun: Bool
        public var nowMilliseconds: Int64

        public init(
            file: URL, dataDirectory: URL, serverName: String? = nil, asNewPrimary: Bool = false, minimumEpochTerm: UInt64 = 0,
            dryRun: Bool = false, nowMilliseconds: Int64
        ) {
            self.file = file
            self.dataDirectory = dataDirectory
            self.serverName = serverName
            self.asNewPrimary = asNewPrimary
            self.minimumEpochTerm = minimumEpochTerm
            self.dryRun = dryRun
            self.nowMilliseconds = nowMilliseconds
        }
    }

    public struct ImportReport: Sendable {
        public var export: Export
        public var dryRun: Bool
        public var serverName: String
        public var asNewPrimary: Bool
        public var head: ArchiveManifest.Head?
        public var revisions: Int
        public var epochTerm: UInt64?
        /// The exported group's management servers, left out of a new group.
        public var serversLeftOut: [String]
        /// Gateways whose SIC trust does not carry over (a new group has a new Internal CA): enrol them again.
        public var gatewaysToEnrol: [String]
    }

    /// The default name of a new group's server.
    public static let defaultServerName = "primary"

    /// Imports an export into a fresh data directory.
    ///
    /// By default the directory becomes the only server of a NEW HA group: it has no HA membership and
    /// knows no other server (the exported group's checkpoint-host objects are left out), it gets a
    /// name of its own, and no Internal CA comes with it — the server creates a new one, and its SIC
    /// certificate from it, at its first start. The new CA is what makes the copy safe beside the live
    /// group: no certificate of the new group is trusted by the old group's servers or gateways, nor
    /// the other way round, whatever addresses either side holds. Gateways keep their objects but must
    /// be enrolled again (their SIC state is reset).
    ///
    /// With `asNewPrimary` (every server of the group is lost) it takes the group's place instead:
    /// the Internal CA, its revocation list and the group's servers and gateways come along, the new
    /// primary keeps the exporting server's name and SIC uid by default, and the import is refused
    /// while any server the export names answers on its SIC port.
    ///
    /// Either way the objects are written as revisions in an epoch above every one the export knows
    /// (`raiseEpoch`), and `dryRun` checks everything and changes nothing.
    public static func importExport(_ options: ImportOptions, raiseEpoch: Backups.EpochRaiser) throws -> ImportReport {
        let export = try read(options.file)
        let plan = try ImportPlan(export, options)
        if options.dryRun {
            try checkTarget(options.dataDirectory, lockedElsewhere: !isLockFree(options.dataDirectory))
            try plan.checkGroupGone()
            return plan.report(head: nil, epochTerm: plan.epochFloor + 1, dryRun: true)
        }
        let target = try TargetDirectory.open(options.dataDirectory)
        return try target.undoingOnFailure {
            try checkTarget(target.url, lockedElsewhere: target.lock == nil)
            try plan.checkGroupGone()
            return try write(plan, into: target.url, nowMilliseconds: options.nowMilliseconds, raiseEpoch: raiseEpoch)
        }
    }

    /// Refuses a directory whose server runs, or that holds a database, a membership or an ICA key.
    static func checkTarget(_ dataDirectory: URL, lockedElsewhere: Bool) throws {
        guard FileManager.default.fileExists(atPath: dataDirectory.path) else { return }
        if lockedElsewhere || LivenessProbe.socketAnswers(dataDirectory: dataDirectory) {
            throw OperationsError(
                "server-running", "a Rampart server is running on \(dataDirectory.path): migrate import needs a fresh directory and no server")
        }
        for path in [DataDirectoryLayout.database, DataDirectoryLayout.haMembership, DataDirectoryLayout.icaKey] {
            guard !FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent(path).path) else {
                throw OperationsError(
                    "target-not-empty",
                    """
                    \(dataDirectory.path) is not a fresh data directory (it has \(path)): migrate import creates a new primary \
                    and never merges into an existing one. Import into an empty directory.
                    """)
            }
        }
    }

    /// True when no process holds the directory's lock (checked without creating the lock file).
    static func isLockFree(_ dataDirectory: URL) -> Bool {
        guard FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent(NodeLock.fileName).path) else { return true }
        guard let probe = try? NodeLock.tryAcquire(dataDirectory: dataDirectory) else { return false }
        return probe != nil
    }

    static func write(_ plan: ImportPlan, into dataDirectory: URL, nowMilliseconds: Int64, raiseEpoch: Backups.EpochRaiser) throws -> ImportReport {
        let staging = try StagingDirectory(in: dataDirectory)
        defer { staging.remove() }
        let stagedDatabase = staging.file(DataDirectoryLayout.database)
        try writeDatabase(plan, to: stagedDatabase.path, nowMilliseconds: nowMilliseconds)
        let epochTerm = try raiseEpoch(stagedDatabase.path, plan.serverName, plan.epochFloor)
        var moves = [DirectoryCommit.Move(staged: stagedDatabase, path: DataDirectoryLayout.database, mode: 0o600)]
        if plan.asNewPrimary, let certificate = plan.export.icaCertificate, let key = plan.export.icaKey {
            for (text, path, mode) in [(certificate, DataDirectoryLayout.icaCertificate, UInt32(0o644)), (key, DataDirectoryLayout.icaKey, UInt32(0o600))] {
                let staged = staging.file((path as NSString).lastPathComponent)
                try DurableFile.write(Array(text.utf8), to: staged, mode: mode_t(mode))
                moves.append(DirectoryCommit.Move(staged: staged, path: path, mode: mode))
            }
        }
        let facts = try DatabaseFacts.read(path: stagedDatabase.path, verifyJournal: true)
        _ = try DirectoryCommit.commit(moves, into: dataDirectory, alsoSetAside: [], nowMilliseconds: nowMilliseconds)
        return plan.report(head: facts.head, epochTerm: epochTerm, dryRun: false)
    }

    static func writeDatabase(_ plan: ImportPlan, to path: String, nowMilliseconds: Int64) throws {
        let store = try ManagementStore(path: path)
        let epoch = RevisionEpoch(term: plan.epochFloor + 1, server: plan.serverName)
        let sourceName = plan.export.source["server"]?.stringValue ?? "?"
        let objects = plan.objects
        var head: (number: UInt64, hash: String)?
        var offset = 0
        repeat {
            let batch = objects[offset..<min(offset + OperationsLimits.importChangesPerRevision, objects.count)]
            let revision = Revision(
                after: head, epoch: epoch, publishedAtMilliseconds: nowMilliseconds, author: "System", sessionUID: "",
                sessionName: "migrate import from \(sourceName)", changes: batch.map { .upsert($0) })
            try store.append(revision)
            head = (revision.number, revision.hash)
            offset += batch.count
        } while offset < objects.count
        for (key, value) in plan.settings.sorted(by: { $0.key < $1.key }) { try store.setSetting(key, value) }
        // The new primary of the same group keeps the SIC identity of its own server object.
        if plan.asNewPrimary, let own = objects.first(where: { $0.type == .checkpointHost && $0.name == plan.serverName }) {
            try store.setSetting("server-uid", own.uid)
        }
    }
}

/// What an import writes, decided from the export and the options before anything is touched.
struct ImportPlan {
    let export: Migration.Export
    let serverName: String
    let asNewPrimary: Bool
    let objects: [ManagedObject]
    let settings: [String: String]
    /// The new epoch's term is above this one.
    let epochFloor: UInt64
    let groupServers: [DatabaseFacts.ManagementServer]
    let serversLeftOut: [String]
    let gatewaysToEnrol: [String]

    init(_ export: Migration.Export, _ options: Migration.ImportOptions) throws {
        self.export = export
        asNewPrimary = options.asNewPrimary
        let servers = export.objects.filter { $0.type == .checkpointHost }
        groupServers = servers.map { server in
            DatabaseFacts.ManagementServer(
                name: server.name,
                sicAddress: server.fields[ManagedObject.haSICAddressField]?.stringValue.flatMap { $0.isEmpty ? nil : $0 })
        }
        epochFloor = max(export.sourceEpochTerm, options.minimumEpochTerm)
        guard epochFloor < OperationsLimits.epochTermMax else {
            throw OperationsError(
                "epoch-term-out-of-range",
                "epoch term \(epochFloor) is beyond any real promotion history (at most \(OperationsLimits.epochTermMax - 1)); give the highest term the group really used"
            )
        }
        if asNewPrimary {
            serverName = options.serverName ?? export.source["server"]?.stringValue ?? Migration.defaultServerName
            objects = export.objects
            settings = export.settings
            serversLeftOut = []
            gatewaysToEnrol = []
            return
        }
        let taken = servers.map(\.name).sorted()
        let name = options.serverName ?? Migration.defaultServerName
        guard !taken.contains(name) else {
            throw OperationsError(
                "server-name-taken",
                """
                the export's HA group has a server named \(name) (its servers: \(taken.joined(separator: ", "))). migrate import \
                starts a new, separate group whose server has an identity of its own: give it another name with --server-name. \
                To take the group's place after every one of its servers is lost, use --as-new-primary.
                """)
        }
        serverName = name
        // The new group's only management server is the new one (it registers itself at its first start).
        objects = export.objects.filter { $0.type != .checkpointHost }.map(Self.withoutSICTrust)
        // The old Internal CA's revocation list means nothing under the new CA.
        settings = export.settings.filter { $0.key != "sic-revocations" }
        serversLeftOut = taken
        gatewaysToEnrol = export.objects.filter { $0.fields[ManagedObject.sicStateField]?.stringValue == "initialized" && $0.type != .checkpointHost }
            .map(\.name).sorted()
    }

    /// A SIC node's object without the trust it had under the old Internal CA: uninitialized, no
    /// certificate serial, no pending activation key.
    static func withoutSICTrust(_ object: ManagedObject) -> ManagedObject {
        guard object.fields[ManagedObject.sicStateField] != nil || object.fields[ManagedObject.activationKeyField] != nil else { return object }
        var object = object
        object.fields[ManagedObject.sicStateField] = .string("uninitialized")
        for field in [ManagedObject.sicSerialField, ManagedObject.sicNameField, ManagedObject.activationKeyField] { object.fields[field] = nil }
        return object
    }

    /// With --as-new-primary: refused while any server of the exported group answers.
    func checkGroupGone() throws {
        guard asNewPrimary else { return }
        let answering = GroupProbe.answering(groupServers)
        guard answering.isEmpty else {
            throw OperationsError(
                "ha-group-alive",
                """
                --as-new-primary refused: \(answering.joined(separator: ", ")) answer\(answering.count == 1 ? "s" : "") on the SIC port, \
                so the exported HA group still has a working server. Promote a standby there (`rampart ha promote`), or import \
                without --as-new-primary to start a new, separate group; a second primary would split the group.
                """)
        }
    }

    var revisionCount: Int { max(1, (objects.count + OperationsLimits.importChangesPerRevision - 1) / OperationsLimits.importChangesPerRevision) }

    func report(head: ArchiveManifest.Head?, epochTerm: UInt64?, dryRun: Bool) -> Migration.ImportReport {
        Migration.ImportReport(
            export: export, dryRun: dryRun, serverName: serverName, asNewPrimary: asNewPrimary, head: head,
            revisions: revisionCount, epochTerm: epochTerm, serversLeftOut: serversLeftOut, gatewaysToEnrol: gatewaysToEnrol)
    }
}
