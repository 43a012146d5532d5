import Foundation

/// The wall clock, at the edge: times stored in files and shown to operators (backup times, archive
/// names). Intervals use the monotonic `ContinuousClock` instead.
public enum WallClock {
    public static func nowMilliseconds() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}
