import Foundation
import HACore
import ManagementAPI
import ManagementModel

/// Install-time identity (DESIGN.md §1): the primary created the ICA; a secondary joined it.
public enum HAServerRole: String, Sendable {
    case primary
    case secondary
}

/// The HA runtime as the Web API needs it: the write gate, publish through HA, and `show-ha-status`.
public struct HAWebAPIBridge: HAWriteCoordinator {
    let runtime: HARuntime
    let links: HAPeerLinks
    let serverRole: HAServerRole
    /// Where the active can be reached, as this server knows it (a standby: the address it joined).
    let activeAddress: @Sendable (ServerID) -> String?
    /// This server's trust, clock and versions, as a promotion needs them (see `PromotionCheck`).
    let promotionChecks: @Sendable () -> [PromotionCheck]

    public init(runtime: HARuntime, links: HAPeerLinks, serverRole: HAServerRole, activeAddress: @escaping @Sendable (ServerID) -> String?,
                promotionChecks: @escaping @Sendable () -> [PromotionCheck] = { [] }) {
        self.runtime = runtime
        self.links = links
        self.serverRole = serverRole
        self.activeAddress = activeAddress
        self.promotionChecks = promotionChecks
    }

    public func commit(_ revision: Revision, payload: [UInt8], _ append: () throws -> Void) throws -> Bool {
        do {
            return try runtime.commit(revision, payload: payload, append)
        } catch let refused as HAWriteRefused {
            throw ManagementError.noPermissions(refusalMessage(refused.message))
        } catch let failure as HARuntimeError {
            throw ManagementError.internalError("\(failure) (\(failure.code)); the publish is not confirmed")
        }
    }

    public var writeEpoch: RevisionEpoch? {
        let epoch = runtime.epochAndRole.epoch
        return RevisionEpoch(term: epoch.term, server: epoch.server.name)
    }

    public func awaitReplication(revision number: UInt64) async -> ReplicationOutcome {
        await runtime.awaitReplication(revision: number)
    }

    public func haCommand(_ command: String, _ params: [String: JSONValue]) async throws -> JSONValue {
        try await HAAdminCommands(runtime: runtime, links: links, activeAddress: activeAddress, promotionChecks: promotionChecks).run(command, params)
    }

    public var writeRefusal: String? { runtime.writeRefusal.map(refusalMessage) }
    public var isStandby: Bool { runtime.epochAndRole.role == .standby }

    func refusalMessage(_ reason: String) -> String {
        let active = runtime.status.activeServer
        let address = activeAddress(active).map { " at \($0)" } ?? ""
        return "This server is not taking changes: \(reason). Make changes on the active server \(active)\(address)."
    }

    public func showHAStatus() -> JSONValue { HAStatusReport(runtime.snapshot, serverRole: serverRole, links: links, activeAddress: activeAddress).json }
}

/// `show-ha-status` and `rampart ha status`: Check Point's shape (CHECKPOINT-API.md §3.6) with Rampart's
/// fields beside it. `problems` lists what is wrong; empty means healthy (`ha status` exits 0).
public struct HAStatusReport: Sendable {
    public let json: JSONValue
    public let problems: [String]

    public init(_ snapshot: HARuntimeSnapshot, serverRole: HAServerRole, links: HAPeerLinks, activeAddress: @Sendable (ServerID) -> String?) {
        let status = snapshot.core
        var problems: [String] = []
        if snapshot.halted { problems.append("HA halted: \(snapshot.lastError ?? "unknown")") }
        if status.role == .active, !snapshot.writesEnabled { problems.append("active but not taking writes") }
        var servers: [JSONValue] = []
        for peer in status.peers {
            let synchronized = peer.status == .synchronized
            if status.role == .active, !synchronized { problems.append("\(peer.serverID): \(peer.status)") }
            servers.append(.object([
                "name": .string(peer.serverID.name),
                "ip-address": .string(activeAddress(peer.serverID) ?? ""),
                "ha-state": .string(peer.serverID == status.activeServer ? "active" : "standby"),
                "sync-state": .string(synchronized ? "Ok" : (peer.status == .communicationError ? "Communication Error" : "Sync Error")),
                "rampart-sync-status": .string(peer.status.kind),
                "rampart-sync-detail": .string(peer.status.description),
                "known-head": .int(Int64(peer.knownHead.number)),
                "lag-revisions": .int(Int64(status.head.number >= peer.knownHead.number ? status.head.number - peer.knownHead.number : 0)),
                "lag-seconds": .int(Self.lagSeconds(peer.status)),
                "connected": .bool(links.isConnected(peer.serverID)),
                "last-contact-ms-ago": peer.lastContactMillisecondsAgo.map { .int(Int64($0)) } ?? .null,
            ]))
        }
        if status.role == .standby, status.link != "delta" { problems.append("standby link is \(status.link)") }
        let synced = problems.isEmpty
        var fields: [String: JSONValue] = [
            "uid": Renderer.defaultDomain["uid"] ?? "", "name": "SMC User", "domain-type": "domain",
            "servers": .array(servers), "successfully-synced": .bool(synced),
            "this-server": .string(status.serverID.name),
            "role": .string(serverRole.rawValue),
            "mode": .string(status.role.rawValue),
            "active-server": .string(status.activeServer.name),
            "epoch": .object(["term": .int(Int64(status.epoch.term)), "server": .string(status.epoch.server.name)]),
            "head": .object(["number": .int(Int64(status.head.number)), "hash": .string(status.head.hash)]),
            "durable-head": .int(Int64(status.durableHead.number)),
            "writes-enabled": .bool(snapshot.writesEnabled),
            "replication-mode": .string("\(status.replicationMode)"),
            "sync-status": .string(status.role == .standby ? (status.link == "delta" ? "synchronized" : status.link) : (synced ? "synchronized" : "degraded")),
            "problems": .array(problems.map(JSONValue.string)),
        ]
        if let error = snapshot.lastError { fields["last-error"] = .string(error) }
        if let at = snapshot.lastErrorAt { fields["last-error-at"] = Renderer.timestamp(Int64(at.timeIntervalSince1970 * 1000)) }
        if let at = snapshot.lastAppliedAt { fields["last-successful-sync"] = Renderer.timestamp(Int64(at.timeIntervalSince1970 * 1000)) }
        if let number = snapshot.lastAppliedRevision, let at = snapshot.lastAppliedMonotonicNanoseconds {
            fields["rampart-last-applied"] = ["revision": .int(Int64(number)), "monotonic-ns": .int(Int64(at))]
        }
        json = .object(fields)
        self.problems = problems
    }

    static func lagSeconds(_ status: PeerSyncStatus) -> Int64 {
        if case .lagging(_, let milliseconds) = status { return Int64(milliseconds / 1000) }
        return 0
    }
}
