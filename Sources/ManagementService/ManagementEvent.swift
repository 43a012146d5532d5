import Foundation
import HACore
import ManagementModel

/// What happened on this management server, as a type: published by the services on the node's
/// `EventBus<ManagementEvent>` (`ManagementService.events`), read by the log, tests, and later metrics,
/// SmartTasks and the web console. Each event says enough to act on without asking again.
public enum ManagementEvent: Sendable, Equatable, CustomStringConvertible {
    /// A revision became part of this server's journal (a publish, or a system change).
    case revisionPublished(RevisionPublished)
    /// One target's part of a policy installation ended (installed or failed).
    case policyInstalled(PolicyInstalled)
    /// This server's HA role, epoch, active server or writes changed.
    case haStateChanged(HAStateChanged)
    /// A peer's synchronization status changed kind (as `show-ha-status` shows it).
    case syncStatusChanged(SyncStatusChanged)
    /// This server and a peer hold divergent revisions: an administrator must choose a side.
    case collision(Collision)
    /// A certificate this server relies on expires within the warning period.
    case certificateExpiring(CertificateExpiring)
    /// A peer's clock moved out of (or back into) the range a promotion and enrolment accept.
    case clockSkew(ClockSkew)
    /// A scheduled backup was written, or failed.
    case backupFinished(BackupFinished)
    /// A gateway's SIC channel to this server came up or went down.
    case gatewayStatusChanged(GatewayStatusChanged)
    /// A cluster member's cluster state changed (from its agent's report), with the reason it gave.
    case clusterMemberStateChanged(ClusterMemberStateChanged)
    /// A smart-task ran (one attempt of a delivery, or a before-publish action), with its result.
    case smartTaskExecuted(SmartTaskExecuted)

    /// The event's kind, stable for scripts and filters.
    public var kind: String {
        switch self {
        case .revisionPublished: "revision-published"
        case .policyInstalled: "policy-installed"
        case .haStateChanged: "ha-state-changed"
        case .syncStatusChanged: "sync-status-changed"
        case .collision: "collision"
        case .certificateExpiring: "certificate-expiring"
        case .clockSkew: "clock-skew"
        case .backupFinished(let backup): backup.succeeded ? "backup-finished" : "backup-failed"
        case .gatewayStatusChanged: "gateway-status-changed"
        case .clusterMemberStateChanged: "cluster-member-state-changed"
        case .smartTaskExecuted: "smart-task-executed"
        }
    }

    public var description: String {
        switch self {
        case .revisionPublished(let event): "\(kind): \(event)"
        case .policyInstalled(let event): "\(kind): \(event)"
        case .haStateChanged(let event): "\(kind): \(event)"
        case .syncStatusChanged(let event): "\(kind): \(event)"
        case .collision(let event): "\(kind): \(event)"
        case .certificateExpiring(let event): "\(kind): \(event)"
        case .clockSkew(let event): "\(kind): \(event)"
        case .backupFinished(let event): "\(kind): \(event)"
        case .gatewayStatusChanged(let event): "\(kind): \(event)"
        case .clusterMemberStateChanged(let event): "\(kind): \(event)"
        case .smartTaskExecuted(let event): "\(kind): \(event)"
        }
    }

    /// Whether an operator should look (the log shows these at warning).
    public var needsAttention: Bool {
        switch self {
        case .collision, .certificateExpiring: true
        case .clockSkew(let skew): skew.level != .ok
        case .backupFinished(let backup): !backup.succeeded
        case .policyInstalled(let install): !install.succeeded
        case .syncStatusChanged(let change): change.status == .communicationError
        case .clusterMemberStateChanged(let change): change.to == "DOWN" || change.to == "ACTIVE(!)"
        case .smartTaskExecuted(let execution): ["dead-letter", "vetoed", "failed-open"].contains(execution.result)
        default: false
        }
    }
}

public struct RevisionPublished: Sendable, Equatable, CustomStringConvertible {
    public var number: UInt64
    public var hash: String
    public var author: String
    public var sessionName: String
    public var changes: Int
    public var bytes: Int

    public init(number: UInt64, hash: String, author: String, sessionName: String, changes: Int, bytes: Int) {
        self.number = number
        self.hash = hash
        self.author = author
        self.sessionName = sessionName
        self.changes = changes
        self.bytes = bytes
    }

    public var description: String {
        "revision \(number) (\(hash.prefix(12))) by \(author), \(changes) change(s), \(bytes) bytes"
    }
}

public struct PolicyInstalled: Sendable, Equatable, CustomStringConvertible {
    public var taskID: String
    public var policyPackage: String
    public var revision: UInt64
    public var target: String
    public var succeeded: Bool
    public var message: String

    public init(taskID: String, policyPackage: String, revision: UInt64, target: String, succeeded: Bool, message: String) {
        self.taskID = taskID
        self.policyPackage = policyPackage
        self.revision = revision
        self.target = target
        self.succeeded = succeeded
        self.message = message
    }

    public var description: String {
        "\(policyPackage) at revision \(revision) on \(target): \(succeeded ? "installed" : "failed") (\(message)), task \(taskID)"
    }
}

public struct HAStateChanged: Sendable, Equatable, CustomStringConvertible {
    public var server: ServerID
    public var role: HARole
    public var epoch: Epoch
    public var activeServer: ServerID
    public var writesEnabled: Bool
    /// The core's decision that made the change, in words.
    public var reason: String

