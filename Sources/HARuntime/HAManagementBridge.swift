import Foundation
import HACore
import ManagementModel
import ManagementService

/// Install-time identity (DESIGN.md §1): the primary created the ICA; a secondary joined it.
public enum HAServerRole: String, Sendable {
    case primary
    case secondary
}

/// The HA runtime as the management service drives it (its `HAPort`): the write gate, publish through
/// HA, `show-ha-status`, and the HA commands (HAAdminCommands.swift).
public struct HAManagementBridge: HAPort {
    let runtime: HARuntime
    let links: HAPeerLinks
    let serverRole: HAServerRole
    /// Where the active can be reached, as this server knows it (a standby: the address it joined).
    let activeAddress: @Sendable (ServerID) -> String?
    /// This server's trust, clock and versions, as a promotion needs them (see `PromotionCheck`).
    let promotionChecks: @Sendable () -> [PromotionCheck]
    /// A server's address as its checkpoint-host object records it (`show-ha-status`'s `ip-address`).
    let peerIPAddress: @Sendable (ServerID) -> String?
    /// Peers' clocks and modes (from their `ha-clock` messages).
    let facts: PeerFacts

    public init(
        runtime: HARuntime, links: HAPeerLinks, serverRole: HAServerRole, activeAddress: @escaping @Sendable (ServerID) -> String?,
        peerIPAddress: @escaping @Sendable (ServerID) -> String? = { _ in nil },
        promotionChecks: @escaping @Sendable () -> [PromotionCheck] = { [] }, facts: PeerFacts = PeerFacts()
    ) {
        self.facts = facts
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
            throw HACommitError.notTakingWrites(refusalMessage(refused.message))
        } catch let failure as HARuntimeError {
            throw HACommitError.notDurable("\(failure) (\(failure.code)); the publish is not confirmed")
        }
    }

    public var writeEpoch: RevisionEpoch? {
        let epoch = runtime.epochAndRole.epoch
        return RevisionEpoch(term: epoch.term, server: epoch.server.name)
    }

    public func awaitReplication(revision number: UInt64) async -> ReplicationOutcome {
        await runtime.awaitReplication(revision: number)
    }

    public var writeRefusal: String? { runtime.writeRefusal.map(refusalMessage) }
    public var isStandby: Bool { runtime.epochAndRole.role == .standby }

    func refusalMessage(_ reason: String) -> String {
        let active = runtime.status.activeServer
        let address = activeAddress(active).map { " at \($0)" } ?? ""
        return "This server is not taking changes: \(reason). Make changes on the active server \(active)\(address)."
    }

    public func statusReport() -> HAStatusReport {
        HAStatusReport(runtime.snapshot, serverRole: serverRole, links: links, ipAddress: peerIPAddress, facts: facts)
    }
}

/// The bridge's name while it served the Web API's JSON; the composition root still uses it.
public typealias HAWebAPIBridge = HAManagementBridge

