/// Address arithmetic the policy compiler and the gateway's matcher share: networks as ranges,
/// ranges merged into a canonical sorted list, containment.
extension IPAddress {
    /// An address of `family` (4 or 6) from its 128-bit value.
    public init(family: Int, high: UInt64, low: UInt64) {
        if family == 4 {
            self = .v4(UInt32(truncatingIfNeeded: low))
        } else {
            var groups: [UInt16] = []
            for half in [high, low] {
                for index in 0..<4 {
                    let shift = UInt64(48 - 16 * index)
                    groups.append(UInt16(truncatingIfNeeded: half >> shift))
                }
            }
            self = .v6(groups)
        }
    }

    /// The next address, or nil for the family's last address.
    public var successor: IPAddress? {
        let (high, low) = wide
        switch self {
        case .v4(let v): return v == .max ? nil : .v4(v + 1)
        case .v6:
            if low != .max { return IPAddress(family: 6, high: high, low: low + 1) }
            return high == .max ? nil : IPAddress(family: 6, high: high + 1, low: 0)
        }
    }

    /// First and last address of the network `self/length` (host bits of `self` are ignored).
    public func network(length: Int) -> (first: IPAddress, last: IPAddress) {
        let hostBits = bitCount - max(0, min(length, bitCount))
        let (high, low) = wide
        // The host mask over 128 bits, split in two halves.
        let lowMask: UInt64 = hostBits >= 64 ? .max : (hostBits == 0 ? 0 : (UInt64(1) << UInt64(hostBits)) - 1)
        let highMask: UInt64 = hostBits <= 64 ? 0 : (hostBits == 128 ? .max : (UInt64(1) << UInt64(hostBits - 64)) - 1)
        return (
            IPAddress(family: family, high: high & ~highMask, low: low & ~lowMask),
            IPAddress(family: family, high: high | highMask, low: low | lowMask)
        )
    }
}

extension AddressRange {
    public init(_ first: IPAddress, _ last: IPAddress) {
        self.init(first: first.text, last: last.text)
    }

    /// The range's ends parsed, or nil when they are not addresses of one family in order.
    public var bounds: (first: IPAddress, last: IPAddress)? {
        guard let first = IPAddress.parse(self.first), let last = IPAddress.parse(self.last),
            first.family == last.family, first <= last
        else { return nil }
        return (first, last)
    }

    public func contains(_ address: IPAddress) -> Bool {
        guard let (first, last) = bounds, first.family == address.family else { return false }
        return first <= address && address <= last
    }

    /// Ranges sorted (IPv4 first) with overlapping and adjacent ones joined: the canonical form, and
    /// what nftables interval sets require (they refuse overlapping elements).
    public static func merged(_ ranges: [AddressRange]) -> [AddressRange] {
        let parsed = ranges.compactMap(\.bounds).sorted { $0.first < $1.first }
        var out: [(first: IPAddress, last: IPAddress)] = []
        for range in parsed {
            if let previous = out.last, previous.last.family == range.first.family,
                range.first <= previous.last || range.first == previous.last.successor
            {
                out[out.count - 1].last = max(previous.last, range.last)
            } else {
                out.append(range)
            }
        }
        return out.map { AddressRange($0.first, $0.last) }
    }

    /// True when every address of `self` is in one of `ranges` (given merged).
    public func isCovered(byMerged ranges: [AddressRange]) -> Bool {
        guard let (first, last) = bounds else { return false }
        return ranges.contains { other in
            guard let (otherFirst, otherLast) = other.bounds, otherFirst.family == first.family else { return false }
            return otherFirst <= first && last <= otherLast
        }
    }
}

extension ServiceEntry {
    /// Entries sorted by protocol and port with overlapping and adjacent port ranges joined.
    public static func merged(_ entries: [ServiceEntry]) -> [ServiceEntry] {
        let sorted = entries.sorted { ($0.proto, $0.portFirst, $0.portLast) < ($1.proto, $1.portFirst, $1.portLast) }
        var out: [ServiceEntry] = []
        for entry in sorted {
            if let previous = out.last, previous.proto == entry.proto, entry.portFirst <= previous.portLast + 1 {
                out[out.count - 1].portLast = max(previous.portLast, entry.portLast)
            } else {
                out.append(entry)
            }
        }
        return out
    }

    public func matches(proto: String, port: Int) -> Bool {
        self.proto == proto && portFirst <= port && port <= portLast
    }
}
