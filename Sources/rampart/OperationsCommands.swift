import ArgumentParser
import Foundation
import HARuntime
import ManagementModel
import Operations
import Store

/// Runs an operations command's work; a failure is printed with its code (JSON on stdout with
/// --json, else on stderr) and the command exits 1.
func runReporting<T>(json: Bool, _ work: () throws -> T) throws -> T {
    do { return try work() } catch {
        let report = OperationsReport.failure(error, json: json)
        if json { print(report) } else { FileHandle.standardError.write(Data((report + "\n").utf8)) }
        throw ExitCode(1)
    }
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
        subcommands: [
            BackupCreateCommand.self, BackupListCommand.self, BackupVerifyCommand.self, BackupRestoreCommand.self,
            BackupScheduleCommand.self,
        ])
}

struct BackupCreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create", abstract: "Take a backup now (online: the server keeps taking writes).",
        discussion:
            "Writes DIR/backups/backup-SERVER-TIME.rampart-backup (0600) unless --to names another directory. The result is recorded in DIR/last-backup.json and shown by `rampart ha status`."
    )
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Option(name: .long, help: "Directory for the backup (default DIR/backups).") var to: String?
    @Flag(name: .long, help: "Also copy this node's logs (DIR/logs.sqlite), when it has them.") var includeLogs = false
    @Option(name: .long, help: "Encrypt with the passphrase in this file (first line, at least 12 bytes).") var passphraseFile: String?
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let directory = URL(fileURLWithPath: data).standardizedFileURL
        let made = try runReporting(json: json) { () -> (url: URL, manifest: ArchiveManifest) in
            let options = Backups.CreateOptions(
                dataDirectory: directory, destination: to.map { URL(fileURLWithPath: $0).standardizedFileURL },
                includeLogs: includeLogs, passphrase: try passphraseFile.map(PassphraseFile.read),
                serverName: try NodeSettings.read(dataDirectory: data).serverName, nowMilliseconds: WallClock.nowMilliseconds())
            if !json { FileHandle.standardError.write(Data("copying the database of \(options.serverName) (online)…\n".utf8)) }
            return try BackupStatus.recording(dataDirectory: directory, scheduled: false, nowMilliseconds: options.nowMilliseconds) {
                try Backups.create(options)
            }
        }
        print(OperationsReport.created(made, json: json))
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
        print(OperationsReport.listing(Backups.list(in: directory, fileExtension: Self.fileExtension), json: json))
    }
}

struct BackupVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check a backup or snapshot file end to end, without restoring it (exit 1 when unusable).",
        discussion:
            "Checks the manifest, the SHA-256 of every part, and the database: SQLite integrity, the revision journal's hash chain, and the head against the manifest. An encrypted file without --passphrase-file gets the checks that need no key only."
    )
    @Argument(help: "The archive file.") var file: String
    @Option(name: .long, help: "File holding the passphrase of an encrypted archive.") var passphraseFile: String?
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let url = URL(fileURLWithPath: file).standardizedFileURL
        let report = try runReporting(json: json) {
            try Backups.verify(url, passphrase: try passphraseFile.map(PassphraseFile.read), scratchParent: url.deletingLastPathComponent())
        }
        let note =
            report.contentsChecked
            ? "contents, database and journal verified" : "stored bytes verified; contents not checked (encrypted: give --passphrase-file)"
        if json {
            print(
                JSONValue.object([
                    "ok": true, "contents-checked": .bool(report.contentsChecked), "note": .string(note),
                    "manifest": OperationsReport.manifestJSON(report.manifest),
                ]).canonicalString)
        } else {
            print("OK: \(OperationsReport.manifestSummary(report.manifest, fileSize: report.fileSize))")
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
    @Option(name: .long, help: "With --as-new-primary: the new epoch's term must also exceed this one (the highest term gateways saw).") var epochTerm: UInt64 =
        0
    @Flag(name: .long, help: "JSON output.") var json = false

    func validate() throws {
        if !asNewPrimary, serverName != nil || epochTerm != 0 { throw ValidationError("--server-name and --epoch-term go with --as-new-primary") }
    }

    func run() throws {
        let options = Backups.RestoreOptions(
            archive: URL(fileURLWithPath: file).standardizedFileURL, dataDirectory: URL(fileURLWithPath: data).standardizedFileURL,
            passphrase: nil, request: RestoreRequest(asNewPrimary: asNewPrimary, replace: replace),
            serverName: serverName, minimumEpochTerm: epochTerm, nowMilliseconds: WallClock.nowMilliseconds())
        let report = try runReporting(json: json) { () -> Backups.RestoreReport in
            var options = options
            options.passphrase = try passphraseFile.map(PassphraseFile.read)
            if !json { FileHandle.standardError.write(Data("verifying \(file) before anything changes…\n".utf8)) }
            return try Backups.restore(options, raiseEpoch: HardStateStore.raiseEpoch)
        }
        print(OperationsReport.restored(report, data: data, json: json, asNewPrimary: asNewPrimary))
    }
}

