import Foundation
import HACore
import ManagementService
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
    /// A server's address as its checkpoint-host object records it (`show-ha-status`'s `ip-address`).
    let peerIPAddress: @Sendable (ServerID) -> String?

    public init(runtime: HARuntime, links: HAPeerLinks, serverRole: HAServerRole, activeAddress: @escaping @Sendable (ServerID) -> String?,
                peerIPAddress: @escaping @Sendable (ServerID) -> String? = { _ in nil },
                promotionChecks: @escaping @Sendable () -> [PromotionCheck] = { [] }) {
        self.runtime = runtime
        self.links = links
        self.serverRole = serverRole
        self.activeAddress = activeAddress
        self.peerIPAddress = peerIPAddress
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

    public func showHAStatus() -> JSONValue { HAStatusReport(runtime.snapshot, serverRole: serverRole, links: links, ipAddress: peerIPAddress).json }
}

/// `show-ha-status` and `rampart ha status`: Check Point's shape (CHECKPOINT-API.md §3.6) with Rampart's
/// fields beside it. `problems` lists what is wrong, each with what to do; empty means healthy
/// (`ha status` exits 0).
public struct HAStatusReport: Sendable {
    public let json: JSONValue
    public let problems: [String]

    /// `ipAddress` is a server's address as its checkpoint-host object records it.
    public init(_ snapshot: HARuntimeSnapshot, serverRole: HAServerRole, links: HAPeerLinks,
                ipAddress: @Sendable (ServerID) -> String?, now: Date = Date()) {
        let status = snapshot.core
        var problems: [String] = []
        if snapshot.halted { problems.append("HA halted: \(snapshot.lastError ?? "unknown")") }
        if status.role == .active, !snapshot.writesEnabled {
            problems.append("active but not taking writes: \(status.writesRefusal ?? "writes are off")")
        }
        var servers: [JSONValue] = []
        for peer in status.peers {
            let synchronized = peer.status == .synchronized
            // A channel cut by revocation, or refused for its certificate: the core sees silence, the
            // links know why (DESIGN.md's trust-error).
            let trust = links.isConnected(peer.serverID) ? nil : links.trustProblem(peer.serverID)
            if let trust {
                problems.append("\(peer.serverID): trust-error: \(trust) (`rampart sic status`; `rampart sic reset \(peer.serverID)` gives it a new one-time key)")
            } else if status.role == .active, !synchronized {
                problems.append(Self.problem(standby: peer))
            }
            var fields: [String: JSONValue] = [
                "name": .string(peer.serverID.name),
                "ip-address": .string(ipAddress(peer.serverID) ?? ""),
                "ha-state": .string(peer.serverID == status.activeServer ? "active" : "standby"),
                "sync-state": .string(synchronized ? "Ok" : (peer.status == .communicationError ? "Communication Error" : "Sync Error")),
                "rampart-sync-status": .string(trust == nil ? peer.status.kind : "trust-error"),
                "rampart-sync-detail": .string(trust.map { "trust-error: \($0)" } ?? peer.status.description),
                "known-head": .int(Int64(peer.knownHead.number)),
                "lag-revisions": peer.lagRevisions.map { .int(Int64(clamping: $0)) } ?? .null,
                "lag-seconds": .int(Self.lagSeconds(peer.status)),
                "connected": .bool(links.isConnected(peer.serverID)),
                "last-contact-ms-ago": peer.lastContactMillisecondsAgo.map { .int(Int64(clamping: $0)) } ?? .null,
            ]
            if let ago = peer.synchronizedMillisecondsAgo { fields["last-successful-sync"] = Self.timestamp(now, minus: ago) }
            servers.append(.object(fields))
        }
        // A standby that has not heard of any active yet (a secondary joining) is never synchronized.
        let own = status.role == .standby
            ? status.activePeer ?? PeerView(serverID: status.activeServer, status: .neverSynchronized, knownHead: .empty)
            : nil
        if let own, own.status != .synchronized { problems.append(Self.problem(ownLink: own, active: status.activeServer)) }
        let synced = problems.isEmpty
        var fields: [String: JSONValue] = [
            "uid": Renderer.defaultDomain["uid"] ?? "", "name": "SMC User", "domain-type": "domain",
            "servers": .array(servers), "successfully-synced": .bool(synced),
            "this-server": .string(status.serverID.name),
            "role": .string(serverRole.rawValue),
            "mode": .string(status.role.rawValue),
            "active-server": .string(status.activeServer.name),
            "epoch": .object(["term": .int(Int64(clamping: status.epoch.term)), "server": .string(status.epoch.server.name)]),
            "head": .object(["number": .int(Int64(clamping: status.head.number)), "hash": .string(status.head.hash)]),
            "durable-head": .int(Int64(clamping: status.durableHead.number)),
            "writes-enabled": .bool(snapshot.writesEnabled),
            "replication-mode": .string("\(status.replicationMode)"),
            "sync-status": .string(own?.status.kind ?? (synced ? "synchronized" : "degraded")),
            "problems": .array(problems.map(JSONValue.string)),
        ]
        if let refusal = status.writesRefusal { fields["writes-refusal"] = .string(refusal) }
        if let own { fields["lag-revisions"] = own.lagRevisions.map { .int(Int64(clamping: $0)) } ?? .null }
        if let error = snapshot.lastError { fields["last-error"] = .string(error) }
        if let at = snapshot.lastErrorAt { fields["last-error-at"] = Renderer.timestamp(Int64(at.timeIntervalSince1970 * 1000)) }
        if let at = snapshot.lastAppliedAt { fields["last-successful-sync"] = Renderer.timestamp(Int64(at.timeIntervalSince1970 * 1000)) }
        if let number = snapshot.lastAppliedRevision, let at = snapshot.lastAppliedMonotonicNanoseconds {
            fields["rampart-last-applied"] = ["revision": .int(Int64(clamping: number)), "monotonic-ns": .int(Int64(clamping: at))]
        }
        json = .object(fields)
        self.problems = problems
    }

