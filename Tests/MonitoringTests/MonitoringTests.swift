import CoreMetrics
import Foundation
import ManagementModel
import ManagementService
import Testing

@testable import Monitoring

/// `/metrics` as a scraper reads it: the names and labels of each family, the values taken from the
/// service's state, label values escaped, and a subject that is gone leaving the next scrape.
@Suite("Monitoring: metric names, labels and values")
struct MetricRenderingTests {
    static let nowMilliseconds: Int64 = 1_800_000_000_000

    static func server(_ name: String, lag: Int64?, status: String = "synchronized", lastSyncAgoMilliseconds: Int64 = 3_600_000) -> HAStatusReport.Server {
        HAStatusReport.Server(
            name: name, ipAddress: "192.0.2.2", haState: "standby", syncState: status == "synchronized" ? "Ok" : "Sync Error", syncStatus: status,
            syncDetail: status, knownHead: 40, lagRevisions: lag, lagSeconds: 0, connected: true, lastContactMillisecondsAgo: 10,
            lastSuccessfulSync: HAStatusReport.Timestamp(milliseconds: nowMilliseconds - lastSyncAgoMilliseconds))
    }

    static func report(mode: String, writes: Bool, servers: [HAStatusReport.Server], syncStatus: String = "synchronized") -> HAStatusReport {
        var report = HAStatusReport(servers: servers, successfullySynced: true)
        report.mode = mode
        report.role = mode == "active" ? "primary" : "secondary"
        report.thisServer = mode == "active" ? "primary" : "mgmt-b"
        report.activeServer = "primary"
        report.epoch = .init(term: 3, server: "primary")
        report.head = .init(number: 42, hash: "4f1c")
        report.writesEnabled = writes
        report.syncStatus = syncStatus
        if mode == "standby" { report.lagRevisions = .some(0) }
        return report
    }

