import Foundation
import ManagementModel

/// The checks of `ha diagnose`, from gathered facts only (so each is tested without processes).
/// Peer-level sync findings (HA stopped, collision, stuck sync) are read on the active, which sees
/// every standby; a standby reads its own link to the active. Each problem is found once.
extension HADiagnosis {
    public init(_ facts: HADiagnosisFacts) {
        var findings: [Finding] = []
        var checked: [String] = []
        let status = facts.status
        if status.rampartHA == "not-configured" {
            checked.append("HA: not running on this server (no peers to check)")
        } else {
            let diagnosis = Self.haChecks(facts)
            findings += diagnosis.findings
            checked += diagnosis.checked
        }
        if let disk = Self.disk(facts) { findings.append(disk) }
        checked.append(Self.diskLine(facts))
        if let backup = Self.backup(facts) { findings.append(backup) }
        checked.append(Self.backupLine(facts))
        self.init(checked: checked, findings: findings)
    }

    static func haChecks(_ facts: HADiagnosisFacts) -> HADiagnosis {
        let status = facts.status
        let name = status.thisServer ?? "this server"
        var findings: [Finding] = []
        findings += halted(facts)
        findings += status.servers.compactMap { peerReachability($0, facts) }
        findings += status.servers.compactMap { peerTrust($0, facts) }
        findings += ownTrust(facts)
        findings += stopped(facts)
        findings += collisions(facts)
        findings += stuckSync(facts)
        findings += promotionCheck("versions", facts)
        findings += promotionCheck("clock", facts)
        var checked = [
            "HA: \(name) is \(status.mode ?? "?") in epoch \(status.epoch.map { "\($0.term)/\($0.server)" } ?? "?"), sync \(status.syncStatus ?? "?")"
        ]
        for server in status.servers {
            let peer = facts.peers[server.name]
            checked.append(
                "peer \(server.name): \(server.connected ? "connected" : "not connected"), SIC \(peer?.sicAddress ?? "address unknown"), TCP connect \(peer?.connect?.description ?? "not tried"), \(server.syncDetail)"
            )
        }
        checked.append("sync progress: two samples \(facts.sampleIntervalMilliseconds) ms apart" + (facts.laterStatus == nil ? " (second sample failed)" : ""))
        for check in facts.checks { checked.append("\(check.name): \(check.detail)") }
        return HADiagnosis(checked: checked, findings: findings)
    }

    // MARK: HA state

    static func halted(_ facts: HADiagnosisFacts) -> [Finding] {
        guard let problem = facts.status.problems?.first(where: { $0.hasPrefix("HA halted") }) else { return [] }
        return [
            Finding(
                code: "ha-halted", severity: .problem, summary: "HA halted on \(facts.status.thisServer ?? "this server") after an error",
                evidence: "\(problem); last error: \(facts.status.lastError ?? "-")",
                fix:
                    "read the cause in the server's log and fix it (often a full disk: free space); HA starts again from its durable state by itself every 5 s once storage works, or at a restart",
                fixCommand: "rampart server --data \(facts.dataDirectory) --server-name \(facts.status.thisServer ?? "NAME")   # after stopping it (SIGTERM)")
        ]
    }

    static func stopped(_ facts: HADiagnosisFacts) -> [Finding] {
        let status = facts.status
        if status.mode == "standby" {
            guard status.syncStatus == "ha-stopped" else { return [] }
            let lag = (status.lagRevisions ?? nil).map { "\($0) revision(s) behind the active" } ?? "lag unknown"
            return [
                Finding(
                    code: "ha-stopped", severity: .problem, summary: "HA is stopped on this server (\(status.thisServer ?? "?")): nothing is synchronized",
                    evidence: "sync-status ha-stopped; \(lag)", fix: "resume synchronization on this server",
                    fixCommand: "rampart ha start --data \(facts.dataDirectory)")
            ]
        }
        return status.servers.filter { $0.syncStatus == "ha-stopped" }.map { server in
            Finding(
                code: "ha-stopped", severity: .problem, summary: "HA is stopped on \(server.name): it receives no revisions",
                evidence: "\(server.name): sync-status ha-stopped, lag \(server.lagRevisions.map(String.init) ?? "?") revision(s)",
                fix: "resume synchronization on \(server.name)", fixCommand: "rampart ha start --data DIR   # on \(server.name), DIR its data directory")
        }
    }

