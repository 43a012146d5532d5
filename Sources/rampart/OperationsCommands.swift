import ArgumentParser
import Foundation
import HARuntime
import ManagementModel
import Operations
import Store

/// The four ways to keep or move a management server's data, side by side (README and `backup --help`).
enum OperationsHelp {
    /// The seed's comparison (README "Backup, snapshot, migrate" has the same rows), narrow enough
    /// for an 80-column `--help`.
    static let comparisonTable = """
        tool           purpose          use case                includes logs   HA sync
        -------------  ---------------  ----------------------  --------------  -----
        backup         routine DB copy  scheduled; same version --include-logs  no
        snapshot       the whole node   roll back this node     yes             no
        migrate        config only,     new machine or version; no              no
        export/import  portable JSON    disaster recovery

        None of them is HA sync: `rampart ha` keeps a standby (full, then delta sync).
        """
}

/// Reads --passphrase-file when given.
func passphrase(_ file: String?) throws -> [UInt8]? {
    try file.map { try PassphraseFile.read($0) }
}

func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

/// A manifest as JSON (the archive's own encoding).
func manifestJSON(_ manifest: ArchiveManifest) -> JSONValue {
    (try? JSONEncoder().encode(manifest)).flatMap { try? JSONValue.parse($0) } ?? .null
}

func manifestSummary(_ manifest: ArchiveManifest, fileSize: UInt64) -> String {
    let head = manifest.head.map { "#\($0.number) \($0.hash.prefix(12))" } ?? "empty"
    return "\(manifest.kind.rawValue) of \(manifest.server) at \(manifest.createdAt): head \(head), \(manifest.objectCount) objects, "
        + "\(fileSize) bytes\(manifest.encryption == nil ? "" : ", encrypted")\(manifest.includesLogs ? ", with logs" : "")"
}

/// Prints an operations failure with its code and exits 1 (2 for refusals a flag would change).
func reportFailure(_ error: any Error, json: Bool) throws -> Never {
    let failure = error as? OperationsError ?? OperationsError("failed", "\(error)")
    if json {
        print(JSONValue.object(["ok": false, "code": .string(failure.code), "message": .string(failure.message)]).canonicalString)
    } else {
        FileHandle.standardError.write(Data("error: \(failure.message) [\(failure.code)]\n".utf8))
    }
    throw ExitCode(1)
}

func runReporting<T>(json: Bool, _ work: () throws -> T) throws -> T {
    do { return try work() } catch { try reportFailure(error, json: json) }
}

/// The server name of a data directory (node.json), for naming archives.
func nodeServerName(_ data: String) throws -> String {
    try NodeSettings.read(dataDirectory: data).serverName
}

/// Raises the HA epoch in a staged database (restore as new primary, migrate import).
let raiseEpochInDatabase: Backups.EpochRaiser = { path, server, floor in
    let store = try ManagementStore(path: path)
    let term = try HardStateStore(store: store).restoreAsNewPrimary(server: server, above: floor)
    try store.setSetting("epoch-term", String(term))
    return term
}

// MARK: backup

struct BackupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Back up the management database online, list, verify and restore backups, schedule them.",
        discussion: """
        A backup is a consistent copy of the management database taken while the server keeps taking writes (SQLite's backup API on a connection of its own), with the Internal CA a new primary needs, in one archive file with a manifest (server, version, schema, head revision and hash, time, sizes, SHA-256 of every part). --passphrase-file encrypts it (AES-256-GCM, key from scrypt).


        """ + OperationsHelp.comparisonTable + """


        Restore safety: every restore checks the manifest and checksums first and refuses a corrupt, truncated, wrong-passphrase or incompatible file, changing nothing. It refuses a directory whose server runs, and a member of an HA group; --as-new-primary is for the case where every server of the group is lost: it refuses while any of them answers, and raises the epoch.
        """,
        subcommands: [BackupCreateCommand.self, BackupListCommand.self, BackupVerifyCommand.self, BackupRestoreCommand.self,
                      BackupScheduleCommand.self])
}

