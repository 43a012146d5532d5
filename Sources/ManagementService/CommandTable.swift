import ManagementModel

/// How the dispatcher runs a command.
enum CommandHandler: Sendable {
    /// `login`: the password is checked outside the service's actor first (PBKDF2 takes tens of ms).
    case login
    /// Served without a session, inside the actor.
    case open(@Sendable (isolated ManagementService, _ params: [String: JSONValue]) throws -> APIResponse)
    /// Served inside the actor, on the caller's session (its uid).
    case session(@Sendable (isolated ManagementService, _ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse)
    /// Authorized inside the actor, then run outside it: it may wait (for peers, for a worker).
    case outside(@Sendable (ManagementService, _ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse)
}

/// One command as the dispatcher finds it: what the catalog says of it, and its handler.
struct CommandEntry: Sendable {
    let spec: CommandSpec
    let handler: CommandHandler
}

/// The one table commands are routed by: every command of `CommandCatalog.all` with its handler from
/// `ManagementService.handlers`, looked up once per request. The two lists name the same commands
/// (a command without a handler, or a handler without a command, is a programmer error).
enum CommandTable {
    static let entries: [String: CommandEntry] = {
        let handlers = ManagementService.handlers
        var entries: [String: CommandEntry] = [:]
        for spec in CommandCatalog.all {
            guard let handler = handlers[spec.name] else { preconditionFailure("the command catalog lists \(spec.name), but no handler serves it") }
            entries[spec.name] = CommandEntry(spec: spec, handler: handler)
        }
        precondition(
            entries.count == handlers.count,
            "handlers of commands the catalog does not list: \(Set(handlers.keys).subtracting(entries.keys).sorted())")
        return entries
    }()

    static func entry(named name: String) -> CommandEntry? { entries[name] }
}

extension ManagementService {
    /// Every command's handler, by name (the catalog says what each command needs; `CommandTable`
    /// joins the two).
    static let handlers: [String: CommandHandler] = {
        var table: [String: CommandHandler] = [
            "login": .login,
            "show-api-versions": .open { _, _ in
                APIResponse.ok(["current-version": .string(APIVersions.current), "supported-versions": .array(APIVersions.supported.map(JSONValue.string))])
            },
            // sessions and tasks
            "logout": .session { try $0.logout($1, $2) },
            "keepalive": .session { _, _, _ in .okMessage },
            // outside the actor: Before Publish smart-tasks run first and may veto (SmartTaskPort.swift)
            "publish": .outside { try await $0.publishWithSmartTasks($1, $2) },
            "discard": .session { try $0.discard($1, $2) },
            "show-session": .session { try $0.showSession($1, $2) },
            "show-sessions": .session { try $0.showSessions($1, $2) },
            "show-task": .session { try $0.showTask($1, $2) },
            "show-tasks": .session { try $0.showTasks($1, $2) },
            // queries
            "show-changes": .session { try $0.showChanges($1, $2) },
            "show-revisions": .session { try $0.showRevisions($1, $2) },
            "show-objects": .session { try $0.showObjects($1, $2) },
            "show-object": .session { try $0.showObject($1, $2) },
            "where-used": .session { try $0.whereUsed($1, $2) },
            "equals": .session { try $0.equals($1, $2) },
            "show-logs": .session { try $0.showLogs($1, $2) },
            "show-ha-status": .session { try $0.showHAStatus($1, $2) },
            "show-live-view": .session { try $0.showLiveView($1, $2) },
            "show-smart-task-executions": .outside { try await $0.showSmartTaskExecutions($1, $2) },
            // policy
            "show-access-rulebase": .session { try $0.showAccessRulebase($1, $2) },
            "show-layer-structure": .session { try $0.showLayerStructure($1, $2) },
            "install-policy": .session { try $0.installPolicy($1, $2) },
            "verify-policy": .session { try $0.verifyPolicy($1, $2) },
            "show-gateways-and-servers": .session { try $0.showGatewaysAndServers($1, $2) },
            "show-cluster-member": .session { try $0.objectCommand(.show, .clusterMember, $1, sessionUID: $2) },
            "show-cluster-members": .session { try $0.objectCommand(.list, .clusterMember, $1, sessionUID: $2) },
            // SIC
            "test-sic-status": .session { try $0.testSICStatus($1, $2) },
            "reset-sic": .session { try $0.resetSIC($1, $2) },
            // HA: parsed here, carried out by the HA port outside the actor
            "show-ha-state": .outside { try await $0.showHAState($1, $2) },
            "set-ha-state": .outside { try await $0.setHAState($1, $2) },
            "ha-full-sync": .outside { try await $0.haFullSync($1, $2) },
            "ha-promote": .outside { try await $0.haPromote($1, $2) },
            "ha-stop": .outside { try await $0.haStop($1, $2) },
            "ha-start": .outside { try await $0.haStart($1, $2) },
            "ha-resolve-collision": .outside { try await $0.haResolveCollision($1, $2) },
            "ha-export-divergent": .outside { try await $0.haExportDivergent($1, $2) },
            "ha-set-replication-mode": .outside { try await $0.haSetReplicationMode($1, $2) },
            // SmartTasks
            "show-smart-task-trigger": .session { try $0.showSmartTaskTrigger($1, $2) },
            "show-smart-task-triggers": .session { try $0.showSmartTaskTriggers($1, $2) },
            "export-smart-task": .session { try $0.exportSmartTask($1, $2) },
            "import-smart-task": .session { try $0.importSmartTask($1, $2) },
            // operations
            "export-management": .outside { try await $0.exportManagement($1, $2) },
        ]
        for type in ObjectType.creatable {
            table["add-\(type.rawValue)"] = .session { try $0.objectCommand(.add, type, $1, sessionUID: $2) }
            table["set-\(type.rawValue)"] = .session { try $0.objectCommand(.set, type, $1, sessionUID: $2) }
            table["show-\(type.rawValue)"] = .session { try $0.objectCommand(.show, type, $1, sessionUID: $2) }
            table["delete-\(type.rawValue)"] = .session { try $0.objectCommand(.delete, type, $1, sessionUID: $2) }
            if let plural = type.plural {
                table["show-\(plural)"] = .session { try $0.objectCommand(.list, type, $1, sessionUID: $2) }
            }
        }
        return table
    }()
}