    static func collisions(_ facts: HADiagnosisFacts) -> [Finding] {
        let status = facts.status
        let exportAndResolve = { (directory: String) in
            "rampart ha export-divergent ./divergent.jsonl --data \(directory) && rampart ha resolve-collision --keep peer --data \(directory)"
        }
        let fix =
            "export the divergent revisions, then keep the active's data (--keep peer: they are exported again and dropped) or this side's (--keep local: promoted in a new epoch)"
        if status.mode == "standby" {
            guard status.syncStatus == "collision" else { return [] }
            let active = status.servers.first { $0.name == status.activeServer }
            let count = active.flatMap { divergentCount($0.syncDetail) }.map(String.init) ?? "some"
            return [
                Finding(
                    code: "collision", severity: .problem,
                    summary: "\(count) revision(s) on this server are not in the journal of the active \(status.activeServer ?? "?")",
                    evidence: "sync-status collision; \(active?.syncDetail ?? "-"); this server's head #\(status.head.map { String($0.number) } ?? "?")",
                    fix: fix, fixCommand: exportAndResolve(facts.dataDirectory))
            ]
        }
        return status.servers.filter { $0.syncStatus == "collision" }.map { server in
            let count = divergentCount(server.syncDetail).map(String.init) ?? "some"
            return Finding(
                code: "collision", severity: .problem, summary: "collision: \(server.name) holds \(count) revision(s) this active lacks",
                evidence: "\(server.name): \(server.syncDetail)", fix: fix + ", on \(server.name)",
                fixCommand: exportAndResolve("DIR") + "   # on \(server.name), DIR its data directory")
        }
    }

    /// N in "collision (N divergent revisions)".
    static func divergentCount(_ detail: String) -> Int64? {
        guard let range = detail.range(of: "collision (") else { return nil }
        return Int64(detail[range.upperBound...].prefix { $0.isASCII && $0.isNumber })
    }

    /// A lag that grew between the two samples, or a full sync that applied no chunk between them.
    static func stuckSync(_ facts: HADiagnosisFacts) -> [Finding] {
        guard let later = facts.laterStatus else { return [] }
        let interval = facts.sampleIntervalMilliseconds
        var findings: [Finding] = []
        let isStandby = facts.status.mode == "standby"
        for before in facts.status.servers where !isStandby || before.name == facts.status.activeServer {
            guard let after = later.servers.first(where: { $0.name == before.name }) else { continue }
            let standby = isStandby ? facts.status.thisServer ?? "this server" : before.name
            let fixCommand =
                isStandby
                ? "rampart ha restart --data \(facts.dataDirectory)   # or on the active: rampart ha full-sync \(standby) --data DIR"
                : "rampart ha full-sync \(before.name) --data \(facts.dataDirectory)"
            if let stalled = fullSyncChunk(before.syncDetail), stalled == fullSyncChunk(after.syncDetail) {
                findings.append(
                    Finding(
                        code: "sync-stuck", severity: .problem,
                        summary: "the full sync of \(standby) is stalled at chunk \(stalled.applied) of \(stalled.count)",
                        evidence: "\(before.syncDetail) in both samples, \(interval) ms apart",
                        fix: "restart the link (the standby resumes at the next chunk), or send a new full copy from the active",
                        fixCommand: fixCommand))
            } else if before.syncStatus == "lagging" || after.syncStatus == "lagging", let first = before.lagRevisions, let second = after.lagRevisions,
                second > first
            {
                findings.append(
                    Finding(
                        code: "sync-stuck", severity: .warning, summary: "\(standby) falls behind: its lag grew from \(first) to \(second) revision(s)",
                        evidence: "lag \(first) then \(second) revision(s), \(interval) ms apart; \(after.syncDetail)",
                        fix: "the standby applies slower than the active publishes, or its link stalls: restart the link; if it stays behind, send a full copy",
                        fixCommand: fixCommand))
            }
        }
        return findings
    }

    struct FullSyncProgress: Equatable {
        var applied: Int
        var count: Int
    }

    /// (applied, count) in "full-sync (applied/count chunks)".
    static func fullSyncChunk(_ detail: String) -> FullSyncProgress? {
        guard let range = detail.range(of: "full-sync (") else { return nil }
        let numbers = detail[range.upperBound...].prefix { $0 != " " && $0 != ")" }.split(separator: "/")
        guard numbers.count == 2, let applied = Int(numbers[0]), let count = Int(numbers[1]) else { return nil }
        return FullSyncProgress(applied: applied, count: count)
    }

    // MARK: versions and clock

