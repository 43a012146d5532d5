import Foundation
import ManagementModel
import ManagementService
import Prometheus

/// The metric families of `/metrics` (Prometheus style: `rampart_` prefix, the unit last, counters end
/// in `_total`, identity in labels). README.md "Monitoring" lists them.
public enum MetricNames {
    public static let haRole = "rampart_ha_role"
    public static let haEpoch = "rampart_ha_epoch"
    public static let haWritesEnabled = "rampart_ha_writes_enabled"
    public static let haCollision = "rampart_ha_collision"
    public static let peerConnected = "rampart_ha_peer_connected"
    public static let peerLagRevisions = "rampart_ha_peer_lag_revisions"
    public static let peerLagSeconds = "rampart_ha_peer_lag_seconds"
    public static let peerLastSync = "rampart_ha_peer_last_sync_timestamp_seconds"
    public static let syncErrors = "rampart_ha_sync_errors_total"
    public static let sessions = "rampart_sessions"
    public static let locks = "rampart_locked_objects"
    public static let gatewayState = "rampart_gateway_state"
    public static let clusterMemberState = "rampart_cluster_member_state"
    public static let policyInstalls = "rampart_policy_installs_total"
    public static let backupLastTimestamp = "rampart_backup_last_timestamp_seconds"
    public static let backupAge = "rampart_backup_age_seconds"
    public static let backupLastResult = "rampart_backup_last_result"
    public static let certificateExpiry = "rampart_certificate_expiry_timestamp_seconds"
    public static let peerClockOffset = "rampart_peer_clock_offset_seconds"

    /// A family's name and help as the registry takes them (the name is whole: no unit to append).
    static func descriptor(_ name: String, help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help)
    }

    public static let roles = ["active", "standby"]
    public static let gatewayStates = ["ok", "untrusted", "not-responding"]
    public static let backupResults = ["succeeded", "failed"]
    public static let publishDurationBuckets: [Duration] = [
        .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2_500), .seconds(5), .seconds(10),
    ]
}

/// The scrape-time gauges from the service's and the node's facts: pure, so tests check them directly.
public enum MetricSamples {
    typealias Label = GaugeSample.Label

    public static func gauges(_ facts: MonitoringFacts, node: NodeFacts) -> [GaugeSample] {
        ha(facts) + peers(facts) + service(facts) + backup(facts) + nodeGauges(node)
    }

    static func ha(_ facts: MonitoringFacts) -> [GaugeSample] {
        let report = facts.ha
        guard let mode = report.mode else { return [] }
        var samples = MetricNames.roles.map { role in
            GaugeSample(
                MetricNames.haRole, [Label("role", role)], mode == role ? 1 : 0,
                help: "This server's HA mode, one-hot: 1 for the mode it is in (active or standby).")
        }
        samples.append(GaugeSample(MetricNames.haEpoch, [], Double(report.epoch?.term ?? 0), help: "The term of this server's HA epoch."))
        samples.append(
            GaugeSample(
                MetricNames.haWritesEnabled, [], report.writesEnabled == true ? 1 : 0, help: "1 while this server takes writes (publishes)."))
        let collision = report.syncStatus == "collision" || report.servers.contains { $0.syncStatus == "collision" }
        samples.append(
            GaugeSample(
                MetricNames.haCollision, [], collision ? 1 : 0,
                help: "1 while this server and a peer hold divergent revisions (resolve with rampart ha resolve-collision)."))
        return samples
    }

    /// Per peer. The lag in seconds is now minus the commit time of the oldest revision the peer lacks
    /// (0 when it lacks none: an idle active raises no false alarm); where that revision is not held
    /// here (a standby's view of the active) it is the time since the peer was last synchronized.
    static func peers(_ facts: MonitoringFacts) -> [GaugeSample] {
        var samples: [GaugeSample] = []
        for server in facts.ha.servers {
            let peer = [Label("peer", server.name)]
            samples.append(
                GaugeSample(MetricNames.peerConnected, peer, server.connected ? 1 : 0, help: "1 while this server's HA channel to the peer is up."))
            if let lag = server.lagRevisions {
                samples.append(
                    GaugeSample(MetricNames.peerLagRevisions, peer, Double(lag), help: "Revisions the peer lacks (or this server lacks of the active)."))
            }
            samples.append(
                GaugeSample(
                    MetricNames.peerLagSeconds, peer, lagSeconds(server, facts),
                    help: "Seconds since the oldest revision the peer lacks was committed; 0 when it lacks none."))
            if let last = server.lastSuccessfulSync {
                samples.append(
                    GaugeSample(
                        MetricNames.peerLastSync, peer, Double(last.posix) / 1000,
                        help: "When the peer was last synchronized (seconds since 1970)."))
            }
        }
        return samples
    }

