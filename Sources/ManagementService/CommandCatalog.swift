import ManagementModel

/// An administrator's permission profile (CHECKPOINT-API.md §3.4), ordered by what it allows.
public enum PermissionProfile: String, Sendable, Comparable, CaseIterable {
    case readOnly = "read-only"
    case readWrite = "read-write"
    case superUser = "super-user"

    var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
    public static func < (lhs: PermissionProfile, rhs: PermissionProfile) -> Bool { lhs.rank < rhs.rank }
}

/// What a command asks of the session that runs it.
public enum CommandPermission: String, Sendable, CaseIterable {
    /// Any session.
    case readOnly = "read-only"
    /// A read-write session of a read-write administrator or a super-user.
    case readWrite = "read-write"
    /// A read-write session of a super-user.
    case superUser = "super-user"
    /// The caller's own sessions (any session of the same administrator); another administrator's
    /// session (`uid`) only from a read-write session of a super-user.
    case ownSessionOrSuperUser = "own-session-or-super-user"
}

/// The kind of value a parameter takes, for help and for checking input.
public enum ParameterType: Sendable, Equatable {
    case string
    case integer
    case boolean
    case choice([String])
    case ipv4Address
    case ipv6Address
    /// An IPv4 or IPv6 address.
    case ipAddress
    /// "80", "1000-2000", ">1024", "<1024".
    case port
    /// A name or uid of another object.
    case reference
    /// A list of names or uids.
    case references
    /// A rule or section position: a number, "top", "bottom" or {"above"|"below"|"top"|"bottom": name}.
    case position
    /// A JSON object.
    case object
    /// A JSON list.
    case list
    /// A string or a list of strings.
    case stringOrList

    public var text: String {
        switch self {
        case .string: "string"
        case .integer: "integer"
        case .boolean: "boolean"
        case .choice(let words): words.joined(separator: "|")
        case .ipv4Address: "IPv4 address"
        case .ipv6Address: "IPv6 address"
        case .ipAddress: "IP address"
        case .port: "port"
        case .reference: "name or uid"
        case .references: "list of names or uids"
        case .position: "position"
        case .object: "object"
        case .list: "list"
        case .stringOrList: "string or list"
        }
    }
}

public struct CommandParameter: Sendable, Equatable {
    public let name: String
    public let type: ParameterType
    public let required: Bool
    public let summary: String

    init(_ name: String, _ type: ParameterType, required: Bool = false, _ summary: String) {
        self.name = name
        self.type = type
        self.required = required
        self.summary = summary
    }
}

/// One Web API command: whether it changes anything, whether it needs a session, the permission it
/// needs, and its parameters. The dispatcher serves exactly the commands of `CommandCatalog.all`, each
/// with its handler (`CommandTable`).
public struct CommandSpec: Sendable {
    public let name: String
    public let summary: String
    /// It changes the management database, the HA group or what gateways enforce.
    public let changes: Bool
    public let needsSession: Bool
    public let permission: CommandPermission
    /// It records changes in the caller's session, to be published.
    public let draftsChanges: Bool
    /// An HA command: the HA runtime decides whether it fits this server's state (a promotion runs on a
    /// standby), not the standby's read-only rule.
    public let isHACommand: Bool
    public let parameters: [CommandParameter]

    /// A standby refuses it, naming the active. HA commands decide for themselves.
    public var refusedOnStandby: Bool { changes && !isHACommand }

    /// The weakest profile that may run it (on the caller's own session).
    public var profileRequired: PermissionProfile {
        switch permission {
        case .readOnly, .ownSessionOrSuperUser: .readOnly
        case .readWrite: .readWrite
        case .superUser: .superUser
        }
    }
}

/// Every Web API command this server serves: the one list the dispatcher, the standby's read-only
/// rule, `rampart mgmt` (help, publish after a change) and the tests take commands from.
public enum CommandCatalog {
    public static let all: [CommandSpec] =
        sessionCommands + queryCommands + objectCommands + policyCommands
        + sicCommands + haCommands + operationsCommands + smartTaskCommands

