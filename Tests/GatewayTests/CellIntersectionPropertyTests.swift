import ManagementModel
import Testing

@testable import Gateway

/// Inlining a layer narrows each of its rules to the parent rule's cells. Checked exhaustively on a
/// small space: a packet matches the intersected cell exactly when it matches both cells.
@Suite("Cell intersection agrees with matching both cells")
struct CellIntersectionPropertyTests {
    /// A seeded generator (SplitMix64), so a failure names the seed that reproduces it.
    struct Generator {
        var state: UInt64
        mutating func next(_ bound: Int) -> Int {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Int((z ^ (z >> 31)) % UInt64(bound))
        }
    }

    static let addresses = (0..<12).map { "10.0.0.\($0)" } + ["fd00::1", "fd00::2"]

    func addressCell(_ random: inout Generator) -> AddressMatch {
        let negate = random.next(3) == 0
        if random.next(5) == 0 { return AddressMatch(any: true, negate: negate) }
        let ranges = (0..<random.next(3) + 1).map { _ -> AddressRange in
            if random.next(6) == 0 { return AddressRange(first: "fd00::1", last: random.next(2) == 0 ? "fd00::1" : "fd00::2") }
            let first = random.next(12)
            let last = min(11, first + random.next(5))
            return AddressRange(first: "10.0.0.\(first)", last: "10.0.0.\(last)")
        }
        return AddressMatch(any: false, negate: negate, ranges: AddressRange.merged(ranges))
    }

    func serviceCell(_ random: inout Generator) -> ServiceMatch {
        let negate = random.next(3) == 0
        if random.next(5) == 0 { return ServiceMatch(any: true, negate: negate) }
        let entries = (0..<random.next(3) + 1).map { _ -> ServiceEntry in
            let first = random.next(10) + 1
            return ServiceEntry(proto: random.next(2) == 0 ? "tcp" : "udp", portFirst: first, portLast: min(10, first + random.next(4)))
        }
        return ServiceMatch(any: false, negate: negate, entries: ServiceEntry.merged(entries))
    }

    @Test(arguments: 0..<200)
    func intersectionMatchesExactlyWhatBothMatch(seed: Int) throws {
        var random = Generator(state: UInt64(seed))
        let (a, b) = (addressCell(&random), addressCell(&random))
        let both = a.intersected(with: b)
        for text in Self.addresses {
            let address = try #require(IPAddress.parse(text))
            #expect(
                PacketMatcher.matches(both, address) == (PacketMatcher.matches(a, address) && PacketMatcher.matches(b, address)),
                "seed \(seed): \(a) ∩ \(b) = \(both) at \(text)")
        }
        let (s, t) = (serviceCell(&random), serviceCell(&random))
        let services = s.intersected(with: t)
        for proto in PacketProtocol.allCases {
            for port in proto == .icmp ? [nil] : (1...11).map(Optional.some) {
                let packet = Packet(source: IPAddress.parse("10.0.0.1")!, destination: IPAddress.parse("10.0.0.2")!, proto: proto, destinationPort: port)
                #expect(
                    PacketMatcher.matches(services, packet) == (PacketMatcher.matches(s, packet) && PacketMatcher.matches(t, packet)),
                    "seed \(seed): \(s) ∩ \(t) = \(services) at \(proto) \(String(describing: port))")
            }
        }
    }
}
