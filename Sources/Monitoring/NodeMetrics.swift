import CoreMetrics
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
    public let factory: HelpedMetricsFactory
    private let scrape = Mutex(ScrapeGauges())

    public init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        self.factory = HelpedMetricsFactory(registry: registry)
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

/// swift-metrics onto the registry with a `# HELP` line for the service's families: swift-prometheus's
/// own factory registers every family with an empty help text (and the registry refuses a second,
/// different help for one family), so the families this node records through swift-metrics are made
/// here with theirs; any other label goes to that factory.
public struct HelpedMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry
    let plain: PrometheusMetricsFactory

    /// The help of each family the service records through swift-metrics.
    static let help = [
        ServiceMetrics.Name.apiRequests: "Web API commands answered, by command and HTTP status.",
        ServiceMetrics.Name.publishDuration:
            "Publishes committed, from the request's arrival to its answer (a sync-mode publish includes the wait for a standby).",
    ]

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        plain = PrometheusMetricsFactory(registry: registry)
    }

    public func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        guard let help = Self.help[label] else { return plain.makeCounter(label: label, dimensions: dimensions) }
        return registry.makeCounter(descriptor: MetricNames.descriptor(label, help: help), labels: dimensions)
    }

    public func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        guard let help = Self.help[label] else { return plain.makeTimer(label: label, dimensions: dimensions) }
        let buckets = label == ServiceMetrics.Name.publishDuration ? MetricNames.publishDurationBuckets : plain.defaultDurationHistogramBuckets
        return registry.makeDurationHistogram(descriptor: MetricNames.descriptor(label, help: help), labels: dimensions, buckets: buckets)
    }

    public func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        plain.makeFloatingPointCounter(label: label, dimensions: dimensions)
    }

    public func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        plain.makeRecorder(label: label, dimensions: dimensions, aggregate: aggregate)
    }

    public func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler { plain.makeMeter(label: label, dimensions: dimensions) }

    public func destroyCounter(_ handler: any CounterHandler) { plain.destroyCounter(handler) }
    public func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) { plain.destroyFloatingPointCounter(handler) }
    public func destroyRecorder(_ handler: any RecorderHandler) { plain.destroyRecorder(handler) }
    public func destroyMeter(_ handler: any MeterHandler) { plain.destroyMeter(handler) }
    public func destroyTimer(_ handler: any TimerHandler) { plain.destroyTimer(handler) }
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

    private var previous: [Key: Prometheus.Gauge] = [:]
    private var current: [Key: Prometheus.Gauge] = [:]

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
