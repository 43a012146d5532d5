import Logging
import ManagementService
import Prometheus
import ServiceLifecycle

/// Counters fed by the node's event stream: sync errors by peer and reason, policy installs by result.
/// A subscriber of the bus like the log; if it falls behind, the events it lost are not counted (and
/// said so in the log).
public struct EventCounters: Service {
    /// The sync statuses counted as errors (a peer's status turning to one of them).
    public static let syncErrorKinds: Set<String> = ["communication-error", "collision", "ha-stopped"]
    static let bufferedEventsMax = 1_024

    let metrics: NodeMetrics
    let stream: AsyncStream<EventBus<ManagementEvent>.Delivery>
    let logger: Logger

    /// Subscribes at once, so the events from the node's first step on are counted.
    public init(metrics: NodeMetrics, events: EventBus<ManagementEvent>, logger: Logger) throws {
        self.metrics = metrics
        self.stream = try events.subscribe(bufferedEventsMax: Self.bufferedEventsMax)
        self.logger = logger
        // Present at 0 before the first install, so a rate() has a start.
        for result in ["installed", "failed"] { _ = Self.installs(metrics.registry, result: result) }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            for await delivery in stream {
                switch delivery {
                case .event(let event, _): Self.count(event, in: metrics.registry)
                case .lost(let count): logger.warning("metrics fell behind the event stream; events not counted", metadata: ["lost": "\(count)"])
                }
            }
        }
    }

    public static func count(_ event: ManagementEvent, in registry: PrometheusCollectorRegistry) {
        switch event {
        case .syncStatusChanged(let change) where syncErrorKinds.contains(change.status.kind):
            registry.makeCounter(
                descriptor: MetricNames.descriptor(
                    MetricNames.syncErrors, help: "Times a peer's synchronization turned to an error, by reason (communication-error, collision, ha-stopped)."),
                labels: [("peer", change.peer.name), ("reason", change.status.kind)]
            ).increment()
        case .policyInstalled(let install):
            installs(registry, result: install.succeeded ? "installed" : "failed").increment()
        default:
            break
        }
    }

    static func installs(_ registry: PrometheusCollectorRegistry, result: String) -> Counter {
        registry.makeCounter(
            descriptor: MetricNames.descriptor(MetricNames.policyInstalls, help: "Policy installations on one target, by result (installed or failed)."),
            labels: [("result", result)])
    }
}
