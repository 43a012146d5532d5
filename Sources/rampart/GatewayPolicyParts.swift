import Foundation
import Gateway
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

enum AgentOutbox {
    static func open(_ directory: URL) throws -> (any AgentLogSource)? { nil }
}

enum ServerLogDatabase {
    static func open(_ directory: URL) throws -> (any GatewayLogSink)? { nil }
}