    static func promotionCheck(_ name: String, _ facts: HADiagnosisFacts) -> [Finding] {
        guard let check = facts.checks.first(where: { $0.name == name }), check.status != .ok else { return [] }
        let severity: Finding.Severity = check.status == .problem ? .problem : .warning
        if name == "versions" {
            return [
                Finding(
                    code: "versions-differ", severity: severity,
                    summary: check.status == .problem ? "the servers run different schemas: they do not synchronize" : "the servers run different releases",
                    evidence: check.detail, fix: "install one Rampart release on every server, one server at a time (the standby first)",
                    fixCommand: "rampart ha status --data \(facts.dataDirectory)   # after upgrading each server, until every peer is synchronized")
            ]
        }
        return [
            Finding(
                code: "clock-skew", severity: severity, summary: "a peer's clock is off from this server's",
                evidence: "\(check.detail); thresholds: \((facts.status.clockThresholds ?? .standard).text)",
                fix: "keep every server's clock on NTP (chrony or systemd-timesyncd); certificates and enrolment depend on it",
                fixCommand: "timedatectl set-ntp true && timedatectl timesync-status   # on each server (or: chronyc tracking)")
        ]
    }

    // MARK: disk and backups

    static func disk(_ facts: HADiagnosisFacts) -> Finding? {
        guard let disk = facts.disk, disk.totalBytes > 0, disk.availableBytes < HADiagnosisLimits.diskAmpleFreeBytes else { return nil }
        let free = Double(disk.availableBytes) / Double(disk.totalBytes)
        let severity: Finding.Severity
        if free < HADiagnosisLimits.diskProblemFreeFraction {
            severity = .problem
        } else if free < HADiagnosisLimits.diskWarningFreeFraction {
            severity = .warning
        } else {
            return nil
        }
        return Finding(
            code: "disk-full", severity: severity,
            summary: severity == .problem ? "the data directory's disk is full or nearly" : "the data directory's disk is filling up",
            evidence: diskLine(facts).replacingOccurrences(of: "disk: ", with: "")
                + "; warning below \(Int(HADiagnosisLimits.diskWarningFreeFraction * 100)) %, problem below \(Int(HADiagnosisLimits.diskProblemFreeFraction * 100)) %",
            fix: "free space on that filesystem (old backups and snapshots, logs) or grow it: publishes and full syncs fail when it is full",
            fixCommand: "df -h \(facts.dataDirectory) && rampart backup list --data \(facts.dataDirectory)")
    }

    static func diskLine(_ facts: HADiagnosisFacts) -> String {
        guard let disk = facts.disk else { return "disk: free space of \(facts.dataDirectory) unknown" }
        let percent = disk.totalBytes == 0 ? 0 : Double(disk.availableBytes) * 100 / Double(disk.totalBytes)
        return
            "disk: \(disk.availableBytes / 1_048_576) MiB free of \(disk.totalBytes / 1_048_576) MiB (\(String(format: "%.1f", percent)) %) for \(facts.dataDirectory)"
    }

    /// A last backup that failed (whatever the schedule), or a scheduled one overdue.
    static func backup(_ facts: HADiagnosisFacts) -> Finding? {
        guard let backup = facts.backup, let last = backup.lastMilliseconds else { return nil }
        let fixCommand = "rampart backup create --data \(facts.dataDirectory) && rampart backup schedule --data \(facts.dataDirectory)"
        if backup.lastResult == "failed" {
            return Finding(
                code: "backup-failed", severity: .problem, summary: "the last backup failed",
                evidence: "\(Renderer.iso8601(milliseconds: last)): \(backup.lastMessage ?? "-"); schedule: \(backup.schedule ?? "none")",
                fix: "fix the cause named (destination, passphrase file, disk), then make a backup now", fixCommand: fixCommand)
        }
        guard let period = backup.periodMilliseconds, period > 0 else { return nil }
        let (age, overflow) = facts.nowMilliseconds.subtractingReportingOverflow(last)
        let (limit, limitOverflow) = period.multipliedReportingOverflow(by: HADiagnosisLimits.backupStalePeriods)
        guard !overflow, !limitOverflow, age > limit else { return nil }
        return Finding(
            code: "backup-stale", severity: .warning, summary: "the last backup is \(age / 3_600_000) h old: scheduled backups are not being made",
            evidence:
                "last backup \(Renderer.iso8601(milliseconds: last)) (\(backup.lastResult ?? "?")); schedule: \(backup.schedule ?? "-"); stale after \(HADiagnosisLimits.backupStalePeriods) periods (\(limit / 3_600_000) h)",
            fix: "make a backup now and check the schedule; the server runs scheduled backups only while it runs",
            fixCommand: fixCommand)
    }

    static func backupLine(_ facts: HADiagnosisFacts) -> String {
        guard let backup = facts.backup else { return "backups: none made, no schedule" }
        let last = backup.lastMilliseconds.map { "\(Renderer.iso8601(milliseconds: $0)) \(backup.lastResult ?? "?")" } ?? "none yet"
        return "backups: last \(last); schedule: \(backup.schedule ?? "none")"
    }
}