    public init(server: ServerID, role: HARole, epoch: Epoch, activeServer: ServerID, writesEnabled: Bool, reason: String) {
        self.server = server
        self.role = role
        self.epoch = epoch
        self.activeServer = activeServer
        self.writesEnabled = writesEnabled
        self.reason = reason
    }

    public var description: String {
        "\(server) is \(role) in epoch \(epoch), active \(activeServer), writes \(writesEnabled ? "enabled" : "refused") (\(reason))"
    }
}

public struct SyncStatusChanged: Sendable, Equatable, CustomStringConvertible {
    public var peer: ServerID
    public var status: PeerSyncStatus

    public init(peer: ServerID, status: PeerSyncStatus) {
        self.peer = peer
        self.status = status
    }

    public var description: String { "peer \(peer): \(status)" }
}

public struct Collision: Sendable, Equatable, CustomStringConvertible {
    public var peer: ServerID
    public var divergentRevisions: UInt64

    public init(peer: ServerID, divergentRevisions: UInt64) {
        self.peer = peer
        self.divergentRevisions = divergentRevisions
    }

    public var description: String {
        "\(divergentRevisions) revision(s) diverge from \(peer); resolve with ha-resolve-collision (rampart ha resolve)"
    }
}

public struct CertificateExpiring: Sendable, Equatable, CustomStringConvertible {
    /// Which certificate: "internal-ca", "sic-certificate", ...
    public var certificate: String
    public var notValidAfter: Date
    public var daysLeft: Int
    /// What to do, as the warning has always said it.
    public var advice: String

    public init(certificate: String, notValidAfter: Date, daysLeft: Int, advice: String) {
        self.certificate = certificate
        self.notValidAfter = notValidAfter
        self.daysLeft = daysLeft
        self.advice = advice
    }

    public var description: String { advice }
}

public struct ClockSkew: Sendable, Equatable, CustomStringConvertible {
    public enum Level: String, Sendable, Equatable {
        case ok, warning, problem
    }

    public var peer: String
    /// The peer's clock minus ours (positive: the peer is ahead).
    public var offsetMilliseconds: Int64
    public var level: Level

    public init(peer: String, offsetMilliseconds: Int64, level: Level) {
        self.peer = peer
        self.offsetMilliseconds = offsetMilliseconds
        self.level = level
    }

    public var description: String { "peer \(peer)'s clock is \(offsetMilliseconds) ms from ours (\(level.rawValue))" }
}

public struct BackupFinished: Sendable, Equatable, CustomStringConvertible {
    public var scheduled: Bool
    public var succeeded: Bool
    /// The archive written (nil when the backup failed).
    public var file: String?
    public var headRevision: UInt64?
    /// Why it failed (nil when it succeeded).
    public var error: String?

    public init(scheduled: Bool, succeeded: Bool, file: String?, headRevision: UInt64?, error: String?) {
        self.scheduled = scheduled
        self.succeeded = succeeded
        self.file = file
        self.headRevision = headRevision
        self.error = error
    }

    public var description: String {
        let what = scheduled ? "scheduled backup" : "backup"
        if succeeded { return "\(what) written to \(file ?? "?") at revision \(headRevision ?? 0)" }
        return "\(what) failed: \(error ?? "unknown error")"
    }
}

public struct GatewayStatusChanged: Sendable, Equatable, CustomStringConvertible {
    public var gateway: String
    public var uid: String
    public var connected: Bool
    /// Why the channel went down, when known.
    public var reason: String?

    public init(gateway: String, uid: String, connected: Bool, reason: String? = nil) {
        self.gateway = gateway
        self.uid = uid
        self.connected = connected
        self.reason = reason
    }

    public var description: String {
        "gateway \(gateway): channel \(connected ? "up" : "down")" + (reason.map { " (\($0))" } ?? "")
    }
}

/// A cluster member's state as its agent reported it changed (ACTIVE → DOWN…), with the agent's
/// event code and reason. Published by the server that hears the report.
public struct ClusterMemberStateChanged: Sendable, Equatable, CustomStringConvertible {
    public var cluster: String
    public var member: String
    public var uid: String
    /// nil when the server had no earlier report of this member.
    public var from: String?
    public var to: String
    public var eventCode: String
    public var reason: String

    public init(cluster: String, member: String, uid: String, from: String?, to: String, eventCode: String, reason: String) {
        self.cluster = cluster
        self.member = member
        self.uid = uid
        self.from = from
        self.to = to
        self.eventCode = eventCode
        self.reason = reason
    }

    public var description: String {
        "cluster \(cluster) member \(member): \(from ?? "unknown") -> \(to)" + (eventCode.isEmpty ? "" : " [\(eventCode)]")
            + (reason.isEmpty ? "" : " (\(reason))")
    }
}

/// One execution of a smart-task, as its history keeps it (never a secret; the output stays in the history).
public struct SmartTaskExecuted: Sendable, Equatable, CustomStringConvertible {
    public var task: String
    public var trigger: String
    public var eventID: String
    /// succeeded, failed (tried again), dead-letter, vetoed, failed-open, skipped, expired.
    public var result: String
    public var attempt: Int
    public var durationMilliseconds: Int64

    public init(task: String, trigger: String, eventID: String, result: String, attempt: Int, durationMilliseconds: Int64) {
        self.task = task
        self.trigger = trigger
        self.eventID = eventID
        self.result = result
        self.attempt = attempt
        self.durationMilliseconds = durationMilliseconds
    }

    public var description: String {
        "smart task \(task) on \(trigger): \(result) (attempt \(attempt), \(durationMilliseconds) ms, event \(eventID))"
    }
}