struct BackupCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Take a backup now (online: the server keeps taking writes).",
        discussion: "Writes DIR/backups/backup-SERVER-TIME.rampart-backup (0600) unless --to names another directory. The result is recorded in DIR/last-backup.json and shown by `rampart ha status`.")
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Option(name: .long, help: "Directory for the backup (default DIR/backups).") var to: String?
    @Flag(name: .long, help: "Also copy this node's logs (DIR/logs.sqlite), when it has them.") var includeLogs = false
    @Option(name: .long, help: "Encrypt with the passphrase in this file (first line, at least 12 bytes).") var passphraseFile: String?
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let directory = URL(fileURLWithPath: data).standardizedFileURL
        let made = try runReporting(json: json) { () -> (url: URL, manifest: ArchiveManifest) in
            let options = Backups.CreateOptions(dataDirectory: directory, destination: to.map { URL(fileURLWithPath: $0).standardizedFileURL },
                                                includeLogs: includeLogs, passphrase: try passphrase(passphraseFile),
                                                serverName: try nodeServerName(data), nowMilliseconds: nowMilliseconds())
            if !json { FileHandle.standardError.write(Data("copying the database of \(options.serverName) (online)…\n".utf8)) }
            return try BackupStatus.recording(dataDirectory: directory, scheduled: false, nowMilliseconds: options.nowMilliseconds,
                                              clock: nowMilliseconds) { try Backups.create(options) }
        }
        ArchiveListing.printCreated(made, json: json)
    }
}

struct BackupListCommand: ArchiveListCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the backups of a data directory (or of --to), oldest first.")
    static let folder = DataDirectoryLayout.backups
    static let fileExtension = Backups.fileExtension
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Option(name: .long, help: "List this directory instead of DIR/backups.") var to: String?
    @Flag(name: .long, help: "JSON output.") var json = false
}

/// `backup list` and `snapshot list`: the archives of one kind in DIR/<folder> or --to.
protocol ArchiveListCommand: ParsableCommand {
    static var folder: String { get }
    static var fileExtension: String { get }
    var data: String { get }
    var to: String? { get }
    var json: Bool { get }
}

extension ArchiveListCommand {
    func run() throws {
        let directory = to.map { URL(fileURLWithPath: $0) } ?? URL(fileURLWithPath: data).appendingPathComponent(Self.folder)
        ArchiveListing.print(Backups.list(in: directory, fileExtension: Self.fileExtension), json: json)
    }
}

enum ArchiveListing {
    /// What `backup create` and `snapshot create` print.
    static func printCreated(_ made: (url: URL, manifest: ArchiveManifest), json: Bool) {
        let size = (try? ArchiveFile.fileSize(made.url)) ?? 0
        if json {
            Swift.print(JSONValue.object(["ok": true, "file": .string(made.url.path), "size-bytes": .int(Int64(clamping: size)), "manifest": manifestJSON(made.manifest)]).canonicalString)
        } else {
            Swift.print("\(made.manifest.kind.rawValue) written: \(made.url.path)")
            Swift.print(manifestSummary(made.manifest, fileSize: size) + ", \(made.manifest.parts.count) files")
        }
    }

    static func print(_ listed: [Backups.Listed], json: Bool) {
        if json {
            Swift.print(JSONValue.array(listed.map { entry in
                var fields: [String: JSONValue] = ["file": .string(entry.url.path), "size-bytes": .int(Int64(clamping: entry.fileSize))]
                if let manifest = entry.manifest { fields["manifest"] = manifestJSON(manifest) }
                if let problem = entry.problem { fields["problem"] = .string(problem.message); fields["code"] = .string(problem.code) }
                return .object(fields)
            }).canonicalString)
            return
        }
        if listed.isEmpty { Swift.print("no archives") }
        for entry in listed {
            Swift.print(entry.url.lastPathComponent)
            Swift.print("    " + (entry.manifest.map { manifestSummary($0, fileSize: entry.fileSize) } ?? "UNUSABLE: \(entry.problem?.message ?? "?")"))
        }
    }
}

