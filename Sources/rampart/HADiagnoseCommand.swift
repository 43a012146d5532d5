import ArgumentParser
import Foundation
import ManagementClient
import ManagementModel
import ManagementService
import Operations
import RampartServer

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

struct HADiagnoseCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Check everything a support engineer would and print one finding per problem with its evidence and fix (exit 1 when there are findings).",
        discussion: """
            Asks the running server over DIR/rampart.sock: HA status twice, 2 s apart (a lag that grows, a full sync stalled at one chunk), the promotion dry run's trust, clock and versions checks, and each peer's recorded SIC address, to which it makes a real TCP connect (ok, refused, timeout). It also reads the data directory's free space and the last backup against the schedule. Findings: peer-unreachable, sic-broken, ha-stopped, ha-halted, collision, sync-stuck, versions-differ, clock-skew, disk-full, backup-stale, backup-failed; each names the evidence, the fix in words and as a command. Healthy: "no problems found" and what was checked.
            """)

    @Option(name: .long, help: "The server's data directory.")
    var data: String

    @Flag(name: .long, help: "JSON output: {healthy, checked, findings: [{code, severity, summary, evidence, fix, fix-command}]}.")
    var json = false

    func run() async throws {
        let diagnosis = HADiagnosis(try await Self.gather(dataDirectory: data))
        print(json ? diagnosis.json.canonicalString : diagnosis.text(escaping: LogEscaping.escape))
        if !diagnosis.healthy { throw ExitCode(1) }
    }

    /// Everything the checks read: from the server, then from this machine.
    static func gather(dataDirectory: String) async throws -> HADiagnosisFacts {
        let interval = HADiagnosisLimits.syncSampleIntervalMilliseconds
        let served = try await LocalOperator.withRootSession(dataDirectory: dataDirectory) { transport, sid in
            let first = try HAStatusReport(json: try await LocalOperator.call(transport, "show-ha-status", [:], sid: sid))
            guard first.rampartHA != "not-configured" else { return Served(first: first, later: nil, checks: [], addresses: [:]) }
            // The dry run changes nothing; its checks are the trust, clock and versions facts.
            let dryRun = try? await LocalOperator.call(transport, "ha-promote", ["dry-run": .bool(true)], sid: sid)
            var addresses: [String: String] = [:]
            // Every server's recorded SIC address, this one's too (where a re-enrolled peer joins).
            for name in first.servers.map(\.name) + [first.thisServer].compactMap({ $0 }) {
                let host = try? await LocalOperator.call(transport, "show-checkpoint-host", ["name": .string(name)], sid: sid)
                if let address = host?["rampart-sic-address"]?.stringValue, !address.isEmpty { addresses[name] = address }
            }
            try await Task.sleep(for: .milliseconds(interval))
            let later = try? HAStatusReport(json: try await LocalOperator.call(transport, "show-ha-status", [:], sid: sid))
            return Served(first: first, later: later, checks: promotionChecks(dryRun), addresses: addresses)
        }
        var peers: [String: HADiagnosisFacts.Peer] = [:]
        for server in served.first.servers {
            let address = served.addresses[server.name]
            peers[server.name] = HADiagnosisFacts.Peer(
                sicAddress: address,
                connect: address.map { LivenessProbe.tcpConnect($0, timeoutMilliseconds: HADiagnosisLimits.connectTimeoutMilliseconds) })
        }
        return HADiagnosisFacts(
            dataDirectory: dataDirectory, nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000), status: served.first,
            laterStatus: served.later, sampleIntervalMilliseconds: interval, checks: served.checks, peers: peers,
            ownSICAddress: served.first.thisServer.flatMap { served.addresses[$0] }, disk: disk(dataDirectory), backup: backup(dataDirectory))
    }

    struct Served: Sendable {
        var first: HAStatusReport
        var later: HAStatusReport?
        var checks: [PromotionCheck]
        var addresses: [String: String]
    }

    static func promotionChecks(_ reply: JSONValue?) -> [PromotionCheck] {
        (reply?["checks"]?.arrayValue ?? []).compactMap { check in
            guard let name = check["name"]?.stringValue, let status = check["status"]?.stringValue.flatMap(PromotionCheck.Status.init(rawValue:)) else {
                return nil
            }
            return PromotionCheck(name: name, status: status, detail: check["detail"]?.stringValue ?? "")
        }
    }

    static func disk(_ dataDirectory: String) -> HADiagnosisFacts.Disk? {
        var stats = statvfs()
        guard statvfs(dataDirectory, &stats) == 0 else { return nil }
        let blockBytes = UInt64(stats.f_frsize)
        let (available, availableOverflow) = UInt64(stats.f_bavail).multipliedReportingOverflow(by: blockBytes)
        let (total, totalOverflow) = UInt64(stats.f_blocks).multipliedReportingOverflow(by: blockBytes)
        guard !availableOverflow, !totalOverflow else { return nil }
        return HADiagnosisFacts.Disk(availableBytes: available, totalBytes: total)
    }

    static func backup(_ dataDirectory: String) -> HADiagnosisFacts.Backup? {
        let status = BackupStatus.load(dataDirectory: URL(fileURLWithPath: dataDirectory))
        let schedule = (try? NodeSettings.read(dataDirectory: dataDirectory))?.backupSchedule
        guard status != nil || schedule != nil else { return nil }
        // node.json is a file: its hours are not trusted to fit (an overflow means no usable period).
        let period: Int64? =
            if let hours = schedule?.everyHours {
                Int64(hours).multipliedReportingOverflow(by: 3_600_000).overflow ? nil : Int64(hours) * 3_600_000
            } else if schedule?.dailyAt != nil {
                86_400_000
            } else {
                nil
            }
        return HADiagnosisFacts.Backup(
            lastMilliseconds: status?.timeMilliseconds, lastResult: status?.result, lastMessage: status?.message, periodMilliseconds: period,
            schedule: schedule?.summary)
    }
}