    /// What is wrong with a standby, seen from the active, and what to do about it.
    static func problem(standby peer: PeerView) -> String {
        let name = peer.serverID.name
        switch peer.status {
        case .haStopped: return "\(name): HA is stopped there (run `rampart ha start` on \(name))"
        case .collision(let divergent):
            return "\(name): collision, it holds \(divergent) revision(s) we lack; on \(name): `rampart ha export-divergent FILE`, then `rampart ha resolve-collision --keep peer` (or --keep local)"
        case .communicationError: return "\(name): communication error (check that it runs, and `rampart sic status`)"
        default: return "\(name): \(peer.status)"
        }
    }

    /// What is wrong with a standby's own synchronization with the active, and what to do about it.
    static func problem(ownLink peer: PeerView, active: ServerID) -> String {
        let behind = peer.lagRevisions.map { "\($0) revision(s) behind the last head \(active) reported" } ?? "lag unknown (never heard from \(active))"
        switch peer.status {
        case .haStopped: return "HA is stopped on this server: nothing is synchronized until `rampart ha start`; \(behind)"
        case .collision(let divergent):
            return "collision: \(divergent) revision(s) here are not in the journal of the active \(active); export them with `rampart ha export-divergent FILE`, then `rampart ha resolve-collision --keep peer` (take \(active)'s data) or `--keep local` (keep ours, in a new epoch)"
        case .fullSync(let applied, let count): return "full sync from \(active) in progress (\(applied)/\(count) chunks)"
        case .communicationError: return "no contact with the active \(active) (check that it runs, and `rampart sic status`); \(behind)"
        case .neverSynchronized: return "never synchronized with the active \(active) yet"
        default: return "\(peer.status.description) behind the active \(active)"
        }
    }

    static func timestamp(_ now: Date, minus milliseconds: UInt64) -> JSONValue {
        Renderer.timestamp(Int64(now.timeIntervalSince1970 * 1000) - Int64(clamping: milliseconds))
    }

    static func lagSeconds(_ status: PeerSyncStatus) -> Int64 {
        if case .lagging(_, let milliseconds) = status { return Int64(milliseconds / 1000) }
        return 0
    }
}
