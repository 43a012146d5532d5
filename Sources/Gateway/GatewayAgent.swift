import Foundation
import Logging
import ManagementModel
import TrustCore

/// Where the agent keeps the policy in force, durably (DIR/installed-policy.json).
/// `save` gets the policy and its JSON exactly as received (written as it is: no second serialization).
public struct InstalledPolicyStorage: Sendable {
    public let load: @Sendable () throws -> CompiledPolicy?
    public let save: @Sendable (CompiledPolicy, ArraySlice<UInt8>) throws -> Void
    /// Makes the policy in force before the last `save` the stored one again and returns it (nil:
    /// there was none, the initial policy applies).
    public let rollBack: @Sendable () throws -> CompiledPolicy?
    public init(
        load: @escaping @Sendable () throws -> CompiledPolicy?, save: @escaping @Sendable (CompiledPolicy, ArraySlice<UInt8>) throws -> Void,
        rollBack: @escaping @Sendable () throws -> CompiledPolicy? = {
            throw InstalledPolicyError.unreadable(path: "", reason: "this storage keeps no previous policy")
        }
    ) {
        self.load = load
        self.save = save
        self.rollBack = rollBack
    }
}

/// How one push ended on the agent.
public struct InstallOutcome: Sendable, Equatable {
    public enum Kind: String, Sendable { case installed, refused, failed }
    public let kind: Kind
    public let message: String
}

