/// A policy package compiled for one installation target: what a gateway enforces.
///
/// It is self-contained (no references left: groups are resolved to address ranges, services to
/// protocol and port ranges), ordered (the first matching rule decides), and ends with the implicit
/// cleanup rule. It carries the published revision and the epoch of the management server that
/// compiled it, so a gateway can refuse a push from an older epoch and report what it runs.
/// The JSON form (Codable) is what travels to the gateway and what the gateway stores on disk.
public struct CompiledPolicy: Codable, Sendable, Equatable {
    /// Bumped when the format changes incompatibly; a gateway refuses a format it does not know.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var packageName: String
    public var packageUID: String
    public var targetName: String
    public var targetUID: String
    /// The published revision the policy was compiled from, and that revision's hash.
    public var revision: UInt64
    public var revisionHash: String
    /// The compiling server's epoch (the fencing token gateways compare).
    public var epochTerm: UInt64
    public var epochServer: String
    public var compiledAtMilliseconds: Int64
    public var rules: [CompiledRule]
    /// For a cluster member's policy only: its cluster, its peers and the cluster's settings (absent
    /// for a gateway, so a gateway's policy bytes are unchanged).
    public var cluster: CompiledCluster?

    public init(
        formatVersion: Int = CompiledPolicy.currentFormatVersion, packageName: String, packageUID: String,
        targetName: String, targetUID: String, revision: UInt64, revisionHash: String,
        epochTerm: UInt64, epochServer: String, compiledAtMilliseconds: Int64, rules: [CompiledRule],
        cluster: CompiledCluster? = nil
    ) {
        self.cluster = cluster
        self.formatVersion = formatVersion
        self.packageName = packageName
        self.packageUID = packageUID
        self.targetName = targetName
        self.targetUID = targetUID
        self.revision = revision
        self.revisionHash = revisionHash
        self.epochTerm = epochTerm
        self.epochServer = epochServer
        self.compiledAtMilliseconds = compiledAtMilliseconds
        self.rules = rules
    }
}

public enum CompiledAction: String, Codable, Sendable, Equatable {
    case accept, drop, reject
}

/// One rule, flattened. `number` is the rule's number in the rulebase (1-based); the implicit
/// cleanup rule comes last with uid `CompiledRule.implicitCleanupUID`.
public struct CompiledRule: Codable, Sendable, Equatable {
    public static let implicitCleanupUID = "implicit-cleanup"

    public var number: Int
    public var uid: String
    public var name: String
    public var layer: String
    public var action: CompiledAction
    public var source: AddressMatch
    public var destination: AddressMatch
    public var service: ServiceMatch
    /// Track other than None: a hit is logged.
    public var log: Bool

    public init(
        number: Int, uid: String, name: String, layer: String, action: CompiledAction,
        source: AddressMatch, destination: AddressMatch, service: ServiceMatch, log: Bool
    ) {
        self.number = number
        self.uid = uid
        self.name = name
        self.layer = layer
        self.action = action
        self.source = source
        self.destination = destination
        self.service = service
        self.log = log
    }
}

/// Addresses a rule cell matches: Any, or a set of inclusive ranges (a host is a range of one),
/// possibly negated. Addresses are canonical text (IPv4 dotted, IPv6 RFC 5952).
public struct AddressMatch: Codable, Sendable, Equatable {
    public var any: Bool
    public var negate: Bool
    public var ranges: [AddressRange]

    public init(any: Bool, negate: Bool = false, ranges: [AddressRange] = []) {
        self.any = any
        self.negate = negate
        self.ranges = ranges
    }
}

public struct AddressRange: Codable, Sendable, Equatable, Hashable {
    public var first: String
    public var last: String

    public init(first: String, last: String) {
        self.first = first
        self.last = last
    }
}

/// Services a rule cell matches: Any, or protocol and destination-port ranges, possibly negated.
public struct ServiceMatch: Codable, Sendable, Equatable {
    public var any: Bool
    public var negate: Bool
    public var entries: [ServiceEntry]

    public init(any: Bool, negate: Bool = false, entries: [ServiceEntry] = []) {
        self.any = any
        self.negate = negate
        self.entries = entries
    }
}

public struct ServiceEntry: Codable, Sendable, Equatable, Hashable {
    public var proto: String  // "tcp" or "udp"
    public var portFirst: Int
    public var portLast: Int

    public init(proto: String, portFirst: Int, portLast: Int) {
        self.proto = proto
        self.portFirst = portFirst
        self.portLast = portLast
    }
}

/// One log record: a rule hit seen by a gateway (from its matcher or from nftables), shipped to
/// every management server, which keeps it in its own log database (never synchronized).
public struct PolicyLogRecord: Codable, Sendable, Equatable {
    public var timeMilliseconds: Int64
    public var gatewayName: String
    public var ruleUID: String
    public var ruleNumber: Int
    public var ruleName: String
    public var action: CompiledAction
    public var source: String
    public var destination: String
    public var proto: String
    public var destinationPort: Int?
    /// "matcher" (test-packet) or "nftables" (a kernel log event).
    public var origin: String
    public var policyRevision: UInt64
    /// How many packets this record stands for: nil for one packet (the matcher); for "nftables" the
    /// rule's counter increase since the last reading (counters do not say which addresses hit).
    public var hitCount: Int?

    public init(
        timeMilliseconds: Int64, gatewayName: String, ruleUID: String, ruleNumber: Int, ruleName: String,
        action: CompiledAction, source: String, destination: String, proto: String,
        destinationPort: Int?, origin: String, policyRevision: UInt64, hitCount: Int? = nil
    ) {
        self.timeMilliseconds = timeMilliseconds
        self.gatewayName = gatewayName
        self.ruleUID = ruleUID
        self.ruleNumber = ruleNumber
        self.ruleName = ruleName
        self.action = action
        self.source = source
        self.destination = destination
        self.proto = proto
        self.destinationPort = destinationPort
        self.origin = origin
        self.policyRevision = policyRevision
        self.hitCount = hitCount
    }
}
