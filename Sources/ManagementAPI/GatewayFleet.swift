import ManagementModel

/// What a management server knows, live, about one gateway: its SIC channel and what it reported.
/// Node-local (never synchronized): every server hears it from the gateway itself.
public struct GatewayLiveStatus: Sendable, Equatable {
    public var connected: Bool
    public var lastContactMilliseconds: Int64?
    /// The policy the gateway enforces, as it reported it.
    public var installedPackage: String?
    public var installedRevision: UInt64?
    public var installedEpoch: RevisionEpoch?
    public var installedAtMilliseconds: Int64?
    /// The highest epoch the gateway has seen (it refuses pushes from lower ones).
    public var highestEpoch: RevisionEpoch?
    /// The last push the gateway refused, and why.
    public var lastRefusal: String?
    /// "nftables" or "none".
    public var enforcement: String?

    public init(connected: Bool, lastContactMilliseconds: Int64? = nil, installedPackage: String? = nil, installedRevision: UInt64? = nil,
                installedEpoch: RevisionEpoch? = nil, installedAtMilliseconds: Int64? = nil, highestEpoch: RevisionEpoch? = nil,
                lastRefusal: String? = nil, enforcement: String? = nil) {
        self.connected = connected
        self.lastContactMilliseconds = lastContactMilliseconds
        self.installedPackage = installedPackage
        self.installedRevision = installedRevision
        self.installedEpoch = installedEpoch
        self.installedAtMilliseconds = installedAtMilliseconds
        self.highestEpoch = highestEpoch
        self.lastRefusal = lastRefusal
        self.enforcement = enforcement
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

/// Serialized policy bytes, shared by reference between the pushes that carry them.
public final class SharedPolicyBytes: Sendable {
    public let bytes: [UInt8]
    public let revision: UInt64
    public let epoch: RevisionEpoch
    public init(bytes: [UInt8], revision: UInt64, epoch: RevisionEpoch) {
        self.bytes = bytes
        self.revision = revision
        self.epoch = epoch
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

/// The gateways connected to this server over SIC, as the Web API needs them. The server's SIC shell
/// provides it (`ManagementService.attachGateways`).
public protocol GatewayFleet: Sendable {
    func status(ofGateway uid: String) -> GatewayLiveStatus?
    /// Pushes in the background with bounded concurrency; `report` is called once per push, as each
    /// ends (a gateway that is not connected fails at once; the others do not wait for it).
    func push(_ pushes: [GatewayPush], report: @escaping @Sendable (GatewayPushResult) async -> Void)
}