struct BackupVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check a backup or snapshot file end to end, without restoring it (exit 1 when unusable).",
        discussion: "Checks the manifest, the SHA-256 of every part, and the database: SQLite integrity, the revision journal's hash chain, and the head against the manifest. An encrypted file without --passphrase-file gets the checks that need no key only.")
    @Argument(help: "The archive file.") var file: String
    @Option(name: .long, help: "File holding the passphrase of an encrypted archive.") var passphraseFile: String?
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        let report = try runReporting(json: json) {
            try Backups.verify(url, passphrase: try passphrase(passphraseFile), scratchParent: url.deletingLastPathComponent())
        }
        let note = report.contentsChecked ? "contents, database and journal verified" : "stored bytes verified; contents not checked (encrypted: give --passphrase-file)"
        if json {
            print(JSONValue.object(["ok": true, "contents-checked": .bool(report.contentsChecked), "note": .string(note),
                                    "manifest": manifestJSON(report.manifest)]).canonicalString)
        } else {
            print("OK: \(manifestSummary(report.manifest, fileSize: report.fileSize))")
            print(note)
        }
    }
}

struct BackupRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Restore a backup into a stopped server's data directory.",
        discussion: """
        Verifies the whole file first (manifest, checksums, database, journal), then moves it into place; files it replaces go to DIR/before-restore-TIME/. Refused, changing nothing:
          - while a server runs on DIR (it holds DIR/rampart.lock or answers on DIR/rampart.sock);
          - when DIR already holds a database, unless --replace;
          - when DIR or the backup belongs to an HA group (rebuild a member by adding it as a standby), unless --as-new-primary;
          - with --as-new-primary, while any server of the group answers on its SIC port, and on a secondary's directory (use a fresh one).

        --as-new-primary: every server of the group is lost. The restored server becomes the primary in a raised epoch (above the backup's, DIR's and --epoch-term), so gateways accept its policy. Then add a new secondary (README: "When both servers fail").
        """)
    @Argument(help: "The backup file.") var file: String
    @Option(name: .long, help: "The (stopped) server's data directory; created when missing.") var data: String
    @Option(name: .long, help: "File holding the passphrase of an encrypted backup.") var passphraseFile: String?
    @Flag(name: .long, help: "Replace the database DIR holds (kept in DIR/before-restore-TIME/).") var replace = false
    @Flag(name: .long, help: "Disaster recovery: every server of the HA group is lost; become the primary in a raised epoch.") var asNewPrimary = false
    @Option(name: .long, help: "With --as-new-primary: the restored server's name (default: the backup's server).") var serverName: String?
    @Option(name: .long, help: "With --as-new-primary: the new epoch's term must also exceed this one (the highest term gateways saw).") var epochTerm: UInt64 = 0
    @Flag(name: .long, help: "JSON output.") var json = false

    func validate() throws {
        if !asNewPrimary, serverName != nil || epochTerm != 0 { throw ValidationError("--server-name and --epoch-term go with --as-new-primary") }
    }

    func run() throws {
        let options = Backups.RestoreOptions(archive: URL(fileURLWithPath: file).standardizedFileURL, dataDirectory: URL(fileURLWithPath: data).standardizedFileURL,
                                             passphrase: nil, request: RestoreRequest(asNewPrimary: asNewPrimary, replace: replace),
                                             serverName: serverName, minimumEpochTerm: epochTerm, nowMilliseconds: nowMilliseconds())
        let report = try runReporting(json: json) { () -> Backups.RestoreReport in
            var options = options
            options.passphrase = try passphrase(passphraseFile)
            if !json { FileHandle.standardError.write(Data("verifying \(file) before anything changes…\n".utf8)) }
            return try Backups.restore(options, raiseEpoch: raiseEpochInDatabase)
        }
        RestoreOutput.print(report, data: data, json: json, asNewPrimary: asNewPrimary)
    }
}

