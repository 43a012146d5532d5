import Foundation
import ManagementModel
import Testing

@testable import ManagementService

/// `ha diagnose`'s checks from facts: each finding names its cause, evidence and fix command.
@Suite("HA diagnose: findings from facts")
struct HADiagnosisTests {
    static let now: Int64 = 1_800_000_000_000

    static func peer(
        _ name: String = "mgmt-b", connected: Bool = true, status: String = "synchronized", detail: String? = nil, lag: Int64? = 0,
        lastContact: Int64? = 100
    ) -> HAStatusReport.Server {
        HAStatusReport.Server(
            name: name, ipAddress: "127.0.0.1", haState: "standby", syncState: "Ok", syncStatus: status, syncDetail: detail ?? status,
            knownHead: 10, lagRevisions: lag, lagSeconds: 0, connected: connected, lastContactMillisecondsAgo: lastContact, lastSuccessfulSync: nil)
    }

    static func report(mode: String = "active", syncStatus: String? = nil, servers: [HAStatusReport.Server] = [peer()]) -> HAStatusReport {
        var report = HAStatusReport(servers: servers, successfullySynced: true)
        report.rampartHA = "running"
        report.thisServer = mode == "active" ? "primary" : "mgmt-b"
        report.mode = mode
        report.activeServer = "primary"
        report.epoch = .init(term: 1, server: "primary")
        report.head = .init(number: 10, hash: "abc")
        report.syncStatus = syncStatus ?? (mode == "active" ? "synchronized" : "synchronized")
        report.problems = []
        return report
    }

    static let okChecks = [
        PromotionCheck(name: "trust", status: .ok, detail: "SIC certificate valid until 2027-01-01T00:00:00Z"),
        PromotionCheck(name: "clock", status: .ok, detail: "mgmt-b +2 ms (ahead)"),
        PromotionCheck(name: "versions", status: .ok, detail: "this server 1.0 (schema 5); mgmt-b 1.0 (schema 5)"),
    ]

    static func facts(
        _ status: HAStatusReport, later: HAStatusReport? = nil, checks: [PromotionCheck] = okChecks,
        peers: [String: HADiagnosisFacts.Peer] = ["mgmt-b": .init(sicAddress: "127.0.0.1:18192", connect: .ok)],
        disk: HADiagnosisFacts.Disk? = .init(availableBytes: 50 << 30, totalBytes: 100 << 30), backup: HADiagnosisFacts.Backup? = nil
    ) -> HADiagnosisFacts {
        HADiagnosisFacts(
            dataDirectory: "/var/rampart", nowMilliseconds: now, status: status, laterStatus: later ?? status, sampleIntervalMilliseconds: 2_000,
            checks: checks, peers: peers, disk: disk, backup: backup)
    }

    static func only(_ diagnosis: HADiagnosis, _ code: String) throws -> HADiagnosis.Finding {
        #expect(diagnosis.findings.map(\.code) == [code], "\(diagnosis.findings)")
        return try #require(diagnosis.findings.first)
    }

    @Test func healthyPairHasNoFindingAndSaysWhatWasChecked() {
        let diagnosis = HADiagnosis(Self.facts(Self.report()))
        #expect(diagnosis.healthy, "\(diagnosis.findings)")
        let text = diagnosis.text(escaping: { $0 })
        #expect(text.hasPrefix("no problems found"))
        #expect(text.contains("peer mgmt-b: connected, SIC 127.0.0.1:18192, TCP connect ok"))
        #expect(text.contains("clock: mgmt-b +2 ms") && text.contains("disk: 51200 MiB free"))
        #expect(diagnosis.json["healthy"] == .bool(true))
    }

