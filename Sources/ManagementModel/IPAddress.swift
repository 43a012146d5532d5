/// IPv4 and IPv6 parsing without I/O. Addresses are kept in their canonical text form.
public enum IPAddress: Sendable, Equatable, Comparable {
    case v4(UInt32)
    case v6([UInt16])

    public var family: Int {
        if case .v4 = self { return 4 }
        return 6
    }
    public var bitCount: Int { family == 4 ? 32 : 128 }

    public static func parse(_ text: String) -> IPAddress? {
        if text.utf8.contains(UInt8(ascii: ":")) { return parseV6(text).map(IPAddress.v6) }
        return parseV4(text).map(IPAddress.v4)
    }

    /// Dotted quad, 1 to 3 decimal digits an octet, no leading zero (`010` is octal to inet_aton and
    /// decimal to others: refused, as glibc's inet_pton does). Reads UTF-8 bytes: gateways check every
    /// address of a pushed policy, so this is on the install path.
    static func parseV4(_ text: some StringProtocol) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in text.utf8 {
            if byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
                guard digits < 3, !(digits == 1 && octet == 0) else { return nil }
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
            } else if byte == UInt8(ascii: "."), digits > 0, octet <= 255, dots < 3 {
                value = value << 8 | octet
                (octet, digits, dots) = (0, 0, dots + 1)
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0, octet <= 255 else { return nil }
        return value << 8 | octet
    }

    /// RFC 4291 text: eight groups of 1 to 4 hex digits, one `::` for a run of zero groups, and a
    /// dotted quad only as the last 32 bits (`::ffff:192.0.2.1`; not `1.2.3.4::`). No sign, no zone.
    static func parseV6(_ text: String) -> [UInt16]? {
        guard text.utf8.count <= 45 else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ s: String, endsTheAddress: Bool) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            let pieces = s.split(separator: ":", omittingEmptySubsequences: false)
            for (i, piece) in pieces.enumerated() {
                if endsTheAddress, i == pieces.count - 1, piece.utf8.contains(UInt8(ascii: ".")) {
                    guard let v4 = parseV4(piece) else { return nil }
                    out.append(UInt16(v4 >> 16))
                    out.append(UInt16(v4 & 0xFFFF))
                } else {
                    guard (1...4).contains(piece.utf8.count), piece.utf8.allSatisfy(isHexDigit), let g = UInt16(piece, radix: 16) else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        guard let head = groups(halves[0], endsTheAddress: halves.count == 1) else { return nil }
        if halves.count == 1 { return head.count == 8 ? head : nil }
        guard let tail = groups(halves[1], endsTheAddress: true), head.count + tail.count <= 7 else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    static func isHexDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(byte)
    }

    /// RFC 5952 text form (lower case, longest zero run compressed).
    public var text: String {
        switch self {
        case .v4(let v):
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        case .v6(let groups):
            var bestStart = -1
            var bestLength = 0
            var runStart = -1
            for i in 0...8 {
                if i < 8, groups[i] == 0 {
                    if runStart < 0 { runStart = i }
                    continue
                }
                if runStart >= 0, i - runStart > bestLength, i - runStart > 1 {
                    bestStart = runStart
                    bestLength = i - runStart
                }
                runStart = -1
            }
            let hex = groups.map { String($0, radix: 16) }
            if bestStart < 0 { return hex.joined(separator: ":") }
            let left = hex[0..<bestStart].joined(separator: ":")
            let right = hex[(bestStart + bestLength)...].joined(separator: ":")
            return left + "::" + right
        }
    }

    /// The IPv4 mask for a prefix length, as dotted text.
    public static func subnetMask(lengthV4 length: Int) -> String {
        let length = max(0, min(length, 32))  // a stored value out of range shows as the nearest mask
        let mask: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
        return IPAddress.v4(mask).text
    }

    /// The prefix length of a dotted IPv4 mask, or nil when the mask is not contiguous.
    public static func maskLength(subnetMask: String) -> Int? {
        guard case .v4(let mask)? = parse(subnetMask) else { return nil }
        let length = mask.leadingZeroBitCount == 32 ? 0 : (~mask).leadingZeroBitCount == 32 ? 32 : mask.nonzeroBitCount
        let rebuilt: UInt32 = length == 0 ? 0 : ~UInt32(0) << UInt32(32 - length)
        return rebuilt == mask ? length : nil
    }

    /// 128-bit value split in two halves for comparisons and containment.
    public var wide: (high: UInt64, low: UInt64) {
        switch self {
        case .v4(let v): return (0, UInt64(v))
        case .v6(let g):
            var high: UInt64 = 0
            var low: UInt64 = 0
            for i in 0..<4 { high = high << 16 | UInt64(g[i]) }
            for i in 4..<8 { low = low << 16 | UInt64(g[i]) }
            return (high, low)
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        if lhs.family != rhs.family { return lhs.family < rhs.family }
        let l = lhs.wide
        let r = rhs.wide
        return l.high != r.high ? l.high < r.high : l.low < r.low
    }
}