enum RestoreOutput {
    static func print(_ report: Backups.RestoreReport, data: String, json: Bool, asNewPrimary: Bool) {
        if json {
            var fields: [String: JSONValue] = ["ok": true, "server-name": .string(report.serverName), "manifest": manifestJSON(report.manifest)]
            // Terms come from a backup file: a term past Int64.max is shown at that bound, never a trap.
            if let term = report.epochTerm { fields["epoch-term"] = .int(Int64(clamping: term)) }
            if let aside = report.setAside { fields["set-aside"] = .string(aside.path) }
            Swift.print(JSONValue.object(fields).canonicalString)
            return
        }
        Swift.print("restored \(report.manifest.kind.rawValue) of \(report.manifest.server) (head #\(report.manifest.head?.number ?? 0)) into \(data)")
        if let aside = report.setAside { Swift.print("the files it replaced are in \(aside.path)") }
        if asNewPrimary, let term = report.epochTerm { Swift.print("new primary \(report.serverName) in epoch term \(term)") }
        Swift.print("start it with: rampart server --data \(data) --server-name \(report.serverName)")
    }
}

struct BackupScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Show or set this node's backup schedule (node.json; the running server picks it up).",
        discussion: "Daily at a UTC time (--daily-at 02:30) or every N hours (--every-hours 6), keeping the newest --retention scheduled backups (manual ones are never deleted). The last backup's time, size and result show in `rampart ha status`. The schedule is node-local: each server of an HA group has its own.")
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Option(name: .long, help: "Daily at HH:MM, UTC.") var dailyAt: String?
    @Option(name: .long, help: "Every N hours (1 to 168).") var everyHours: Int?
    @Option(name: .long, help: "Scheduled backups to keep.") var retention = 7
    @Option(name: .long, help: "Directory for the backups (default DIR/backups).") var to: String?
    @Flag(name: .long, help: "Include this node's logs.") var includeLogs = false
    @Option(name: .long, help: "Encrypt with the passphrase in this file (read at each backup).") var passphraseFile: String?
    @Flag(name: .long, help: "Remove the schedule.") var off = false
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        var settings = try NodeSettings.read(dataDirectory: data)
        if off {
            settings.backupSchedule = nil
        } else if dailyAt != nil || everyHours != nil {
            let schedule = BackupSchedule(dailyAt: dailyAt, everyHours: everyHours, retention: retention,
                                          destination: to.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, includeLogs: includeLogs ? true : nil,
                                          passphraseFile: passphraseFile.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
            if let problem = schedule.problem { throw ValidationError(problem) }
            if let passphraseFile { _ = try runReporting(json: json) { try PassphraseFile.read(passphraseFile) } }
            settings.backupSchedule = schedule
        }
        if off || dailyAt != nil || everyHours != nil { try settings.write(dataDirectory: data) }
        let text = settings.backupSchedule?.summary ?? "no backup schedule"
        print(json ? JSONValue.object(["schedule": .string(text)]).canonicalString : text)
    }
}

// MARK: snapshot

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "The whole node (database, logs, node-local settings, certificates and keys) to roll the same node back.",
        discussion: "create works while the server runs (databases are copied consistently); restore only on a stopped server, of the same node. Snapshots hold private keys: keep them 0600, or encrypt with --passphrase-file.\n\n" + OperationsHelp.comparisonTable,
        subcommands: [SnapshotCreateCommand.self, SnapshotListCommand.self, SnapshotRestoreCommand.self])
}

struct SnapshotCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Take a snapshot of the node (DIR/snapshots unless --to).")
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Option(name: .long, help: "Directory for the snapshot (default DIR/snapshots).") var to: String?
    @Option(name: .long, help: "Encrypt with the passphrase in this file.") var passphraseFile: String?
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let made = try runReporting(json: json) {
            try Snapshots.create(dataDirectory: URL(fileURLWithPath: data).standardizedFileURL, destination: to.map { URL(fileURLWithPath: $0).standardizedFileURL },
                                 passphrase: try passphrase(passphraseFile), serverName: try nodeServerName(data), nowMilliseconds: nowMilliseconds())
        }
        ArchiveListing.printCreated(made, json: json)
    }
}

