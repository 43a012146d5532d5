import ManagementModel
import Testing

@testable import Gateway

/// The gateway reads an `nft -j` listing as it reads any other input: strictly, without traps.
@Suite("Gateway: hostile nftables listings")
struct HostileListingTests {
    static func listing(_ counters: [String], handle: String = "1") -> String {
        let rules = counters.map { packets in
            #"{"rule": {"family": "inet", "table": "rampart", "chain": "layer_1", "comment": "rampart 0 web", "expr": [{"counter": {"packets": \#(packets), "bytes": 1}}]}}"#
        }
        return #"{"nftables": [{"table": {"family": "inet", "name": "rampart", "handle": \#(handle)}}, "# + rules.joined(separator: ", ") + "]}"
    }

    @Test func countersBeyondUInt64SaturateAndOddNumbersAreSkipped() throws {
        let max = String(Int64.max)
        #expect(try NftablesHitCollector.reading(fromListing: Self.listing([max, max, max])).counters.first?.packets == .max)
        #expect(try NftablesHitCollector.reading(fromListing: Self.listing(["-1", "1.5", "1e30", "\"7\"", "null", "2"])).counters.first?.packets == 2)
        #expect(throws: NftablesError.self) { try NftablesHitCollector.reading(fromListing: Self.listing(["1"], handle: "1.5")) }
        #expect(throws: NftablesError.self) { try NftablesHitCollector.reading(fromListing: Self.listing(["1"], handle: "\"x\"")) }
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(throws: NftablesError.self) { try NftablesHitCollector.reading(fromListing: #"{"nftables": "# + deep + "}") }
    }
}