    static func lagSeconds(_ server: HAStatusReport.Server, _ facts: MonitoringFacts) -> Double {
        guard let lag = server.lagRevisions, lag > 0 else { return server.lagRevisions == nil ? Double(server.lagSeconds) : 0 }
        guard let committed = facts.oldestLackingCommitMilliseconds[server.name] else { return Double(server.lagSeconds) }
        return max(0, Double(facts.nowMilliseconds.subtractingReportingOverflow(committed).partialValue) / 1000)
    }

    static func service(_ facts: MonitoringFacts) -> [GaugeSample] {
        var samples = [
            GaugeSample(MetricNames.sessions, [], Double(facts.sessions), help: "Open Web API sessions."),
            GaugeSample(MetricNames.locks, [], Double(facts.locks), help: "Objects locked by a session's unpublished changes."),
        ]
        for gateway in facts.gateways {
            let states = MetricNames.gatewayStates.contains(gateway.state) ? MetricNames.gatewayStates : MetricNames.gatewayStates + [gateway.state]
            samples += states.map { state in
                GaugeSample(
                    MetricNames.gatewayState, [Label("gateway", gateway.name), Label("state", state)], gateway.state == state ? 1 : 0,
                    help: "Each gateway's SIC state, one-hot (ok, untrusted, not-responding).")
            }
        }
        for member in facts.clusterMembers {
            let known = ClusterMemberReport.states
            let states = known.contains(member.state) ? known : known + ["unknown"]
            samples += states.map { state in
                GaugeSample(
                    MetricNames.clusterMemberState, [Label("cluster", member.cluster), Label("member", member.member), Label("state", state)],
                    (known.contains(member.state) ? member.state : "unknown") == state ? 1 : 0,
                    help: "Each cluster member's state as its agent reported it, one-hot.")
            }
        }
        return samples
    }

    static func backup(_ facts: MonitoringFacts) -> [GaugeSample] {
        guard let backup = facts.ha.lastBackup, let result = backup.result, MetricNames.backupResults.contains(result) else { return [] }
        var samples = MetricNames.backupResults.map { candidate in
            GaugeSample(
                MetricNames.backupLastResult, [Label("result", candidate)], candidate == result ? 1 : 0,
                help: "The result of this node's last backup, one-hot (succeeded or failed).")
        }
        if let time = backup.time.flatMap(parseTime) {
            samples.append(GaugeSample(MetricNames.backupLastTimestamp, [], time, help: "When this node's last backup ran (seconds since 1970)."))
            samples.append(
                GaugeSample(
                    MetricNames.backupAge, [], max(0, Double(facts.nowMilliseconds) / 1000 - time), help: "Seconds since this node's last backup ran."))
        }
        return samples
    }

    static func nodeGauges(_ node: NodeFacts) -> [GaugeSample] {
        let offsets = node.clockOffsetsMilliseconds.sorted { $0.key < $1.key }.map { peer, milliseconds in
            GaugeSample(
                MetricNames.peerClockOffset, [Label("peer", peer)], Double(milliseconds) / 1000,
                help: "The peer's clock minus ours, measured over the HA heartbeats (positive: the peer is ahead).")
        }
        let expiries = node.certificateExpiries.sorted { $0.key < $1.key }.map { certificate, date in
            GaugeSample(
                MetricNames.certificateExpiry, [Label("certificate", certificate)], date.timeIntervalSince1970,
                help: "When each certificate this server relies on expires (seconds since 1970).")
        }
        return offsets + expiries
    }

    /// An ISO 8601 time as the backup status writes it, with or without fractional seconds.
    static func parseTime(_ text: String) -> Double? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date.timeIntervalSince1970 }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)?.timeIntervalSince1970
    }
}
