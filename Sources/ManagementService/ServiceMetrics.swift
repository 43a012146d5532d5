import CoreMetrics
import ManagementModel
import Synchronization

/// The service's own counters and timers, recorded where they happen (every Web API command, every
/// publish) through swift-metrics: the node hands it a `MetricsFactory` (its Prometheus registry), a
/// test may hand it another, and without one nothing is recorded. No process-global bootstrap, so
/// nodes in one process keep their figures apart.
public final class ServiceMetrics: Sendable {
    public enum Name {
        public static let apiRequests = "rampart_api_requests_total"
        public static let publishDuration = "rampart_publish_duration_seconds"
    }

    private let factory = Mutex<(any MetricsFactory)?>(nil)
    /// Publishes committed and their summed durations since start, for `rampart view`'s rate and latency.
    private let publishes = Mutex(PublishTotals())

    /// Publishes committed since start: a viewer takes the difference of two readings.
    public struct PublishTotals: Sendable, Equatable {
        public var count: Int64 = 0
        public var nanoseconds: Int64 = 0
    }

    public var publishTotals: PublishTotals { publishes.withLock { $0 } }

    public init() {}

    /// Starts recording into `factory`.
    public func attach(_ factory: any MetricsFactory) { self.factory.withLock { $0 = factory } }

    /// One Web API command answered. `command` is a name from the command table or "unknown", so a
    /// client cannot make up label values.
    func requestAnswered(command: String, status: Int) {
        guard let factory = factory.withLock({ $0 }) else { return }
        Counter(label: Name.apiRequests, dimensions: [("command", command), ("status", String(status))], factory: factory).increment()
    }

    /// A publish that committed, from the request's arrival to its answer (a sync-mode publish
    /// includes the wait for a standby).
    func publishCommitted(after duration: Duration) {
        publishes.withLock { totals in
            totals.count &+= 1
            totals.nanoseconds &+= max(duration.nanoseconds, 0)
        }
        guard let factory = factory.withLock({ $0 }) else { return }
        Timer(label: Name.publishDuration, dimensions: [], factory: factory).recordNanoseconds(duration.nanoseconds)
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to Int64.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (scaled, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return scaled.addingReportingOverflow(attoseconds / 1_000_000_000).overflow ? .max : scaled + attoseconds / 1_000_000_000
    }
}
