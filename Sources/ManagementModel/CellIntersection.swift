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
                let first = max(x.first, y.first)
                let last = min(x.last, y.last)
                if first <= last { out.append(Interval(group: x.group, first: first, last: last)) }
            }
        }
        return out
    }

    /// What both of two cells match, each a list of intervals, possibly negated: the intervals of
    /// the result and whether it is negated (not A and not B is not (A or B)).
    static func intersectCells(
        _ a: [Interval], negated aNegated: Bool, _ b: [Interval], negated bNegated: Bool,
        before: (Bound) -> Bound?, after: (Bound) -> Bound?
    ) -> (intervals: [Interval], negate: Bool) {
        switch (aNegated, bNegated) {
        case (false, false): return (intersection(a, b), false)
        case (true, true): return (a + b, true)
        case (false, true): return (subtracting(b, from: a, before: before, after: after), false)
        case (true, false): return (subtracting(a, from: b, before: before, after: after), false)
        }
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
        let (list, negated) = Interval.intersectCells(
            intervals(ranges), negated: negate, intervals(other.ranges), negated: other.negate,
            before: \.predecessor, after: \.successor)
        return AddressMatch(any: false, negate: negated, ranges: AddressRange.merged(list.map { AddressRange($0.first, $0.last) }))
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
        let (list, negated) = Interval.intersectCells(
            intervals(entries), negated: negate, intervals(other.entries), negated: other.negate,
            before: { $0 > 1 ? $0 - 1 : nil }, after: { $0 < 65535 ? $0 + 1 : nil })
        return ServiceMatch(
            any: false, negate: negated,
            entries: ServiceEntry.merged(list.map { ServiceEntry(proto: $0.group, portFirst: $0.first, portLast: $0.last) }))
    }
}

extension CompiledRule {
    /// No packet can match the rule.
    public var matchesNothing: Bool { source.matchesNothing || destination.matchesNothing || service.matchesNothing }
}
