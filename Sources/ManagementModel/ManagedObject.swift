/// The object types Rampart manages. The raw value is Check Point's type name (`add-<raw>`).
public enum ObjectType: String, Sendable, CaseIterable, Comparable {
    case host
    case network
    case addressRange = "address-range"
    case group
    case serviceTCP = "service-tcp"
    case serviceUDP = "service-udp"
    case serviceGroup = "service-group"
    case accessLayer = "access-layer"
    case accessSection = "access-section"
    case accessRule = "access-rule"
    case package
    case administrator
    case checkpointHost = "checkpoint-host"
    case simpleGateway = "simple-gateway"
    case simpleCluster = "simple-cluster"
    /// A member of a simple-cluster: made and changed only through its cluster's add/set/delete.
    case clusterMember = "cluster-member"
    /// A SmartTask: an action run on a trigger (SmartTaskModel.swift).
    case smartTask = "smart-task"
    /// A script run-script SmartTasks run on the server.
    case repositoryScript = "repository-script"
    // Predefined objects, never created by administrators.
    case any = "CpmiAnyObject"
    case action = "RulebaseAction"
    case track = "Track"
    case policyTargets = "Global"

    /// Types an administrator can add with `add-<type>`.
    public static let creatable: [ObjectType] = [
        .host, .network, .addressRange, .group, .serviceTCP, .serviceUDP, .serviceGroup,
        .accessLayer, .accessSection, .accessRule, .package, .administrator, .checkpointHost,
        .simpleGateway, .simpleCluster, .smartTask, .repositoryScript,
    ]

    /// The plural used by `show-<plural>`, as Check Point names it.
    public var plural: String? {
        switch self {
        case .serviceTCP: return "services-tcp"
        case .serviceUDP: return "services-udp"
        case .accessSection, .accessRule, .any, .action, .track, .policyTargets: return nil
        default: return rawValue + "s"
        }
    }

    /// Rules and sections are named per layer and may repeat; everything else has a unique name.
    public var hasUniqueName: Bool { self != .accessRule && self != .accessSection }
    public var isPredefined: Bool { [.any, .action, .track, .policyTargets].contains(self) }
    public var isNetworkObject: Bool { [.host, .network, .addressRange, .group].contains(self) }
    public var isService: Bool { [.serviceTCP, .serviceUDP, .serviceGroup].contains(self) }
    /// Objects that policy is installed on: rule `install-on`, package `installation-targets`.
    /// What install-policy installs on, and install-on and installation-targets may name.
    public static let installable: [ObjectType] = [.simpleGateway, .simpleCluster]

    public static func < (lhs: ObjectType, rhs: ObjectType) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Who made and last changed an object, and when (milliseconds since 1970).
public struct MetaInfo: Sendable, Equatable {
    public var creator: String
    public var creationTimeMilliseconds: Int64
    public var lastModifier: String
    public var lastModifyTimeMilliseconds: Int64

    public init(creator: String, creationTimeMilliseconds: Int64, lastModifier: String, lastModifyTimeMilliseconds: Int64) {
        self.creator = creator
        self.creationTimeMilliseconds = creationTimeMilliseconds
        self.lastModifier = lastModifier
        self.lastModifyTimeMilliseconds = lastModifyTimeMilliseconds
    }
}

/// One object of the management database. `fields` hold the normalized values: references are
/// uids, addresses canonical text; the common fields `color`, `comments` and `tags` live there too.
public struct ManagedObject: Sendable, Equatable {
    public var uid: String
    public var type: ObjectType
    public var name: String
    public var fields: [String: JSONValue]
    public var meta: MetaInfo

    public init(uid: String, type: ObjectType, name: String, fields: [String: JSONValue], meta: MetaInfo) {
        self.uid = uid
        self.type = type
        self.name = name
        self.fields = fields
        self.meta = meta
    }

    public subscript(field: String) -> JSONValue? { fields[field] }

    public func uids(_ field: String) -> [String] {
        fields[field]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    /// Every uid this object refers to, for where-used and deletion checks.
    public var referencedUIDs: [String] {
        var out: [String] = []
        for key in fields.keys.sorted() {
            guard let spec = Schema.of(type).field(key) else { continue }
            switch spec.kind {
            case .reference: if let uid = fields[key]?.stringValue { out.append(uid) }
            case .references: out.append(contentsOf: uids(key))
            case .track: if let uid = fields[key]?["type"]?.stringValue { out.append(uid) }
            default: break
            }
        }
        // A run-script task refers to its script and targets inside its action.
        if type == .smartTask, let runScript = fields["action"]?["run-script"] {
            if let script = runScript["repository-script"]?.stringValue { out.append(script) }
            out.append(contentsOf: runScript["targets"]?.arrayValue?.compactMap(\.stringValue) ?? [])
        }
        return out
    }

    /// The stored form: the after-image in revisions and the row body in the store.
    public var json: JSONValue {
        .object([
            "uid": .string(uid), "type": .string(type.rawValue), "name": .string(name),
            "fields": .object(fields),
            "meta": .object([
                "creator": .string(meta.creator), "creation-time": .int(meta.creationTimeMilliseconds),
                "last-modifier": .string(meta.lastModifier), "last-modify-time": .int(meta.lastModifyTimeMilliseconds),
            ]),
        ])
    }

    public init?(json: JSONValue) {
        guard let uid = json["uid"]?.stringValue, let typeName = json["type"]?.stringValue,
            let type = ObjectType(rawValue: typeName), let name = json["name"]?.stringValue,
            let fields = json["fields"]?.objectValue, let meta = json["meta"]
        else { return nil }
        self.init(
            uid: uid, type: type, name: name, fields: fields,
            meta: MetaInfo(
                creator: meta["creator"]?.stringValue ?? "", creationTimeMilliseconds: meta["creation-time"]?.intValue ?? 0,
                lastModifier: meta["last-modifier"]?.stringValue ?? "", lastModifyTimeMilliseconds: meta["last-modify-time"]?.intValue ?? 0))
    }
}

/// Read access to a database view (published, or published plus one session's pending changes).
/// The model resolves references through it; it never does I/O itself.
public protocol ObjectReader {
    func object(uid: String) -> ManagedObject?
    /// Objects with exactly this name (any type).
    func objects(named name: String) -> [ManagedObject]
    /// Objects whose references include `uid`.
    func referrers(of uid: String) -> [ManagedObject]
}

extension ObjectReader {
    /// An object by uid, falling back to the predefined objects (Any, actions, tracks).
    public func lookup(uid: String) -> ManagedObject? { Predefined.byUID[uid] ?? object(uid: uid) }
}