    /// Every sample line of an exposition text, by series (name and labels as written).
    static func samples(_ bytes: [UInt8]) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            values[String(line[..<space])] = value
        }
        return values
    }

    @Test("the active's HA families: role one-hot, epoch, writes, per-peer lag in revisions and seconds, last sync")
    func activeFamilies() {
        let facts = MonitoringFacts(
            ha: Self.report(mode: "active", writes: true, servers: [Self.server("mgmt-b", lag: 2, status: "lagging"), Self.server("mgmt-c", lag: 0)]),
            sessions: 2, locks: 5, oldestLackingCommitMilliseconds: ["mgmt-b": Self.nowMilliseconds - 12_500], nowMilliseconds: Self.nowMilliseconds)
        let values = Self.samples(NodeMetrics().render(facts, node: NodeFacts(clockOffsetsMilliseconds: ["mgmt-b": -250])))
        #expect(values[#"rampart_ha_role{role="active"}"#] == 1)
        #expect(values[#"rampart_ha_role{role="standby"}"#] == 0)
        #expect(values["rampart_ha_epoch"] == 3)
        #expect(values["rampart_ha_writes_enabled"] == 1)
        #expect(values["rampart_ha_collision"] == 0)
        #expect(values[#"rampart_ha_peer_lag_revisions{peer="mgmt-b"}"#] == 2)
        #expect(values[#"rampart_ha_peer_lag_seconds{peer="mgmt-b"}"#] == 12.5, "now minus the commit time of the oldest revision it lacks")
        #expect(values[#"rampart_ha_peer_last_sync_timestamp_seconds{peer="mgmt-b"}"#] == Double(Self.nowMilliseconds - 3_600_000) / 1000)
        #expect(values["rampart_sessions"] == 2)
        #expect(values["rampart_locked_objects"] == 5)
        #expect(values[#"rampart_peer_clock_offset_seconds{peer="mgmt-b"}"#] == -0.25)
    }

    @Test("an idle active whose standby is caught up shows lag 0 s, however long ago the last publish was")
    func idleActiveNoFalseAlarm() {
        let facts = MonitoringFacts(
            ha: Self.report(mode: "active", writes: true, servers: [Self.server("mgmt-b", lag: 0, lastSyncAgoMilliseconds: 86_400_000)]),
            nowMilliseconds: Self.nowMilliseconds)
        let values = Self.samples(NodeMetrics().render(facts, node: NodeFacts()))
        #expect(values[#"rampart_ha_peer_lag_seconds{peer="mgmt-b"}"#] == 0)
        #expect(values[#"rampart_ha_peer_lag_revisions{peer="mgmt-b"}"#] == 0)
    }

    @Test("a standby's view: role standby, collision shown")
    func standbyCollision() {
        var report = Self.report(mode: "standby", writes: false, servers: [Self.server("primary", lag: nil, status: "collision")], syncStatus: "collision")
        report.servers[0].haState = "active"
        let values = Self.samples(NodeMetrics().render(MonitoringFacts(ha: report, nowMilliseconds: Self.nowMilliseconds), node: NodeFacts()))
        #expect(values[#"rampart_ha_role{role="standby"}"#] == 1)
        #expect(values["rampart_ha_writes_enabled"] == 0)
        #expect(values["rampart_ha_collision"] == 1)
        #expect(values[#"rampart_ha_peer_lag_revisions{peer="primary"}"#] == nil, "an unknown lag is left out, not shown as 0")
    }

    @Test("gateway and cluster member states one-hot; a hostile name is escaped; a gone gateway leaves the next scrape")
    func gatewaysAndStaleSeries() {
        let metrics = NodeMetrics()
        var facts = MonitoringFacts(
            ha: Self.report(mode: "active", writes: true, servers: []),
            gateways: [.init(name: "gw-1", state: "ok"), .init(name: "gw\"2\n", state: "not-responding")],
            clusterMembers: [.init(cluster: "cl", member: "m1", state: "ACTIVE"), .init(cluster: "cl", member: "m2", state: "weird")],
            nowMilliseconds: Self.nowMilliseconds)
        let first = metrics.render(facts, node: NodeFacts())
        let values = Self.samples(first)
        #expect(values[#"rampart_gateway_state{gateway="gw-1",state="ok"}"#] == 1)
        #expect(values[#"rampart_gateway_state{gateway="gw-1",state="not-responding"}"#] == 0)
        #expect(values[#"rampart_gateway_state{gateway="gw\"2\n",state="not-responding"}"#] == 1, "quote and line feed escaped")
        #expect(values[#"rampart_cluster_member_state{cluster="cl",member="m1",state="ACTIVE"}"#] == 1)
        #expect(values[#"rampart_cluster_member_state{cluster="cl",member="m2",state="unknown"}"#] == 1)
        #expect(!String(decoding: first, as: UTF8.self).contains("weird"), "an unexpected state is not made a label value")
        facts.gateways = [.init(name: "gw-1", state: "untrusted")]
        let second = Self.samples(metrics.render(facts, node: NodeFacts()))
        #expect(second[#"rampart_gateway_state{gateway="gw-1",state="untrusted"}"#] == 1)
        #expect(!second.keys.contains { $0.contains("gw\\\"2") }, "the removed gateway's series are gone")
    }

    @Test("backup age and last result; certificate expiry by certificate")
    func backupAndCertificates() {
        var report = Self.report(mode: "active", writes: true, servers: [])
        report.lastBackup = .init(time: "2027-01-15T08:00:00Z", result: "failed", message: "disk full")
        let expiry = Date(timeIntervalSince1970: 1_900_000_000)
        let values = Self.samples(
            NodeMetrics().render(
                MonitoringFacts(ha: report, nowMilliseconds: Self.nowMilliseconds), node: NodeFacts(certificateExpiries: ["internal-ca": expiry])))
        let time = MetricSamples.parseTime("2027-01-15T08:00:00Z")
        #expect(time != nil)
        #expect(values["rampart_backup_last_timestamp_seconds"] == time)
        #expect(values["rampart_backup_age_seconds"] == time.map { Double(Self.nowMilliseconds) / 1000 - $0 })
        #expect(values[#"rampart_backup_last_result{result="failed"}"#] == 1)
        #expect(values[#"rampart_backup_last_result{result="succeeded"}"#] == 0)
        #expect(values[#"rampart_certificate_expiry_timestamp_seconds{certificate="internal-ca"}"#] == 1_900_000_000)
    }

    @Test("counters: requests by command and status and the publish histogram through swift-metrics; installs and sync errors from events")
    func counters() {
        let metrics = NodeMetrics()
        Counter(label: ServiceMetrics.Name.apiRequests, dimensions: [("command", "publish"), ("status", "200")], factory: metrics.factory).increment()
        Timer(label: ServiceMetrics.Name.publishDuration, factory: metrics.factory).recordNanoseconds(3_000_000)
        EventCounters.count(
            .policyInstalled(PolicyInstalled(taskID: "t", policyPackage: "Standard", revision: 3, target: "gw", succeeded: false, message: "x")),
            in: metrics.registry)
        EventCounters.count(.syncStatusChanged(SyncStatusChanged(peer: "mgmt-b", status: .communicationError)), in: metrics.registry)
        EventCounters.count(.syncStatusChanged(SyncStatusChanged(peer: "mgmt-b", status: .synchronized)), in: metrics.registry)
        let text = String(decoding: metrics.registry.emitToBuffer(), as: UTF8.self)
        let values = Self.samples(Array(text.utf8))
        #expect(values[#"rampart_api_requests_total{command="publish",status="200"}"#] == 1)
        #expect(values["rampart_publish_duration_seconds_count"] == 1)
        #expect(values[#"rampart_publish_duration_seconds_bucket{le="0.005"}"#] == 1)
        #expect(values[#"rampart_publish_duration_seconds_bucket{le="0.001"}"#] == 0)
        #expect(values[#"rampart_policy_installs_total{result="failed"}"#] == 1)
        #expect(values[#"rampart_ha_sync_errors_total{peer="mgmt-b",reason="communication-error"}"#] == 1)
        #expect(!text.contains(#"reason="synchronized""#))
        #expect(text.contains("# TYPE rampart_publish_duration_seconds histogram"))
        #expect(text.contains("# HELP rampart_api_requests_total Web API commands answered"), "\(text)")
        #expect(text.contains("# HELP rampart_publish_duration_seconds Publishes committed"), "\(text)")
    }
}

