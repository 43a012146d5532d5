/// SplitMix64: a tiny, fast, seedable generator. One seed reproduces a whole simulated run, on any
/// platform and Swift version, because every draw goes through the methods below (not the standard
/// library's `random(in:)`, whose algorithm is not promised to stay the same).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    // Inlined (as `below` and `chance`): the simulator draws several times a tick and a message, and
    // the calls alone were a measurable share of its time.
    @inline(__always)
    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (multiply-high; the bias is below 2^-32 for the bounds used here).
    @inline(__always)
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "an empty range has nothing to draw")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    /// Uniform in `range`.
    public mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    /// True with probability `perMillion` / 1,000,000.
    @inline(__always)
    public mutating func chance(perMillion: Int) -> Bool {
        perMillion > 0 && below(1_000_000) < perMillion
    }
}
