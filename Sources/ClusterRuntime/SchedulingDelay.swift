/// How late this member's own loop runs: the load figure the dead timer's stretch is for. A member
/// whose ticks come late may send its heartbeats late, and the others should not declare it dead for
/// that; a busy machine whose member still keeps time needs no stretch (the machine-wide CPU figure
/// stretched every member of a lab, and any gateway busy with traffic but on time).
///
/// Each sampling interval the figure is the largest lateness seen, as a share of the heartbeat
/// interval (100 % and more: a whole heartbeat late), clamped to 0...100.
public struct SchedulingDelay: Sendable {
    var largestLateMilliseconds: UInt64?

    public init() {}

    /// A tick that was due at `dueMilliseconds` is handled at `nowMilliseconds` (one monotonic clock).
    public mutating func record(dueMilliseconds: UInt64, nowMilliseconds: UInt64) {
        let late = nowMilliseconds > dueMilliseconds ? nowMilliseconds - dueMilliseconds : 0
        largestLateMilliseconds = max(largestLateMilliseconds ?? 0, late)
    }

    /// The figure since the previous call (nil: no tick was handled), and a fresh window.
    public mutating func percent(ofIntervalMilliseconds interval: UInt64) -> Int? {
        defer { largestLateMilliseconds = nil }
        guard let late = largestLateMilliseconds else { return nil }
        guard interval > 0 else { return 100 }
        return Int(min(late, interval) * 100 / interval)
    }
}
