import Foundation
import ManagementModel
import ManagementService
import Prometheus
import Synchronization

/// What the node knows besides the service, for one scrape: the clocks of its peers and the end of its
/// certificates.
public struct NodeFacts: Sendable {
    /// Each peer's clock minus ours, as the heartbeats measured it.
    public var clockOffsetsMilliseconds: [String: Int64]
    /// Each certificate this node relies on ("internal-ca", "sic-certificate", "api-certificate") and its end.
    public var certificateExpiries: [String: Date]

    public init(clockOffsetsMilliseconds: [String: Int64] = [:], certificateExpiries: [String: Date] = [:]) {
        self.clockOffsetsMilliseconds = clockOffsetsMilliseconds
        self.certificateExpiries = certificateExpiries
    }
}

/// The node's Prometheus registry, owned by the node (not process-global: nodes in one test process keep
/// their figures apart). Counters and the publish histogram are recorded as they happen (swift-metrics
/// through `factory`, and `EventCounters`); every gauge is set from the facts at scrape time, and a gauge
/// whose subject is gone (a peer or gateway removed) leaves with the next scrape.
public final class NodeMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    /// swift-metrics' view of the registry, for the service's counters and timers.
    public let factory: PrometheusMetricsFactory
    private let scrape = Mutex(ScrapeGauges())

    public init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[ServiceMetrics.Name.publishDuration] = MetricNames.publishDurationBuckets
        self.registry = registry
        self.factory = factory
    }

    /// The exposition text (format 0.0.4) of one scrape.
    public func render(_ facts: MonitoringFacts, node: NodeFacts) -> [UInt8] {
        scrape.withLock { gauges in
            gauges.begin()
            for sample in MetricSamples.gauges(facts, node: node) { gauges.set(sample, in: registry) }
            gauges.finish(in: registry)
            return registry.emitToBuffer()
        }
    }

    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"
}

/// One gauge value: its family, labels and help.
public struct GaugeSample: Sendable, Equatable {
    public var name: String
    public var labels: [Label]
    public var value: Double
    public var help: String

    public struct Label: Sendable, Equatable, Hashable {
        public var name: String
        public var value: String
        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    public init(_ name: String, _ labels: [Label] = [], _ value: Double, help: String) {
        self.name = name
        self.labels = labels
        self.value = value
        self.help = help
    }
}

/// The gauges set in the last scrape; those not set again are unregistered.
struct ScrapeGauges {
    struct Key: Hashable {
        let name: String
        let labels: [GaugeSample.Label]
    }

    private var previous: [Key: Gauge] = [:]
    private var current: [Key: Gauge] = [:]

    mutating func begin() { current = [:] }

    mutating func set(_ sample: GaugeSample, in registry: PrometheusCollectorRegistry) {
        let key = Key(name: sample.name, labels: sample.labels)
        let gauge =
            previous[key] ?? current[key]
            ?? registry.makeGauge(
                descriptor: MetricNames.descriptor(sample.name, help: sample.help), labels: sample.labels.map { ($0.name, $0.value) })
        gauge.set(sample.value)
        current[key] = gauge
    }

    mutating func finish(in registry: PrometheusCollectorRegistry) {
        for (key, gauge) in previous where current[key] == nil { registry.unregisterGauge(gauge) }
        previous = current
    }
}
