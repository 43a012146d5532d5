/// The state a critical device (pnote) reports, as `cphaprob -d … -s <ok|init|problem>`.
public enum DeviceState: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case ok
    /// Not ready yet (a joining member's full sync): the member cannot be a healthy standby.
    case initializing = "init"
    case problem

    public var description: String { rawValue }
}

/// Built-in or registered by an administrator or a script (`rampart cluster pnote register`).
public enum DeviceKind: String, Hashable, Sendable {
    case builtIn = "built-in"
    case registered
}

/// A device as a heartbeat summarizes it: only the devices that are not ok travel.
public struct DeviceSummary: Hashable, Sendable, CustomStringConvertible {
    public var name: String
    public var state: DeviceState

    public init(name: String, state: DeviceState) {
        self.name = name
        self.state = state
    }

    public var description: String { "\(name) (\(state))" }
}

/// The names of the built-in devices, as `cphaprob list` shows ClusterXL's.
public enum BuiltInDevice {
    /// Problem while a monitored interface's link is down.
    public static let interfaceCheck = "Interface Active Check"
    /// Problem while no policy is installed.
    public static let policy = "Policy"
    /// Init while a joining member waits for the connection table from the active member.
    public static let fullSync = "Fullsync"
    /// Present only while an administrator holds the member down (`cluster admin down`).
    public static let adminDown = "admin_down"

    static let all = [interfaceCheck, policy, fullSync, adminDown]

    static func isReserved(_ name: String) -> Bool { all.contains { $0.lowercased() == name.lowercased() } }
}

/// What a member's devices say about it, worst first.
public enum MemberHealth: Int, Hashable, Comparable, Sendable, CustomStringConvertible {
    /// An administrator holds it down: never active, not even as the last member.
    case adminDown = 0
    /// Some device is not ok: DOWN, or ACTIVE(!) when no healthy member is left.
    case impaired = 1
    case healthy = 2

    public static func < (lhs: MemberHealth, rhs: MemberHealth) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .adminDown: "admin down"
        case .impaired: "with problems"
        case .healthy: "healthy"
        }
    }

    /// A peer's health from the devices its heartbeat lists as not ok.
    static func of(problems: [DeviceSummary]) -> MemberHealth {
        if problems.contains(where: { $0.name == BuiltInDevice.adminDown }) { return .adminDown }
        return problems.isEmpty ? .healthy : .impaired
    }
}

/// One critical device as `rampart cluster list` shows it.
public struct CriticalDevice: Hashable, Sendable {
    public var name: String
    public var kind: DeviceKind
    /// The state it reported last.
    public var reportedState: DeviceState
    /// Why it is in that state, in words ("eth1 link down", "no policy installed").
    public var detail: String
    /// A registered device that does not report within this long counts as a problem.
    public var timeoutMilliseconds: UInt64?
    public var lastReportAtMilliseconds: UInt64
    /// It missed its report deadline (set by the core's timers, so it changes only on a step).
    public var missedDeadline: Bool = false

    /// What the member acts on: a missed deadline is a problem whatever was reported.
    public var state: DeviceState { missedDeadline ? .problem : reportedState }

    public var summary: DeviceSummary { DeviceSummary(name: name, state: state) }
}

/// The member's critical devices: built-ins first in a fixed order, then `admin_down` while present, then
/// registered devices in the order they were registered.
struct DeviceTable: Sendable {
    var devices: [CriticalDevice]

    init(nowMilliseconds: UInt64) {
        devices = [
            CriticalDevice(
                name: BuiltInDevice.interfaceCheck, kind: .builtIn, reportedState: .ok, detail: "",
                lastReportAtMilliseconds: nowMilliseconds),
            CriticalDevice(
                name: BuiltInDevice.policy, kind: .builtIn, reportedState: .ok, detail: "",
                lastReportAtMilliseconds: nowMilliseconds),
            CriticalDevice(
                name: BuiltInDevice.fullSync, kind: .builtIn, reportedState: .initializing,
                detail: "waiting to learn whether a member holds a connection table", lastReportAtMilliseconds: nowMilliseconds),
        ]
    }

    func index(_ name: String) -> Int? { devices.firstIndex { $0.name == name } }

    /// Sets a built-in's state; returns true when the state or its detail changed.
    @discardableResult
    mutating func setBuiltIn(_ name: String, _ state: DeviceState, detail: String, now: UInt64) -> Bool {
        guard let index = index(name) else { preconditionFailure("no built-in device \(name)") }
        let changed = devices[index].reportedState != state || devices[index].detail != detail
        devices[index].reportedState = state
        devices[index].detail = detail
        devices[index].lastReportAtMilliseconds = now
        return changed
    }

    var notOk: [DeviceSummary] {
        var result: [DeviceSummary] = []
        for device in devices where device.state != .ok { result.append(device.summary) }
        return result
    }

    var health: MemberHealth {
        var health = MemberHealth.healthy
        for device in devices where device.state != .ok {
            if device.name == BuiltInDevice.adminDown { return .adminDown }
            health = .impaired
        }
        return health
    }

    var isAdminDown: Bool { index(BuiltInDevice.adminDown) != nil }

    mutating func addAdminDown(now: UInt64) {
        guard !isAdminDown else { return }
        let device = CriticalDevice(
            name: BuiltInDevice.adminDown, kind: .builtIn, reportedState: .problem,
            detail: "an administrator holds this member down", lastReportAtMilliseconds: now)
        // After the fixed built-ins, before registered devices.
        let position = devices.firstIndex { $0.kind == .registered } ?? devices.endIndex
        devices.insert(device, at: position)
    }

    mutating func removeAdminDown() { devices.removeAll { $0.name == BuiltInDevice.adminDown } }

    var registeredCount: Int { devices.count(where: { $0.kind == .registered }) }

    /// Marks registered devices that missed their deadline; returns the names newly marked.
    mutating func checkDeadlines(now: UInt64) -> [String] {
        var missed: [String] = []
        for index in devices.indices {
            guard let timeout = devices[index].timeoutMilliseconds, !devices[index].missedDeadline else { continue }
            if now - devices[index].lastReportAtMilliseconds > timeout {
                devices[index].missedDeadline = true
                missed.append(devices[index].name)
            }
        }
        return missed
    }
}