struct BackupScheduleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule", abstract: "Show or set this node's backup schedule (node.json; the running server picks it up).",
        discussion:
            "Daily at a UTC time (--daily-at 02:30) or every N hours (--every-hours 6), keeping the newest --retention scheduled backups (manual ones are never deleted). The last backup's time, size and result show in `rampart ha status`. The schedule is node-local: each server of an HA group has its own."
    )
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
        var settings: NodeSettings
        do { settings = try NodeSettings.read(dataDirectory: data) } catch let missing as NodeSettings.Missing { throw ValidationError(missing.description) }
        if off {
            settings.backupSchedule = nil
        } else if dailyAt != nil || everyHours != nil {
            let schedule = BackupSchedule(
                dailyAt: dailyAt, everyHours: everyHours, retention: retention,
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
        discussion:
            "create works while the server runs (databases are copied consistently); restore only on a stopped server, of the same node. Snapshots hold private keys: keep them 0600, or encrypt with --passphrase-file.\n\n"
            + OperationsHelp.comparisonTable,
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
            try Snapshots.create(
                dataDirectory: URL(fileURLWithPath: data).standardizedFileURL, destination: to.map { URL(fileURLWithPath: $0).standardizedFileURL },
                passphrase: try passphraseFile.map(PassphraseFile.read), serverName: try NodeSettings.read(dataDirectory: data).serverName,
                nowMilliseconds: WallClock.nowMilliseconds())
        }
        print(OperationsReport.created(made, json: json))
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
        discussion:
            "Verifies the whole file first; refuses a running server, another node's snapshot, and a member of an HA group whose other servers answer (re-add it as a standby instead). The node's current files go to DIR/before-restore-TIME/."
    )
    @Argument(help: "The snapshot file.") var file: String
    @Option(name: .long, help: "The (stopped) node's data directory.") var data: String
    @Option(name: .long, help: "File holding the passphrase of an encrypted snapshot.") var passphraseFile: String?
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let report = try runReporting(json: json) {
            try Snapshots.restore(
                archive: URL(fileURLWithPath: file).standardizedFileURL, dataDirectory: URL(fileURLWithPath: data).standardizedFileURL,
                passphrase: try passphraseFile.map(PassphraseFile.read), nowMilliseconds: WallClock.nowMilliseconds(), raiseEpoch: HardStateStore.raiseEpoch)
        }
        print(OperationsReport.restored(report, data: data, json: json, asNewPrimary: false))
    }
}

// MARK: migrate

struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Export the configuration to a portable, versioned JSON file, or import one into a fresh data directory.",
        discussion:
            "Configuration only: every published object (network objects, services, rules, layers, packages, administrators, management servers) and the Internal CA; no logs, no revision history. The format is documented in the README (\"Migrate export format\"); a later Rampart imports it. The file holds the ICA's private key and password hashes: it is written 0600.\n\n"
            + OperationsHelp.comparisonTable,
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
            return try Migration.export(
                dataDirectory: URL(fileURLWithPath: data).standardizedFileURL, to: url, serverName: try NodeSettings.read(dataDirectory: data).serverName,
                settingKeys: MigrationSettings.keys, nowMilliseconds: WallClock.nowMilliseconds())
        }
        print(OperationsReport.migrated(export, verb: "exported to \(url.path)", extra: [:], json: json))
    }
}

