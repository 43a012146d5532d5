import Foundation

/// Gateway clusters (ClusterXL High Availability) as the management database holds them.
///
/// A `simple-cluster` lists its members by uid in `members`; each member is a `cluster-member`
/// object of its own (its own uid, address, interfaces, priority and SIC trust), created, changed and
/// deleted only through its cluster's add/set/delete. Members enrol with their own one-time key and
/// their certificate names the member's uid, so a member is never a look-alike simple-gateway.
/// `ClusterPolicyBuilder` turns a cluster into the `CompiledCluster` section each member's policy
/// carries (the contract the gateway's cluster runtime reads).
public enum ClusterModel {
    /// The cluster mode Rampart runs; Check Point's others (load sharing, OPSEC) are refused by name.
    public static let supportedModes = ["cluster-xl-ha"]
    /// Interface types as Check Point names them; "cluster + sync" carries both.
    public static let interfaceTypes = ["cluster", "sync", "cluster + sync", "private"]
    public static let memberRecoveryModes = ["active-up", "primary-up"]

    /// The member that sits at `position` (0-based) gets this priority unless one is given: the
    /// first listed member is preferred (a higher priority wins an election).
    public static func defaultPriority(position: Int) -> Int64 { Limits.clusterPriorityDefaultFirst - Int64(position) }

    /// A Linux interface name the cluster runtime can put into `ip` commands: 1 to 15 of letters,
    /// digits, '.', '_' and '-'.
    public static func isInterfaceName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= Limits.interfaceNameLengthMax && name != "." && name != ".."
            && name.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "." || $0 == "_" || $0 == "-") }
    }

    /// The cluster a member belongs to (a uid), on the member object.
    public static let clusterField = "cluster"
    /// The cluster's heartbeat key (base64 of `Limits.clusterHeartbeatKeyBytes` random bytes), made by
    /// the server when the cluster is added; internal: never rendered, never accepted from a client.
    public static let heartbeatKeyField = "heartbeat-key"

    /// A new heartbeat key from the system's cryptographic random source.
    public static func newHeartbeatKey() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<Limits.clusterHeartbeatKeyBytes).map { _ in UInt8.random(in: 0...UInt8.max, using: &generator) }
        return Data(bytes).base64EncodedString()
    }

    /// The key's bytes when `text` is a well-formed key (base64 of exactly the key length), else nil.
    public static func heartbeatKeyBytes(_ text: String) -> [UInt8]? {
        guard text.utf8.count <= Limits.clusterHeartbeatKeyBytes * 2, let data = Data(base64Encoded: text),
            data.count == Limits.clusterHeartbeatKeyBytes
        else { return nil }
        return Array(data)
    }
    /// Keys Ansible and Check Point send on interfaces that Rampart keeps as given and does not use.
    static let interfacePassThroughKeys: Set<String> = [
        "anti-spoofing", "anti-spoofing-settings", "topology", "topology-settings", "security-zone", "security-zone-settings",
        "multicast-address", "multicast-address-type", "tags", "color", "comments",
    ]
    static let ignoredItemKeys: Set<String> = ["details-level", "ignore-warnings", "ignore-errors"]
}

/// Cluster timing and recovery: Rampart's own names (Check Point keeps these in the kernel's tables).
public struct ClusterSettings: Sendable, Equatable {
    public var heartbeatIntervalMilliseconds: Int64
    public var deadTimerMilliseconds: Int64
    /// "active-up" (a recovered member stays standby) or "primary-up" (the highest priority takes over).
    public var memberRecovery: String

    public static let defaults = ClusterSettings(
        heartbeatIntervalMilliseconds: Limits.clusterHeartbeatIntervalMillisecondsDefault,
        deadTimerMilliseconds: Limits.clusterDeadTimerMillisecondsDefault,
        memberRecovery: "active-up")

    public init(heartbeatIntervalMilliseconds: Int64, deadTimerMilliseconds: Int64, memberRecovery: String) {
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.deadTimerMilliseconds = deadTimerMilliseconds
        self.memberRecovery = memberRecovery
    }

    public var json: JSONValue {
        [
            "heartbeat-interval-ms": .int(heartbeatIntervalMilliseconds), "dead-timer-ms": .int(deadTimerMilliseconds),
            "member-recovery": .string(memberRecovery),
        ]
    }

