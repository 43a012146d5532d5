import ClusterCore
import ManagementModel

/// What the runtime does with a policy's cluster section: the core's configuration, and for every
/// monitored interface the local address to bind, the peers' addresses to send to, and the virtual
/// address the active member holds on it. The section was validated by the agent at install (names safe
/// for `ip`, canonical addresses); this only maps it, and refuses what the core would refuse.
public struct ClusterPlan: Sendable, Equatable {
    public struct MonitoredInterface: Sendable, Equatable {
        public var name: InterfaceName
        /// This member's own address on the interface (heartbeats leave from it).
        public var localAddress: String
        /// The other members' addresses on this interface.
        public var peers: [(member: MemberID, address: String)]
        /// Held by the active member (a `cluster` interface); nil on sync and private interfaces.
        public var virtualAddress: VirtualAddress?

        public static func == (lhs: MonitoredInterface, rhs: MonitoredInterface) -> Bool {
            lhs.name == rhs.name && lhs.localAddress == rhs.localAddress && lhs.virtualAddress == rhs.virtualAddress
                && lhs.peers.map(\.member) == rhs.peers.map(\.member) && lhs.peers.map(\.address) == rhs.peers.map(\.address)
        }
    }

    public struct VirtualAddress: Sendable, Equatable {
        public var address: String
        public var prefixLength: Int
        /// `ip addr` syntax: "10.1.0.1/24".
        public var cidr: String { "\(address)/\(prefixLength)" }
    }

    public var configuration: ClusterConfiguration
    public var interfaces: [MonitoredInterface]
    public var clusterName: String
    public var clusterUID: String
    /// The section's heartbeat key; nil when the section has none (a key derived from the uid is used).
    public var heartbeatKeyBytes: [UInt8]?

    public static func == (lhs: ClusterPlan, rhs: ClusterPlan) -> Bool {
        lhs.configuration == rhs.configuration && lhs.interfaces == rhs.interfaces && lhs.clusterUID == rhs.clusterUID
            && lhs.heartbeatKeyBytes == rhs.heartbeatKeyBytes
    }

    /// `limits` carries the bounds; the heartbeat interval and dead timer come from the section.
    public init(_ section: CompiledCluster, limits base: ClusterLimits = ClusterLimits()) throws(ClusterConfigurationError) {
        func fail(_ code: String, _ message: String) -> ClusterConfigurationError { ClusterConfigurationError(code: code, message: message) }
        var limits = base
        guard section.heartbeatIntervalMilliseconds > 0, section.deadTimerMilliseconds > 0 else {
            throw fail("cluster-timers", "the heartbeat interval and dead timer must be positive")
        }
        limits.heartbeatIntervalMilliseconds = UInt64(section.heartbeatIntervalMilliseconds)
        limits.deadTimerMilliseconds = UInt64(section.deadTimerMilliseconds)
        limits.deadTimerUnderLoadMilliseconds = max(limits.deadTimerUnderLoadMilliseconds, limits.deadTimerMilliseconds * 4)
        limits.startupWaitMilliseconds = max(limits.heartbeatIntervalMilliseconds, limits.deadTimerMilliseconds)
        limits.readyTimeoutMilliseconds = max(limits.readyTimeoutMilliseconds, limits.deadTimerMilliseconds)
        guard let local = section.localMember, let localID = UInt8(exactly: section.localMemberID) else {
            throw fail("cluster-local-member", "the local member is not in the member list")
        }
        var members: [ClusterMember] = []
        for member in section.members {
            guard let id = UInt8(exactly: member.memberID), let priority = UInt8(exactly: member.priority) else {
                throw fail("cluster-member-id", "member ids and priorities are 1 to 255")
            }
            members.append(ClusterMember(id: MemberID(id), name: member.name, address: member.address, priority: priority))
        }
        var monitored: [MonitoredInterface] = []
        for interface in section.interfaces where interface.type != "private" {
            guard let name = InterfaceName(validating: interface.name) else {
                throw fail("cluster-interface-name", "\(interface.name) is not an interface name")
            }
            guard let localAddress = local.interfaces.first(where: { $0.name == interface.name })?.address else {
                throw fail("cluster-interface-address", "this member has no address on \(interface.name)")
            }
            let peers = section.members.filter { $0.memberID != local.memberID }.compactMap { member -> (MemberID, String)? in
                guard let id = UInt8(exactly: member.memberID), let address = member.interfaces.first(where: { $0.name == interface.name })?.address else {
                    return nil
                }
                return (MemberID(id), address)
            }
            var virtual: VirtualAddress?
            if interface.carriesVirtualAddress, let address = interface.address {
                virtual = VirtualAddress(address: address, prefixLength: interface.maskLength ?? (address.contains(":") ? 128 : 32))
            }
            monitored.append(MonitoredInterface(name: name, localAddress: localAddress, peers: peers, virtualAddress: virtual))
        }
        let mode: HighAvailabilityMode = section.memberRecovery == "primary-up" ? .primaryUp : .activeUp
        configuration = try ClusterConfiguration(
            localMember: MemberID(localID), members: members, mode: mode, monitoredInterfaces: monitored.map(\.name), limits: limits)
        interfaces = monitored
        clusterName = section.clusterName
        clusterUID = section.clusterUID
        if let key = section.heartbeatKey {
            guard let bytes = ClusterModel.heartbeatKeyBytes(key) else { throw fail("cluster-heartbeat-key", "the heartbeat key is not base64 of 32 bytes") }
            heartbeatKeyBytes = bytes
        }
    }

    public var virtualAddresses: [(interface: InterfaceName, address: VirtualAddress)] {
        interfaces.compactMap { interface in interface.virtualAddress.map { (interface.name, $0) } }
    }
}
