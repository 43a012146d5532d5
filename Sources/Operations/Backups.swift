import Foundation
import Store
import TrustCore

/// `rampart backup`: an online, consistent copy of the management database (plus the Internal CA
/// a new primary needs, and optionally the logs), in one archive with a manifest.
public enum Backups {
    public static let fileExtension = "rampart-backup"

    public struct CreateOptions: Sendable {
        public var dataDirectory: URL
        /// Where the archive goes (default DIR/backups).
        public var destination: URL?
        public var includeLogs: Bool
        public var passphrase: [UInt8]?
        public var serverName: String
        public var scheduled: Bool
        public var nowMilliseconds: Int64

        public init(
            dataDirectory: URL, destination: URL? = nil, includeLogs: Bool = false, passphrase: [UInt8]? = nil,
            serverName: String, scheduled: Bool = false, nowMilliseconds: Int64
        ) {
            self.dataDirectory = dataDirectory
            self.destination = destination
            self.includeLogs = includeLogs
            self.passphrase = passphrase
            self.serverName = serverName
            self.scheduled = scheduled
            self.nowMilliseconds = nowMilliseconds
        }

        public var destinationDirectory: URL { destination ?? dataDirectory.appendingPathComponent(DataDirectoryLayout.backups) }
    }

    /// Takes a backup while the server runs (or not). The database is copied inside one read
    /// transaction on a connection of its own (see `DatabaseFiles.consistentCopy`), so the copy is
    /// the database as of one moment, with the head the manifest records.
    public static func create(_ options: CreateOptions) throws -> (url: URL, manifest: ArchiveManifest) {
        let directory = options.destinationDirectory
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        let staging = try StagingDirectory(in: directory)
        defer { staging.remove() }
        let database = staging.file(DataDirectoryLayout.database)
        let source = options.dataDirectory.appendingPathComponent(DataDirectoryLayout.database)
        guard FileManager.default.fileExists(atPath: source.path) else {
            throw OperationsError("no-database", "\(options.dataDirectory.path) holds no management database (rampart.sqlite)")
        }
        try DatabaseFiles.consistentCopy(of: source.path, to: database.path)
        // The journal is not re-walked here: the server verified it at start and checks every append's
        // link and hash; every restore and `backup verify` walk the whole chain of the copy.
        let facts = try DatabaseFacts.read(path: database.path, verifyJournal: false)
        var inputs = [ArchiveInput(name: DataDirectoryLayout.database, path: DataDirectoryLayout.database, kind: .sqlite, mode: 0o600, source: database)]
        inputs += icaInputs(options.dataDirectory)
        let logs = options.dataDirectory.appendingPathComponent(DataDirectoryLayout.logs)
        let withLogs = options.includeLogs && FileManager.default.fileExists(atPath: logs.path)
        if withLogs {
            let copy = staging.file(DataDirectoryLayout.logs)
            try DatabaseFiles.consistentCopy(of: logs.path, to: copy.path)
            inputs.append(ArchiveInput(name: DataDirectoryLayout.logs, path: DataDirectoryLayout.logs, kind: .sqlite, mode: 0o600, source: copy))
        }
        let manifest = ArchiveManifest(
            kind: .backup, archiveID: SecureRandom.uuid(), createdAtMilliseconds: options.nowMilliseconds,
            server: options.serverName, schema: facts.schema, head: facts.head, epochTerm: facts.epochTerm,
            objectCount: facts.objectCount, groupPeers: facts.groupPeers(of: options.serverName).map(\.name),
            includesLogs: withLogs)
        let name = "backup-\(options.serverName)-\(DataDirectoryLayout.stamp(options.nowMilliseconds))\(options.scheduled ? "-scheduled" : "").\(fileExtension)"
        let url = directory.appendingPathComponent(name)
        return (url, try ArchiveFile.write(manifest, inputs: inputs, passphrase: options.passphrase, to: url))
    }

    /// The Internal CA's certificate and key, when this node holds them (a new primary needs them:
    /// gateways and peers trust this CA).
    static func icaInputs(_ dataDirectory: URL) -> [ArchiveInput] {
        [(DataDirectoryLayout.icaCertificate, UInt32(0o644)), (DataDirectoryLayout.icaKey, UInt32(0o600))].compactMap { path, mode in
            let url = dataDirectory.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            return ArchiveInput(name: (path as NSString).lastPathComponent, path: path, kind: .file, mode: mode, source: url)
        }
    }

    // MARK: listing

    public struct Listed: Sendable {
        public var url: URL
        public var manifest: ArchiveManifest?
        public var fileSize: UInt64
        /// Why the manifest could not be read (the file is still listed: an operator must see it).
        public var problem: OperationsError?
    }