struct SnapshotListCommand: ArchiveListCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the snapshots of a data directory (or of --to), oldest first.")
    static let folder = DataDirectoryLayout.snapshots
    static let fileExtension = Snapshots.fileExtension
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Option(name: .long, help: "List this directory instead of DIR/snapshots.") var to: String?
    @Flag(name: .long, help: "JSON output.") var json = false
}

struct SnapshotRestoreCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore", abstract: "Roll a stopped node back to a snapshot of itself.",
        discussion: "Verifies the whole file first; refuses a running server, another node's snapshot, and a member of an HA group whose other servers answer (re-add it as a standby instead). The node's current files go to DIR/before-restore-TIME/.")
    @Argument(help: "The snapshot file.") var file: String
    @Option(name: .long, help: "The (stopped) node's data directory.") var data: String
    @Option(name: .long, help: "File holding the passphrase of an encrypted snapshot.") var passphraseFile: String?
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let report = try runReporting(json: json) {
            try Snapshots.restore(archive: URL(fileURLWithPath: file).standardizedFileURL, dataDirectory: URL(fileURLWithPath: data).standardizedFileURL,
                                  passphrase: try passphrase(passphraseFile), nowMilliseconds: nowMilliseconds(), raiseEpoch: raiseEpochInDatabase)
        }
        RestoreOutput.print(report, data: data, json: json, asNewPrimary: false)
    }
}

// MARK: migrate

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Export the configuration to a portable, versioned JSON file, or import one into a fresh data directory.",
        discussion: "Configuration only: every published object (network objects, services, rules, layers, packages, administrators, management servers) and the Internal CA; no logs, no revision history. The format is documented in the README (\"Migrate export format\"); a later Rampart imports it. The file holds the ICA's private key and password hashes: it is written 0600.\n\n" + OperationsHelp.comparisonTable,
        subcommands: [MigrateExportCommand.self, MigrateImportCommand.self])
}

struct MigrateExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "export", abstract: "Export the configuration of DIR's server to FILE (online).")
    @Argument(help: "The export file to write (an existing file is refused).") var file: String
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        let export = try runReporting(json: json) { () -> Migration.Export in
            guard !FileManager.default.fileExists(atPath: url.path) else { throw OperationsError("file-exists", "\(url.path) exists: choose a new file") }
            return try Migration.export(dataDirectory: URL(fileURLWithPath: data).standardizedFileURL, to: url, serverName: try nodeServerName(data),
                                        settingKeys: MigrationSettings.keys, nowMilliseconds: nowMilliseconds())
        }
        MigrateOutput.print(export, verb: "exported to \(url.path)", extra: [:], json: json)
    }
}

/// Database settings that travel with a migrate export: synchronized state only, never node-local.
enum MigrationSettings {
    static let keys = ["sic-revocations"]
}