/// The gateway agent's state: the policy in force, the epoch fence, the management servers it
/// follows. One actor, so pushes from several servers are decided one at a time, in arrival order.
///
/// An install is acknowledged only after the fence, the policy file and the enforcer all hold it:
/// fence persisted (when raised) → policy written (write-temp, fsync, rename) → enforcer applied.
public actor GatewayAgent {
    public let directory: URL
    let enforcer: any PolicyEnforcer
    let storage: InstalledPolicyStorage
    let logger: Logger
    let clockMilliseconds: @Sendable () -> Int64
    private(set) var state: AgentState
    private var fence: EpochFence
    public private(set) var policy: CompiledPolicy?
    private var installedAtMilliseconds: Int64?
    /// The cluster runtime's member report (nil: not a cluster member, or its runtime is not running).
    private var clusterReport: ClusterMemberReport?

    public init(
        directory: URL, state: AgentState, enforcer: any PolicyEnforcer, storage: InstalledPolicyStorage, logger: Logger,
        clockMilliseconds: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.directory = directory
        self.state = state
        self.fence = EpochFence(highest: state.highestEpoch)
        self.enforcer = enforcer
        self.storage = storage
        self.logger = logger
        self.clockMilliseconds = clockMilliseconds
    }

    /// At start, before connecting: the last installed policy goes back in force, or, when none was
    /// ever installed, the initial policy (only the management channels pass).
    public func restore() async throws {
        policy = try await Self.enforceAtStart(storage: storage, enforcer: enforcer, gateway: state.name, logger: logger)
    }

    /// `restore` for a caller that must enforce before the agent exists (before its first enrolment
    /// connects anywhere): returns the stored policy now in force, nil when the initial policy is.
    public static func enforceAtStart(
        storage: InstalledPolicyStorage, enforcer: any PolicyEnforcer, gateway: String,
        logger: Logger
    ) async throws -> CompiledPolicy? {
        guard let stored = try storage.load() else {
            try await enforcer.applyInitialPolicy()
            logger.notice(
                "no installed policy yet: the initial policy is in force (only the management channels pass)",
                metadata: ["gateway": "\(gateway)", "enforcement": "\(enforcer.name)"])
            return nil
        }
        try await enforcer.apply(stored)
        logger.notice(
            "installed policy restored",
            metadata: [
                "package": "\(stored.packageName)", "revision": "\(stored.revision)",
                "epoch": "\(stored.epochTerm)/\(stored.epochServer)", "enforcement": "\(enforcer.name)",
            ])
        return stored
    }

    /// Takes the policy `enforceAtStart` put in force (without applying it again).
    public func adoptRestored(_ restored: CompiledPolicy?) {
        policy = restored
    }

    public var name: String { state.name }
    public var servers: [AgentState.Server] { state.servers }

    public var report: GatewayReport {
        GatewayReport(
            name: state.name, enforcement: enforcer.name, installedPackage: policy?.packageName, installedRevision: policy?.revision,
            installedEpoch: policy.map { RevisionEpoch(term: $0.epochTerm, server: $0.epochServer) },
            installedAtMilliseconds: installedAtMilliseconds ?? policy?.compiledAtMilliseconds,
            highestEpoch: fence.highest, lastRefusal: state.lastRefusal, cluster: clusterReport)
    }

    /// The cluster runtime's report, sent with the agent's status to its management servers.
    public func setClusterReport(_ report: ClusterMemberReport?) {
        clusterReport = report
    }

    /// One push: `body` is the CompiledPolicy JSON for this gateway.
    public func install(body: ArraySlice<UInt8>, from server: String) async -> InstallOutcome {
        let incoming: CompiledPolicy
        do {
            incoming = try PolicyDecoding.decode(body)
        } catch {
            return InstallOutcome(kind: .failed, message: "the policy does not decode: \(String("\(error)".prefix(300)))")
        }
        guard incoming.formatVersion == CompiledPolicy.currentFormatVersion else {
            return InstallOutcome(
                kind: .failed,
                message:
                    "policy format \(incoming.formatVersion) is not the format this gateway speaks (\(CompiledPolicy.currentFormatVersion)); upgrade the gateway"
            )
        }
        guard incoming.targetName == state.name else {
            return InstallOutcome(kind: .failed, message: "the policy is for \(incoming.targetName), this gateway is \(state.name)")
        }
        let epoch = RevisionEpoch(term: incoming.epochTerm, server: incoming.epochServer)
        var fenceAfter = fence
        switch fenceAfter.admit(epoch) {
        case .refuse(let reason):
            logger.warning("policy push refused", metadata: ["from": "\(server)", "reason": "\(reason)"])
            recordRefusal(reason)
            return InstallOutcome(kind: .refused, message: reason)
        case .accept(let raised):
            do {
                if raised { try persistFence(fenceAfter) }
                try storage.save(incoming, body)
                try await enforcer.apply(incoming)
            } catch {
                logger.error("policy installation failed", metadata: ["error": "\(error)"])
                return InstallOutcome(kind: .failed, message: "installation failed on the gateway: \(String("\(error)".prefix(300)))")
            }
        }
        policy = incoming
        installedAtMilliseconds = clockMilliseconds()
        logger.notice(
            "policy installed",
            metadata: [
                "package": "\(incoming.packageName)", "revision": "\(incoming.revision)",
                "rules": "\(incoming.rules.count)", "epoch": "\(epoch.text)", "from": "\(server)",
            ])
        return InstallOutcome(kind: .installed, message: "Installed \(incoming.packageName) revision \(incoming.revision) (epoch \(epoch.text))")
    }

    /// The cluster section of the policy in force: what the cluster runtime reads (nil for a gateway).
    public var cluster: CompiledCluster? { policy?.cluster }

    /// A rollback (install-on-all-cluster-members-or-fail: another member failed): back to the
    /// policy in force before the install of `package` at `revision` in `epoch`, only while that is
    /// still the installed policy (a later install is never undone).
    public func rollBack(package: String, revision: UInt64, epoch: RevisionEpoch, from server: String) async -> InstallOutcome {
        guard let current = policy, current.packageUID == package, current.revision == revision,
            current.epochTerm == epoch.term, current.epochServer == epoch.server
        else {
            let running = policy.map { "\($0.packageName) revision \($0.revision) (epoch \($0.epochTerm)/\($0.epochServer))" } ?? "no policy"
            return InstallOutcome(kind: .refused, message: "not rolled back: this member runs \(running), not the install being undone")
        }
        do {
            let previous = try storage.rollBack()
            if let previous { try await enforcer.apply(previous) } else { try await enforcer.applyInitialPolicy() }
            policy = previous
            installedAtMilliseconds = clockMilliseconds()
            let now = previous.map { "\($0.packageName) revision \($0.revision)" } ?? "the initial policy (none was installed before)"
            logger.notice("policy rolled back", metadata: ["undone-revision": "\(revision)", "now": "\(now)", "from": "\(server)"])
            return InstallOutcome(kind: .installed, message: "Back to \(now)")
        } catch {
            logger.error("policy rollback failed", metadata: ["error": "\(error)"])
            return InstallOutcome(kind: .failed, message: "rollback failed on the member: \(String("\(error)".prefix(300)))")
        }
    }

    /// A management server's announcement: an active's epoch raises the fence; the server list is
    /// taken from any server whose epoch the fence admits (an old active's list is ignored).
    public func announcement(epoch: RevisionEpoch, isActive: Bool, servers announced: [AgentState.Server]) {
        var next = fence
        guard case .accept(let raised) = next.admit(epoch) else { return }
        if isActive && raised {
            do {
                try persistFence(next)
                logger.notice("fence raised by the active's announcement", metadata: ["epoch": "\(epoch.text)"])
            } catch {
                logger.error("could not persist the fence", metadata: ["error": "\(error)"])
            }
        }
        let list = Array(announced.prefix(GatewayLimits.managementServersMax))
        guard !list.isEmpty, Set(list) != Set(state.servers) else { return }
        var changed = state
        changed.servers = list
        do {
            try changed.save(directory)
            state = changed
            logger.notice("management servers updated", metadata: ["servers": "\(list.map(\.sicAddress).joined(separator: ","))"])
        } catch {
            logger.error("could not store the management server list", metadata: ["error": "\(error)"])
        }
    }

    private func persistFence(_ next: EpochFence) throws {
        var changed = state
        changed.highestEpoch = next.highest
        try changed.save(directory)
        state = changed
        fence = next
    }

    /// Kept in the status even when it cannot be stored.
    private func recordRefusal(_ reason: String) {
        state.lastRefusal = String(reason.prefix(GatewayReport.textLengthMax))
        try? state.save(directory)
    }
}
