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
        if let cluster { errors += cluster.validationErrors(targetUID: targetUID) }
        return errors
    }
}

extension CompiledCluster {
    /// What makes a cluster section unusable: the runtime puts its names into `ip` commands and its
    /// addresses on interfaces, so every value is checked as ClusterModel checked it on the server.
    public func validationErrors(targetUID: String) -> [String] {
        var errors: [String] = []
        if !ClusterModel.supportedModes.contains(mode) {
            errors.append("cluster.mode: '\(mode.prefix(32))' is not \(ClusterModel.supportedModes.joined(separator: ", "))")
        }
        if !ClusterModel.memberRecoveryModes.contains(memberRecovery) {
            errors.append("cluster.memberRecovery: '\(memberRecovery.prefix(32))' is not active-up or primary-up")
        }
        if !Limits.clusterHeartbeatIntervalMillisecondsRange.contains(heartbeatIntervalMilliseconds) {
            errors.append("cluster.heartbeatIntervalMilliseconds: out of range")
        }
        if !Limits.clusterDeadTimerMillisecondsRange.contains(deadTimerMilliseconds)
            || deadTimerMilliseconds < heartbeatIntervalMilliseconds * Limits.clusterHeartbeatsPerDeadTimerMin
        {
            errors.append("cluster.deadTimerMilliseconds: out of range or shorter than \(Limits.clusterHeartbeatsPerDeadTimerMin) heartbeat intervals")
        }
        if let heartbeatKey, ClusterModel.heartbeatKeyBytes(heartbeatKey) == nil {
            errors.append("cluster.heartbeatKey: not base64 of \(Limits.clusterHeartbeatKeyBytes) bytes")
        }
        if members.isEmpty || members.count > Limits.clusterMembersMax { errors.append("cluster.members: 1 to \(Limits.clusterMembersMax) members") }
        if localMemberUID != targetUID { errors.append("cluster.localMemberUID: not this policy's target") }
        guard let local = localMember, local.uid == localMemberUID, local.name == localMemberName, local.priority == localPriority else {
            errors.append("cluster.localMemberID: \(localMemberID) is not the local member's entry")
            return errors
        }
        for (index, member) in members.enumerated() {
            let place = "cluster.members[\(index)]"
            if member.memberID != index + 1 { errors.append("\(place).memberID: \(member.memberID) is not \(index + 1)") }
            if !Limits.clusterPriorityRange.contains(member.priority) { errors.append("\(place).priority: out of range") }
            if IPAddress.parse(member.address) == nil { errors.append("\(place).address: not an IP address") }
            if !NftablesRenderer.isSafeIdentifier(member.uid) { errors.append("\(place).uid: only letters, digits, '.', '_' and '-' are allowed") }
            errors += Self.interfaceErrors(member.interfaces, place: place, requireAddress: true)
        }
        if Set(members.map(\.priority)).count != members.count { errors.append("cluster.members: priorities must differ") }
        if Set(members.map(\.uid)).count != members.count { errors.append("cluster.members: uids must differ") }
        errors += Self.interfaceErrors(interfaces, place: "cluster", requireAddress: false)
        return errors
    }

    static func interfaceErrors(_ list: [CompiledClusterInterface], place: String, requireAddress: Bool) -> [String] {
        var errors: [String] = []
        if list.count > Limits.clusterInterfacesMax { errors.append("\(place).interfaces: more than \(Limits.clusterInterfacesMax)") }
        if Set(list.map(\.name)).count != list.count { errors.append("\(place).interfaces: names must differ") }
        for (index, item) in list.enumerated() {
            let at = "\(place).interfaces[\(index)]"
            if !ClusterModel.isInterfaceName(item.name) { errors.append("\(at).name: not an interface name") }
            if !ClusterModel.interfaceTypes.contains(item.type) { errors.append("\(at).type: not \(ClusterModel.interfaceTypes.joined(separator: ", "))") }
            guard let text = item.address else {
                if requireAddress || item.carriesVirtualAddress { errors.append("\(at).address: missing") }
                continue
            }
            guard let address = IPAddress.parse(text), address.text == text else {
                errors.append("\(at).address: not a canonical IP address")
                continue
            }
            if let length = item.maskLength, !(1...address.bitCount).contains(length) { errors.append("\(at).maskLength: out of range") }
        }
        return errors
    }
}