    static let byName: [String: CommandSpec] = Dictionary(all.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    public static func spec(named name: String) -> CommandSpec? { byName[name] }

    // MARK: building blocks

    static func command(
        _ name: String, _ summary: String, changes: Bool = false, session: Bool = true,
        _ permission: CommandPermission = .readOnly, drafts: Bool = false, ha: Bool = false,
        _ parameters: [CommandParameter] = []
    ) -> CommandSpec {
        CommandSpec(
            name: name, summary: summary, changes: changes, needsSession: session, permission: permission,
            draftsChanges: drafts, isHACommand: ha, parameters: parameters)
    }

    /// A read-only command with parameters.
    static func command(_ name: String, _ summary: String, _ parameters: [CommandParameter]) -> CommandSpec {
        command(name, summary, .readOnly, parameters)
    }

    static let paging: [CommandParameter] = [
        CommandParameter("limit", .integer, "Most items to return (1 to \(Limits.pageSizeMax), default \(Limits.pageSizeDefault))."),
        CommandParameter("offset", .integer, "Items to skip (default 0)."),
        CommandParameter("details-level", .choice(["uid", "standard", "full"]), "How much of each item to show (default standard)."),
    ]
    static let identity: [CommandParameter] = [
        CommandParameter("name", .string, "The object's name (name or uid identifies it)."),
        CommandParameter("uid", .string, "The object's uid (name or uid identifies it)."),
    ]
    static let detailsLevel = CommandParameter("details-level", .choice(["uid", "standard", "full"]), "How much of the reply to show.")
    static let controlFlags: [CommandParameter] = [
        detailsLevel,
        CommandParameter("ignore-warnings", .boolean, "Go ahead despite warnings."),
        CommandParameter("ignore-errors", .boolean, "Go ahead despite errors (the session cannot be published while they remain)."),
    ]

    // MARK: the commands

    static let sessionCommands: [CommandSpec] = [
        command(
            "login", "Log in; returns the sid for X-chkp-sid and the session's uid.", session: false, .readOnly,
            [
                CommandParameter("user", .string, required: true, "Administrator name."),
                CommandParameter("password", .string, required: true, "The administrator's password."),
                CommandParameter("read-only", .boolean, "Open a read-only session (default false)."),
                CommandParameter("session-name", .string, "A name for the session."),
                CommandParameter("session-description", .string, "A description of the session."),
                CommandParameter(
                    "session-timeout", .integer,
                    "Idle seconds before the session ends (10 to \(Limits.sessionTimeoutSecondsMax), default \(Limits.sessionTimeoutSecondsDefault))."),
                CommandParameter("domain", .string, "\"SMC User\", \"System Data\" or the local domain's uid."),
                CommandParameter("login-as-root", .boolean, "Log in as root without a password: only on the local socket DIR/rampart.sock."),
            ]),
        command("show-api-versions", "The API versions this server serves.", session: false),
        command("logout", "End the session (pending changes stay as a disconnected session)."),
        command("keepalive", "Restart the session's idle timer."),
        command(
            "publish", "Publish the session's changes as one revision (returns a task-id).", changes: true, .ownSessionOrSuperUser,
            [
                CommandParameter("uid", .string, "Another session to publish: one of your own, or any as a super-user.")
            ]),
        command(
            "discard", "Drop the session's pending changes and their locks.", .ownSessionOrSuperUser,
            [
                CommandParameter("uid", .string, "Another session to discard: one of your own, or any as a super-user.")
            ]),
        command("show-session", "One session (default: the caller's).", [CommandParameter("uid", .string, "The session's uid.")]),
        command("show-sessions", "Open and disconnected sessions.", paging),
        command(
            "show-task", "Tasks by id.",
            [
                CommandParameter("task-id", .stringOrList, required: true, "A task id, or a list of them."), detailsLevel,
            ]),
        command("show-tasks", "Recent tasks, newest first.", paging),
    ]

    static let queryCommands: [CommandSpec] = [
        command("show-changes", "Published revisions as Check Point's show-changes task.", paging),
        command(
            "show-revisions", "The revision journal, newest first.",
            [
                CommandParameter("number", .integer, "Show this revision with its operations.")
            ] + paging),
        command(
            "show-objects", "Objects of every type, or of one type.",
            [
                CommandParameter("type", .string, "An object type (host, group...); default every type."),
                CommandParameter("filter", .string, "Only objects whose name contains this text."),
            ] + paging),
        command("show-object", "One object of any type, by uid.", [CommandParameter("uid", .string, required: true, "The object's uid."), detailsLevel]),
        command("where-used", "The objects and rules that refer to an object.", identity),
        command(
            "equals", "Whether set-<type> with these parameters would change nothing (Ansible's idempotence check).",
            [
                CommandParameter("type", .string, required: true, "The object type."),
                CommandParameter("params", .object, required: true, "The parameters set-<type> would get (name or uid identifies the object)."),
            ]),
        command(
            "show-logs", "Logs gateways sent to this server.",
            [
                CommandParameter("new-query", .object, "filter, time-frame, custom-start, custom-end, max-logs-per-request."),
                CommandParameter("query-id", .string, "The next page of an earlier query."),
            ]),
        command("show-ha-status", "HA status of this server and its peers."),
        command(
            "show-live-view",
            "One snapshot for `rampart view`: HA status, peers' clock offsets, sessions, locks, gateways, cluster members, publish counters, the last events."
        ),
        command(
            "show-smart-task-executions", "This server's smart-task executions, newest first (node-local history).",
            [
                CommandParameter("task", .string, "Only this task's (name or uid)."),
                CommandParameter("trigger", .string, "Only this trigger's (\"After Publish\", \"HA State Changed\"...)."),
                CommandParameter(
                    "result", .choice(["succeeded", "failed", "dead-letter", "vetoed", "failed-open", "skipped", "expired"]), "Only this result."),
                CommandParameter("limit", .integer, "Most items to return (1 to \(Limits.pageSizeMax), default \(Limits.pageSizeDefault))."),
                CommandParameter("offset", .integer, "Items to skip (default 0)."),
            ]),
    ]

    static let policyCommands: [CommandSpec] = [
        command(
            "show-access-rulebase", "A layer's rules, sections nesting their rules.",
            identity + [
                CommandParameter("layer", .reference, "The layer (also given as name or uid)."),
                CommandParameter("use-object-dictionary", .boolean, "References as uids with an objects-dictionary (default true)."),
                CommandParameter("limit", .integer, "Most rules to return (0 to \(Limits.pageSizeMax), default \(Limits.pageSizeDefault))."),
                CommandParameter("offset", .integer, "Rules to skip (default 0)."), detailsLevel,
            ]),
        command("show-layer-structure", "A layer's sections and their rule ranges.", identity + paging),
        command(
            "install-policy", "Install a published policy package on gateways (returns a task-id).", changes: true, .readWrite,
            [
                CommandParameter("policy-package", .reference, required: true, "The package."),
                CommandParameter("targets", .references, "Gateways and clusters (default: the package's installation targets)."),
                CommandParameter("prepare-only", .boolean, "Compile only; push nothing."),
                CommandParameter("revision", .string, "The revision to install (only the latest published)."),
            ]),
        command(
            "verify-policy", "Check a policy package for every problem (returns a task-id).",
            [
                CommandParameter("policy-package", .reference, required: true, "The package."),
                CommandParameter("targets", .references, "Gateways and clusters to verify for."),
            ]),
        command(
            "show-gateways-and-servers", "Gateways, clusters and management servers with their status.",
            paging + [
                CommandParameter("filter", .string, "Only objects whose name contains this text.")
            ]),
        command("show-cluster-member", "A cluster member (made by its simple-cluster) with its SIC and cluster state.", identity + [detailsLevel]),
        command(
            "show-cluster-members", "Every cluster member with its SIC and cluster state.",
            paging + [
                CommandParameter("filter", .string, "Only members whose name contains this text."), detailsLevel,
            ]),
    ]

    static let sicCommands: [CommandSpec] = [
        command("test-sic-status", "A management server's or gateway's SIC state.", identity),
        command(
            "reset-sic", "Revoke a node's certificate at once and set a new one-time key (published with the session).",
            changes: true, .superUser, drafts: true,
            identity + [
                CommandParameter("one-time-password", .string, "The new activation key (default: a generated one, shown once).")
            ]),
    ]

    static let haCommands: [CommandSpec] = [
        command("show-ha-state", "Every server of the HA group with its HA state.", ha: true),
        command(
            "set-ha-state", "Promote this standby (active) or stop this active's writes (standby).", changes: true, .superUser, ha: true,
            [
                CommandParameter("new-state", .choice(["active", "standby"]), required: true, "The state to take."),
                CommandParameter("ignore-errors", .boolean, "Fail over even if revisions may be lost."),
            ]),
        command(
            "ha-full-sync", "Send a full copy of the database to a standby (returns a task-id).", changes: true, .superUser, ha: true,
            [
                CommandParameter("name", .string, required: true, "The standby's server name."),
                CommandParameter("ignore-errors", .boolean, "Accepted and ignored."),
            ]),
        command(
            "ha-promote", "Make this standby the active (switchover, or failover when the active is gone).", changes: true, .superUser, ha: true,
            [
                CommandParameter("dry-run", .boolean, "Only report what would happen."),
                CommandParameter("force", .boolean, "Fail over even if revisions may be lost."),
            ]),
        command("ha-stop", "Pause synchronization on this server.", changes: true, .superUser, ha: true),
        command("ha-start", "Resume synchronization on this server.", changes: true, .superUser, ha: true),
        command(
            "ha-resolve-collision", "Keep one side's data after a collision (the other's revisions are exported first).", changes: true, .superUser, ha: true,
            [
                CommandParameter("keep", .choice(["local", "peer"]), required: true, "Whose data to keep.")
            ]),
        command("ha-export-divergent", "Write the revisions only this server holds to a file on the server.", .superUser, ha: true),
        command(
            "ha-set-replication-mode", "Replication mode of the HA group.", changes: true, .superUser, ha: true,
            [
                CommandParameter("mode", .choice(["async", "sync"]), required: true, "async, or sync (a publish waits for a standby)."),
                CommandParameter("timeout-ms", .integer, "Sync mode: how long a publish waits for a standby."),
            ]),
    ]

    static let operationsCommands: [CommandSpec] = [
        command(
            "export-management", "Write the migrate export (every object, password hashes, the Internal CA's key) to a file on the server (returns a task-id).",
            .superUser,
            [
                CommandParameter("file-path", .string, required: true, "An absolute path on the management server."),
                CommandParameter("include-logs", .boolean, "Refused: logs go into backups."),
                CommandParameter("include-logs-indexes", .boolean, "Refused: logs go into backups."),
            ])
    ]

    static let smartTaskCommands: [CommandSpec] = [
        command(
            "show-smart-task-trigger", "One SmartTask trigger.",
            identity + [detailsLevel]),
        command(
            "show-smart-task-triggers", "The SmartTask triggers (Check Point's and Rampart's).",
            paging + [CommandParameter("filter", .string, "Only triggers whose name contains this text.")]),
        command(
            "export-smart-task", "A smart-task and its repository script as JSON for import-smart-task (the shared secret is left out).",
            identity + [CommandParameter("file-path", .string, "Refused: the export is the reply.")]),
        command(
            "import-smart-task", "Add a smart-task (and its repository script) from export-smart-task's reply, to be published.",
            changes: true, .readWrite, drafts: true,
            [
                CommandParameter("smart-task", .object, required: true, "export-smart-task's smart-task."),
                CommandParameter("repository-script", .object, "export-smart-task's repository-script (adding it needs a super-user)."),
                CommandParameter("file-path", .string, "Refused: give the export itself."),
            ]),
    ]

    // MARK: objects

    /// Changing these needs a super-user: administrators hold passwords and profiles; management
    /// servers receive the whole database and the Internal CA's key; gateways get a certificate of
    /// the Internal CA with their one-time key.
    /// A repository script runs on this server as the server's user (run-script smart-tasks need a
    /// super-user too: `requireSmartTaskProfile`).
    static let superUserTypes: Set<ObjectType> = [.administrator, .checkpointHost, .simpleGateway, .simpleCluster, .repositoryScript]

    static let objectCommands: [CommandSpec] = ObjectType.creatable.flatMap { type -> [CommandSpec] in
        let permission: CommandPermission = superUserTypes.contains(type) ? .superUser : .readWrite
        let name = type.rawValue
        let isRuleLike = type == .accessRule || type == .accessSection
        let layer = isRuleLike ? [CommandParameter("layer", .reference, required: true, "The layer it is in.")] : []
        let fields = objectFields(type)
        var commands = [
            command(
                "add-\(name)", "Add a \(name).", changes: true, permission, drafts: true,
                [CommandParameter("name", .string, required: type.hasUniqueName, "The name.")] + layer + addOnly(type) + fields + controlFlags),
            command(
                "set-\(name)", "Change a \(name).", changes: true, permission, drafts: true,
                identity + layer + setOnly(type) + [CommandParameter("new-name", .string, "A new name.")] + fields + controlFlags),
            command("show-\(name)", "Show a \(name).", identity + layer + [detailsLevel]),
            command("delete-\(name)", "Delete a \(name).", changes: true, permission, drafts: true, identity + layer + controlFlags),
        ]
        if let plural = type.plural {
            commands.append(
                command("show-\(plural)", "List \(plural).", paging + [CommandParameter("filter", .string, "Only objects whose name contains this text.")]))
        }
        return commands
    }

    static func addOnly(_ type: ObjectType) -> [CommandParameter] {
        switch type {
        case .accessRule, .accessSection:
            [CommandParameter("position", .position, required: true, "Where: a number, top, bottom, or {above|below|top|bottom: rule or section}.")]
        case .accessLayer: [CommandParameter("add-default-rule", .boolean, "Add the Cleanup rule (default true).")]
        default: []
        }
    }

    static func setOnly(_ type: ObjectType) -> [CommandParameter] {
        switch type {
        case .accessRule:
            [
                CommandParameter("rule-number", .integer, "Identifies the rule by its number."),
                CommandParameter("new-position", .position, "Move it: a number, top, bottom, or {above|below|top|bottom: rule or section}."),
            ]
        case .accessSection: [CommandParameter("new-position", .position, "Move it.")]
        default: []
        }
    }

    /// Input the type takes besides its stored fields: aliases and secrets that are turned into fields.
    static func inputAliases(_ type: ObjectType) -> [CommandParameter] {
        switch type {
        case .host: [CommandParameter("ip-address", .ipAddress, "IPv4 or IPv6 address.")]
        case .network:
            [
                CommandParameter("subnet", .ipAddress, "IPv4 or IPv6 network address."),
                CommandParameter("mask-length", .integer, "Prefix length."),
                CommandParameter("subnet-mask", .ipv4Address, "IPv4 netmask (instead of mask-length)."),
            ]
        case .addressRange:
            [
                CommandParameter("ip-address-first", .ipAddress, "First address."),
                CommandParameter("ip-address-last", .ipAddress, "Last address."),
            ]
        case .checkpointHost, .simpleGateway:
            [
                CommandParameter("ip-address", .ipAddress, "IPv4 or IPv6 address."),
                CommandParameter("one-time-password", .string, "One-time SIC activation key (8 to 128 characters)."),
            ]
        case .simpleCluster: [CommandParameter("ip-address", .ipAddress, "IPv4 or IPv6 address.")]
        // members, interfaces and cluster-settings are fields (below); their items are described in README "Gateway clusters".
        case .administrator: [CommandParameter("password", .string, "The password (stored as a PBKDF2 hash).")]
        case .repositoryScript: [CommandParameter("script-body-base64", .string, "The script body in base64 (instead of script-body).")]
        default: []
        }
    }

    /// The stored fields of a type as parameters (its schema), after its aliases.
    static func objectFields(_ type: ObjectType) -> [CommandParameter] {
        inputAliases(type)
            + Schema.of(type).fields.map { field in
                let (kind, summary) = describe(field.kind)
                let defaultText = field.defaultValue.map { " Default: \($0.canonicalString)." } ?? ""
                return CommandParameter(field.name, kind, summary + defaultText)
            }
    }

    static func describe(_ kind: FieldKind) -> (ParameterType, String) {
        switch kind {
        case .text(let length): (.string, "Text of at most \(length) characters.")
        case .bool: (.boolean, "true or false.")
        case .integer(let range): (.integer, "\(range.lowerBound) to \(range.upperBound).")
        case .choice(let words) where words.count > 8: (.string, "One of \(words.count) names, such as \(words.prefix(3).joined(separator: ", ")).")
        case .choice(let words): (.choice(words), "One of the listed words.")
        case .ipv4: (.ipv4Address, "An IPv4 address.")
        case .ipv6: (.ipv6Address, "An IPv6 address.")
        case .port: (.port, "80, 1000-2000, >1024 or <1024.")
        case .reference(let types): (.reference, "A \(types.map(\.rawValue).joined(separator: " or ")) by name or uid.")
        case .references(let types):
            (.references, "\(types.map(\.rawValue).joined(separator: ", ")) by name or uid; in set-, also {\"add\": [...]} or {\"remove\": [...]}.")
        case .track: (.object, "{\"type\": None|Log|...}, with optional flags.")
        case .opaque: (.object, "Stored as given.")
        case .tags: (.list, "A list of tag names.")
        }
    }
}