/// The health endpoints' decisions, as a load balancer relies on them.
@Suite("Monitoring: health decisions")
struct HealthDecisionTests {
    typealias R = MetricRenderingTests

    @Test("active: 200 only on the active with writes enabled")
    func active() {
        #expect(HealthCheck.active.answer(R.report(mode: "active", writes: true, servers: [])).status == 200)
        #expect(HealthCheck.active.answer(R.report(mode: "active", writes: false, servers: [])).status == 503)
        #expect(HealthCheck.active.answer(R.report(mode: "standby", writes: false, servers: [])).status == 503)
        #expect(HealthCheck.active.answer(.notConfigured).status == 503)
    }

    @Test("standby: 200 on a standby, 503 on the active")
    func standby() {
        #expect(HealthCheck.standby.answer(R.report(mode: "standby", writes: false, servers: [])).status == 200)
        #expect(HealthCheck.standby.answer(R.report(mode: "active", writes: true, servers: [])).status == 503)
    }

    @Test("synchronized: a caught-up standby, or the active with writes and every standby synchronized")
    func synchronized() {
        #expect(HealthCheck.synchronized.answer(R.report(mode: "standby", writes: false, servers: [])).status == 200)
        #expect(HealthCheck.synchronized.answer(R.report(mode: "standby", writes: false, servers: [], syncStatus: "lagging")).status == 503)
        #expect(HealthCheck.synchronized.answer(R.report(mode: "active", writes: true, servers: [R.server("mgmt-b", lag: 0)])).status == 200)
        let lagging = HealthCheck.synchronized.answer(R.report(mode: "active", writes: true, servers: [R.server("mgmt-b", lag: 3, status: "lagging")]))
        #expect(lagging.status == 503)
        #expect(lagging.body["lag-revisions"] == .int(3))
        #expect(lagging.body["reason"]?.stringValue?.contains("mgmt-b") == true)
        #expect(HealthCheck.synchronized.answer(R.report(mode: "active", writes: false, servers: [])).status == 503)
    }

    @Test("the body names the role and epoch and nothing else of the server")
    func body() {
        let answer = HealthCheck.active.answer(R.report(mode: "active", writes: true, servers: []))
        #expect(answer.body["role"] == .string("active"))
        #expect(answer.body["epoch"]?["term"] == .int(3))
        #expect(answer.body["healthy"] == .bool(true))
        guard case .object(let fields) = answer.body else { return #expect(Bool(false)) }
        #expect(Set(fields.keys) == ["healthy", "reason", "role", "epoch", "writes-enabled", "sync-status", "lag-revisions"])
    }
}
