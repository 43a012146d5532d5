import Foundation
import ManagementModel
import Store

/// The agent's log outbox: its own DIR/logs.sqlite, records numbered per gateway. The hit collector
/// and test-packet append; each management channel reads from its own server's cursor.
public struct AgentOutbox: Sendable {
    let store: LogStore
    let gateway: String

    public static func open(_ directory: URL, gateway: String) throws -> AgentOutbox {
        AgentOutbox(store: try LogStore(directory: directory), gateway: gateway)
    }

    /// Up to `limit` records with a sequence number above `sequence`, in order (a `gw-logs` body).
    public func records(after sequence: UInt64, limit: Int) throws -> [SequencedLogRecord] {
        try store.records(gateway: gateway, after: sequence, limit: limit)
    }

    public func append(_ records: [PolicyLogRecord]) throws {
        try store.appendLocal(records, gateway: gateway, nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
    }
}