    /// The archives in `directory` whose name ends in `.extension`, oldest first (by creation time
    /// in the manifest; unreadable ones by name, first). Files still being written are skipped.
    public static func list(in directory: URL, fileExtension: String = fileExtension) -> [Listed] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        let listed = names.filter { $0.hasSuffix("." + fileExtension) && !$0.hasPrefix(".") }.sorted().map { name -> Listed in
            let url = directory.appendingPathComponent(name)
            do {
                let (manifest, size) = try ArchiveFile.readManifest(url)
                return Listed(url: url, manifest: manifest, fileSize: size, problem: nil)
            } catch {
                return Listed(
                    url: url, manifest: nil, fileSize: (try? ArchiveFile.fileSize(url)) ?? 0,
                    problem: error as? OperationsError ?? OperationsError("read-failed", "\(error)"))
            }
        }
        return listed.sorted {
            ($0.manifest?.createdAtMilliseconds ?? -1, $0.url.lastPathComponent) < ($1.manifest?.createdAtMilliseconds ?? -1, $1.url.lastPathComponent)
        }
    }

    /// Deletes `serverName`'s oldest scheduled backups in `directory` beyond the schedule's retention
    /// count; manual backups and other servers' are never touched. Returns the files it could not delete.
    public static func pruneScheduled(in directory: URL, schedule: BackupSchedule, serverName: String) -> [(URL, any Error)] {
        let scheduled = list(in: directory).filter {
            $0.manifest?.server == serverName && $0.url.lastPathComponent.hasSuffix("-scheduled.\(fileExtension)")
        }
        return schedule.expired(scheduled).compactMap { expired in
            do {
                try FileManager.default.removeItem(at: expired.url)
                return nil
            } catch { return (expired.url, error) }
        }
    }

    // MARK: restoring

    public struct RestoreOptions: Sendable {
        public var archive: URL
        public var dataDirectory: URL
        public var passphrase: [UInt8]?
        public var request: RestoreRequest
        /// The restored server's name (default: the archive's server).
        public var serverName: String?
        /// With --as-new-primary: the epoch term must end above this one too (what gateways last saw).
        public var minimumEpochTerm: UInt64
        public var nowMilliseconds: Int64

        public init(
            archive: URL, dataDirectory: URL, passphrase: [UInt8]?, request: RestoreRequest, serverName: String? = nil,
            minimumEpochTerm: UInt64 = 0, nowMilliseconds: Int64
        ) {
            self.archive = archive
            self.dataDirectory = dataDirectory
            self.passphrase = passphrase
            self.request = request
            self.serverName = serverName
            self.minimumEpochTerm = minimumEpochTerm
            self.nowMilliseconds = nowMilliseconds
        }
    }

    public struct RestoreReport: Sendable {
        public var manifest: ArchiveManifest
        public var serverName: String
        /// The epoch term the restored server starts in (raised with --as-new-primary).
        public var epochTerm: UInt64?
        /// Where the files it replaced were moved.
        public var setAside: URL?
    }

    /// Raises the epoch in the staged database: (path, server name, lowest term to exceed) → new term.
    public typealias EpochRaiser = @Sendable (String, String, UInt64) throws -> UInt64

    /// Restores a backup into a stopped server's data directory. Order: the directory's lock (a
    /// running server is refused before anything is written into its directory); then the whole file
    /// is checked — every part verified and extracted to a staging directory, the database's journal
    /// checked against the manifest's head — so a damaged file is always named as such; then the
    /// policy on the target and the group (for --as-new-primary, the group's servers are probed) and
    /// the epoch raised; only then are files moved into place. A failure leaves the directory as it was
    /// (what the restore created, the directory or its lock file, is removed again).
    public static func restore(_ options: RestoreOptions, raiseEpoch: EpochRaiser) throws -> RestoreReport {
        let target = try TargetDirectory.open(options.dataDirectory)
        return try target.undoingOnFailure { try restore(options, into: target, raiseEpoch: raiseEpoch) }
    }

    static func restore(_ options: RestoreOptions, into target: TargetDirectory, raiseEpoch: EpochRaiser) throws -> RestoreReport {
        let directory = target.url
        let (manifest, _) = try ArchiveFile.readManifest(options.archive)
        guard manifest.kind == .backup else {
            throw OperationsError(
                "wrong-kind", "\(options.archive.path) is a \(manifest.kind.rawValue), not a backup: use `rampart \(manifest.kind.rawValue) restore`")
        }
        let serverName = options.serverName ?? manifest.server
        var situation = try targetSituation(directory, serverName: serverName, running: target.lock == nil)
        if situation.serverRunning, let refusal = RestorePolicy.refusal(situation, options.request) { throw refusal }

        let staging = try StagingDirectory(in: directory)
        defer { staging.remove() }
        _ = try ArchiveFile.verify(options.archive, passphrase: options.passphrase, knownSchema: DatabaseFiles.managementSchema, extractTo: staging.url)
        let stagedDatabase = staging.file(DataDirectoryLayout.database)
        let facts = try checkedDatabase(stagedDatabase.path, against: manifest, archive: options.archive.path)
        situation.archiveGroupPeers = manifest.groupPeers
        if let refusal = RestorePolicy.refusal(situation, options.request) { throw refusal }
        var epochTerm = facts.epochTerm
        if options.request.asNewPrimary {
            // Every server the backup knows, its own included: a backup of a live server must not become a second one.
            situation.answeringPeers = GroupProbe.answering(facts.managementServers)
            if let refusal = RestorePolicy.refusal(situation, options.request) { throw refusal }
            let floor = max(facts.highestKnownEpochTerm, options.minimumEpochTerm, try targetEpochTerm(directory) ?? 0)
            epochTerm = try raiseEpoch(stagedDatabase.path, serverName, floor)
        }
        let moves = manifest.parts.map { DirectoryCommit.Move(staged: staging.file($0.name), path: $0.path, mode: $0.mode) }
        let aside = try DirectoryCommit.commit(
            moves, into: directory, alsoSetAside: sqliteCompanions(manifest.parts),
            nowMilliseconds: options.nowMilliseconds)
        return RestoreReport(manifest: manifest, serverName: serverName, epochTerm: epochTerm, setAside: aside)
    }

    /// The -wal and -shm files of every SQLite part: they belong to the database being replaced.
    static func sqliteCompanions(_ parts: [ArchiveManifest.Part]) -> [String] {
        parts.filter { $0.kind == .sqlite }.flatMap { [$0.path + "-wal", $0.path + "-shm"] }
    }

    /// The staged database must be sound, its journal must verify, and its head must be the
    /// manifest's. A restore checks the journal's links (with every part's SHA-256 equal to the
    /// manifest's, the file is bit for bit what was backed up); `backup verify` also recomputes
    /// every revision's hash, as the server does at every start before it serves a database.
    static func checkedDatabase(
        _ path: String, against manifest: ArchiveManifest, archive: String,
        journalCheck: DatabaseFacts.JournalCheck = .links
    ) throws -> DatabaseFacts {
        if let problem = DatabaseFiles.integrityProblem(path: path) {
            throw OperationsError.corrupt(archive, "its database fails SQLite's integrity check: \(problem)")
        }
        let facts: DatabaseFacts
        do { facts = try DatabaseFacts.read(path: path, journalCheck: journalCheck) } catch let error as OperationsError {
            throw OperationsError.corrupt(archive, error.message)
        }
        guard facts.head == manifest.head else {
            throw OperationsError.corrupt(
                archive,
                "its database's head (\(facts.head.map { "#\($0.number)" } ?? "none")) is not the manifest's (\(manifest.head.map { "#\($0.number)" } ?? "none"))"
            )
        }
        return facts
    }

    /// What the target directory holds now.
    static func targetSituation(_ directory: URL, serverName: String, running: Bool) throws -> RestoreSituation {
        var situation = RestoreSituation(dataDirectory: directory.path)
        situation.serverRunning = running || LivenessProbe.socketAnswers(dataDirectory: directory)
        situation.targetIsSecondary = FileManager.default.fileExists(atPath: directory.appendingPathComponent(DataDirectoryLayout.haMembership).path)
        let database = directory.appendingPathComponent(DataDirectoryLayout.database)
        if FileManager.default.fileExists(atPath: database.path) {
            situation.targetHoldsDatabase = true
            if !situation.serverRunning, let facts = DatabaseFacts.readInPlace(path: database.path) {
                situation.targetHead = facts.head
                situation.targetGroupPeers = facts.groupPeers(of: serverName).map(\.name)
            }
        }
        return situation
    }

    static func targetEpochTerm(_ directory: URL) throws -> UInt64? {
        let database = directory.appendingPathComponent(DataDirectoryLayout.database)
        guard FileManager.default.fileExists(atPath: database.path) else { return nil }
        return DatabaseFacts.readInPlace(path: database.path)?.highestKnownEpochTerm
    }
}

