import ManagementModel

/// Renders a compiled policy as one nftables ruleset for `nft -f`. Pure.
///
/// The file adds, deletes and redefines `table inet rampart` in one transaction, so a load replaces
/// the whole policy atomically (or fails and leaves the previous one). Two base chains, `input` (the
/// gateway protects itself) and `forward` (it routes between its interfaces), both at filter
/// priority, do the same: accept established and related traffic, loopback and the ICMPv6 neighbour
/// discovery IPv6 needs to work at all; then jump to one chain per ordered layer. In a layer chain
/// each compiled rule becomes one or more nftables rules (one per address family and protocol it
/// needs), each with a `counter` and the comment `rampart <index> <uid>` (index in the policy's rule
/// list), which `NftablesHitCollector` reads back. Accept in a layer that is not the last becomes
/// `return` (go on to the next layer), as `PacketMatcher` evaluates it; every layer ends with its
/// implicit cleanup rule, so a packet always gets a verdict.
public enum NftablesRenderer {
    public static let tableName = "rampart"
    public static let commentPrefix = "rampart "

    /// The UDP port cluster members exchange heartbeats on (`rampart gateway --cluster-port`'s default).
    public static let clusterHeartbeatPortDefault = 8116

    public static func render(_ policy: CompiledPolicy, clusterHeartbeatPort: Int = clusterHeartbeatPortDefault) -> String {
        let layers = PacketMatcher.layers(of: policy)
        var lines: [String] = [
            "# Rampart policy [\(sanitized(policy.packageName))] for [\(sanitized(policy.targetName))], revision \(policy.revision), epoch \(policy.epochTerm)",
            "table inet \(tableName)",
            "delete table inet \(tableName)",
            "table inet \(tableName) {",
        ]
        for (layerIndex, layer) in layers.enumerated() {
            let isLast = layerIndex == layers.count - 1
            lines.append("    chain layer_\(layerIndex + 1) {")
            lines.append("        # layer [\(sanitized(layer.first?.layer ?? ""))]")
            for index in layer.indices {
                lines += statements(policy.rules[index], index: index, acceptVerdict: isLast ? "accept" : "return")
                    .map { "        " + $0 }
            }
            lines.append("    }")
        }
        for hook in ["input", "forward"] {
            lines.append("    chain \(hook) {")
            lines.append("        type filter hook \(hook) priority filter; policy accept;")
            lines.append("        ct state established,related accept")
            if hook == "input" { lines.append("        iif \"lo\" accept") }
            lines.append("        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept")
            if hook == "input", let cluster = policy.cluster {
                lines += clusterHeartbeatRules(cluster, port: clusterHeartbeatPort).map { "        " + $0 }
            }
            lines += layers.indices.map { "        jump layer_\($0 + 1)" }
            // Reached only when every layer accepted (a layer's accept is `return`).
            lines.append("        accept")
            lines.append("    }")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The comment of the implied rules that accept the cluster's own heartbeats.
    public static let clusterHeartbeatComment = "implied: cluster heartbeats"

    /// Implied rules of a cluster member (as Check Point's implied rules accept CCP): heartbeats (UDP to
    /// the heartbeat port) from the members' own addresses on each monitored interface pass before the
    /// rulebase, so a Drop cleanup rule cannot silence the cluster. Addresses and interface names come
    /// from the policy: only canonical addresses and safe names are written.
    static func clusterHeartbeatRules(_ cluster: CompiledCluster, port: Int) -> [String] {
        var out: [String] = []
        for interface in cluster.interfaces where interface.type != "private" {
            guard isSafeIdentifier(interface.name), interface.name.utf8.count <= Limits.interfaceNameLengthMax else { continue }
            let addresses = cluster.members.compactMap { member in
                member.interfaces.first { $0.name == interface.name }?.address.flatMap(IPAddress.parse)
            }
            for (family, keyword) in [(4, "ip"), (6, "ip6")] {
                let texts = addresses.filter { $0.family == family }.map(\.text)
                guard !texts.isEmpty else { continue }
                out.append(
                    "iifname \"\(interface.name)\" \(keyword) saddr \(set(texts)) udp dport \(port) counter accept comment \"\(clusterHeartbeatComment)\"")
            }
        }
        return out
    }

    /// The initial policy, in force from a gateway's first start until its first install (as Check
    /// Point's initial policy): the agent's own connections to its management servers and their
    /// answers pass (it dials out; the answers are established traffic), loopback and IPv6 neighbour
    /// discovery too; every other packet to the gateway, and everything it would route, is dropped.
    public static func renderInitial() -> String {
        [
            "# Rampart initial policy: no policy installed yet; only the management channels pass",
            "table inet \(tableName)",
            "delete table inet \(tableName)",
            "table inet \(tableName) {",
            "    chain input {",
            "        type filter hook input priority filter; policy drop;",
            "        ct state established,related accept",
            "        iif \"lo\" accept",
            "        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } accept",
            "        counter drop comment \"\(initialPolicyComment)\"",
            "    }",
            "    chain forward {",
            "        type filter hook forward priority filter; policy drop;",
            "        counter drop comment \"\(initialPolicyComment)\"",
            "    }",
            "}",
        ].joined(separator: "\n") + "\n"
    }

    /// The comment of the initial policy's drop rules (no `commentPrefix`: they are no compiled rule).
    public static let initialPolicyComment = "initial policy: drop"

    /// The nftables rules for one compiled rule: each match alternative with the rule's counter,
    /// comment and verdict. A rule that can match nothing (a negated Any) renders no statement.
    static func statements(_ rule: CompiledRule, index: Int, acceptVerdict: String) -> [String] {
        let verdict: String
        switch rule.action {
        case .accept: verdict = acceptVerdict
        case .drop: verdict = "drop"
        case .reject: verdict = "reject"
        }
        let uid = isSafeIdentifier(rule.uid) ? rule.uid : "invalid-uid"
        let tail = "counter \(verdict) comment \"\(commentPrefix)\(index) \(uid)\""
        var out: [String] = []
        for addresses in addressAlternatives(rule) {
            for service in serviceAlternatives(rule.service) {
                out.append((addresses + service + [tail]).joined(separator: " "))
            }
        }
        return out
    }

    /// Address matches as alternatives: one list of expressions per address family the rule can
    /// match, or one empty list when both cells are Any.
    static func addressAlternatives(_ rule: CompiledRule) -> [[String]] {
        let cells = [(rule.source, "saddr"), (rule.destination, "daddr")]
        if cells.contains(where: { $0.0.any && $0.0.negate }) { return [] }
        if cells.allSatisfy({ $0.0.any }) { return [[]] }
        var out: [[String]] = []
        for (family, keyword, nfproto) in [(4, "ip", "ipv4"), (6, "ip6", "ipv6")] {
            var expressions: [String] = []
            var possible = true
            for (cell, field) in cells where !cell.any {
                let ranges = cell.ranges.filter { $0.bounds?.first.family == family }
                if ranges.isEmpty {
                    // No address of this family: a plain cell matches none, a negated one all.
                    if !cell.negate { possible = false }
                    continue
                }
                expressions.append("\(keyword) \(field) \(cell.negate ? "!= " : "")\(set(ranges.map(element)))")
            }
            guard possible else { continue }
            out.append(expressions.isEmpty ? ["meta nfproto \(nfproto)"] : expressions)
        }
        return out
    }

    /// Service matches as alternatives (each a list of expressions).
    static func serviceAlternatives(_ cell: ServiceMatch) -> [[String]] {
        if cell.any { return cell.negate ? [] : [[]] }
        let protocols = ["tcp", "udp"]
        var out: [[String]] = []
        for proto in protocols {
            let ports = cell.entries.filter { $0.proto == proto }.map { $0.portFirst == $0.portLast ? "\($0.portFirst)" : "\($0.portFirst)-\($0.portLast)" }
            if cell.negate {
                out.append(ports.isEmpty ? ["meta l4proto \(proto)"] : ["\(proto) dport != \(set(ports))"])
            } else if !ports.isEmpty {
                out.append(["\(proto) dport \(set(ports))"])
            }
        }
        // A negated service also matches every other protocol (ICMP and the rest).
        if cell.negate { out.append(["meta l4proto != { \(protocols.joined(separator: ", ")) }"]) }
        return out
    }

    /// An address range in its canonical text (never the raw strings it arrived as).
    static func element(_ range: AddressRange) -> String {
        guard let (first, last) = range.bounds else { return "" }
        return first == last ? first.text : "\(first.text)-\(last.text)"
    }

    /// Rule uids go into comments inside quotes: only these characters are let through.
    public static func isSafeIdentifier(_ text: String) -> Bool {
        // Bytes, not Characters: checked for every rule of every push.
        !text.isEmpty && text.utf8.count <= 64
            && text.utf8.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                    || byte == UInt8(ascii: ".")
            }
    }

    static func set(_ elements: [String]) -> String { "{ \(elements.joined(separator: ", ")) }" }

    /// Names go into comments only; keep them printable and free of quotes.
    static func sanitized(_ text: String) -> String {
        String(text.prefix(64).map { $0.isASCII && ($0.isLetter || $0.isNumber || " -_.".contains($0)) ? $0 : "_" })
    }
}
