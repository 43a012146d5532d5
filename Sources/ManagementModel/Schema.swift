/// What kind of value a field holds; input is checked and normalized by kind.
public enum FieldKind: Sendable, Equatable {
    case text(maxLength: Int)
    case bool
    case integer(ClosedRange<Int64>)
    /// One of the listed words; input matches case-insensitively and is stored as listed.
    case choice([String])
    case ipv4
    case ipv6
    /// A port or port range as Check Point writes it: "80", "1000-2000", ">1024", "<1024".
    case port
    case reference([ObjectType])
    case references([ObjectType])
    /// Rule track: `{"type": <Track ref>, ...flags}`.
    case track
    /// Accepted and stored as given (bounded), not interpreted: nat-settings, interfaces and the like.
    case opaque
    /// Tags: a list of plain names.
    case tags
}

public struct FieldSpec: Sendable {
    public let name: String
    public let kind: FieldKind
    public let defaultValue: JSONValue?
    public init(_ name: String, _ kind: FieldKind, default defaultValue: JSONValue? = nil) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
    }
}

/// The fields of one object type. Aliases (ip-address, subnet, mask-length…) are resolved before
/// fields are checked, by `Normalizer`.
public struct Schema: Sendable {
    public let type: ObjectType
    public let fields: [FieldSpec]
    /// Keys accepted on input and ignored: client control keys and identity keys.
    public let ignoredKeys: Set<String>

    public func field(_ name: String) -> FieldSpec? { fields.first { $0.name == name } }

    /// The fields that have a default, with it: what a new object starts with.
    public var defaults: [String: JSONValue] {
        var out: [String: JSONValue] = [:]
        for spec in fields { if let value = spec.defaultValue { out[spec.name] = value } }
        return out
    }

    static let common: [FieldSpec] = [
        FieldSpec("color", .choice(Predefined.colors), default: .string("black")),
        FieldSpec("comments", .text(maxLength: Limits.commentsLengthMax), default: .string("")),
        FieldSpec("tags", .tags, default: .array([])),
    ]

    static let controlKeys: Set<String> = [
        "details-level", "ignore-warnings", "ignore-errors", "uid", "name", "new-name", "domain",
        "search-entire-rulebase", "async-response", "auto-publish-session", "wait-for-task", "set-if-exist",
    ]

    static let networkTypes: [ObjectType] = [.host, .network, .addressRange, .group]
    static let networkRefTypes: [ObjectType] = [.any, .host, .network, .addressRange, .group]
    static let serviceTypes: [ObjectType] = [.serviceTCP, .serviceUDP, .serviceGroup]

    static let addressFields: [FieldSpec] = [
        FieldSpec("ipv4-address", .ipv4, default: .string("")), FieldSpec("ipv6-address", .ipv6, default: .string("")),
    ]

    /// What simple-gateway and simple-cluster share (CHECKPOINT-API.md §3.4): version, OS, blades, interfaces.
    static let gatewayFields: [FieldSpec] = [
        FieldSpec("version", .text(maxLength: 32), default: .string("R81.20")),
        FieldSpec("os-name", .text(maxLength: 64), default: .string("Gaia")),
        FieldSpec("hardware", .text(maxLength: 64), default: .string("Open server")),
        FieldSpec("firewall", .bool, default: .bool(true)),
        FieldSpec("vpn", .bool, default: .bool(false)),
        FieldSpec("ips", .bool, default: .bool(false)),
        FieldSpec("application-control", .bool, default: .bool(false)),
        FieldSpec("url-filtering", .bool, default: .bool(false)),
        FieldSpec("anti-bot", .bool, default: .bool(false)),
        FieldSpec("anti-virus", .bool, default: .bool(false)),
        FieldSpec("threat-emulation", .bool, default: .bool(false)),
        FieldSpec("threat-extraction", .bool, default: .bool(false)),
        FieldSpec("content-awareness", .bool, default: .bool(false)),
        FieldSpec("interfaces", .opaque, default: .array([])),
    ]

    static func make(_ type: ObjectType, _ specific: [FieldSpec], ignored: Set<String> = []) -> Schema {
        Schema(type: type, fields: common + specific, ignoredKeys: controlKeys.union(ignored))
    }

    static let serviceFields: [FieldSpec] = [
        FieldSpec("port", .port),
        FieldSpec("protocol", .text(maxLength: 64)),
        FieldSpec("source-port", .port),
        FieldSpec("session-timeout", .integer(0...86_400 * 30), default: .int(3600)),
        FieldSpec("use-default-session-timeout", .bool, default: .bool(true)),
        FieldSpec("match-for-any", .bool, default: .bool(true)),
        FieldSpec("match-by-protocol-signature", .bool, default: .bool(false)),
        FieldSpec("sync-connections-on-cluster", .bool, default: .bool(true)),
        FieldSpec("keep-connections-open-after-policy-installation", .bool, default: .bool(false)),
        FieldSpec("override-default-settings", .bool, default: .bool(false)),
        FieldSpec("aggressive-aging", .opaque),
        FieldSpec("groups", .references([.serviceGroup])),
    ]

