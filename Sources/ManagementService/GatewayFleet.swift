import ManagementModel

/// What a management server knows, live, about one gateway: its SIC channel and what it reported.
/// Node-local (never synchronized): every server hears it from the gateway itself.
public struct GatewayLiveStatus: Sendable, Equatable {
    public var connected: Bool
    public var lastContactMilliseconds: Int64?
    /// The gateway's last report: the policy it enforces, its fence, its last refusal.
    public var report: GatewayReport?
    /// Its clock, measured from the stamps of its `gw-status` messages (empty for an agent that sends none).
    public var clock = ClockSamples()

    public init(connected: Bool, lastContactMilliseconds: Int64? = nil, report: GatewayReport? = nil) {
        self.connected = connected
        self.lastContactMilliseconds = lastContactMilliseconds
        self.report = report
    }
}

/// One gateway's share of an install: its identity and the policy bytes to push.
public struct GatewayPush: Sendable {
    public let gatewayUID: String
    public let gatewayName: String
    /// The compiled policy (CompiledPolicy JSON) with empty target fields: shared by every gateway that
    /// gets the same rules, so a fleet install serializes each distinct rule set once.
    public let policy: SharedPolicyBytes

    public init(gatewayUID: String, gatewayName: String, policy: SharedPolicyBytes) {
        self.gatewayUID = gatewayUID
        self.gatewayName = gatewayName
        self.policy = policy
    }
}

/// A compiled policy serialized once for every gateway that gets the same rules: the CompiledPolicy
/// JSON (sorted keys) up to its last two fields, which name the target. `bytes(for:)` appends them,
/// so each gateway receives — and stores as it is — the complete policy for itself at the cost of one
/// copy, not one serialization.
public final class SharedPolicyBytes: Sendable {
    /// Everything before `"targetName"` (the keys sort so that the target's two fields come last).
    public let prefix: [UInt8]

    /// `encoded` is the policy encoded with sorted keys and empty target fields.
    public init(encoded: [UInt8]) {
        let tail = Array(#""targetName":"","targetUID":""}"#.utf8)
        precondition(
            encoded.count > tail.count && Array(encoded.suffix(tail.count)) == tail,
            "CompiledPolicy must encode with sorted keys and the target's fields last")
        self.prefix = Array(encoded.dropLast(tail.count))
    }

    /// The whole policy for one target.
    public func bytes(targetName: String, targetUID: String) -> [UInt8] {
        var out = prefix
        let target = JSONValue.object(["targetName": .string(targetName), "targetUID": .string(targetUID)]).canonicalBytes
        out.reserveCapacity(prefix.count + target.count)
        out.append(contentsOf: target.dropFirst())  // the object's fields and its closing brace
        return out
    }
}

/// How one gateway's part of an install ended.
public struct GatewayPushResult: Sendable, Equatable {
    public enum Outcome: String, Sendable { case installed, refused, failed }
    public let gatewayUID: String
    public let gatewayName: String
    public let outcome: Outcome
    public let message: String

    public init(gatewayUID: String, gatewayName: String, outcome: Outcome, message: String) {
        self.gatewayUID = gatewayUID
        self.gatewayName = gatewayName
        self.outcome = outcome
        self.message = message
    }
}

/// A cluster member to return to the policy it had before an install (install-on-all-cluster-members-or-fail:
/// another member failed). The agent rolls back only while it still runs the policy of that install.
public struct GatewayRollback: Sendable, Equatable {
    public let gatewayUID: String
    public let gatewayName: String
    /// The install being undone: its package uid, revision and epoch.
    public let packageUID: String
    public let revision: UInt64
    public let epoch: RevisionEpoch

    public init(gatewayUID: String, gatewayName: String, packageUID: String, revision: UInt64, epoch: RevisionEpoch) {
        self.gatewayUID = gatewayUID
        self.gatewayName = gatewayName
        self.packageUID = packageUID
        self.revision = revision
        self.epoch = epoch
    }
}

/// The gateways connected to this server over SIC, as the Web API needs them. The server's SIC shell
/// provides it (`ManagementService.attachGateways`).
public protocol GatewayFleet: Sendable {
    func status(ofGateway uid: String) -> GatewayLiveStatus?
    /// Pushes in the background with bounded concurrency; `report` is called once per push, as each
    /// ends (a gateway that is not connected fails at once; the others do not wait for it).
    func push(_ pushes: [GatewayPush], report: @escaping @Sendable (GatewayPushResult) async -> Void)
    /// Rolls members back in the background; `report` is called once per rollback (`installed`:
    /// the member runs its previous policy again).
    func rollback(_ rollbacks: [GatewayRollback], report: @escaping @Sendable (GatewayPushResult) async -> Void)
}
