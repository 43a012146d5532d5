import Foundation
import Gateway
import Store
import ManagementModel
import TrustCore

// The policy helper's pieces, as the agent and the server use them: installed-policy file, log
// databases, nftables enforcer. Replaced by their implementations when merged.

extension InstalledPolicyStorage {
    /// DIR/installed-policy.json, replaced by write-temp, fsync, rename.
    static func file(in directory: URL) -> InstalledPolicyStorage {
        let url = directory.appendingPathComponent("installed-policy.json")
        return InstalledPolicyStorage(
            load: {
                guard let data = FileManager.default.contents(atPath: url.path) else { return nil }
                return try JSONDecoder().decode(CompiledPolicy.self, from: data)
            },
            save: { _, bytes in try DurableFile.write(Array(bytes), to: url, mode: 0o600) })
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
