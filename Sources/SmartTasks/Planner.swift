import Crypto
import Foundation
import ManagementModel
import ManagementService

/// One trigger fired by one event: its name, the event's identity (the same on every node and every
/// redelivery: a revision's number and hash, an install's task and target) and the trigger's facts.
public struct TriggerFiring: Sendable, Equatable {
    public var trigger: String
    public var identity: String
    /// The trigger's data, Check Point style (an object; `custom-data` and the envelope are added per task).
    public var facts: [String: JSONValue]

    public init(trigger: String, identity: String, facts: [String: JSONValue]) {
        self.trigger = trigger
        self.identity = identity
        self.facts = facts
    }
}

/// One delivery to make: a task, the event id a receiver dedupes by, the payload and when it may start.
public struct PlannedDelivery: Sendable, Equatable {
    public var eventID: String
    public var taskUID: String
    public var taskName: String
    public var trigger: String
    /// The payload as JSON text (secrets are never part of it).
    public var payload: String
    public var notBeforeMilliseconds: Int64

    public init(eventID: String, taskUID: String, taskName: String, trigger: String, payload: String, notBeforeMilliseconds: Int64) {
        self.eventID = eventID
        self.taskUID = taskUID
        self.taskName = taskName
        self.trigger = trigger
        self.payload = payload
        self.notBeforeMilliseconds = notBeforeMilliseconds
    }
}

/// What to do after an attempt failed.
public enum RetryDecision: Sendable, Equatable {
    case retry(atMilliseconds: Int64)
    case deadLetter
}

/// The pure part of SmartTasks: which triggers an event fires, each task's payload and event id, when
/// a delivery may start, when a failed one is tried again. Time and randomness are inputs.
public enum DeliveryPlanner {
    // MARK: triggers

    /// After Publish for a revision of the journal (published here, or applied from the active).
    public static func afterPublish(_ revision: Revision) -> TriggerFiring {
        TriggerFiring(
            trigger: TriggerName.afterPublish, identity: "revision:\(revision.number):\(revision.hash)",
            facts: [
                "session": .object([
                    "session-uid": .string(revision.sessionUID), "session-name": .string(revision.sessionName),
                    "user-name": .string(revision.author), "publish-time": Renderer.timestamp(revision.publishedAtMilliseconds),
                    "revision-number": .int(Int64(clamping: revision.number)), "revision": .string(revision.hash),
                ]),
                "operations": showChangesOperations(revision.changes),
            ])
    }

    /// Before Publish for a session's changes about to be published.
    public static func beforePublish(sessionUID: String, sessionName: String, user: String, changes: [ObjectChange], attemptMilliseconds: Int64)
        -> TriggerFiring
    {
        TriggerFiring(
            trigger: TriggerName.beforePublish, identity: "publish:\(sessionUID):\(attemptMilliseconds)",
            facts: [
                "session": .object([
                    "session-uid": .string(sessionUID), "session-name": .string(sessionName), "user-name": .string(user),
                ]),
                "operations": showChangesOperations(changes),
            ])
    }

