import Foundation
import ManagementModel
import Store

/// What `/metrics` and the health endpoints read from the service at scrape time: one actor hop,
/// nothing secret (names and states, never a password, session id or key).
public struct MonitoringFacts: Sendable {
    /// `show-ha-status` with this node's last backup.
    public var ha: HAStatusReport
    public var sessions: Int
    /// Objects locked by a session's unpublished changes.
    public var locks: Int
    /// Each gateway and cluster member: its SIC state as `show-gateways-and-servers` names it
    /// (ok, untrusted, not-responding).
    public var gateways: [Gateway]
    /// Each cluster member that reported a cluster state.
    public var clusterMembers: [ClusterMember]
    /// On the active, per standby that lacks revisions: when the oldest revision it lacks was committed
    /// here (milliseconds since 1970). The lag in seconds is measured from it.
    public var oldestLackingCommitMilliseconds: [String: Int64]
    public var nowMilliseconds: Int64

    public struct Gateway: Codable, Sendable, Equatable {
        public var name: String
        public var state: String
        public init(name: String, state: String) {
            self.name = name
            self.state = state
        }
    }

    public struct ClusterMember: Codable, Sendable, Equatable {
        public var cluster: String
        public var member: String
        public var state: String
        public init(cluster: String, member: String, state: String) {
            self.cluster = cluster
            self.member = member
            self.state = state
        }
    }

    public init(
        ha: HAStatusReport, sessions: Int = 0, locks: Int = 0, gateways: [Gateway] = [], clusterMembers: [ClusterMember] = [],
        oldestLackingCommitMilliseconds: [String: Int64] = [:], nowMilliseconds: Int64
    ) {
        self.ha = ha
        self.sessions = sessions
        self.locks = locks
        self.gateways = gateways
        self.clusterMembers = clusterMembers
        self.oldestLackingCommitMilliseconds = oldestLackingCommitMilliseconds
        self.nowMilliseconds = nowMilliseconds
    }
}

enum MonitoringLimits {
    /// Gateways, clusters and members listed in one scrape at most (the labels stay bounded).
    static let gatewaysMax = 1_000
}

extension ManagementService {
    /// The figures of one scrape (see `MonitoringFacts`).
    public func monitoringFacts() -> MonitoringFacts {
        var report = ha?.statusReport() ?? .notConfigured
        report.lastBackup = lastBackup()
        let nodes = (try? store.objects(types: ObjectType.gatewayNodes, offset: 0, limit: MonitoringLimits.gatewaysMax, nameFilter: nil).objects) ?? []
        let gateways = nodes.map { node in
            MonitoringFacts.Gateway(name: node.name, state: gatewayStatusFields(node)["gateway-status"]?["state"]?.stringValue ?? "unknown")
        }
        return MonitoringFacts(
            ha: report, sessions: sessions.count, locks: lockOwner.count, gateways: gateways, clusterMembers: clusterMemberStates(),
            oldestLackingCommitMilliseconds: oldestLackingCommits(report), nowMilliseconds: now)
    }

    func clusterMemberStates() -> [MonitoringFacts.ClusterMember] {
        let clusters = (try? store.objects(types: [.simpleCluster], offset: 0, limit: MonitoringLimits.gatewaysMax, nameFilter: nil).objects) ?? []
        let renderer = Renderer(reader: store.reader)
        var members: [MonitoringFacts.ClusterMember] = []
        for cluster in clusters {
            for member in renderer.clusterMembers(of: cluster) {
                guard let state = gateways?.status(ofGateway: member.uid)?.report?.cluster?.state else { continue }
                members.append(MonitoringFacts.ClusterMember(cluster: cluster.name, member: member.name, state: state))
            }
        }
        return members
    }

    /// On the active: for each standby `lag` revisions behind, the commit time of revision head - lag + 1.
    func oldestLackingCommits(_ report: HAStatusReport) -> [String: Int64] {
        guard report.mode == "active", let head = report.head?.number else { return [:] }
        var times: [String: Int64] = [:]
        for server in report.servers {
            guard let lag = server.lagRevisions, lag > 0, lag <= head else { continue }
            let oldest = UInt64(head - lag + 1)
            if let revision = try? store.revisions(from: oldest, limit: 1).first, revision.number == oldest {
                times[server.name] = revision.publishedAtMilliseconds
            }
        }
        return times
    }

    /// On the active: per standby, the bytes of the revisions it lacks (the stored size of each, from
    /// the oldest it lacks to the head); 0 when caught up. Empty on a standby: only the active knows.
    func pendingBytes(_ report: HAStatusReport) -> [String: Int64] {
        guard report.mode == "active", let head = report.head?.number else { return [:] }
        var pending: [String: Int64] = [:]
        for server in report.servers {
            guard let lag = server.lagRevisions, lag >= 0, lag <= head else { continue }
            pending[server.name] = lag == 0 ? 0 : (try? store.revisionBytes(from: UInt64(head - lag + 1))) ?? 0
        }
        return pending
    }
}

extension ManagementService {
    /// `show-ha-status` as the health endpoints read it.
    public func haStatusReport() -> HAStatusReport { ha?.statusReport() ?? .notConfigured }
}
