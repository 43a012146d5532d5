import Foundation
import Logging
import ManagementModel

/// With nftables enforcement: reads the per-rule counters every `intervalMilliseconds` and puts the
/// new hits of logged rules in the outbox, from where they go to every management server.
public struct HitCollection: Sendable {
    public static let intervalMilliseconds = 5_000

    let agent: GatewayAgent
    let enforcer: NftablesEnforcer
    let outbox: AgentOutbox
    let logger: Logger

    public init(agent: GatewayAgent, enforcer: NftablesEnforcer, outbox: AgentOutbox, logger: Logger) {
        self.agent = agent
        self.enforcer = enforcer
        self.outbox = outbox
        self.logger = logger
    }

    public func run() async {
        var collector = NftablesHitCollector()
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(Self.intervalMilliseconds))
            guard let policy = await agent.policy else { continue }
            do {
                let records = try await collector.collect(
                    from: enforcer, policy: policy, gatewayName: await agent.name,
                    nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
                if !records.isEmpty { try outbox.append(records) }
            } catch {
                logger.warning("could not collect rule hits from nftables", metadata: ["error": "\(error)"])
            }
        }
    }
}