    @Test func peerUnreachableNamesAddressSinceAndConnectResult() throws {
        let down = Self.report(servers: [Self.peer(connected: false, status: "communication-error", lastContact: 42_000)])
        let refused = try Self.only(
            HADiagnosis(Self.facts(down, peers: ["mgmt-b": .init(sicAddress: "127.0.0.1:18192", connect: .refused)])), "peer-unreachable")
        #expect(refused.severity == .problem)
        #expect(refused.evidence.contains("127.0.0.1:18192") && refused.evidence.contains("last contact 42 s ago"))
        #expect(refused.evidence.contains("TCP connect: refused"))
        #expect(refused.fix.contains("nothing listens") && refused.fixCommand.contains("rampart server --data DIR --server-name mgmt-b"))

        let timeout = try Self.only(
            HADiagnosis(Self.facts(down, peers: ["mgmt-b": .init(sicAddress: "10.0.0.2:18191", connect: .timeout)])), "peer-unreachable")
        #expect(timeout.evidence.contains("TCP connect: timeout") && timeout.fix.contains("firewall") && timeout.fixCommand.hasPrefix("nc -vz 10.0.0.2 18191"))

        let open = try Self.only(HADiagnosis(Self.facts(down)), "peer-unreachable")
        #expect(open.fixCommand == "rampart sic test mgmt-b --data /var/rampart")

        let never = Self.report(servers: [Self.peer(connected: false, status: "communication-error", lastContact: nil)])
        let unknown = try Self.only(HADiagnosis(Self.facts(never, peers: [:])), "peer-unreachable")
        #expect(unknown.evidence.contains("never heard from") && unknown.fixCommand.contains("show-checkpoint-host name=mgmt-b"))
    }

    @Test(arguments: [
        ("we refused mgmt-b's certificate: the peer's certificate expired at 2026-01-01; renew it or reset SIC", "expired"),
        ("we refused mgmt-b's certificate: the peer's certificate is not valid before 2030-01-01; check both clocks", "not valid yet"),
        ("revoked: revoked by an administrator (SIC reset); the channel was closed", "was revoked"),
        ("we refused mgmt-b's certificate: the peer's certificate was issued by another CA (CN=x), not this group's Internal CA", "another CA"),
        ("we refused mgmt-b's certificate: the peer's certificate is for other (u), not mgmt-b (v)", "wrong identity"),
    ])
    func sicBrokenNamesTheCauseAndTheResetSteps(detail: String, cause: String) throws {
        let broken = Self.report(servers: [Self.peer(connected: false, status: "trust-error", detail: "trust-error: \(detail)")])
        let finding = try Self.only(HADiagnosis(Self.facts(broken)), "sic-broken")
        #expect(finding.summary.contains("mgmt-b's certificate") && finding.summary.contains(cause), "\(finding.summary)")
        #expect(finding.evidence.contains(detail))
        #expect(finding.fixCommand.hasPrefix("rampart sic reset mgmt-b --data /var/rampart"))
        #expect(finding.fixCommand.contains("--join primary:18191") && finding.fixCommand.contains("--activation-key-file"))
        var facts = Self.facts(broken)
        facts.ownSICAddress = "192.0.2.11:18191"
        let recorded = try Self.only(HADiagnosis(facts), "sic-broken")
        #expect(recorded.fixCommand.contains("--join 192.0.2.11:18191"), "the active's recorded SIC address: \(recorded.fixCommand)")
    }

