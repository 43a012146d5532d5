import ArgumentParser
import Foundation
import HARuntime
import ManagementClient
import ManagementModel
import ManagementService
import TrustCore

struct HACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ha",
        abstract: "Management High Availability: status, promotion, sync control and collisions.",
        discussion: """
            Add a secondary: on the active, `rampart sic new-key --out KEYFILE`, then `rampart mgmt add-checkpoint-host name=mgmt-b ip-address=… one-time-password-file=KEYFILE` and publish; on the new machine, `rampart server --data DIR --server-name mgmt-b --join ACTIVE:18191 --activation-key-file KEYFILE`. It enrols, gets a full sync, then follows every publish (delta sync).

            Promote a standby with `rampart ha promote --data DIR` (run --dry-run first): a switchover when the active answers (nothing is lost), a failover otherwise, refused when revisions may be lost unless --force. An old active that comes back steps down; if it holds revisions the new active lacks it reports a collision: export them (`export-divergent`), then `resolve-collision --keep peer|local`.

            When something is wrong, `rampart ha diagnose --data DIR` names each problem with its evidence and the command that fixes it.

            These commands talk to the local server through DIR/rampart.sock.
            """ + "\n\n" + SyncScope.text,
        subcommands: [
            HAStatusCommand.self, HADiagnoseCommand.self, HAPromoteCommand.self, HAStartCommand.self, HAStopCommand.self, HARestartCommand.self,
            HAFullSyncCommand.self, HAResolveCollisionCommand.self, HAExportDivergentCommand.self, HASetModeCommand.self,
        ])
}

struct HAPromoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote",
        abstract: "Make this standby the active server (switchover if the active answers, failover otherwise).",
        discussion: """
            --dry-run only says what would happen: the path (switchover or failover), the active's last contact, this server's lag, the replication mode, and whether revisions may be lost; and three checks, each ok, warning or problem: trust (this server's SIC certificate, and whether it holds the Internal CA's key it needs to sign and revoke as the active), clock (each peer's clock against this one's: over 5 s a warning, over 300 s a problem) and versions (software and schema of every server). A failover that may lose revisions (async mode, or a known lag in sync mode) is refused unless --force; the checks never refuse, they say what to fix. The promotion raises the epoch, so the old active is fenced and steps down when it returns.
            """)

    @Option(name: .long, help: "The server's data directory.")
    var data: String
    @Flag(name: .long, help: "Only report what a promotion would do.")
    var dryRun = false
    @Flag(name: .long, help: "Fail over even if revisions may be lost.")
    var force = false
    @Flag(name: .long, help: "JSON output.")
    var json = false

    func run() async throws {
        let reply = try await LocalOperator.runAsRoot(dataDirectory: data, "ha-promote", ["dry-run": .bool(dryRun), "force": .bool(force)])
        if json { return LocalOperator.printAnswer(reply, json: true) }
        print(reply["summary"]?.stringValue ?? "")
        for check in reply["checks"]?.arrayValue ?? [] {
            print("  \(check["status"]?.stringValue ?? "?") \(check["name"]?.stringValue ?? "?"): \(check["detail"]?.stringValue ?? "")")
        }
        if let result = reply["result"]?.stringValue {
            print("done: \(result) after \(reply["elapsed-ms"]?.scalarText ?? "?") ms")
        }
        if dryRun, reply["may-lose-revisions"]?.boolValue == true { print("a promotion needs --force: revisions may be lost") }
    }
}

struct HAStartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "start", abstract: "Resume synchronization on this server.")
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Flag(name: .long, help: "JSON output.") var json = false
    func run() async throws { LocalOperator.printAnswer(try await LocalOperator.runAsRoot(dataDirectory: data, "ha-start"), json: json) }
}

