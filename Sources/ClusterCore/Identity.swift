/// A cluster member's number (ClusterXL's member ID, 1 to 255). Ordered, so that every list the core
/// produces has one deterministic order; the lower ID wins a tie of priorities.
public struct MemberID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public let value: UInt8

    public init(_ value: UInt8) { self.value = value }
    public init(integerLiteral value: UInt8) { self.value = value }

    public static func < (lhs: MemberID, rhs: MemberID) -> Bool { lhs.value < rhs.value }
    public var description: String { "member \(value)" }
}

/// A monitored interface's name as the member's kernel knows it ("eth1", "sync").
public struct InterfaceName: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String

    /// Nil unless `name` is 1 to 15 bytes of letters, digits, '.', '-', '_' or '@' (what Linux accepts
    /// and what cannot break a log line or a command). Labelled: an unlabelled `InterfaceName("…")` with a
    /// literal would be a literal coercion (SE-0213) and trap instead of returning nil.
    public init?(validating name: String) {
        guard isValidInterfaceName(name) else { return nil }
        self.name = name
    }

    public init(stringLiteral value: String) {
        precondition(isValidInterfaceName(value), "invalid interface name literal \(value)")
        name = value
    }

    public static func < (lhs: InterfaceName, rhs: InterfaceName) -> Bool { lhs.name < rhs.name }
    public var description: String { name }
}

func isValidInterfaceName(_ name: String) -> Bool {
    guard !name.isEmpty, name.utf8.count <= ClusterLimits.interfaceNameBytesMax else { return false }
    return name.utf8.allSatisfy { byte in
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
            || byte == 0x2e || byte == 0x2d || byte == 0x5f || byte == 0x40
    }
}

/// Printable text of at most `bytesMax` bytes: no control characters, so it can go into a log line or a
/// table as it is.
func isPrintableName(_ text: String, bytesMax: Int) -> Bool {
    guard !text.isEmpty, text.utf8.count <= bytesMax else { return false }
    return text.unicodeScalars.allSatisfy { scalar in
        !(scalar.value < 0x20 || (scalar.value >= 0x7f && scalar.value < 0xa0) || scalar.properties.generalCategory == .format)
    }
}

/// How a High Availability cluster treats a member that recovers.
public enum HighAvailabilityMode: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// The default: a recovered member stays standby; ACTIVE moves only when the active fails.
    case activeUp = "active-up"
    /// The highest-priority healthy member takes ACTIVE back once it is healthy (after a hold time).
    case primaryUp = "primary-up"

    /// The `cphaprob state` mode line.
    public var description: String {
        switch self {
        case .activeUp: "High Availability (Active Up)"
        case .primaryUp: "High Availability (Primary Up)"
        }
    }
}

/// One member as the cluster object on the management server describes it.
public struct ClusterMember: Hashable, Sendable {
    public var id: MemberID
    public var name: String
    /// Its unique address, for display (the runtime reaches members by its own configuration).
    public var address: String
    /// Higher wins ACTIVE; a tie goes to the lower member ID.
    public var priority: UInt8

    public init(id: MemberID, name: String, address: String, priority: UInt8) {
        self.id = id
        self.name = name
        self.address = address
        self.priority = priority
    }
}

/// A refused configuration or limits: `code` is stable, `message` says what to fix.
public struct ClusterConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public var code: String
    public var message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}

/// How one member is set up: who it is, the other members, the mode, the interfaces it monitors. It
/// arrives with the installed policy, so it is validated here rather than trusted.
public struct ClusterConfiguration: Hashable, Sendable {
    public let localMember: MemberID
    /// Every member, this one included, sorted by ID.
    public let members: [ClusterMember]
    public let mode: HighAvailabilityMode
    /// In the order heartbeats and status list them.
    public let monitoredInterfaces: [InterfaceName]
    public let limits: ClusterLimits

    public init(
        localMember: MemberID, members: [ClusterMember], mode: HighAvailabilityMode = .activeUp,
        monitoredInterfaces: [InterfaceName], limits: ClusterLimits = ClusterLimits()
    ) throws(ClusterConfigurationError) {
        try limits.validate()
        func require(_ condition: Bool, _ code: String, _ message: String) throws(ClusterConfigurationError) {
            if !condition { throw ClusterConfigurationError(code: code, message: message) }
        }
        let sorted = members.sorted { $0.id < $1.id }
        try require(
            !sorted.isEmpty && sorted.count <= limits.membersMax, "cluster-members-count",
            "a cluster has 1 to \(limits.membersMax) members, not \(sorted.count)")
        for (index, member) in sorted.enumerated() {
            try require(member.id.value >= 1, "cluster-member-id", "member IDs start at 1")
            try require(index == 0 || sorted[index - 1].id != member.id, "cluster-member-duplicate", "\(member.id) appears twice")
            try require(
                isPrintableName(member.name, bytesMax: limits.nameBytesMax), "cluster-member-name",
                "\(member.id) needs a printable name of at most \(limits.nameBytesMax) bytes")
            try require(
                isPrintableName(member.address, bytesMax: limits.nameBytesMax), "cluster-member-address",
                "\(member.id) needs a printable address of at most \(limits.nameBytesMax) bytes")
        }
        try require(sorted.contains { $0.id == localMember }, "cluster-local-member", "\(localMember) is not a member of the cluster")
        try require(
            !monitoredInterfaces.isEmpty && monitoredInterfaces.count <= limits.interfacesMax, "cluster-interfaces-count",
            "a member monitors 1 to \(limits.interfacesMax) interfaces, not \(monitoredInterfaces.count)")
        for (index, interface) in monitoredInterfaces.enumerated() {
            try require(!monitoredInterfaces[..<index].contains(interface), "cluster-interface-duplicate", "\(interface) appears twice")
        }
        self.localMember = localMember
        self.members = sorted
        self.mode = mode
        self.monitoredInterfaces = monitoredInterfaces
        self.limits = limits
    }

    public var local: ClusterMember {
        guard let member = members.first(where: { $0.id == localMember }) else { preconditionFailure("validated at init") }
        return member
    }

    public func member(_ id: MemberID) -> ClusterMember? { members.first { $0.id == id } }
    public func interfaceIndex(_ name: InterfaceName) -> Int? { monitoredInterfaces.firstIndex(of: name) }
}
