import ManagementModel

/// The transport protocols a rule can tell apart. ICMP (v4 or v6) matches only rules whose
/// service is Any (or a negated service), as in the nftables ruleset.
public enum PacketProtocol: String, Sendable, Codable, CaseIterable {
    case tcp, udp, icmp
}

/// A packet as the matcher sees it: the first packet of a connection.
public struct Packet: Sendable, Equatable {
    public var source: IPAddress
    public var destination: IPAddress
    public var proto: PacketProtocol
    /// nil for ICMP.
    public var destinationPort: Int?

    public init(source: IPAddress, destination: IPAddress, proto: PacketProtocol, destinationPort: Int?) {
        self.source = source
        self.destination = destination
        self.proto = proto
        self.destinationPort = destinationPort
    }

    /// A packet from text (as `test-packet src=… dst=… proto=… dport=…` gives it); errors name the field.
    public static func parse(source: String, destination: String, proto: String, destinationPort: String?) throws(PacketError) -> Packet {
        guard let sourceAddress = IPAddress.parse(source) else { throw .invalid("src", "'\(source.prefix(64))' is not an IPv4 or IPv6 address") }
        guard let destinationAddress = IPAddress.parse(destination) else {
            throw .invalid("dst", "'\(destination.prefix(64))' is not an IPv4 or IPv6 address")
        }
        guard sourceAddress.family == destinationAddress.family else {
            throw .invalid("dst", "source and destination must both be IPv4 or both IPv6")
        }
        guard let parsedProto = PacketProtocol(rawValue: proto.lowercased()) else { throw .invalid("proto", "expected tcp, udp or icmp") }
        var port: Int?
        if parsedProto == .icmp {
            guard destinationPort == nil else { throw .invalid("dport", "ICMP has no ports") }
        } else {
            guard let text = destinationPort else { throw .invalid("dport", "required for \(parsedProto.rawValue)") }
            guard let value = Int(text), (1...65535).contains(value) else { throw .invalid("dport", "expected a port from 1 to 65535") }
            port = value
        }
        return Packet(source: sourceAddress, destination: destinationAddress, proto: parsedProto, destinationPort: port)
    }
}

public enum PacketError: Error, Sendable, Equatable, CustomStringConvertible {
    case invalid(_ field: String, _ reason: String)
    public var description: String {
        switch self {
        case .invalid(let field, let reason): return "Invalid \(field): \(reason)"
        }
    }
}

/// What the policy does with a packet, and which rule decided.
public struct PacketDecision: Sendable, Equatable {
    public var action: CompiledAction
    /// The deciding rule: the first drop or reject, or the accepting rule of the last layer.
    /// nil only for a policy with no rule that matches (it is then dropped: fail closed).
    public var rule: CompiledRule?
    /// The rule that matched in each layer evaluated, in order.
    public var path: [CompiledRule]
}

/// First-match evaluation of a compiled policy. Layers are ordered layers: each layer's first
/// matching rule decides for that layer; accept goes on to the next layer, drop or reject ends it.
/// The nftables ruleset (`NftablesRenderer`) implements exactly this, so the two agree.
public enum PacketMatcher {
    public static func evaluate(_ packet: Packet, against policy: CompiledPolicy) -> PacketDecision {
        var path: [CompiledRule] = []
        for layer in layers(of: policy) {
            guard let rule = layer.first(where: { matches($0, packet) }) else {
                return PacketDecision(action: .drop, rule: nil, path: path)
            }
            path.append(rule)
            if rule.action != .accept { return PacketDecision(action: rule.action, rule: rule, path: path) }
        }
        guard let last = path.last else { return PacketDecision(action: .drop, rule: nil, path: []) }
        return PacketDecision(action: .accept, rule: last, path: path)
    }

    /// The policy's rules split into its layers, in order (a layer is a run of rules with one layer name).
    public static func layers(of policy: CompiledPolicy) -> [ArraySlice<CompiledRule>] {
        var out: [ArraySlice<CompiledRule>] = []
        var start = 0
        for index in policy.rules.indices where index == policy.rules.count - 1 || policy.rules[index + 1].layer != policy.rules[index].layer {
            out.append(policy.rules[start...index])
            start = index + 1
        }
        return out
    }

    public static func matches(_ rule: CompiledRule, _ packet: Packet) -> Bool {
        matches(rule.source, packet.source) && matches(rule.destination, packet.destination) && matches(rule.service, packet)
    }

    static func matches(_ cell: AddressMatch, _ address: IPAddress) -> Bool {
        let inside = cell.any || cell.ranges.contains { $0.contains(address) }
        return inside != cell.negate
    }

    static func matches(_ cell: ServiceMatch, _ packet: Packet) -> Bool {
        let inside =
            cell.any
            || cell.entries.contains { entry in
                packet.destinationPort.map { entry.matches(proto: packet.proto.rawValue, port: $0) } ?? false
            }
        return inside != cell.negate
    }
}