struct HAStopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop", abstract: "Stop synchronization on this server (epochs are still obeyed; `ha start` resumes).")
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Flag(name: .long, help: "JSON output.") var json = false
    func run() async throws { LocalOperator.printAnswer(try await LocalOperator.runAsRoot(dataDirectory: data, "ha-stop"), json: json) }
}

struct HARestartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Stop and start synchronization: every link says hello again and resynchronizes.")
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Flag(name: .long, help: "JSON output.") var json = false
    func run() async throws {
        _ = try? await LocalOperator.runAsRoot(dataDirectory: data, "ha-stop")  // already stopped is fine
        LocalOperator.printAnswer(try await LocalOperator.runAsRoot(dataDirectory: data, "ha-start"), json: json)
    }
}

struct HAFullSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "full-sync", abstract: "On the active: send PEER a full copy of the database (a snapshot, then deltas).")
    @Argument(help: "The standby's server name.") var peer: String
    @Option(name: .long, help: "The active server's data directory.") var data: String
    @Flag(name: .long, help: "JSON output.") var json = false
    func run() async throws {
        LocalOperator.printAnswer(try await LocalOperator.runAsRoot(dataDirectory: data, "ha-full-sync", ["name": .string(peer)]), json: json)
    }
}

struct HAResolveCollisionCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve-collision",
        abstract: "On a server in collision: keep the active's data (peer) or this server's (local).",
        discussion: """
            --keep peer: this server's divergent revisions are exported to DIR/ha-exports/ (durably, before anything is dropped), dropped, and it synchronizes from the active. --keep local: this server is promoted in a new epoch with its data; the other server then reports the collision and exports its own divergent revisions when resolved there.
            """)
    @Option(name: .long, help: "local or peer.") var keep: String
    @Option(name: .long, help: "The server's data directory.") var data: String
    @Flag(name: .long, help: "JSON output.") var json = false

    func validate() throws {
        guard ["local", "peer"].contains(keep) else { throw ValidationError("--keep must be local or peer") }
    }

    func run() async throws {
        let reply = try await LocalOperator.runAsRoot(dataDirectory: data, "ha-resolve-collision", ["keep": .string(keep)])
        LocalOperator.printAnswer(reply, json: json)
        if !json, let file = reply["exported-to"]?.stringValue { print("divergent revisions exported to \(file)") }
    }
}

struct HAExportDivergentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-divergent",
        abstract: "On a server in collision: write the revisions the active lacks to FILE (one JSON revision per line).")
    @Argument(help: "Where to write them (created 0600; an existing file is refused).") var file: String
    @Option(name: .long, help: "The server's data directory.") var data: String

    func run() async throws {
        guard !FileManager.default.fileExists(atPath: file) else { throw ValidationError("\(file) exists: choose a new file") }
        let reply = try await LocalOperator.runAsRoot(dataDirectory: data, "ha-export-divergent")
        let revisions = reply["revisions"]?.arrayValue ?? []
        var bytes: [UInt8] = []
        for revision in revisions { bytes += revision.canonicalBytes + [UInt8(ascii: "\n")] }
        try DurableFile.write(bytes, to: URL(fileURLWithPath: file), mode: 0o600)
        print("\(revisions.count) divergent revision(s) after #\(reply["common-revision"]?.scalarText ?? "?") written to \(file)")
    }
}

struct HASetModeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "set-mode",
        abstract: "On the active: replication mode of the HA group, async (default) or sync.",
        discussion: """
            sync: a publish returns only once a standby holds it durably; after --timeout-ms without that it returns with its task `partially succeeded` (committed on the active, still replicating, not yet protected). Standbys learn the mode from the active.
            """)
    @Argument(help: "async or sync.") var mode: String
    @Option(name: .long, help: "sync: how long a publish waits for a standby.") var timeoutMs: Int = 2_000
    @Option(name: .long, help: "The active server's data directory.") var data: String
    @Flag(name: .long, help: "JSON output.") var json = false

    func validate() throws {
        guard ["async", "sync"].contains(mode) else { throw ValidationError("mode must be async or sync") }
    }

    func run() async throws {
        LocalOperator.printAnswer(
            try await LocalOperator.runAsRoot(dataDirectory: data, "ha-set-replication-mode", ["mode": .string(mode), "timeout-ms": .int(Int64(timeoutMs))]),
            json: json)
    }
}

