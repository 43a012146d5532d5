// A copy of Sources/Simulation's generator, kept here so that the cluster simulation does not depend
// on that module while it becomes SimulationKit; it moves onto SimulationKit's generator with the rest.

/// SplitMix64: a tiny, fast, seedable generator. One seed reproduces a whole simulated run because every
/// draw goes through the methods below (not the standard library's `random(in:)`).
struct SplitMix64: RandomNumberGenerator, Sendable {
    private(set) var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (multiply-high).
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "an empty range has nothing to draw")
        return Int(next().multipliedFullWidth(by: UInt64(bound)).high)
    }

    mutating func int(in range: ClosedRange<Int>) -> Int {
        range.lowerBound + below(range.upperBound - range.lowerBound + 1)
    }

    /// True with probability `perMillion` / 1,000,000.
    mutating func chance(perMillion: Int) -> Bool {
        perMillion > 0 && below(1_000_000) < perMillion
    }

    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}
