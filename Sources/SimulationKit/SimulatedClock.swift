/// Simulated time: whole ticks of a fixed length, moved only by whoever runs the simulation (as
/// NIOEmbedded's loop: time moves only when the test moves it).
public struct SimulatedClock: Hashable, Sendable {
    public let tickMilliseconds: UInt64
    public private(set) var tick = 0

    public init(tickMilliseconds: UInt64) {
        precondition(tickMilliseconds > 0, "a tick lasts some time")
        self.tickMilliseconds = tickMilliseconds
    }

    /// Milliseconds since the start, as a monotonic clock would read them.
    public var nowMilliseconds: UInt64 { UInt64(tick) * tickMilliseconds }

    public mutating func advance() { tick += 1 }
}
