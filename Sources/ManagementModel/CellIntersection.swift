/// Intersections of rule cells, for inlining a layer under its parent rule: a packet reaches an
/// inline layer's rule only when it matches both the parent rule's cell and the rule's own.

/// Inclusive intervals in groups (an address family, a protocol) that never meet each other.
struct Interval<Bound: Comparable> {
    var group: String
    var first: Bound
    var last: Bound

    static func intersection(_ a: [Interval], _ b: [Interval]) -> [Interval] {
        var out: [Interval] = []
        for x in a {
            for y in b where x.group == y.group {
                let first = max(x.first, y.first), last = min(x.last, y.last)
                if first <= last { out.append(Interval(group: x.group, first: first, last: last)) }
            }
        }
        return out
    }

    /// `kept` without anything in `removed`; `before` and `after` step one unit (nil past the end).
    static func subtracting(_ removed: [Interval], from kept: [Interval], before: (Bound) -> Bound?, after: (Bound) -> Bound?) -> [Interval] {
        var pieces = kept
        for cut in removed {
            pieces = pieces.flatMap { piece -> [Interval] in
                guard piece.group == cut.group, cut.first <= piece.last, piece.first <= cut.last else { return [piece] }
                var left: [Interval] = []
                if piece.first < cut.first, let end = before(cut.first) { left.append(Interval(group: piece.group, first: piece.first, last: end)) }
                if cut.last < piece.last, let start = after(cut.last) { left.append(Interval(group: piece.group, first: start, last: piece.last)) }
                return left
            }
        }
        return pieces
    }
}

extension IPAddress {
    /// The address before, or nil for the family's first address.
    public var predecessor: IPAddress? {
        let (high, low) = wide
        switch self {
        case .v4(let v): return v == 0 ? nil : .v4(v - 1)
        case .v6:
            if low != 0 { return IPAddress(family: 6, high: high, low: low - 1) }
            return high == 0 ? nil : IPAddress(family: 6, high: high - 1, low: .max)
        }
    }
}

extension AddressMatch {
    /// A cell no address matches (a negated Any).
    public static let nothing = AddressMatch(any: true, negate: true)
    public var matchesNothing: Bool { any ? negate : (!negate && ranges.isEmpty) }

    /// The cell matching exactly the addresses both cells match.
    public func intersected(with other: AddressMatch) -> AddressMatch {
        if matchesNothing || other.matchesNothing { return .nothing }
        if any { return other }
        if other.any { return self }
        func intervals(_ ranges: [AddressRange]) -> [Interval<IPAddress>] {
            ranges.compactMap { range in range.bounds.map { Interval(group: "\($0.first.family)", first: $0.first, last: $0.last) } }
        }
        func cell(_ list: [Interval<IPAddress>], negate: Bool = false) -> AddressMatch {
            AddressMatch(any: false, negate: negate, ranges: AddressRange.merged(list.map { AddressRange($0.first, $0.last) }))
        }
        switch (negate, other.negate) {
        case (false, false): return cell(Interval.intersection(intervals(ranges), intervals(other.ranges)))
        case (true, true): return cell(intervals(ranges) + intervals(other.ranges), negate: true)
        case (false, true):
            return cell(Interval.subtracting(intervals(other.ranges), from: intervals(ranges), before: \.predecessor, after: \.successor))
        case (true, false):
            return cell(Interval.subtracting(intervals(ranges), from: intervals(other.ranges), before: \.predecessor, after: \.successor))
        }
    }
}

extension ServiceMatch {
    /// A cell no packet matches (a negated Any).
    public static let nothing = ServiceMatch(any: true, negate: true)
    public var matchesNothing: Bool { any ? negate : (!negate && entries.isEmpty) }

    /// The cell matching exactly the packets both cells match. A negated cell also matches other
    /// protocols than TCP and UDP; a plain one never does, so their intersection is TCP/UDP only.
    public func intersected(with other: ServiceMatch) -> ServiceMatch {
        if matchesNothing || other.matchesNothing { return .nothing }
        if any { return other }
        if other.any { return self }
        func intervals(_ entries: [ServiceEntry]) -> [Interval<Int>] {
            entries.map { Interval(group: $0.proto, first: $0.portFirst, last: $0.portLast) }
        }
        func cell(_ list: [Interval<Int>], negate: Bool = false) -> ServiceMatch {
            ServiceMatch(any: false, negate: negate, entries: ServiceEntry.merged(list.map { ServiceEntry(proto: $0.group, portFirst: $0.first, portLast: $0.last) }))
        }
        let before: (Int) -> Int? = { $0 > 1 ? $0 - 1 : nil }, after: (Int) -> Int? = { $0 < 65535 ? $0 + 1 : nil }
        switch (negate, other.negate) {
        case (false, false): return cell(Interval.intersection(intervals(entries), intervals(other.entries)))
        case (true, true): return cell(intervals(entries) + intervals(other.entries), negate: true)
        case (false, true): return cell(Interval.subtracting(intervals(other.entries), from: intervals(entries), before: before, after: after))
        case (true, false): return cell(Interval.subtracting(intervals(entries), from: intervals(other.entries), before: before, after: after))
        }
    }
}

extension CompiledRule {
    /// No packet can match the rule.
    public var matchesNothing: Bool { source.matchesNothing || destination.matchesNothing || service.matchesNothing }
}