    @Test func sicBrokenOnThisServersOwnCertificate() throws {
        var checks = Self.okChecks
        checks[0] = PromotionCheck(
            name: "trust", status: .problem, detail: "SIC certificate expired at 2026-01-01T00:00:00Z: peers and gateways refuse this server (sic reset)")
        let standby = Self.report(mode: "standby", servers: [Self.peer("primary")])
        let finding = try Self.only(
            HADiagnosis(Self.facts(standby, checks: checks, peers: ["primary": .init(sicAddress: "192.0.2.11:18191", connect: .ok)])), "sic-broken")
        #expect(finding.summary.contains("mgmt-b") && finding.summary.contains("expired"))
        #expect(
            finding.fixCommand.contains("rampart sic reset mgmt-b --data ACTIVE-DIR   # on primary") && finding.fixCommand.contains("--join 192.0.2.11:18191"))
    }

    @Test func haStoppedHereAndOnAPeer() throws {
        var standby = Self.report(mode: "standby", syncStatus: "ha-stopped", servers: [Self.peer("primary", status: "ha-stopped")])
        standby.lagRevisions = .some(3)
        let here = try Self.only(HADiagnosis(Self.facts(standby, peers: [:])), "ha-stopped")
        #expect(here.evidence.contains("3 revision(s) behind") && here.fixCommand == "rampart ha start --data /var/rampart")

        let active = Self.report(servers: [Self.peer(status: "ha-stopped", lag: 2)])
        let there = try Self.only(HADiagnosis(Self.facts(active)), "ha-stopped")
        #expect(there.summary.contains("mgmt-b") && there.fixCommand.contains("rampart ha start") && there.fixCommand.contains("on mgmt-b"))
    }

    @Test func haHaltedNamesTheLastError() throws {
        var halted = Self.report()
        halted.problems = ["HA halted: journal write failed"]
        halted.lastError = "journal write failed"
        let finding = try Self.only(HADiagnosis(Self.facts(halted)), "ha-halted")
        #expect(finding.evidence.contains("journal write failed") && finding.fixCommand.contains("rampart server --data /var/rampart"))
    }

    @Test func collisionCountsTheDivergentRevisionsAndGivesTheResolveCommand() throws {
        let old = Self.report(
            mode: "standby", syncStatus: "collision", servers: [Self.peer("primary", status: "collision", detail: "collision (4 divergent revisions)")])
        let finding = try Self.only(HADiagnosis(Self.facts(old, peers: [:])), "collision")
        #expect(finding.summary.contains("4 revision(s)"))
        #expect(
            finding.fixCommand.contains("rampart ha export-divergent")
                && finding.fixCommand.contains("rampart ha resolve-collision --keep peer --data /var/rampart"))

        let active = Self.report(servers: [Self.peer(status: "collision", detail: "collision (2 divergent revisions)")])
        let seen = try Self.only(HADiagnosis(Self.facts(active)), "collision")
        #expect(seen.summary.contains("mgmt-b holds 2 revision(s)") && seen.fixCommand.contains("on mgmt-b"))
    }

    @Test func syncStuckWhenTheLagGrowsOrAFullSyncStalls() throws {
        let before = Self.report(servers: [Self.peer(status: "lagging", detail: "lagging (5 revisions, 1 s)", lag: 5)])
        let after = Self.report(servers: [Self.peer(status: "lagging", detail: "lagging (9 revisions, 3 s)", lag: 9)])
        let growing = try Self.only(HADiagnosis(Self.facts(before, later: after)), "sync-stuck")
        #expect(growing.summary.contains("from 5 to 9") && growing.fixCommand == "rampart ha full-sync mgmt-b --data /var/rampart")
        #expect(HADiagnosis(Self.facts(after, later: before)).healthy, "a shrinking lag is progress")

        let stalled = Self.report(
            mode: "standby", syncStatus: "full-sync", servers: [Self.peer("primary", status: "full-sync", detail: "full-sync (3/40 chunks)")])
        let finding = try Self.only(HADiagnosis(Self.facts(stalled, peers: [:])), "sync-stuck")
        #expect(finding.summary.contains("stalled at chunk 3 of 40") && finding.fixCommand.hasPrefix("rampart ha restart --data /var/rampart"))
        let moving = Self.report(
            mode: "standby", syncStatus: "full-sync", servers: [Self.peer("primary", status: "full-sync", detail: "full-sync (4/40 chunks)")])
        #expect(HADiagnosis(Self.facts(stalled, later: moving, peers: [:])).healthy)
    }

    @Test func versionsDifferAndClockSkewComeFromThePromotionChecks() throws {
        var checks = Self.okChecks
        checks[2] = PromotionCheck(name: "versions", status: .problem, detail: "this server 1.0 (schema 5); mgmt-b 2.0 (schema 6)")
        let versions = try Self.only(HADiagnosis(Self.facts(Self.report(), checks: checks)), "versions-differ")
        #expect(versions.severity == .problem && versions.evidence.contains("schema 6") && versions.fix.contains("one Rampart release"))

        checks = Self.okChecks
        checks[1] = PromotionCheck(name: "clock", status: .warning, detail: "mgmt-b +42.0 s (ahead); keep the servers' clocks on NTP")
        let clock = try Self.only(HADiagnosis(Self.facts(Self.report(), checks: checks)), "clock-skew")
        #expect(clock.severity == .warning && clock.evidence.contains("+42.0 s") && clock.evidence.contains("over 5 s a warning"))
        #expect(clock.fixCommand.contains("timedatectl set-ntp true") && clock.fixCommand.contains("chronyc"))
    }

    @Test func clockSkewNamesTheThresholdsTheServerIsConfiguredWith() throws {
        var checks = Self.okChecks
        checks[1] = PromotionCheck(name: "clock", status: .problem, detail: "mgmt-b +90.0 s (ahead)")
        var report = Self.report()
        report.clockThresholds = ClockThresholds(warningMilliseconds: 1_500, problemMilliseconds: 60_000)
        let clock = try Self.only(HADiagnosis(Self.facts(report, checks: checks)), "clock-skew")
        #expect(clock.evidence.contains("over 1.5 s a warning, over 60 s a problem"), "\(clock.evidence)")
        let decoded = try HAStatusReport(json: try report.jsonValue())
        #expect(decoded.clockThresholds == report.clockThresholds, "show-ha-status carries them to the CLI")
    }

    @Test func diskNearlyFullByFractionUnlessPlentyIsFree() throws {
        let nearly = try Self.only(HADiagnosis(Self.facts(Self.report(), disk: .init(availableBytes: 2 << 30, totalBytes: 40 << 30))), "disk-full")
        #expect(nearly.severity == .warning && nearly.evidence.contains("2048 MiB free") && nearly.fixCommand.hasPrefix("df -h /var/rampart"))
        let full = try Self.only(HADiagnosis(Self.facts(Self.report(), disk: .init(availableBytes: 100 << 20, totalBytes: 40 << 30))), "disk-full")
        #expect(full.severity == .problem)
        #expect(HADiagnosis(Self.facts(Self.report(), disk: .init(availableBytes: 30 << 30, totalBytes: 2000 << 30))).healthy, "30 GiB free is ample")
    }

    @Test func backupStaleAgainstTheScheduleAndFailed() throws {
        let hour: Int64 = 3_600_000
        let stale = HADiagnosisFacts.Backup(
            lastMilliseconds: Self.now - 30 * hour, lastResult: "succeeded", lastMessage: "ok", periodMilliseconds: 6 * hour, schedule: "every 6 h")
        let finding = try Self.only(HADiagnosis(Self.facts(Self.report(), backup: stale)), "backup-stale")
        #expect(
            finding.summary.contains("30 h old") && finding.evidence.contains("every 6 h")
                && finding.fixCommand.hasPrefix("rampart backup create --data /var/rampart"))
        var recent = stale
        recent.lastMilliseconds = Self.now - 7 * hour
        #expect(HADiagnosis(Self.facts(Self.report(), backup: recent)).healthy, "one late run is not stale yet")
        var unscheduled = stale
        unscheduled.periodMilliseconds = nil
        #expect(HADiagnosis(Self.facts(Self.report(), backup: unscheduled)).healthy, "no schedule: no expectation")
        var failed = recent
        failed.lastResult = "failed"
        failed.lastMessage = "passphrase file missing"
        let failure = try Self.only(HADiagnosis(Self.facts(Self.report(), backup: failed)), "backup-failed")
        #expect(failure.evidence.contains("passphrase file missing"))
        failed.periodMilliseconds = nil
        #expect(
            try Self.only(HADiagnosis(Self.facts(Self.report(), backup: failed)), "backup-failed").summary == "the last backup failed", "with no schedule too")
    }

    @Test func jsonShapeAndEscapingOfPeerText() throws {
        let hostile = Self.report(servers: [Self.peer("evil\u{1B}[2J\nforged", connected: false, status: "communication-error")])
        let diagnosis = HADiagnosis(Self.facts(hostile, peers: [:]))
        let finding = try #require(diagnosis.json["findings"]?.arrayValue?.first)
        #expect(Set(finding.objectValue?.keys.map { $0 } ?? []) == ["code", "severity", "summary", "evidence", "fix", "fix-command"])
        #expect(diagnosis.json["healthy"] == .bool(false))
        let text = diagnosis.text(escaping: { $0.replacingOccurrences(of: "\u{1B}", with: "\\u{1B}").replacingOccurrences(of: "\n", with: "\\n") })
        #expect(!text.contains("\u{1B}") && text.split(separator: "\n").count == 5, "each field is one line:\n\(text)")
    }

    @Test func notConfiguredChecksOnlyTheNode() {
        let diagnosis = HADiagnosis(Self.facts(.notConfigured, peers: [:]))
        #expect(diagnosis.healthy && diagnosis.checked.first?.contains("not running") == true)
    }
}
