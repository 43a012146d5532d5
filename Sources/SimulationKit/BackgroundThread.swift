import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs seconds of CPU-bound simulation on a thread of its own, at the lowest scheduling priority (nice
/// 19), and returns its result. Off Swift concurrency's threads (two on a two-core machine), since on one
/// of them it would stall every other task of the process; at the lowest priority, since a test run
/// also starts servers whose deadlines (handshakes, enrolment, heartbeats) must not starve behind it.
public func onBackgroundThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            // Linux keeps a nice value per thread: `who` 0 is this thread alone.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
            continuation.resume(returning: work())
        }
    }
}