    /// Stored settings (checked when they were set; a missing key takes its default).
    public init(stored: JSONValue?) {
        let d = ClusterSettings.defaults
        self.init(
            heartbeatIntervalMilliseconds: stored?["heartbeat-interval-ms"]?.intValue ?? d.heartbeatIntervalMilliseconds,
            deadTimerMilliseconds: stored?["dead-timer-ms"]?.intValue ?? d.deadTimerMilliseconds,
            memberRecovery: stored?["member-recovery"]?.stringValue ?? d.memberRecovery)
    }

    /// `given` applied over `current`: each key bounded, and the dead timer long enough to miss
    /// `clusterHeartbeatsPerDeadTimerMin` heartbeats (one lost datagram must not fail a member over).
    public static func parse(_ given: JSONValue, over current: ClusterSettings) throws -> ClusterSettings {
        guard let fields = given.objectValue else { throw ManagementError.invalid("cluster-settings", "expected an object") }
        var out = current
        for key in fields.keys.sorted() {
            let value = fields[key]!
            switch key {
            case "heartbeat-interval-ms":
                out.heartbeatIntervalMilliseconds = try value.integer(
                    "cluster-settings.heartbeat-interval-ms", in: Limits.clusterHeartbeatIntervalMillisecondsRange)
            case "dead-timer-ms":
                out.deadTimerMilliseconds = try value.integer("cluster-settings.dead-timer-ms", in: Limits.clusterDeadTimerMillisecondsRange)
            case "member-recovery":
                guard let text = value.stringValue?.lowercased(), ClusterModel.memberRecoveryModes.contains(text) else {
                    throw ManagementError.invalid(
                        "cluster-settings.member-recovery", "expected one of: \(ClusterModel.memberRecoveryModes.joined(separator: ", "))")
                }
                out.memberRecovery = text
            default:
                throw ManagementError.unknownParameter("cluster-settings.\(key.prefix(64))")
            }
        }
        let needed = out.heartbeatIntervalMilliseconds * Limits.clusterHeartbeatsPerDeadTimerMin
        guard out.deadTimerMilliseconds >= needed else {
            throw ManagementError.invalid(
                "cluster-settings.dead-timer-ms",
                "\(out.deadTimerMilliseconds) ms is shorter than \(Limits.clusterHeartbeatsPerDeadTimerMin) heartbeat intervals (\(needed) ms)")
        }
        return out
    }
}

// MARK: normalization (the boundary: every request's cluster input goes through here)

extension Normalizer {
    /// `cluster-mode`: only the modes Rampart runs.
    func clusterMode(_ value: JSONValue) throws -> JSONValue {
        guard let text = value.scalarText?.lowercased(), ClusterModel.supportedModes.contains(text) else {
            let given = value.scalarText.map { "'\($0.prefix(64))' is not a mode Rampart runs" } ?? "expected a string"
            throw ManagementError.invalid("cluster-mode", "\(given); accepted: \(ClusterModel.supportedModes.joined(separator: ", "))")
        }
        return .string(text)
    }

    /// The cluster's interfaces `{name, interface-type, ip-address, network-mask|mask-length}`: a
    /// `cluster` (or `cluster + sync`) interface needs its virtual address.
    func clusterInterfaces(_ value: JSONValue) throws -> JSONValue {
        let items = try boundedList(value, field: "interfaces", max: Limits.clusterInterfacesMax)
        var names: Set<String> = []
        return .array(
            try items.enumerated().map { index, item in
                let path = "interfaces[\(index)]"
                var out = try interface(item, at: path, knownTypes: nil)
                guard let name = out["name"]?.stringValue, names.insert(name).inserted else {
                    throw ManagementError.invalid("\(path).name", "'\(out["name"]?.stringValue ?? "")' appears twice")
                }
                let type = out["interface-type"]?.stringValue ?? "cluster"
                out["interface-type"] = .string(type)
                if type.hasPrefix("cluster"), out["ipv4-address"] == nil, out["ipv6-address"] == nil {
                    throw ManagementError.invalid("\(path).ip-address", "a \(type) interface needs the cluster's virtual address")
                }
                return .object(out)
            })
    }