struct MigrateImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract:
            "Import a migrate export into a fresh data directory: a new, separate group's server (or, with --as-new-primary, the lost group's new primary).",
        discussion: """
            By default the directory becomes the only server of a NEW HA group, safe to run beside the group it came from: no HA membership, none of the exported group's management servers (nothing to dial), a name of its own (--server-name, default primary; never one of the export's servers), and no Internal CA — the server creates a new one, and its SIC and API certificates from it, at its first start. Gateways keep their objects but must be enrolled again (their SIC trust belonged to the old CA).

            --as-new-primary: every server of the exported group is lost; the import takes the group's place with its Internal CA, servers and gateways (the name defaults to the exporting server's). Refused while any server of the export answers on its SIC port.

            Either way the objects are written as revisions of 1,000 in an epoch above the export's (and --epoch-term), so gateways accept the new primary's policy. --dry-run checks the file and the directory and reports what would be imported, changing nothing. Then start it with the command printed.
            """)
    @Argument(help: "The export file.") var file: String
    @Option(name: .long, help: "The new data directory (must hold no database).") var data: String
    @Option(name: .long, help: "The new server's name (default: primary; with --as-new-primary, the exporting server's).") var serverName: String?
    @Flag(name: .long, help: "Disaster recovery: every server of the exported group is lost; take its place (its Internal CA, servers and gateways).")
    var asNewPrimary = false
    @Option(name: .long, help: "The new epoch's term must also exceed this one (the highest term gateways saw).") var epochTerm: UInt64 = 0
    @Flag(name: .long, help: "Only report what would be imported.") var dryRun = false
    @Flag(name: .long, help: "JSON output.") var json = false

    func run() throws {
        let options = Migration.ImportOptions(
            file: URL(fileURLWithPath: file).standardizedFileURL, dataDirectory: URL(fileURLWithPath: data).standardizedFileURL,
            serverName: serverName, asNewPrimary: asNewPrimary, minimumEpochTerm: epochTerm, dryRun: dryRun,
            nowMilliseconds: WallClock.nowMilliseconds())
        let report = try runReporting(json: json) { try Migration.importExport(options, raiseEpoch: HardStateStore.raiseEpoch) }
        var extra: [String: JSONValue] = [
            "dry-run": .bool(dryRun), "revisions": .int(Int64(report.revisions)), "server-name": .string(report.serverName),
            "as-new-primary": .bool(report.asNewPrimary),
            "servers-left-out": .array(report.serversLeftOut.map(JSONValue.string)),
            "gateways-to-enrol": .array(report.gatewaysToEnrol.map(JSONValue.string)),
        ]
        // Both come from the export file: values past Int64.max are shown at that bound, never a trap.
        if let term = report.epochTerm { extra["epoch-term"] = .int(Int64(clamping: term)) }
        if let head = report.head { extra["head"] = ["number": .int(Int64(clamping: head.number)), "hash": .string(head.hash)] }
        print(
            OperationsReport.migrated(
                report.export, verb: dryRun ? "would import into \(data) (dry run: nothing changed)" : "imported into \(data)", extra: extra, json: json))
        guard !json else { return }
        if report.asNewPrimary {
            print("the new primary \(report.serverName) of the exported group, with its Internal CA")
        } else {
            print("a new HA group: \(report.serverName) is its only server; it creates a new Internal CA at its first start")
            if !report.serversLeftOut.isEmpty { print("management servers of the exported group left out: \(report.serversLeftOut.joined(separator: ", "))") }
            if !report.gatewaysToEnrol.isEmpty {
                print(
                    "gateways to enrol again (set-simple-gateway one-time-password-file=FILE, then enrol the agent): \(report.gatewaysToEnrol.joined(separator: ", "))"
                )
            }
        }
        if !dryRun { print("start it with: rampart server --data \(data) --server-name \(report.serverName)") }
    }
}
