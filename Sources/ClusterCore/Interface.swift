/// What the runtime knows when a member starts.
public struct ClusterStart: Hashable, Sendable {
    public var nowMilliseconds: UInt64
    /// Larger than the previous start's (the runtime keeps a counter), so the others tell a restarted
    /// member's heartbeats from old ones still on their way.
    public var incarnation: UInt64
    /// The monitored interfaces whose link is up now.
    public var linksUp: [InterfaceName]
    public var policyInstalled: Bool

    public init(nowMilliseconds: UInt64, incarnation: UInt64, linksUp: [InterfaceName], policyInstalled: Bool) {
        self.nowMilliseconds = nowMilliseconds
        self.incarnation = incarnation
        self.linksUp = linksUp
        self.policyInstalled = policyInstalled
    }
}

/// Everything that can happen to a member's core.
public enum ClusterInput: Hashable, Sendable {
    /// Time passes. `now` is milliseconds on a monotonic clock; it never goes backwards.
    case tick(now: UInt64)
    /// A heartbeat arrived on `interface`.
    case receive(ClusterHeartbeat, on: InterfaceName)
    /// A monitored interface's link went up or down (the runtime watches link state).
    case linkChanged(InterfaceName, up: Bool)
    case policyChanged(installed: Bool)
    /// The connection table asked for with `requestFullSync` arrived and is staged.
    case fullSyncCompleted(from: MemberID)
    /// The member's load figure (CPU, 0 to 100), sampled by the runtime.
    case load(percent: Int)
    /// `rampart cluster pnote register`: a device with its first state and an optional report timeout.
    case registerDevice(name: String, state: DeviceState, timeoutMilliseconds: UInt64?)
    case reportDevice(name: String, state: DeviceState)
    case unregisterDevice(name: String)
    /// `rampart cluster admin down`: refused when it would leave no healthy member, unless forced.
    case adminDown(force: Bool)
    case adminUp
    case resetFailoverCounter
}

/// Something the runtime must do, in order, before sending the output's heartbeats.
public enum ClusterEffect: Hashable, Sendable {
    /// Install the connection table received by full sync and delta sync (`conntrackd -c`): the member
    /// is becoming active. Always before `holdVirtualAddress`, so the first packets find their state.
    case commitConnectionTable
    /// Add the virtual address if absent and announce it (gratuitous ARP). Also sent again, with the
    /// address held, when another member that claimed ACTIVE released it: neighbours learn it back.
    case holdVirtualAddress
    /// Remove the virtual address.
    case releaseVirtualAddress
    /// Ask `member` for its connection table (full sync); answer `fullSyncCompleted`.
    case requestFullSync(from: MemberID)
    case stateChanged(StateChange)
    case deadTimerChanged(DeadTimerStatus, code: EventCode, reason: String)
    /// An administrator command was refused; `code` is stable, the output's reason explains.
    case commandRefused(code: String)
}

/// The result of one `step`. The runtime carries out `effects` in order, then sends `messages` (each on
/// its interface, to every other member), then logs `reason`: a member that releases the virtual
/// address does so before its heartbeat tells the others to take it.
public struct ClusterOutput: Hashable, Sendable {
    public var messages: [ClusterHeartbeat]
    public var effects: [ClusterEffect]
    /// Why: the decision in words, for the log and for tests.
    public var reason: String

    public init(messages: [ClusterHeartbeat] = [], effects: [ClusterEffect] = [], reason: String) {
        self.messages = messages
        self.effects = effects
        self.reason = reason
    }

    public var stateChange: StateChange? {
        for effect in effects { if case .stateChanged(let change) = effect { return change } }
        return nil
    }
}

/// One row of `rampart cluster state`.
public struct MemberView: Hashable, Sendable {
    public var id: MemberID
    public var name: String
    public var address: String
    public var isLocal: Bool
    /// As the member announces it (the configured one until it was heard).
    public var priority: UInt8
    /// Its state; nil for a peer not heard within the dead timer ("down or unreachable").
    public var state: MemberState?
    /// 100 % on the active member, 0 % on the others (High Availability).
    public var assignedLoadPercent: Int
    public var health: MemberHealth?
    /// Whether it lost ACTIVE, or started, within the flap hysteresis (nil for a peer not heard).
    public var steadiness: Steadiness?
    public var problems: [DeviceSummary]
    public var loadPercent: UInt8
    /// Since its last heartbeat on any interface (nil for this member, or a peer never heard).
    public var lastHeardMillisecondsAgo: UInt64?

    /// The state column: a peer not heard within the dead timer shows what it last said, marked.
    public var stateText: String { state?.description ?? "DOWN (no heartbeat)" }
}

/// One monitored interface as `rampart cluster if` shows it.
public struct InterfaceView: Hashable, Sendable {
    public struct PeerAge: Hashable, Sendable {
        public var member: MemberID
        /// Since the last heartbeat from `member` on this interface; nil if never.
        public var ageMilliseconds: UInt64?
    }

    public var name: InterfaceName
    public var linkUp: Bool
    public var heartbeatAges: [PeerAge]
}

/// One critical device as `rampart cluster list` shows it.
public struct DeviceView: Hashable, Sendable {
    public var name: String
    public var kind: DeviceKind
    public var state: DeviceState
    public var detail: String
    public var timeoutMilliseconds: UInt64?
    public var lastReportMillisecondsAgo: UInt64
    public var missedDeadline: Bool
}

/// What `rampart cluster state` shows (the `cphaprob state` content), and more: the heartbeat ages, the
/// dead timer and its stretch, the devices.
public struct ClusterStatus: Hashable, Sendable {
    public var mode: HighAvailabilityMode
    public var localMember: MemberID
    public var state: MemberState
    public var members: [MemberView]
    /// Devices that are not ok ("Active PNOTEs").
    public var activeDevices: [DeviceView]
    public var devices: [DeviceView]
    public var lastStateChange: StateChange?
    public var failoverCount: UInt64
    public var failoverCountResetAtMilliseconds: UInt64
    /// "start" or "reset by an administrator".
    public var failoverCountResetCause: String
    public var interfaces: [InterfaceView]
    /// Monitored interfaces, and how many have their link up.
    public var requiredInterfaces: Int
    public var interfacesUp: Int
    public var heartbeatIntervalMilliseconds: UInt64
    public var deadTimer: DeadTimerStatus
    public var loadPercent: UInt8
    public var nowMilliseconds: UInt64

    public var activeMember: MemberID? { members.first { $0.state?.isActive == true }?.id }
}
