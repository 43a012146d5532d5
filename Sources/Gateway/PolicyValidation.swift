import ManagementModel

extension CompiledPolicy {
    /// What makes a received or stored policy unusable, each naming the rule and field; empty when
    /// it is sound. A gateway checks this before it stores or enforces a policy, so a bad one changes
    /// nothing (addresses and ports go into an nftables file run as root).
    public var validationErrors: [String] {
        var errors: [String] = []
        if formatVersion != CompiledPolicy.currentFormatVersion {
            errors.append("formatVersion \(formatVersion) is not \(CompiledPolicy.currentFormatVersion)")
        }
        if rules.isEmpty { errors.append("rules: a policy has at least its implicit cleanup rule") }
        if rules.count > Limits.compiledRulesMax { errors.append("rules: \(rules.count) is more than \(Limits.compiledRulesMax)") }
        for (index, rule) in rules.enumerated() {
            // Built only when there is something to report: this runs for every rule of every push.
            var place: String { "rules[\(index)] (\(rule.uid.prefix(64)))" }
            if !NftablesRenderer.isSafeIdentifier(rule.uid) { errors.append("\(place).uid: only letters, digits, '.', '_' and '-' are allowed") }
            if rule.layer.isEmpty { errors.append("\(place).layer: empty") }
            for (field, cell) in [("source", rule.source), ("destination", rule.destination)] {
                if cell.ranges.count > Limits.compiledCellEntriesMax { errors.append("\(place).\(field): too many ranges") }
                if let bad = cell.ranges.first(where: { $0.bounds == nil }) {
                    errors.append("\(place).\(field): '\(bad.first.prefix(45))-\(bad.last.prefix(45))' is not a range of one address family in order")
                }
            }
            if rule.service.entries.count > Limits.compiledCellEntriesMax { errors.append("\(place).service: too many entries") }
            if let bad = rule.service.entries.first(where: {
                ($0.proto != "tcp" && $0.proto != "udp") || $0.portFirst < 1 || $0.portLast > 65535 || $0.portFirst > $0.portLast
            }) {
                errors.append("\(place).service: '\(bad.proto.prefix(16)) \(bad.portFirst)-\(bad.portLast)' is not tcp or udp with ports 1 to 65535 in order")
            }
        }
        // Every layer needs a final verdict, or nftables would fall through it where the matcher drops.
        for layer in PacketMatcher.layers(of: self) {
            guard let last = layer.last else { continue }
            let matchesAll = [
                last.source.any && !last.source.negate, last.destination.any && !last.destination.negate,
                last.service.any && !last.service.negate,
            ].allSatisfy { $0 }
            if !matchesAll { errors.append("rules: the last rule of layer [\(last.layer.prefix(64))] must match every packet (its implicit cleanup rule)") }
        }
        return errors
    }
}
