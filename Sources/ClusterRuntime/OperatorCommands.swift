import ClusterCore
import ManagementModel

/// `rampart cluster …` on a member: one JSON request, one JSON answer, over the agent's local socket.
/// Requests: `{"command": "state" | "admin-down" | "admin-up" | "pnote-register" | "pnote-report" |
/// "pnote-unregister" | "reset-failover-counter", "force", "name", "state", "timeout-ms"}`. Answers:
/// `{"ok": true, "status": {…}, "reason"?}` or `{"ok": false, "code", "message"}`. `list` and `if`
/// are views of `state`'s status.
public enum ClusterOperator {
    public static func failure(_ code: String, _ message: String) -> JSONValue {
        ["ok": .bool(false), "code": .string(code), "message": .string(message)]
    }

    /// Answers one request against the running runtime (nil: no cluster section in the policy).
    public static func answer(_ request: JSONValue, runtime: ClusterRuntime?) async -> JSONValue {
        guard let runtime else {
            return failure("no-cluster", "this gateway is not a cluster member: its installed policy has no cluster section")
        }
        guard let command = request["command"]?.stringValue else { return failure("bad-request", "expected {\"command\": …}") }
        let input: ClusterInput
        switch command {
        case "state":
            return ["ok": .bool(true), "status": await statusJSON(runtime)]
        case "admin-down": input = .adminDown(force: request["force"]?.boolValue ?? false)
        case "admin-up": input = .adminUp
        case "reset-failover-counter": input = .resetFailoverCounter
        case "pnote-register", "pnote-report", "pnote-unregister":
            guard let name = request["name"]?.stringValue else { return failure("bad-request", "a device name is needed") }
            let state = request["state"]?.stringValue.flatMap(DeviceState.init(rawValue:))
            switch command {
            case "pnote-register":
                guard let state else { return failure("bad-request", "a state is needed: ok, init or problem") }
                let timeout = request["timeout-ms"]?.intValue
                if let timeout, timeout < 0 { return failure("bad-request", "the timeout is a number of milliseconds, 0 for none") }
                input = .registerDevice(name: name, state: state, timeoutMilliseconds: timeout.flatMap { $0 == 0 ? nil : UInt64($0) })
            case "pnote-report":
                guard let state else { return failure("bad-request", "a state is needed: ok, init or problem") }
                input = .reportDevice(name: name, state: state)
            default: input = .unregisterDevice(name: name)
            }
        default:
            return failure("bad-request", "unknown command")
        }
        guard let output = await runtime.perform(input) else { return failure("busy", "the cluster runtime is overloaded; try again") }
        for effect in output.effects {
            if case .commandRefused(let code) = effect { return failure(code, output.reason) }
        }
        return ["ok": .bool(true), "reason": .string(output.reason), "status": await statusJSON(runtime)]
    }

    /// Everything `cluster state`, `list` and `if` show.
    static func statusJSON(_ runtime: ClusterRuntime) async -> JSONValue {
        let status = await runtime.status
        let plan = runtime.plan
        func wall(_ monotonic: UInt64) async -> JSONValue { .int(await runtime.wallMilliseconds(ofMonotonic: monotonic)) }
        func ms(_ value: UInt64?) -> JSONValue { value.map { .int(Int64(clamping: $0)) } ?? .null }
        var members: [JSONValue] = []
        for member in status.members {
            members.append([
                "id": .int(Int64(member.id.value)), "name": .string(member.name), "address": .string(member.address),
                "local": .bool(member.isLocal), "priority": .int(Int64(member.priority)), "state": .string(member.stateText),
                "assigned-load-percent": .int(Int64(member.assignedLoadPercent)), "health": .string(member.health?.description ?? "unknown"),
                "problems": .array(member.problems.map { .string($0.description) }), "last-heard-ms-ago": ms(member.lastHeardMillisecondsAgo),
            ])
        }
        let devices: [JSONValue] = status.devices.map { device in
            [
                "name": .string(device.name), "kind": .string(device.kind.rawValue), "state": .string(device.state.rawValue),
                "detail": .string(device.detail), "timeout-ms": ms(device.timeoutMilliseconds),
                "last-report-ms-ago": ms(device.lastReportMillisecondsAgo), "missed-deadline": .bool(device.missedDeadline),
            ]
        }
        let interfaces: [JSONValue] = status.interfaces.map { interface in
            let monitored = plan.interfaces.first { $0.name == interface.name }
            return [
                "name": .string(interface.name.name), "link-up": .bool(interface.linkUp),
                "address": .string(monitored?.localAddress ?? ""), "virtual-address": monitored?.virtualAddress.map { .string($0.cidr) } ?? .null,
                "heartbeat-ages": .array(
                    interface.heartbeatAges.map { ["member": .int(Int64($0.member.value)), "age-ms": ms($0.ageMilliseconds)] }),
            ]
        }
        var fields: [String: JSONValue] = [
            "cluster": .string(plan.clusterName), "mode": .string(status.mode.description), "local-member": .int(Int64(status.localMember.value)),
            "state": .string(status.state.rawValue), "members": .array(members), "devices": .array(devices),
            "active-pnotes": .array(status.activeDevices.map { .string($0.name) }), "interfaces": .array(interfaces),
            "required-interfaces": .int(Int64(status.requiredInterfaces)), "interfaces-up": .int(Int64(status.interfacesUp)),
            "failover-count": .int(Int64(clamping: status.failoverCount)),
            "failover-count-reset-at": await wall(status.failoverCountResetAtMilliseconds),
            "failover-count-reset-cause": .string(status.failoverCountResetCause),
            "heartbeat-interval-ms": ms(status.heartbeatIntervalMilliseconds), "dead-timer": .string(status.deadTimer.description),
            "dead-timer-ms": ms(status.deadTimer.effectiveMilliseconds), "dead-timer-stretched": .bool(status.deadTimer.stretch != nil),
            "load-percent": (await runtime.loadPercent).map { .int(Int64($0)) } ?? .null,
            "heartbeat-port": .int(Int64(await runtime.port)),
            "rejected-datagrams": .object((await runtime.rejectedDatagrams).mapValues { .int(Int64(clamping: $0)) }),
        ]
        if let change = status.lastStateChange {
            fields["last-change"] = [
                "event-code": .string(change.eventCode.rawValue), "from": .string(change.from.rawValue), "to": .string(change.to.rawValue),
                "reason": .string(change.reason.description), "time-ms": await wall(change.atMilliseconds),
            ]
        }
        return .object(fields)
    }
}
