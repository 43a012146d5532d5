/// A member's state, as `cphaprob state` names it.
public enum MemberState: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    /// Starting: the member listens for the others before it takes part.
    case initializing = "INIT"
    /// Primary Up: claims ACTIVE and waits for the active member to release it.
    case ready = "READY"
    /// Holds the virtual address and forwards traffic.
    case active = "ACTIVE"
    /// Active attention: forwards traffic although a critical device has a problem, because no
    /// healthy member is left.
    case activeAttention = "ACTIVE(!)"
    /// Healthy, waiting for the active member to fail.
    case standby = "STANDBY"
    /// A critical device has a problem (or is not ready); forwards nothing.
    case down = "DOWN"

    public var description: String { rawValue }

    /// ACTIVE or ACTIVE(!): the member holds the virtual address.
    public var isActive: Bool { self == .active || self == .activeAttention }
}

/// What a member tells the others on every monitored interface, every heartbeat interval and at once
/// after any change of its state or devices (the role of ClusterXL's CCP).
///
/// Everything in it is untrusted: the receiver checks the sender is another configured member, that the
/// interface is the one it arrived on, and bounds every list; `(incarnation, sequence)` orders
/// heartbeats, so a delayed or duplicated one never overrides a newer one.
public struct ClusterHeartbeat: Hashable, Sendable {
    public var member: MemberID
    /// Grows with every start of the member (the runtime keeps it across restarts): a restarted member's
    /// sequence starts again and must still count as newer.
    public var incarnation: UInt64
    /// Grows with every heartbeat round of this incarnation; one round has one number on every interface.
    public var sequence: UInt64
    /// The interface it was sent on.
    public var interface: InterfaceName
    public var state: MemberState
    /// The sender's own priority (every member ranks a member by the priority it announces).
    public var priority: UInt8
    /// Its devices that are not ok (the pnote summary). Empty: healthy.
    public var problems: [DeviceSummary]
    /// Whether it lost ACTIVE, or started, within the flap hysteresis: it ranks below steadier members
    /// when ACTIVE is to be taken.
    public var steadiness: Steadiness
    /// Its load figure, 0 to 100. At or above the threshold, every member stretches its dead timer.
    public var loadPercent: UInt8

    public init(
        member: MemberID, incarnation: UInt64, sequence: UInt64, interface: InterfaceName, state: MemberState,
        priority: UInt8, problems: [DeviceSummary], steadiness: Steadiness, loadPercent: UInt8
    ) {
        self.member = member
        self.incarnation = incarnation
        self.sequence = sequence
        self.interface = interface
        self.state = state
        self.priority = priority
        self.problems = problems
        self.steadiness = steadiness
        self.loadPercent = loadPercent
    }

    var health: MemberHealth { MemberHealth.of(problems: problems) }
}

/// How long a member has been free of trouble, worst first (the no-flapping rule). Within
/// `ClusterLimits.flapHysteresisMilliseconds` of losing ACTIVE a member ranks below every other one that
/// did not; within it of starting, below the steady ones: nothing survives a restart, so a member that
/// crashed while active cannot know it lost ACTIVE, and it must not take ACTIVE back from the steady
/// members either. When the whole cluster starts together, everyone is equally new.
public enum Steadiness: Int, Hashable, Comparable, Sendable, CustomStringConvertible {
    case lostActiveRecently = 0
    case startedRecently = 1
    case steady = 2

    public static func < (lhs: Steadiness, rhs: Steadiness) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .lostActiveRecently: "lost ACTIVE recently"
        case .startedRecently: "started recently"
        case .steady: "steady"
        }
    }
}

/// How members compare, the same on every member because it uses only what each member announces.
///
/// Two orders:
/// - taking ACTIVE when no member holds it (`<`): healthy before impaired, then the steadier member
///   (see `Steadiness`), then the higher priority, then the lower member ID;
/// - holding ACTIVE against another claim (`precedes`: split brain, Primary Up): healthy before
///   impaired, then the higher priority, then the lower member ID. The hysteresis keeps a member from
///   taking ACTIVE back; it never makes a member that holds ACTIVE give it up, or the higher priority
///   would take it back once its hysteresis ran out: a flap.
public struct MemberRank: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var health: MemberHealth
    public var steadiness: Steadiness
    public var priority: UInt8
    public var member: MemberID

    public init(health: MemberHealth, steadiness: Steadiness, priority: UInt8, member: MemberID) {
        self.health = health
        self.steadiness = steadiness
        self.priority = priority
        self.member = member
    }

    public static func < (lhs: MemberRank, rhs: MemberRank) -> Bool {
        if lhs.health != rhs.health { return lhs.health < rhs.health }
        if lhs.steadiness != rhs.steadiness { return lhs.steadiness < rhs.steadiness }
        if lhs.priority != rhs.priority { return lhs.priority < rhs.priority }
        return lhs.member > rhs.member
    }

    /// True when this member keeps or claims ACTIVE over `other`.
    public func precedes(_ other: MemberRank) -> Bool {
        if health != other.health { return health > other.health }
        if priority != other.priority { return priority > other.priority }
        return member < other.member
    }

    public var description: String {
        "\(health), priority \(priority), \(steadiness)"
    }
}
