import Foundation
import ManagementModel
import Store

/// `rampart gateway test-packet`: the installed policy's answer for one packet, and the hit put in
/// the gateway's log outbox (DIR/logs.sqlite) when the deciding rule logs.
public struct PacketTestResult: Sendable {
    public var policy: CompiledPolicy
    public var packet: Packet
    public var decision: PacketDecision
    /// The outbox record written for this hit (nil when the rule does not log).
    public var logged: SequencedLogRecord?

    public static func run(dataDirectory: URL, packet: Packet, nowMilliseconds: Int64) throws -> PacketTestResult {
        guard let policy = try InstalledPolicyFile.load(dataDirectory: dataDirectory) else {
            throw PacketTestError.noPolicy(InstalledPolicyFile.url(dataDirectory: dataDirectory).path)
        }
        let decision = PacketMatcher.evaluate(packet, against: policy)
        var logged: SequencedLogRecord?
        if let rule = decision.rule, rule.log {
            let record = PolicyLogRecord(
                timeMilliseconds: nowMilliseconds, gatewayName: policy.targetName, ruleUID: rule.uid, ruleNumber: rule.number,
                ruleName: rule.name, action: decision.action, source: packet.source.text, destination: packet.destination.text,
                proto: packet.proto.rawValue, destinationPort: packet.destinationPort, origin: "matcher", policyRevision: policy.revision)
            logged = try LogStore(directory: dataDirectory).appendLocal([record], gateway: policy.targetName, nowMilliseconds: nowMilliseconds).first
        }
        return PacketTestResult(policy: policy, packet: packet, decision: decision, logged: logged)
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "decision": .string(decision.action.rawValue),
            "packet": .object([
                "src": .string(packet.source.text), "dst": .string(packet.destination.text), "proto": .string(packet.proto.rawValue),
                "dport": packet.destinationPort.map { .int(Int64($0)) } ?? .null,
            ]),
            "path": .array(decision.path.map(Self.json)),
            "policy": .object([
                "package": .string(policy.packageName), "target": .string(policy.targetName),
                "revision": .int(Int64(clamping: policy.revision)), "epoch-term": .int(Int64(clamping: policy.epochTerm)),
            ]),
            "logged": logged.map { .object(["sequence": .int(Int64(clamping: $0.sequence))]) } ?? .bool(false),
        ]
        fields["rule"] = decision.rule.map(Self.json) ?? .null
        return .object(fields)
    }

    static func json(_ rule: CompiledRule) -> JSONValue {
        .object([
            "number": .int(Int64(rule.number)), "uid": .string(rule.uid), "name": .string(rule.name), "layer": .string(rule.layer),
            "action": .string(rule.action.rawValue), "log": .bool(rule.log),
        ])
    }

    public var text: String {
        var lines = [
            "\(decision.action.rawValue.uppercased())  \(packet.proto.rawValue) \(packet.source.text) -> \(packet.destination.text)"
                + (packet.destinationPort.map { " port \($0)" } ?? "")
        ]
        if let rule = decision.rule {
            lines.append("rule:    \(rule.number) [\(rule.name)] in layer [\(rule.layer)] (uid \(rule.uid))")
        } else {
            lines.append("rule:    none matched (dropped)")
        }
        if decision.path.count > 1 {
            lines.append("layers:  " + decision.path.map { "[\($0.layer)] rule \($0.number) \($0.action.rawValue)" }.joined(separator: ", "))
        }
        lines.append("policy:  [\(policy.packageName)] for [\(policy.targetName)], revision \(policy.revision), epoch \(policy.epochTerm)")
        lines.append(logged.map { "logged:  yes (outbox sequence \($0.sequence))" } ?? "logged:  no (the rule's track is None)")
        return lines.joined(separator: "\n")
    }
}

public enum PacketTestError: Error, Sendable, CustomStringConvertible {
    case noPolicy(String)
    public var description: String {
        switch self {
        case .noPolicy(let path): return "No installed policy at \(path): install a policy on this gateway first"
        }
    }
}