    /// The triggers an event of the bus fires. `sync` remembers each peer's last status (Sync Recovered
    /// fires when a peer that was not synchronized is again); `observedAtMilliseconds` tells apart
    /// events that carry no identity of their own (a gateway's channel going down twice).
    public static func firings(for event: ManagementEvent, sync: inout SyncMemory, observedAtMilliseconds: Int64) -> [TriggerFiring] {
        let at = "@\(observedAtMilliseconds)"
        switch event {
        case .revisionPublished, .smartTaskExecuted:
            // A revision's After Publish is derived from the journal instead, on every node (see
            // `afterPublish`); a task's own execution fires nothing (no loops).
            return []
        case .policyInstalled(let install):
            return [
                TriggerFiring(
                    trigger: TriggerName.afterInstallPolicy, identity: "install:\(install.taskID):\(install.target)",
                    facts: [
                        "task-id": .string(install.taskID), "policy-package": .string(install.policyPackage),
                        "revision-number": .int(Int64(clamping: install.revision)),
                        "tasks": .array([
                            .object([
                                "target": .string(install.target), "status": .string(install.succeeded ? "succeeded" : "failed"),
                                "message": .string(install.message),
                            ])
                        ]),
                    ])
            ]
        case .haStateChanged(let change):
            return [
                TriggerFiring(
                    trigger: TriggerName.haStateChanged,
                    identity: "ha:\(change.server.name):\(change.epoch.term):\(change.epoch.server.name):\(change.role.rawValue):\(change.writesEnabled)",
                    facts: [
                        "server": .string(change.server.name), "role": .string(change.role.rawValue), "epoch": .string("\(change.epoch)"),
                        "active-server": .string(change.activeServer.name), "writes-enabled": .bool(change.writesEnabled),
                        "reason": .string(change.reason),
                    ])
            ]
        case .syncStatusChanged(let change):
            return syncFirings(peer: change.peer.name, kind: change.status.kind, detail: "\(change.status)", sync: &sync, at: at)
        case .collision(let collision):
            return syncFirings(
                peer: collision.peer.name, kind: "collision", detail: "\(collision)", sync: &sync, at: at,
                extra: ["divergent-revisions": .int(Int64(clamping: collision.divergentRevisions))])
        case .certificateExpiring(let certificate):
            return [
                TriggerFiring(
                    trigger: TriggerName.certificateExpiring, identity: "certificate:\(certificate.certificate)\(at)",
                    facts: [
                        "certificate": .string(certificate.certificate), "days-left": .int(Int64(certificate.daysLeft)),
                        "not-valid-after": Renderer.timestamp(Int64(certificate.notValidAfter.timeIntervalSince1970 * 1000)),
                        "advice": .string(certificate.advice),
                    ])
            ]
        case .clockSkew(let skew):
            return [
                TriggerFiring(
                    trigger: TriggerName.clockSkew, identity: "clock:\(skew.peer):\(skew.level.rawValue)\(at)",
                    facts: ["peer": .string(skew.peer), "offset-ms": .int(skew.offsetMilliseconds), "level": .string(skew.level.rawValue)])
            ]
        case .backupFinished(let backup):
            var facts: [String: JSONValue] = ["scheduled": .bool(backup.scheduled), "succeeded": .bool(backup.succeeded)]
            if let file = backup.file { facts["file"] = .string(file) }
            if let head = backup.headRevision { facts["revision-number"] = .int(Int64(clamping: head)) }
            if let error = backup.error { facts["error"] = .string(error) }
            return [
                TriggerFiring(
                    trigger: backup.succeeded ? TriggerName.backupFinished : TriggerName.backupFailed,
                    identity: "backup:\(backup.file ?? "")\(at)", facts: facts)
            ]
        case .gatewayStatusChanged(let change):
            var facts: [String: JSONValue] = ["gateway": .string(change.gateway), "uid": .string(change.uid), "connected": .bool(change.connected)]
            if let reason = change.reason { facts["reason"] = .string(reason) }
            return [
                TriggerFiring(
                    trigger: TriggerName.gatewayStatusChanged, identity: "gateway:\(change.uid):\(change.connected)\(at)", facts: facts)
            ]
        case .clusterMemberStateChanged(let change):
            // A failover is a member becoming active (or leaving active): the state changes in between are not.
            guard change.to.hasPrefix("ACTIVE") || (change.from?.hasPrefix("ACTIVE") ?? false) else { return [] }
            return [
                TriggerFiring(
                    trigger: TriggerName.clusterFailover, identity: "cluster:\(change.uid):\(change.from ?? "-"):\(change.to)\(at)",
                    facts: [
                        "cluster": .string(change.cluster), "member": .string(change.member), "uid": .string(change.uid),
                        "from": change.from.map(JSONValue.string) ?? .null, "to": .string(change.to),
                        "event-code": .string(change.eventCode), "reason": .string(change.reason),
                    ])
            ]
        }
    }

    /// Each peer's last synchronization status kind, for Sync Recovered.
    public struct SyncMemory: Sendable, Equatable {
        public var lastKind: [String: String] = [:]
        public init() {}
    }

    static func syncFirings(
        peer: String, kind: String, detail: String, sync: inout SyncMemory, at: String, extra: [String: JSONValue] = [:]
    ) -> [TriggerFiring] {
        let previous = sync.lastKind[peer]
        sync.lastKind[peer] = kind
        var facts: [String: JSONValue] = ["peer": .string(peer), "status": .string(kind), "detail": .string(detail)]
        facts["previous-status"] = previous.map(JSONValue.string) ?? .null
        facts.merge(extra) { new, _ in new }
        var firings = [TriggerFiring(trigger: TriggerName.syncStatusChanged, identity: "sync:\(peer):\(kind)\(at)", facts: facts)]
        let troubled: Set<String> = ["communication-error", "collision", "lagging", "never-synchronized", "ha-stopped"]
        if kind == "synchronized", let previous, troubled.contains(previous) {
            firings.append(TriggerFiring(trigger: TriggerName.syncRecovered, identity: "sync-recovered:\(peer)\(at)", facts: facts))
        }
        return firings
    }

    // MARK: payloads

    /// Changes in `show-changes` form. Secret fields of the objects (a smart-task's shared secret, a
    /// password hash) are removed: a payload leaves the server.
    public static func showChangesOperations(_ changes: [ObjectChange]) -> JSONValue {
        var upserts: [JSONValue] = []
        var deletes: [JSONValue] = []
        for change in changes {
            switch change {
            case .upsert(let object): upserts.append(redacted(object.jsonWithoutSecrets))
            case .delete(let uid, let type, let name):
                deletes.append(.object(["uid": .string(uid), "type": .string(type.rawValue), "name": .string(name)]))
            }
        }
        return .object(["added-or-modified-objects": .array(upserts), "deleted-objects": .array(deletes)])
    }