    /// Cluster members as Check Point takes them: `{name, ip-address, one-time-password, interfaces,
    /// priority}`. The address is made canonical; a one-time password becomes an activation-key record
    /// (the key itself is never kept); a member interface named like a cluster interface takes its type.
    func clusterMembers(_ value: JSONValue, clusterInterfaces: JSONValue?) throws -> JSONValue {
        let items = try boundedList(value, field: "members", max: Limits.clusterMembersMax)
        var types: [String: String] = [:]
        for item in clusterInterfaces?.arrayValue ?? [] {
            if let name = item["name"]?.stringValue, let type = item["interface-type"]?.stringValue { types[name] = type }
        }
        var names: Set<String> = []
        var priorities: [Int64: Int] = [:]
        return .array(
            try items.enumerated().map { index, item in
                let path = "members[\(index)]"
                guard let given = item.objectValue else { throw ManagementError.invalid(path, "expected an object with name and ip-address") }
                var member: [String: JSONValue] = [:]
                guard let name = given["name"]?.scalarText, !name.isEmpty, Limits.fits(name, characters: Limits.nameLengthMax),
                    !name.unicodeScalars.contains(where: { $0.value < 0x20 })
                else {
                    throw ManagementError.invalid("\(path).name", "a name of 1 to \(Limits.nameLengthMax) characters without control characters is required")
                }
                guard names.insert(name).inserted else { throw ManagementError.invalid("\(path).name", "'\(name)' appears twice") }
                member["name"] = .string(name)
                for key in given.keys.sorted() {
                    let field = given[key]!
                    switch key {
                    case "name": break
                    case "ip-address", "ipv4-address", "ipv6-address":
                        guard let text = field.scalarText, let address = IPAddress.parse(text), key == "ip-address" || "ipv\(address.family)-address" == key
                        else {
                            throw ManagementError.invalid("\(path).\(key)", "'\(field.scalarText?.prefix(64) ?? "")' is not an IP address of that family")
                        }
                        member[address.family == 4 ? "ipv4-address" : "ipv6-address"] = .string(address.text)
                    case "one-time-password":
                        guard let text = field.stringValue, Limits.fits(text, characters: 128), text.count >= 8 else {
                            throw ManagementError.invalid("\(path).one-time-password", "the activation key must be 8 to 128 characters")
                        }
                        member[ManagedObject.activationKeyField] = try passwords.activationKeyRecord(text, name)
                    case "priority":
                        let priority = try field.integer("\(path).priority", in: Limits.clusterPriorityRange)
                        if let other = priorities.updateValue(index, forKey: priority) {
                            throw ManagementError.invalid(
                                "\(path).priority", "\(priority) is also members[\(other)]'s: priorities decide elections and must differ")
                        }
                        member["priority"] = .int(priority)
                    case "interfaces":
                        let list = try boundedList(field, field: "\(path).interfaces", max: Limits.clusterInterfacesMax)
                        var seen: Set<String> = []
                        member["interfaces"] = .array(
                            try list.enumerated().map { at, entry in
                                var out = try interface(entry, at: "\(path).interfaces[\(at)]", knownTypes: types)
                                guard let ifName = out["name"]?.stringValue, seen.insert(ifName).inserted else {
                                    throw ManagementError.invalid("\(path).interfaces[\(at)].name", "'\(out["name"]?.stringValue ?? "")' appears twice")
                                }
                                if out["ipv4-address"] == nil && out["ipv6-address"] == nil {
                                    throw ManagementError.invalid("\(path).interfaces[\(at)].ip-address", "each member interface needs its own address")
                                }
                                out["interface-type"] = out["interface-type"] ?? .string(types[ifName] ?? "private")
                                return .object(out)
                            })
                    case _ where ClusterModel.interfacePassThroughKeys.contains(key):
                        guard field.canonicalBytes.count <= Limits.clusterPassThroughBytesMax else {
                            throw ManagementError.invalid("\(path).\(key)", "larger than \(Limits.clusterPassThroughBytesMax) bytes")
                        }
                        member[key] = field
                    case _ where ClusterModel.ignoredItemKeys.contains(key):
                        break
                    default:
                        throw ManagementError.unknownParameter("\(path).\(key.prefix(64))")
                    }
                }
                guard member["ipv4-address"] != nil || member["ipv6-address"] != nil else {
                    throw ManagementError.invalid("\(path).ip-address", "each member needs an address")
                }
                // Heartbeats and the virtual address need the member on every cluster and sync network.
                let own = Set(member["interfaces"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? [])
                if let missing = types.filter({ $0.value != "private" && !own.contains($0.key) }).keys.sorted().first {
                    throw ManagementError.invalid(
                        "\(path).interfaces", "member [\(name)] has no interface \(missing) (a \(types[missing] ?? "") interface of the cluster)")
                }
                return .object(member)
            })
    }

    func boundedList(_ value: JSONValue, field: String, max: Int) throws -> [JSONValue] {
        guard let items = value.arrayValue else { throw ManagementError.invalid(field, "expected a list") }
        guard items.count <= max else { throw ManagementError.invalid(field, "at most \(max) items (\(items.count) given)") }
        return items
    }

    /// One interface: name, type, address and prefix, canonical (`ipv4-address`, `ipv4-mask-length`,
    /// `ipv4-network-mask`, or the IPv6 pair). `knownTypes` (a member's interface): a given type must
    /// agree with the cluster interface of that name.
    func interface(_ item: JSONValue, at path: String, knownTypes: [String: String]?) throws -> [String: JSONValue] {
        guard let given = item.objectValue else { throw ManagementError.invalid(path, "expected an object with name and ip-address") }
        var out: [String: JSONValue] = [:]
        guard let name = given["name"]?.scalarText, ClusterModel.isInterfaceName(name) else {
            throw ManagementError.invalid("\(path).name", "an interface name of 1 to \(Limits.interfaceNameLengthMax) letters, digits, '.', '_' or '-'")
        }
        out["name"] = .string(name)
        var address: IPAddress?
        var length: Int64?
        for key in given.keys.sorted() {
            let field = given[key]!
            switch key {
            case "name": break
            case "interface-type":
                guard let text = field.stringValue?.lowercased(), ClusterModel.interfaceTypes.contains(text) else {
                    throw ManagementError.invalid("\(path).interface-type", "expected one of: \(ClusterModel.interfaceTypes.joined(separator: ", "))")
                }
                if let known = knownTypes?[name], known != text {
                    throw ManagementError.invalid("\(path).interface-type", "\(name) is a \(known) interface of the cluster")
                }
                out["interface-type"] = .string(text)
            case "ip-address", "ipv4-address", "ipv6-address":
                guard let text = field.scalarText, let parsed = IPAddress.parse(text), key == "ip-address" || "ipv\(parsed.family)-address" == key else {
                    throw ManagementError.invalid("\(path).\(key)", "'\(field.scalarText?.prefix(64) ?? "")' is not an IP address of that family")
                }
                address = parsed
            case "network-mask", "ipv4-network-mask":
                guard let text = field.scalarText, let parsed = IPAddress.maskLength(subnetMask: text) else {
                    throw ManagementError.invalid("\(path).\(key)", "'\(field.scalarText?.prefix(64) ?? "")' is not a contiguous IPv4 mask")
                }
                length = Int64(parsed)
            case "mask-length", "ipv4-mask-length", "ipv6-mask-length":
                length = try field.integer("\(path).\(key)", in: 0...128)
            case _ where ClusterModel.interfacePassThroughKeys.contains(key):
                guard field.canonicalBytes.count <= Limits.clusterPassThroughBytesMax else {
                    throw ManagementError.invalid("\(path).\(key)", "larger than \(Limits.clusterPassThroughBytesMax) bytes")
                }
                out[key] = field
            case _ where ClusterModel.ignoredItemKeys.contains(key):
                break
            default:
                throw ManagementError.unknownParameter("\(path).\(key.prefix(64))")
            }
        }
        guard let address else {
            if length != nil { throw ManagementError.invalid("\(path).ip-address", "a mask without an address") }
            return out
        }
        let family = address.family
        let prefix = length ?? Int64(address.bitCount)
        guard prefix >= 1, prefix <= Int64(address.bitCount) else {
            throw ManagementError.invalid("\(path).mask-length", "\(prefix) is not a prefix length of an IPv\(family) address")
        }
        out["ipv\(family)-address"] = .string(address.text)
        out["ipv\(family)-mask-length"] = .int(prefix)
        if family == 4 { out["ipv4-network-mask"] = .string(IPAddress.subnetMask(lengthV4: Int(prefix))) }
        return out
    }
}

// MARK: members as objects

extension Planner {
    /// The member objects a cluster's `members` input makes: a member named like an existing one keeps
    /// its uid and its SIC trust (a one-time password given for a member that already enrolled is
    /// ignored: `reset-sic` re-keys it), new members get a uid, members left out are deleted. The
    /// cluster's `members` field becomes the member uids, in the given order (the member ids).
    func clusterMemberChanges(_ cluster: inout ManagedObject, specs: [JSONValue], previousMembers: [String], context: ChangeContext) throws -> [ObjectChange] {
        let existing = previousMembers.compactMap { reader.object(uid: $0) }.filter { $0.type == .clusterMember }
        var changes: [ObjectChange] = []
        var uids: [JSONValue] = []
        var priorities: [Int64: String] = [:]
        for (position, spec) in specs.enumerated() {
            guard let name = spec["name"]?.stringValue else { continue }
            let previous = existing.first { $0.name == name }
            try requireUniqueName(name, excluding: previous?.uid)
            var fields = previous?.fields ?? defaults(.clusterMember)
            fields["ipv4-address"] = spec["ipv4-address"] ?? .string("")
            fields["ipv6-address"] = spec["ipv6-address"] ?? .string("")
            fields["interfaces"] = spec["interfaces"] ?? previous?.fields["interfaces"] ?? .array([])
            for key in ClusterModel.interfacePassThroughKeys where spec[key] != nil { fields[key] = spec[key] }
            let priority = spec["priority"]?.intValue ?? previous?.fields["priority"]?.intValue ?? ClusterModel.defaultPriority(position: position)
            if let other = priorities.updateValue(name, forKey: priority) {
                throw ManagementError.invalid("members[\(position)].priority", "\(priority) is also [\(other)]'s: priorities decide elections and must differ")
            }
            fields["priority"] = .int(priority)
            fields[ClusterModel.clusterField] = .string(cluster.uid)
            let enrolled = fields[ManagedObject.sicStateField]?.stringValue == "initialized"
            if let key = spec[ManagedObject.activationKeyField], !enrolled {
                fields[ManagedObject.activationKeyField] = key
            }
            if fields[ManagedObject.sicStateField] == nil { fields[ManagedObject.sicStateField] = .string("uninitialized") }
            var member =
                previous
                ?? ManagedObject(
                    uid: context.newUID(), type: .clusterMember, name: name, fields: [:],
                    meta: MetaInfo(
                        creator: context.administrator, creationTimeMilliseconds: context.nowMilliseconds,
                        lastModifier: context.administrator, lastModifyTimeMilliseconds: context.nowMilliseconds))
            member.fields = fields
            stamp(&member, context)
            if member != previous { changes.append(.upsert(member)) }
            uids.append(.string(member.uid))
        }
        let kept = Set(uids.compactMap(\.stringValue))
        for gone in existing where !kept.contains(gone.uid) {
            changes.append(.delete(uid: gone.uid, type: gone.type, name: gone.name))
        }
        cluster.fields["members"] = .array(uids)
        return changes
    }
}

// MARK: the policy contract

/// The cluster section of a member's policy: what the gateway's cluster runtime needs to find its
/// peers, elect the active member and hold the virtual addresses. Sent only in a cluster member's
/// policy. JSON keys are the coding keys below; see README "Gateway clusters".
public struct CompiledCluster: Codable, Sendable, Equatable {
    public var clusterName: String
    public var clusterUID: String
    /// Always "cluster-xl-ha" today.
    public var mode: String
    /// "active-up" or "primary-up".
    public var memberRecovery: String
    public var heartbeatIntervalMilliseconds: Int64
    public var deadTimerMilliseconds: Int64
    /// The member this policy is for (its id is its 1-based place in `members`).
    public var localMemberID: Int
    public var localMemberName: String
    public var localMemberUID: String
    public var localPriority: Int64
    /// Every member, the local one included, in member-id order.
    public var members: [CompiledClusterMember]
    /// The cluster's interfaces: a `cluster` interface carries the virtual address the active holds.
    public var interfaces: [CompiledClusterInterface]
    /// The members' shared heartbeat secret (base64, `ClusterModel.heartbeatKeyField`); nil from a
    /// cluster made before keys existed (the runtime then derives one from the uid and warns).
    public var heartbeatKey: String?

