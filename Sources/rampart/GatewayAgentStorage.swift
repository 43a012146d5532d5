import Foundation
import Gateway
import Store
import ManagementModel
import TrustCore

// The agent's storage: the installed-policy file and the log outbox (Gateway's and Store's pieces).

extension InstalledPolicyStorage {
    /// DIR/installed-policy.json (`InstalledPolicyFile`: checked, then written as the bytes the server
    /// sent, by write-temp, fsync, rename).
    static func file(in directory: URL) -> InstalledPolicyStorage {
        InstalledPolicyStorage(
            load: { try InstalledPolicyFile.load(dataDirectory: directory) },
            save: { policy, bytes in try InstalledPolicyFile.save(policy, encoded: Array(bytes), dataDirectory: directory) })
    }
}

/// The agent's outbox: its own DIR/logs.sqlite, records numbered per gateway.
struct AgentOutbox: AgentLogOutbox {
    let store: LogStore
    let gateway: String

    static func open(_ directory: URL, gateway: String) throws -> AgentOutbox {
        AgentOutbox(store: try LogStore(directory: directory), gateway: gateway)
    }

    func records(after sequence: UInt64, limit: Int) throws -> [ShippedLogRecord] {
        try store.records(gateway: gateway, after: sequence, limit: limit).map { ShippedLogRecord(sequence: $0.sequence, record: $0.record) }
    }

    func append(_ records: [PolicyLogRecord]) throws {
        try store.appendLocal(records, gateway: gateway, nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
    }
}
