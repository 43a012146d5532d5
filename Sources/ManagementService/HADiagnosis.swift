import Foundation
import ManagementModel

/// `rampart ha diagnose`: what a support engineer checks on an HA server, as findings, each with its
/// evidence and its fix in words and as a command. The checks are one pure function of the facts the
/// command gathered (`HADiagnosisFacts`): two status samples, the promotion checks, a TCP connect to
/// each peer's SIC address, the data directory's free space and the last backup.
public struct HADiagnosis: Sendable, Equatable {
    public struct Finding: Sendable, Equatable {
        public enum Severity: String, Sendable {
            case warning, problem
        }

        /// Stable machine-readable name: peer-unreachable, sic-broken, ha-stopped, ha-halted, collision,
        /// sync-stuck, versions-differ, clock-skew, disk-full, backup-stale.
        public var code: String
        public var severity: Severity
        public var summary: String
        public var evidence: String
        public var fix: String
        public var fixCommand: String

        public init(code: String, severity: Severity, summary: String, evidence: String, fix: String, fixCommand: String) {
            self.code = code
            self.severity = severity
            self.summary = summary
            self.evidence = evidence
            self.fix = fix
            self.fixCommand = fixCommand
        }
    }

    /// What was looked at, one line per check (printed when nothing is wrong).
    public var checked: [String]
    public var findings: [Finding]
    public var healthy: Bool { findings.isEmpty }

    public init(checked: [String], findings: [Finding]) {
        self.checked = checked
        self.findings = findings
    }

    /// `{"healthy", "checked", "findings": [{"code", "severity", "summary", "evidence", "fix", "fix-command"}]}`.
    public var json: JSONValue {
        [
            "healthy": .bool(healthy),
            "checked": .array(checked.map { .string($0) }),
            "findings": .array(
                findings.map { finding in
                    [
                        "code": .string(finding.code), "severity": .string(finding.severity.rawValue), "summary": .string(finding.summary),
                        "evidence": .string(finding.evidence), "fix": .string(finding.fix), "fix-command": .string(finding.fixCommand),
                    ]
                }),
        ]
    }

    /// The text output. `escape` makes each field one line of plain characters (peers chose parts of them).
    public func text(escaping escape: (String) -> String) -> String {
        guard !healthy else {
            return (["no problems found; checked:"] + checked.map { "  " + escape($0) }).joined(separator: "\n")
        }
        var lines: [String] = []
        for finding in findings {
            lines.append("\(finding.severity.rawValue) \(finding.code): \(escape(finding.summary))")
            lines.append("  evidence: \(escape(finding.evidence))")
            lines.append("  fix:      \(escape(finding.fix))")
            lines.append("  run:      \(escape(finding.fixCommand))")
        }
        lines.append("\(findings.count) finding(s); checked: \(checked.map(escape).joined(separator: "; "))")
        return lines.joined(separator: "\n")
    }
}

/// Thresholds of `ha diagnose`.
public enum HADiagnosisLimits {
    /// Free space below this fraction of the data directory's filesystem is a warning...
    public static let diskWarningFreeFraction = 0.10
    /// ...and below this a problem (SQLite needs room for its journal; a full sync for a whole copy).
    public static let diskProblemFreeFraction = 0.03
    /// Whatever the fraction, this much free space is never a problem (a large disk's 3 % is plenty).
    public static let diskAmpleFreeBytes: UInt64 = 20 * 1024 * 1024 * 1024
    /// A scheduled backup older than this many schedule periods is stale (one missed run is a warning
    /// only once the next one is late too).
    public static let backupStalePeriods: Int64 = 2
    /// Between the two status samples that tell a sync in progress from a stuck one.
    public static let syncSampleIntervalMilliseconds = 2_000
    /// A TCP connect to a peer's SIC port that has not completed by then counts as a timeout.
    public static let connectTimeoutMilliseconds = 3_000
}

/// The result of a real TCP connect to a peer's SIC address.
public enum TCPConnectResult: Sendable, Equatable, CustomStringConvertible {
    case ok, refused, timeout
    /// Any other failure (no route, a name that does not resolve), in words.
    case failed(String)

    public var description: String {
        switch self {
        case .ok: "ok"
        case .refused: "refused"
        case .timeout: "timeout"
        case .failed(let reason): "failed: \(reason)"
        }
    }
}

/// What `ha diagnose` gathered; the checks read nothing else.
public struct HADiagnosisFacts: Sendable {
    public struct Peer: Sendable, Equatable {
        /// Its SIC address (host:port) as the group recorded it; nil when unknown.
        public var sicAddress: String?
        /// Nil when no address was known to connect to.
        public var connect: TCPConnectResult?
        public init(sicAddress: String?, connect: TCPConnectResult?) {
            self.sicAddress = sicAddress
            self.connect = connect
        }
    }

    public struct Disk: Sendable, Equatable {
        public var availableBytes: UInt64
        public var totalBytes: UInt64
        public init(availableBytes: UInt64, totalBytes: UInt64) {
            self.availableBytes = availableBytes
            self.totalBytes = totalBytes
        }
    }

    public struct Backup: Sendable, Equatable {
        /// The last backup's time and result; nil when none was made yet.
        public var lastMilliseconds: Int64?
        public var lastResult: String?
        public var lastMessage: String?
        /// The schedule's period and its words; nil when no schedule is set.
        public var periodMilliseconds: Int64?
        public var schedule: String?
        public init(lastMilliseconds: Int64?, lastResult: String?, lastMessage: String?, periodMilliseconds: Int64?, schedule: String?) {
            self.lastMilliseconds = lastMilliseconds
            self.lastResult = lastResult
            self.lastMessage = lastMessage
            self.periodMilliseconds = periodMilliseconds
            self.schedule = schedule
        }
    }

    public var dataDirectory: String
    public var nowMilliseconds: Int64
    public var status: HAStatusReport
    /// The same report `sampleIntervalMilliseconds` later.
    public var laterStatus: HAStatusReport?
    public var sampleIntervalMilliseconds: Int
    /// The promotion dry run's trust, clock and versions checks; empty when it did not answer.
    public var checks: [PromotionCheck]
    /// By server name.
    public var peers: [String: Peer]
    /// This server's own SIC address as the group recorded it (where a re-enrolling peer joins).
    public var ownSICAddress: String?
    public var disk: Disk?
    public var backup: Backup?

    public init(
        dataDirectory: String, nowMilliseconds: Int64, status: HAStatusReport, laterStatus: HAStatusReport?, sampleIntervalMilliseconds: Int,
        checks: [PromotionCheck], peers: [String: Peer], ownSICAddress: String? = nil, disk: Disk?, backup: Backup?
    ) {
        self.dataDirectory = dataDirectory
        self.nowMilliseconds = nowMilliseconds
        self.status = status
        self.laterStatus = laterStatus
        self.sampleIntervalMilliseconds = sampleIntervalMilliseconds
        self.checks = checks
        self.peers = peers
        self.ownSICAddress = ownSICAddress
        self.disk = disk
        self.backup = backup
    }
}