    enum CodingKeys: String, CodingKey {
        case clusterName, clusterUID, mode, memberRecovery, heartbeatIntervalMilliseconds, deadTimerMilliseconds
        case localMemberID, localMemberName, localMemberUID, localPriority, members, interfaces, heartbeatKey
    }

    public init(
        clusterName: String, clusterUID: String, mode: String, memberRecovery: String, heartbeatIntervalMilliseconds: Int64,
        deadTimerMilliseconds: Int64, localMemberID: Int, localMemberName: String, localMemberUID: String, localPriority: Int64,
        members: [CompiledClusterMember], interfaces: [CompiledClusterInterface], heartbeatKey: String? = nil
    ) {
        self.clusterName = clusterName
        self.clusterUID = clusterUID
        self.mode = mode
        self.memberRecovery = memberRecovery
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.deadTimerMilliseconds = deadTimerMilliseconds
        self.localMemberID = localMemberID
        self.localMemberName = localMemberName
        self.localMemberUID = localMemberUID
        self.localPriority = localPriority
        self.members = members
        self.interfaces = interfaces
        self.heartbeatKey = heartbeatKey
    }

    /// The local member's entry.
    public var localMember: CompiledClusterMember? { members.first { $0.memberID == localMemberID } }
}

public struct CompiledClusterMember: Codable, Sendable, Equatable {
    public var memberID: Int
    public var name: String
    public var uid: String
    public var priority: Int64
    /// The member's main address (its object's ip-address).
    public var address: String
    public var interfaces: [CompiledClusterInterface]