    static let all: [ObjectType: Schema] = {
        var schemas: [ObjectType: Schema] = [:]
        let groups = FieldSpec("groups", .references([.group]))
        schemas[.host] = make(
            .host,
            [
                FieldSpec("ipv4-address", .ipv4, default: .string("")), FieldSpec("ipv6-address", .ipv6, default: .string("")),
                FieldSpec("interfaces", .opaque), FieldSpec("nat-settings", .opaque), FieldSpec("host-servers", .opaque), groups,
            ])
        schemas[.network] = make(
            .network,
            [
                FieldSpec("subnet4", .ipv4), FieldSpec("mask-length4", .integer(0...32)),
                FieldSpec("subnet6", .ipv6), FieldSpec("mask-length6", .integer(0...128)),
                FieldSpec("broadcast", .choice(["allow", "disallow"]), default: .string("allow")),
                FieldSpec("nat-settings", .opaque), groups,
            ])
        schemas[.addressRange] = make(
            .addressRange,
            [
                FieldSpec("ipv4-address-first", .ipv4), FieldSpec("ipv4-address-last", .ipv4),
                FieldSpec("ipv6-address-first", .ipv6), FieldSpec("ipv6-address-last", .ipv6),
                FieldSpec("nat-settings", .opaque), groups,
            ])
        schemas[.group] = make(.group, [FieldSpec("members", .references(networkTypes), default: .array([])), groups])
        schemas[.serviceTCP] = make(.serviceTCP, serviceFields)
        schemas[.serviceUDP] = make(.serviceUDP, serviceFields + [FieldSpec("accept-replies", .bool, default: .bool(false))])
        schemas[.serviceGroup] = make(
            .serviceGroup,
            [
                FieldSpec("members", .references(serviceTypes), default: .array([])), FieldSpec("groups", .references([.serviceGroup])),
            ])
        schemas[.accessLayer] = make(
            .accessLayer,
            [
                FieldSpec("firewall", .bool, default: .bool(true)),
                FieldSpec("applications-and-url-filtering", .bool, default: .bool(false)),
                FieldSpec("content-awareness", .bool, default: .bool(false)),
                FieldSpec("detect-using-x-forward-for", .bool, default: .bool(false)),
                FieldSpec("mobile-access", .bool, default: .bool(false)),
                FieldSpec("shared", .bool, default: .bool(false)),
                FieldSpec("implicit-cleanup-action", .choice(["drop", "accept"]), default: .string("drop")),
            ], ignored: ["add-default-rule"])
        schemas[.accessSection] = make(.accessSection, [], ignored: ["layer", "position", "new-position"])
        schemas[.accessRule] = make(
            .accessRule,
            [
                FieldSpec("action", .reference([.action]), default: .string(Predefined.dropUID)),
                FieldSpec("source", .references(networkRefTypes), default: .array([.string(Predefined.anyUID)])),
                FieldSpec("destination", .references(networkRefTypes), default: .array([.string(Predefined.anyUID)])),
                FieldSpec("service", .references([.any] + serviceTypes), default: .array([.string(Predefined.anyUID)])),
                FieldSpec("source-negate", .bool, default: .bool(false)),
                FieldSpec("destination-negate", .bool, default: .bool(false)),
                FieldSpec("service-negate", .bool, default: .bool(false)),
                FieldSpec("content-negate", .bool, default: .bool(false)),
                FieldSpec("enabled", .bool, default: .bool(true)),
                FieldSpec("track", .track, default: .object(["type": .string(Predefined.noneTrackUID)])),
                FieldSpec("install-on", .references([.policyTargets] + ObjectType.installable), default: .array([.string(Predefined.policyTargetsUID)])),
                FieldSpec("time", .references([.any]), default: .array([.string(Predefined.anyUID)])),
                FieldSpec("vpn", .references([.any]), default: .array([.string(Predefined.anyUID)])),
                FieldSpec("content", .references([.any]), default: .array([.string(Predefined.anyUID)])),
                FieldSpec("inline-layer", .reference([.accessLayer])),
                FieldSpec("action-settings", .opaque), FieldSpec("custom-fields", .opaque),
                FieldSpec("user-check", .opaque), FieldSpec("content-direction", .opaque),
            ], ignored: ["layer", "position", "new-position", "rule-number"])
        schemas[.package] = make(
            .package,
            [
                FieldSpec("access", .bool, default: .bool(true)),
                FieldSpec("threat-prevention", .bool, default: .bool(true)),
                FieldSpec("qos", .bool, default: .bool(false)),
                FieldSpec("desktop-security", .bool, default: .bool(false)),
                FieldSpec("access-layers", .references([.accessLayer]), default: .array([])),
                FieldSpec("installation-targets", .opaque, default: .string("all")),
            ])
        schemas[.administrator] = make(
            .administrator,
            [
                FieldSpec("password-hash", .text(maxLength: 512)),
                FieldSpec("permissions-profile", .choice(["super-user", "read-write", "read-only"]), default: .string("read-write")),
                FieldSpec(
                    "authentication-method",
                    .choice([
                        "check point password", "os password", "securid", "radius", "tacacs", "ad authentication", "api key", "undefined",
                    ]), default: .string("check point password")),
                FieldSpec("email", .text(maxLength: 256)),
                FieldSpec("phone-number", .text(maxLength: 64)),
                FieldSpec("expiration-date", .text(maxLength: 10)),
                FieldSpec("must-change-password", .bool, default: .bool(false)),
            ], ignored: ["password"])
        schemas[.checkpointHost] = make(
            .checkpointHost,
            [
                FieldSpec("ipv4-address", .ipv4, default: .string("")), FieldSpec("ipv6-address", .ipv6, default: .string("")),
                FieldSpec("version", .text(maxLength: 32), default: .string("R81.20")),
                FieldSpec("os", .text(maxLength: 64), default: .string("Gaia")),
                FieldSpec("hardware", .text(maxLength: 64), default: .string("Open server")),
                FieldSpec("management-blades", .opaque, default: .object(["network-policy-management": .bool(true), "logging-and-status": .bool(true)])),
                FieldSpec("logs-settings", .opaque), FieldSpec("interfaces", .opaque), FieldSpec("nat-settings", .opaque),
                FieldSpec("send-logs-to-server", .opaque), FieldSpec("send-logs-to-backup-server", .opaque),
                FieldSpec("send-alerts-to-server", .opaque), FieldSpec("save-logs-locally", .bool, default: .bool(false)),
            ], ignored: ["one-time-password"])
        schemas[.simpleGateway] = make(
            .simpleGateway,
            addressFields + gatewayFields + [
                FieldSpec("send-logs-to-server", .opaque), FieldSpec("send-logs-to-backup-server", .opaque),
                FieldSpec("send-alerts-to-server", .opaque), FieldSpec("save-logs-locally", .bool, default: .bool(false)),
                FieldSpec("logs-settings", .opaque), FieldSpec("vpn-settings", .opaque), FieldSpec("firewall-settings", .opaque),
                FieldSpec("ips-settings", .opaque), FieldSpec("nat-settings", .opaque),
            ], ignored: ["one-time-password"])
        schemas[.simpleCluster] = make(
            .simpleCluster,
            addressFields + gatewayFields + [
                FieldSpec("cluster-mode", .choice(ClusterModel.supportedModes), default: .string("cluster-xl-ha")),
                // Member uids (cluster-member objects), in member-id order; input is checked by ClusterModel.
                FieldSpec("members", .opaque, default: .array([])),
                FieldSpec("cluster-settings", .opaque, default: ClusterSettings.defaults.json),
            ])
        schemas[.clusterMember] = make(
            .clusterMember,
            addressFields + [
                FieldSpec("interfaces", .opaque, default: .array([])),
                FieldSpec("priority", .integer(Limits.clusterPriorityRange)),
                FieldSpec(ClusterModel.clusterField, .text(maxLength: Limits.nameLengthMax)),
            ])
        schemas[.smartTask] = make(
            .smartTask,
            [
                // Stored as SmartTaskInput normalizes them; SmartTaskDefinition parses them back.
                FieldSpec("trigger", .text(maxLength: Limits.nameLengthMax)),
                FieldSpec("action", .opaque),
                FieldSpec("custom-data", .text(maxLength: Limits.smartTaskCustomDataBytesMax), default: .string("")),
                FieldSpec("description", .text(maxLength: Limits.commentsLengthMax), default: .string("")),
                FieldSpec("enabled", .bool, default: .bool(false)),
                FieldSpec("fail-open", .bool, default: .bool(true)),
            ])
        schemas[.repositoryScript] = make(
            .repositoryScript, [FieldSpec("script-body", .text(maxLength: Limits.repositoryScriptBodyBytesMax))])
        for predefined in [ObjectType.any, .action, .track, .policyTargets] { schemas[predefined] = make(predefined, []) }
        return schemas
    }()

    public static func of(_ type: ObjectType) -> Schema { all[type]! }
}