extension Backups {
    /// Checks a backup or snapshot end to end without restoring it: manifest, every part's checksum,
    /// and — when its contents can be read (not encrypted, or the passphrase given) — the database
    /// (SQLite integrity, the journal's hash chain, the head against the manifest). Extraction goes to
    /// a private scratch directory under `scratchParent`, removed afterwards.
    public static func verify(_ archive: URL, passphrase: [UInt8]?, scratchParent: URL) throws -> ArchiveReport {
        let (manifest, _) = try ArchiveFile.readManifest(archive)
        guard manifest.encryption == nil || passphrase != nil else {
            return try ArchiveFile.verify(archive, passphrase: nil, knownSchema: DatabaseFiles.managementSchema)
        }
        let staging = try StagingDirectory(in: scratchParent)
        defer { staging.remove() }
        let report = try ArchiveFile.verify(archive, passphrase: passphrase, knownSchema: DatabaseFiles.managementSchema, extractTo: staging.url)
        if let database = manifest.parts.first(where: { $0.path == DataDirectoryLayout.database }) {
            _ = try checkedDatabase(staging.file(database.name).path, against: manifest, archive: archive.path, journalCheck: .full)
        } else {
            throw OperationsError.corrupt(archive.path, "it holds no management database")
        }
        return report
    }
}
