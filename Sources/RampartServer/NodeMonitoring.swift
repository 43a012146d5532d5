import Foundation
import HARuntime
import Logging
import ManagementService
import Monitoring
import PeerTransport
import ServiceLifecycle
import TrustCore
import WebAPI

/// The node's monitoring: its Prometheus registry (the service's counters attached to it, the event
/// counters subscribed), `/metrics` and `/health/<check>` on the API listener, and on `--metrics-listen`.
struct NodeMonitoring {
    let endpoints: MonitoringEndpoints
    let services: [any Service]

    init(
        service: ManagementService, runtime: HARuntime, facts: PeerFacts, credentials: NodeCredentials, metricsListen: SICAddress?,
        logger: Logger
    ) throws {
        let metrics = NodeMetrics()
        service.metrics.attach(metrics.factory)
        let counters = try EventCounters(metrics: metrics, events: service.events, logger: logger)
        endpoints = MonitoringEndpoints(
            contentType: NodeMetrics.contentType,
            metrics: {
                let scraped = await service.monitoringFacts()
                return metrics.render(scraped, node: Self.nodeFacts(runtime: runtime, facts: facts, credentials: credentials))
            },
            health: { name in
                guard let check = HealthCheck(rawValue: name) else { return nil }
                let answer = check.answer(await service.haStatusReport())
                return (answer.status, answer.body)
            })
        var services: [any Service] = [counters]
        if let metricsListen {
            services.append(
                try WebAPI.plainMonitoringApplication(
                    endpoints, host: metricsListen.host, port: metricsListen.port, logger: logger,
                    onRunning: { port in
                        logger.notice("metrics and health over plain HTTP", metadata: ["listen": "\(metricsListen.host):\(port)"])
                    }))
        }
        self.services = services
    }

    /// The peers' clock offsets and this node's certificate ends.
    static func nodeFacts(runtime: HARuntime, facts: PeerFacts, credentials: NodeCredentials) -> NodeFacts {
        var expiries: [String: Date] = [:]
        expiries[CertificateLifecycle.ExpiringCertificate.Which.internalCA.rawValue] = credentials.icaNotValidAfter
        expiries[CertificateLifecycle.ExpiringCertificate.Which.sicCertificate.rawValue] = credentials.certificateNotValidAfter
        return NodeFacts(clockOffsetsMilliseconds: clockOffsets(runtime: runtime, facts: facts), certificateExpiries: expiries)
    }

    /// Each peer's clock minus ours, as the heartbeats measured it (a peer not measured yet is absent).
    static func clockOffsets(runtime: HARuntime, facts: PeerFacts) -> [String: Int64] {
        var offsets: [String: Int64] = [:]
        for peer in runtime.status.peers.map(\.serverID.name) {
            if let offset = facts.clockOffsetMilliseconds(of: peer) { offsets[peer] = offset }
        }
        return offsets
    }
}