struct HAStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show this server's HA role, mode, epoch, head and each peer's sync status (exit 1 when something is wrong).")

    @Option(name: .long, help: "The server's data directory.")
    var data: String

    @Flag(name: .long, help: "JSON output (the body of the Web API's show-ha-status).")
    var json = false

    func run() async throws {
        let status = try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid in
            try await LocalOperator.call(transport, "show-ha-status", [:], sid: sid)
        }
        if json { print(status.canonicalString) }  // the server's JSON as it came
        let report = try HAStatusReport(json: status)
        if !json { print(Self.text(report)) }
        if !report.successfullySynced { throw ExitCode(1) }
    }

    /// This node's last backup (node-local), as `rampart backup create` or the schedule left it.
    static func lastBackupLine(_ backup: HAStatusReport.LastBackup) -> String {
        guard let time = backup.time else { return "last backup: none (schedule: \(backup.schedule ?? "none"))" }
        let size = backup.sizeBytes.map { " \($0) bytes," } ?? ""
        return "last backup:  \(time) \(backup.result ?? "?"),\(size) \(backup.trigger ?? "") "
            + "(\(backup.message ?? "")); schedule: \(backup.schedule ?? "none")"
    }

    /// ", clock +40 ms (ok, delay 4 ms)" when the peer's clock was measured.
    static func clockText(_ server: HAStatusReport.Server) -> String {
        guard let offset = server.clockOffsetMilliseconds else { return "" }
        let delay = server.clockDelayMilliseconds.map { ", delay \($0) ms" } ?? ""
        return ", clock \(offset >= 0 ? "+" : "")\(offset) ms (\(server.clockLevel ?? "?")\(delay))"
    }

    static func text(_ status: HAStatusReport) -> String {
        guard status.rampartHA != "not-configured" else {
            return "HA is not running on this server." + (status.lastBackup.map { "\n" + lastBackupLine($0) } ?? "")
        }
        let writes = status.writesEnabled == true ? "enabled" : "refused" + (status.writesRefusal.map { " (\($0))" } ?? "")
        let behind = (status.lagRevisions ?? nil).map { ", \($0) revision(s) behind" } ?? ""
        var lines = [
            "server:       \(status.thisServer ?? "-") (\(status.role ?? "-"), \(status.mode ?? "-")\(status.modeSince.map { " since \($0.iso8601)" } ?? ""))",
            "active:       \(status.activeServer ?? "-")",
            "epoch:        \(status.epoch.map { String($0.term) } ?? "?")/\(status.epoch?.server ?? "?")",
            "head:         #\(status.head.map { String($0.number) } ?? "?") \(status.head?.hash.prefix(12) ?? "")",
            "writes:       \(writes)",
            "replication:  \(status.replicationMode ?? "-")",
            "sync status:  \(status.syncStatus ?? "-")" + behind,
            "last sync:    \(status.lastSuccessfulSync?.iso8601 ?? "-")",
            "last error:   \(status.lastError ?? "-")",
        ]
        for server in status.servers {
            let since = server.modeSince.map { " since \($0.iso8601)" } ?? ""
            lines.append(
                "peer \(server.name): \(server.haState)\(since), \(server.syncDetail), lag \(server.lagRevisions.map(String.init) ?? "?") revisions / \(server.lagSeconds) s, connected \(server.connected)"
                    + clockText(server))
        }
        for problem in status.problems ?? [] { lines.append("problem: \(problem)") }
        if let backup = status.lastBackup { lines.append(lastBackupLine(backup)) }
        return lines.joined(separator: "\n")
    }
}