    enum CodingKeys: String, CodingKey { case memberID, name, uid, priority, address, interfaces }

    public init(memberID: Int, name: String, uid: String, priority: Int64, address: String, interfaces: [CompiledClusterInterface]) {
        self.memberID = memberID
        self.name = name
        self.uid = uid
        self.priority = priority
        self.address = address
        self.interfaces = interfaces
    }
}

/// A cluster interface (its virtual address, for `cluster`) or a member's interface (its own address).
public struct CompiledClusterInterface: Codable, Sendable, Equatable {
    public var name: String
    /// "cluster", "sync", "cluster + sync" or "private".
    public var type: String
    /// Canonical IPv4 or IPv6 text; nil for a sync or private cluster interface without an address.
    public var address: String?
    public var maskLength: Int?

    enum CodingKeys: String, CodingKey { case name, type, address, maskLength }

    public init(name: String, type: String, address: String?, maskLength: Int?) {
        self.name = name
        self.type = type
        self.address = address
        self.maskLength = maskLength
    }

    /// The active member holds this interface's address (type cluster or cluster + sync).
    public var carriesVirtualAddress: Bool { type == "cluster" || type == "cluster + sync" }
    /// Connection state is synchronized over this interface (type sync or cluster + sync).
    public var carriesSync: Bool { type == "sync" || type == "cluster + sync" }
}

/// Builds the cluster section for one member from the stored objects.
public enum ClusterPolicyBuilder {
    public static func section(cluster: ManagedObject, member memberUID: String, reader: any ObjectReader) -> CompiledCluster? {
        let members = cluster.uids("members").compactMap { reader.object(uid: $0) }.filter { $0.type == .clusterMember }
        guard let index = members.firstIndex(where: { $0.uid == memberUID }) else { return nil }
        let settings = ClusterSettings(stored: cluster.fields["cluster-settings"])
        let compiledMembers = members.enumerated().map { position, member in
            CompiledClusterMember(
                memberID: position + 1, name: member.name, uid: member.uid,
                priority: member.fields["priority"]?.intValue ?? ClusterModel.defaultPriority(position: position),
                address: mainAddress(member), interfaces: interfaces(member.fields["interfaces"]))
        }
        let local = compiledMembers[index]
        return CompiledCluster(
            clusterName: cluster.name, clusterUID: cluster.uid, mode: cluster.fields["cluster-mode"]?.stringValue ?? "cluster-xl-ha",
            memberRecovery: settings.memberRecovery, heartbeatIntervalMilliseconds: settings.heartbeatIntervalMilliseconds,
            deadTimerMilliseconds: settings.deadTimerMilliseconds, localMemberID: local.memberID,
            localMemberName: local.name, localMemberUID: local.uid, localPriority: local.priority,
            members: compiledMembers, interfaces: interfaces(cluster.fields["interfaces"]),
            heartbeatKey: cluster.fields[ClusterModel.heartbeatKeyField]?.stringValue)
    }

    static func mainAddress(_ object: ManagedObject) -> String {
        let v4 = object.fields["ipv4-address"]?.stringValue ?? ""
        return v4.isEmpty ? object.fields["ipv6-address"]?.stringValue ?? "" : v4
    }

    static func interfaces(_ value: JSONValue?) -> [CompiledClusterInterface] {
        (value?.arrayValue ?? []).compactMap { item in
            guard let name = item["name"]?.stringValue else { return nil }
            let v4 = item["ipv4-address"]?.stringValue
            let address = v4 ?? item["ipv6-address"]?.stringValue
            let length = (v4 != nil ? item["ipv4-mask-length"] : item["ipv6-mask-length"])?.intValue
            return CompiledClusterInterface(
                name: name, type: item["interface-type"]?.stringValue ?? "private", address: address,
                maskLength: length.map { Int($0) })
        }
    }
}