extension HAStatusReport {
    /// The report of `snapshot`. `ipAddress` is a server's address as its checkpoint-host object records it.
    public init(
        _ snapshot: HARuntimeSnapshot, serverRole: HAServerRole, links: HAPeerLinks,
        ipAddress: @Sendable (ServerID) -> String?, facts: PeerFacts = PeerFacts(), now: Date = Date()
    ) {
        let status = snapshot.core
        var problems: [String] = []
        if snapshot.halted { problems.append("HA halted: \(snapshot.lastError ?? "unknown")") }
        if status.role == .active, !snapshot.writesEnabled {
            problems.append("active but not taking writes: \(status.writesRefusal ?? "writes are off")")
        }
        var servers: [Server] = []
        for peer in status.peers {
            let synchronized = peer.status == .synchronized
            // A channel cut by revocation, or refused for its certificate: the core sees silence, the
            // links know why (DESIGN.md's trust-error).
            let trust = links.isConnected(peer.serverID) ? nil : links.trustProblem(peer.serverID)
            if let trust {
                problems.append(
                    "\(peer.serverID): trust-error: \(trust) (`rampart sic status`; `rampart sic reset \(peer.serverID)` gives it a new one-time key)")
            } else if status.role == .active, !synchronized {
                problems.append(Self.problem(standby: peer))
            }
            var server =
                Server(
                    name: peer.serverID.name, ipAddress: ipAddress(peer.serverID) ?? "",
                    haState: peer.serverID == status.activeServer ? "active" : "standby",
                    syncState: synchronized ? "Ok" : (peer.status == .communicationError ? "Communication Error" : "Sync Error"),
                    syncStatus: trust == nil ? peer.status.kind : "trust-error",
                    syncDetail: trust.map { "trust-error: \($0)" } ?? peer.status.description,
                    knownHead: Int64(clamping: peer.knownHead.number), lagRevisions: peer.lagRevisions.map { Int64(clamping: $0) },
                    lagSeconds: Self.lagSeconds(peer.status), connected: links.isConnected(peer.serverID),
                    lastContactMillisecondsAgo: peer.lastContactMillisecondsAgo.map { Int64(clamping: $0) },
                    lastSuccessfulSync: peer.synchronizedMillisecondsAgo.map { Self.timestamp(now, minus: $0) })
            server.addClock(facts, name: peer.serverID.name)
            servers.append(server)
        }
        // A standby that has not heard of any active yet (a secondary joining) is never synchronized.
        let own =
            status.role == .standby
            ? status.activePeer ?? PeerView(serverID: status.activeServer, status: .neverSynchronized, knownHead: .empty)
            : nil
        if let own, own.status != .synchronized { problems.append(Self.problem(ownLink: own, active: status.activeServer)) }
        let synced = problems.isEmpty
        self.init(servers: servers, successfullySynced: synced)
        thisServer = status.serverID.name
        role = serverRole.rawValue
        mode = status.role.rawValue
        modeSince = Timestamp(milliseconds: Int64(snapshot.modeSince.timeIntervalSince1970 * 1000))
        activeServer = status.activeServer.name
        epoch = EpochText(term: Int64(clamping: status.epoch.term), server: status.epoch.server.name)
        head = Head(number: Int64(clamping: status.head.number), hash: status.head.hash)
        durableHead = Int64(clamping: status.durableHead.number)
        writesEnabled = snapshot.writesEnabled
        writesRefusal = status.writesRefusal
        replicationMode = "\(status.replicationMode)"
        syncStatus = own?.status.kind ?? (synced ? "synchronized" : "degraded")
        if let own { lagRevisions = .some(own.lagRevisions.map { Int64(clamping: $0) }) }
        self.problems = problems
        clockThresholds = facts.thresholds
        lastError = snapshot.lastError
        lastErrorAt = snapshot.lastErrorAt.map { Timestamp(milliseconds: Int64($0.timeIntervalSince1970 * 1000)) }
        lastSuccessfulSync = snapshot.lastAppliedAt.map { Timestamp(milliseconds: Int64($0.timeIntervalSince1970 * 1000)) }
        if let number = snapshot.lastAppliedRevision, let at = snapshot.lastAppliedMonotonicNanoseconds {
            lastApplied = LastApplied(revision: Int64(clamping: number), monotonicNanoseconds: Int64(clamping: at))
        }
    }

    /// What is wrong with a standby, seen from the active, and what to do about it.
    static func problem(standby peer: PeerView) -> String {
        let name = peer.serverID.name
        switch peer.status {
        case .haStopped: return "\(name): HA is stopped there (run `rampart ha start` on \(name))"
        case .collision(let divergent):
            return
                "\(name): collision, it holds \(divergent) revision(s) we lack; on \(name): `rampart ha export-divergent FILE`, then `rampart ha resolve-collision --keep peer` (or --keep local)"
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
            return
                "collision: \(divergent) revision(s) here are not in the journal of the active \(active); export them with `rampart ha export-divergent FILE`, then `rampart ha resolve-collision --keep peer` (take \(active)'s data) or `--keep local` (keep ours, in a new epoch)"
        case .fullSync(let applied, let count): return "full sync from \(active) in progress (\(applied)/\(count) chunks)"
        case .communicationError: return "no contact with the active \(active) (check that it runs, and `rampart sic status`); \(behind)"
        case .neverSynchronized: return "never synchronized with the active \(active) yet"
        default: return "\(peer.status.description) behind the active \(active)"
        }
    }

    static func timestamp(_ now: Date, minus milliseconds: UInt64) -> Timestamp {
        Timestamp(milliseconds: Int64(now.timeIntervalSince1970 * 1000) - Int64(clamping: milliseconds))
    }

    static func lagSeconds(_ status: PeerSyncStatus) -> Int64 {
        if case .lagging(_, let milliseconds) = status { return Int64(milliseconds / 1000) }
        return 0
    }
}

extension HAStatusReport.Server {
    /// The peer's clock as measured, and its mode's start as it told us.
    mutating func addClock(_ facts: PeerFacts, name: String) {
        if let clock = facts.clockMeasurement(of: name) {
            clockOffsetMilliseconds = clock.offsetMilliseconds
            clockDelayMilliseconds = clock.delayMilliseconds
            clockMeasuredAt = HAStatusReport.Timestamp(milliseconds: clock.measuredAtMilliseconds)
            clockLevel = clock.level.rawValue
        }
        modeSince = facts.mode(of: name).map { HAStatusReport.Timestamp(milliseconds: $0.sinceMilliseconds) }
    }
}