struct MigrateImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import", abstract: "Import a migrate export into a fresh data directory: a new, separate group's server (or, with --as-new-primary, the lost group's new primary).",
        discussion: """
        By default the directory becomes the only server of a NEW HA group, safe to run beside the group it came from: no HA membership, none of the exported group's management servers (nothing to dial), a name of its own (--server-name, default primary; never one of the export's servers), and no Internal CA — the server creates a new one, and its SIC and API certificates from it, at its first start. Gateways keep their objects but must be enrolled again (their SIC trust belonged to the old CA).

        --as-new-primary: every server of the exported group is lost; the import takes the group's place with its Internal CA, servers and gateways (the name defaults to the exporting server's). Refused while any server of the export answers on its SIC port.

        Either way the objects are written as revisions of 1,000 in an epoch above the export's (and --epoch-term), so gateways accept the new primary's policy. --dry-run checks the file and the directory and reports what would be imported, changing nothing. Then start it with the command printed.
        """)
    @Argument(help: "The export file.") var file: String
    @Option(name: .long, help: "The new data directory (must hold no database).") var data: String
    @Option(name: .long, help: "The new server's name (default: primary; with --as-new-primary, the exporting server's).") var serverName: String?
    @Flag(name: .long, help: "Disaster recovery: every server of the exported group is lost; take its place (its Internal CA, servers and gateways).") var asNewPrimary = false
    @Option(name: .long, help: "The new epoch's term must also exceed this one (the highest term gateways saw).") var epochTerm: UInt64 = 0
    @Flag(name: .long, help: "Only report what would be imported.") var dryRun = false
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let options = Migration.ImportOptions(file: URL(fileURLWithPath: file).standardizedFileURL, dataDirectory: URL(fileURLWithPath: data).standardizedFileURL,
                                              serverName: serverName, asNewPrimary: asNewPrimary, minimumEpochTerm: epochTerm, dryRun: dryRun,
                                              nowMilliseconds: nowMilliseconds())
        let report = try runReporting(json: json) { try Migration.importExport(options, raiseEpoch: raiseEpochInDatabase) }
        var extra: [String: JSONValue] = ["dry-run": .bool(dryRun), "revisions": .int(Int64(report.revisions)), "server-name": .string(report.serverName),
                                          "as-new-primary": .bool(report.asNewPrimary),
                                          "servers-left-out": .array(report.serversLeftOut.map(JSONValue.string)),
                                          "gateways-to-enrol": .array(report.gatewaysToEnrol.map(JSONValue.string))]
        // Both come from the export file: values past Int64.max are shown at that bound, never a trap.
        if let term = report.epochTerm { extra["epoch-term"] = .int(Int64(clamping: term)) }
        if let head = report.head { extra["head"] = ["number": .int(Int64(clamping: head.number)), "hash": .string(head.hash)] }
        MigrateOutput.print(report.export, verb: dryRun ? "would import into \(data) (dry run: nothing changed)" : "imported into \(data)", extra: extra, json: json)
        guard !json else { return }
        if report.asNewPrimary {
            print("the new primary \(report.serverName) of the exported group, with its Internal CA")
        } else {
            print("a new HA group: \(report.serverName) is its only server; it creates a new Internal CA at its first start")
            if !report.serversLeftOut.isEmpty { print("management servers of the exported group left out: \(report.serversLeftOut.joined(separator: ", "))") }
            if !report.gatewaysToEnrol.isEmpty {
                print("gateways to enrol again (set-simple-gateway one-time-password-file=FILE, then enrol the agent): \(report.gatewaysToEnrol.joined(separator: ", "))")
            }
        }
        if !dryRun { print("start it with: rampart server --data \(data) --server-name \(report.serverName)") }
    }
}

enum MigrateOutput {
    static func print(_ export: Migration.Export, verb: String, extra: [String: JSONValue], json: Bool) {
        if json {
            var fields = extra
            fields["ok"] = true
            fields["objects"] = .int(Int64(export.objects.count))
            fields["counts"] = .object(export.counts.mapValues { .int(Int64($0)) })
            fields["administrators"] = .array(export.administrators.map(JSONValue.string))
            fields["source"] = export.source
            fields["includes-ica"] = .bool(export.icaKey != nil)
            Swift.print(JSONValue.object(fields).canonicalString)
            return
        }
        Swift.print("\(export.objects.count) objects \(verb)")
        for (type, count) in export.counts.sorted(by: { $0.key < $1.key }) { Swift.print("  \(type): \(count)") }
        Swift.print("administrators: \(export.administrators.joined(separator: ", "))")
        Swift.print("internal CA in the export: \(export.icaKey != nil ? "yes" : "no")")
        if let revisions = extra["revisions"]?.intValue { Swift.print("revisions: \(revisions), epoch term \(extra["epoch-term"]?.scalarText ?? "?")") }
    }
}