    /// Field names whose values never leave the server, at any depth: every stored secret
    /// (`ManagedObject.secretFields`, the cluster heartbeat key among them) and request-side names.
    public static let secretFieldNames: Set<String> = ManagedObject.secretFields.union([
        "password", "secret", "one-time-password", "private-key",
    ])

    static func redacted(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let fields):
            var out: [String: JSONValue] = [:]
            for (key, field) in fields where !secretFieldNames.contains(key) { out[key] = redacted(field) }
            return .object(out)
        case .array(let items): return .array(items.map(redacted))
        default: return value
        }
    }

    /// The payload one task receives: the trigger's facts, the envelope (trigger, event id, server,
    /// time) and the task's custom data (parsed when it is JSON, else as text).
    public static func payload(_ firing: TriggerFiring, task: SmartTaskSpec, eventID: String, server: String, nowMilliseconds: Int64) -> JSONValue {
        var fields = firing.facts
        fields["trigger"] = .string(firing.trigger)
        fields["event-id"] = .string(eventID)
        fields["management-server"] = .string(server)
        fields["time"] = Renderer.timestamp(nowMilliseconds)
        fields["smart-task"] = .object(["uid": .string(task.uid), "name": .string(task.name)])
        if let custom = task.customData, !custom.isEmpty {
            fields["custom-data"] = (try? JSONValue.parse(custom)) ?? .string(custom)
        }
        return .object(fields)
    }

    /// A UUID derived from the task, the trigger and the event's identity: a redelivery, and the same
    /// event derived on another node, carry the same id, so a receiver can dedupe.
    public static func eventID(taskUID: String, trigger: String, identity: String) -> String {
        var bytes = Array(SHA256.hash(data: Array("rampart-smart-task\u{0}\(taskUID)\u{0}\(trigger)\u{0}\(identity)".utf8)).prefix(16))
        bytes[6] = (bytes[6] & 0x0F) | 0x80  // version 8: a name-based UUID of our own
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let hex = bytes.map { String(format: "%02x", $0) }.joined()
        let parts = [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { range in
            String(hex[hex.index(hex.startIndex, offsetBy: range.lowerBound)..<hex.index(hex.startIndex, offsetBy: range.upperBound)])
        }
        return parts.joined(separator: "-")
    }

    // MARK: scheduling

    /// The deliveries a firing makes: one per enabled task of its trigger. `lastStartMilliseconds` is
    /// each task's latest planned start: a task's deliveries start at least the minimum interval apart.
    public static func deliveries(
        for firing: TriggerFiring, tasks: [SmartTaskSpec], server: String, nowMilliseconds: Int64,
        lastStartMilliseconds: [String: Int64], limits: SmartTaskLimits
    ) -> [PlannedDelivery] {
        tasks.filter { $0.enabled && $0.trigger == firing.trigger }.map { task in
            let id = eventID(taskUID: task.uid, trigger: firing.trigger, identity: firing.identity)
            let body = payload(firing, task: task, eventID: id, server: server, nowMilliseconds: nowMilliseconds)
            return PlannedDelivery(
                eventID: id, taskUID: task.uid, taskName: task.name, trigger: firing.trigger, payload: body.canonicalString,
                notBeforeMilliseconds: earliestStart(
                    task: task.uid, nowMilliseconds: nowMilliseconds, lastStartMilliseconds: lastStartMilliseconds, limits: limits))
        }
    }

    /// Now, or the task's last start plus the minimum interval when that is later.
    public static func earliestStart(task uid: String, nowMilliseconds: Int64, lastStartMilliseconds: [String: Int64], limits: SmartTaskLimits) -> Int64 {
        guard let last = lastStartMilliseconds[uid] else { return nowMilliseconds }
        return max(nowMilliseconds, last.addingReportingOverflow(limits.taskIntervalMinimumMilliseconds).partialValue)
    }

    /// After attempt `attempt` (1 is the first) failed: when to try again, or a dead letter after the
    /// last. The delay doubles from the base up to the maximum, varied by `random` (0..<1) within the jitter.
    public static func afterFailure(attempt: Int, nowMilliseconds: Int64, random: Double, limits: SmartTaskLimits) -> RetryDecision {
        guard attempt < limits.attemptsMax else { return .deadLetter }
        let exponent = min(max(attempt - 1, 0), 30)
        let nominal = min(Double(limits.retryDelayBaseMilliseconds) * pow(2, Double(exponent)), Double(limits.retryDelayMaxMilliseconds))
        let jitter = 1 + limits.retryJitterFraction * (2 * min(max(random, 0), 1) - 1)
        return .retry(atMilliseconds: nowMilliseconds + Int64(max(nominal * jitter, 0)))
    }
}
