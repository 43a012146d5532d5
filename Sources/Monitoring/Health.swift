import ManagementModel
import ManagementService

/// The health endpoints for load balancers, in Patroni's manner: 200 when the server is what the
/// endpoint asks, 503 otherwise, with a small JSON reason (role, epoch, writes, lag; nothing secret).
public enum HealthCheck: String, Sendable, CaseIterable {
    /// The active server with writes enabled: where changes go.
    case active
    /// A standby (it refuses changes, serves reads).
    case standby
    /// A standby that holds every revision the active reported; or the active with writes enabled
    /// and every standby holding all its revisions (an active alone is synchronized).
    case synchronized

    public struct Answer: Sendable, Equatable {
        public let status: Int
        public let body: JSONValue
    }

    public func answer(_ report: HAStatusReport) -> Answer {
        guard let mode = report.mode else { return Answer(status: 503, body: ["healthy": .bool(false), "reason": "HA is not running on this server"]) }
        let (healthy, reason) = decide(report, mode: mode)
        var body: [String: JSONValue] = [
            "healthy": .bool(healthy), "reason": .string(reason), "role": .string(mode),
            "writes-enabled": .bool(report.writesEnabled == true), "sync-status": .string(report.syncStatus ?? "unknown"),
        ]
        if let epoch = report.epoch { body["epoch"] = ["term": .int(epoch.term), "server": .string(epoch.server)] }
        if let lag = Self.lagRevisions(report) { body["lag-revisions"] = .int(lag) }
        return Answer(status: healthy ? 200 : 503, body: .object(body))
    }

    func decide(_ report: HAStatusReport, mode: String) -> (Bool, String) {
        let writes = report.writesEnabled == true
        switch self {
        case .active:
            if mode != "active" { return (false, "this server is a standby; the active is \(report.activeServer ?? "unknown")") }
            return writes ? (true, "active with writes enabled") : (false, "active but not taking writes: \(report.writesRefusal ?? "writes are off")")
        case .standby:
            return mode == "standby" ? (true, "standby") : (false, "this server is the active")
        case .synchronized:
            if mode == "standby" {
                return report.syncStatus == "synchronized"
                    ? (true, "standby holding every revision of the active")
                    : (false, "standby not synchronized: \(report.syncStatus ?? "unknown")")
            }
            guard writes else { return (false, "active but not taking writes") }
            let behind = report.servers.filter { $0.syncStatus != "synchronized" }.map(\.name)
            return behind.isEmpty ? (true, "active, every standby synchronized") : (false, "standbys not synchronized: \(behind.joined(separator: ", "))")
        }
    }

    /// A standby: its own lag; the active: the largest of its standbys' (nil when unknown).
    static func lagRevisions(_ report: HAStatusReport) -> Int64? {
        if report.mode == "standby" { return report.lagRevisions ?? nil }
        return report.servers.compactMap(\.lagRevisions).max() ?? (report.servers.isEmpty ? 0 : nil)
    }
}
