import Foundation
import HACore
import ManagementModel
import Testing

@testable import ManagementService

/// Who may run what: every catalogued command as every role, and the catalog as the one list of
/// commands the dispatcher serves.
@Suite("Permissions and the command catalog")
struct PermissionTests {
    enum Role: String, CaseIterable {
        case superUser = "super-user"
        case readWrite = "read-write"
        case readOnly = "read-only"
        case superUserReadOnlyLogin = "super-user, read-only login"

        var credentials: (user: String, password: String, extra: [String: JSONValue]) {
            switch self {
            case .superUser: ("admin", "adminpw", [:])
            case .readWrite: ("writer", "pw-writer", [:])
            case .readOnly: ("auditor", "pw-auditor", [:])
            case .superUserReadOnlyLogin: ("admin", "adminpw", ["read-only": true])
            }
        }
    }

    /// A harness with a read-write administrator `writer`, a read-only `auditor` and a read-write `bob`.
    static func harness() async throws -> Harness {
        let h = try await Harness()
        let admin = try await h.login()
        try await h.ok("add-administrator", ["name": "writer", "password": "pw-writer", "permissions-profile": "read-write"], sid: admin)
        try await h.ok("add-administrator", ["name": "auditor", "password": "pw-auditor", "permissions-profile": "read-only"], sid: admin)
        try await h.ok("add-administrator", ["name": "bob", "password": "pw-bob", "permissions-profile": "read-write"], sid: admin)
        _ = try await h.publish(sid: admin)
        try await h.ok("logout", sid: admin)
        return h
    }

    func login(_ h: Harness, _ role: Role) async throws -> String {
        let credentials = role.credentials
        return try await h.login(credentials.user, credentials.password, extra: credentials.extra)
    }

    /// What the catalog promises, written out per permission class (not computed by the code under test).
    func allowed(_ spec: CommandSpec, _ role: Role, onOtherAdministratorsSession: Bool = false) -> Bool {
        if onOtherAdministratorsSession { return role == .superUser }
        switch spec.permission {
        case .readOnly: return !spec.changes || role == .superUser || role == .readWrite
        case .readWrite: return role == .superUser || role == .readWrite
        case .superUser: return role == .superUser
        case .ownSessionOrSuperUser: return !spec.changes || role == .superUser || role == .readWrite
        }
    }

    func check(_ h: Harness, _ spec: CommandSpec, _ role: Role, body: JSONValue, other: Bool = false) async throws {
        let sid = try await login(h, role)
        let reply = await h.call(spec.name, body, sid: sid)
        let refused = reply.status == 403 && reply.body["code"] == "generic_err_no_permissions"
        let expected = allowed(spec, role, onOtherAdministratorsSession: other)
        #expect(
            refused == !expected,
            "\(spec.name) as \(role.rawValue)\(other ? " on bob's session" : ""): expected \(expected ? "allowed" : "refused"), got HTTP \(reply.status) \(reply.body.canonicalString)"
        )
        if refused {
            let message = reply.body["message"]?.stringValue ?? ""
            #expect(
                message.contains("[\(role.credentials.user)]") && message.contains("needs"),
                "\(spec.name): the refusal names the administrator and what is needed: \(message)")
        }
        _ = await h.call("logout", sid: sid)
    }

    @Test func everyCommandAsEveryRole() async throws {
        let h = try await Self.harness()
        for spec in CommandCatalog.all where spec.needsSession {
            for role in Role.allCases {
                try await check(h, spec, role, body: [:])
            }
        }
    }

    @Test func anotherAdministratorsSessionOnlyBySuperUsers() async throws {
        let h = try await Self.harness()
        for spec in CommandCatalog.all where spec.permission == .ownSessionOrSuperUser {
            for role in Role.allCases {
                // bob's work, left as a disconnected session (logout with a pending change).
                let bob = try await h.login("bob", "pw-bob")
                try await h.ok("add-host", ["name": .string("bob-\(UUID().uuidString.prefix(8))"), "ip-address": "192.0.2.50"], sid: bob)
                let bobSession = try await h.ok("show-session", sid: bob)["uid"]!
                try await h.ok("logout", sid: bob)
                try await check(h, spec, role, body: ["uid": bobSession], other: true)
                let bobAgain = try await h.login("bob", "pw-bob")
                _ = await h.call("discard", ["uid": bobSession], sid: bobAgain)
                try await h.ok("logout", sid: bobAgain)
            }
        }
    }

    /// The issue's case: a read-write administrator made himself a super-user, set the admin's
    /// password, and exported the Internal CA's key with every password hash.
    @Test func readWriteAdministratorCannotManageAdministratorsOrExportSecrets() async throws {
        let h = try await Self.harness()
        let writer = try await h.login("writer", "pw-writer")
        for (command, body) in [
            ("add-administrator", ["name": "evil", "password": "pw-evil-1", "permissions-profile": "super-user"] as JSONValue),
            ("set-administrator", ["name": "admin", "password": "owned-now"]),
            ("set-administrator", ["name": "writer", "permissions-profile": "super-user"]),
            ("delete-administrator", ["name": "auditor"]),
            ("export-management", ["file-path": "/tmp/rampart-export-by-writer.json"]),
            ("add-checkpoint-host", ["name": "rogue", "ip-address": "192.0.2.99", "one-time-password": "rogue-key-123"]),
            ("reset-sic", ["name": "primary"]),
            ("set-ha-state", ["new-state": "standby"]),
        ] {
            let reply = await h.call(command, body, sid: writer)
            #expect(reply.status == 403 && reply.body["code"] == "generic_err_no_permissions", "\(command): \(reply.body.canonicalString)")
        }
        // His own password is not his to set through set-administrator either (Check Point has no such path).
        #expect(await h.call("set-administrator", ["name": "writer", "password": "pw-writer-2"], sid: writer).status == 403)
        // And equals cannot be used to guess a password.
        let oracle = await h.call("equals", ["type": "administrator", "params": ["name": "admin", "password": "adminpw"]], sid: writer)
        #expect(oracle.status == 400 && oracle.body["code"] == "generic_err_no_permissions")
        // Reading and policy work still are his.
        #expect(await h.call("show-administrators", sid: writer).status == 200)
        #expect(await h.call("add-host", ["name": "w-1", "ip-address": "192.0.2.1"], sid: writer).status == 200)
    }

    /// A super-user demoted after login loses the rights at once (the published profile counts).
    @Test func aLoweredProfileTakesEffectInOpenSessions() async throws {
        let h = try await Self.harness()
        let admin = try await h.login()
        try await h.ok("add-administrator", ["name": "temp", "password": "pw-temp-1", "permissions-profile": "super-user"], sid: admin)
        _ = try await h.publish(sid: admin)
        let temp = try await h.login("temp", "pw-temp-1")
        try await h.ok("set-administrator", ["name": "temp", "permissions-profile": "read-only"], sid: admin)
        _ = try await h.publish(sid: admin)
        let refused = await h.call("add-host", ["name": "t-1", "ip-address": "192.0.2.1"], sid: temp)
        #expect(refused.status == 403, "\(refused.body.canonicalString)")
    }

    /// The profile is the administrator object's, found by uid: a rename keeps it.
    @Test func aRenamedAdministratorKeepsHisProfile() async throws {
        let h = try await Self.harness()
        let writer = try await h.login("writer", "pw-writer")
        let admin = try await h.login()
        try await h.ok("set-administrator", ["name": "writer", "new-name": "writer-2"], sid: admin)
        _ = try await h.publish(sid: admin)
        #expect(await h.call("add-host", ["name": "r-1", "ip-address": "192.0.2.1"], sid: writer).status == 200)
    }

    @Test func rootOnTheLocalSocketIsASuperUser() async throws {
        let h = try await Self.harness()
        let socket = ClientInfo(address: "local-socket", isLocalSocket: true)
        let login = await h.service.handle(command: "login", body: ["login-as-root": true], sid: nil, client: socket)
        let sid = try #require(login.body["sid"]?.stringValue)
        let reply = await h.service.handle(
            command: "add-administrator", body: ["name": "ops", "password": "pw-ops-12", "permissions-profile": "read-only"], sid: sid, client: socket)
        #expect(reply.status == 200, "\(reply.body.canonicalString)")
    }

    // MARK: the catalog is the list

    /// One table: every catalogued command has a handler, and every handler a catalogued command.
    @Test func everyCataloguedCommandHasAHandlerAndViceVersa() {
        let catalogued = Set(CommandCatalog.all.map(\.name))
        let handled = Set(ManagementService.handlers.keys)
        #expect(catalogued.subtracting(handled).isEmpty, "catalogued without a handler: \(catalogued.subtracting(handled).sorted())")
        #expect(handled.subtracting(catalogued).isEmpty, "handled without a catalogue entry: \(handled.subtracting(catalogued).sorted())")
        #expect(CommandCatalog.all.count == catalogued.count, "each command is catalogued once")
        #expect(CommandTable.entries.count == CommandCatalog.all.count)
        // The dispatcher's rules follow the catalog: only login and show-api-versions need no session,
        // only login is answered outside the actor before its session exists.
        for spec in CommandCatalog.all {
            guard let entry = CommandTable.entry(named: spec.name) else { continue }
            switch entry.handler {
            case .login: #expect(spec.name == "login" && !spec.needsSession)
            case .open: #expect(!spec.needsSession, "\(spec.name)")
            case .session, .outside: #expect(spec.needsSession, "\(spec.name)")
            }
        }
    }

    /// Every catalogued command reaches a handler (never "not found", never "no handler").
    @Test func everyCataloguedCommandIsServed() async throws {
        let h = try await Self.harness()
        for spec in CommandCatalog.all {
            let sid = spec.needsSession ? try await h.login() : nil
            let reply = await h.call(spec.name, [:], sid: sid)
            #expect(reply.body["code"] != "generic_err_command_not_found", "\(spec.name)")
            #expect(reply.body["message"]?.stringValue?.contains("no handler") != true, "\(spec.name): \(reply.body.canonicalString)")
            if let sid { _ = await h.call("logout", sid: sid) }
        }
    }

    /// Every name the dispatcher could plausibly take: a command is served exactly when it is in the catalog.
    @Test func noCommandOutsideTheCatalogIsServed() async throws {
        let h = try await Self.harness()
        var sid = try await h.login()
        var candidates = Set(CommandCatalog.all.map(\.name))
        let typeNames =
            ObjectType.allCases.flatMap { [$0.rawValue, $0.plural].compactMap { $0 } }
            + ["smart-task", "time", "dynamic-object", "access-role", "threat-rule", "nat-rule", "session", "task", "commands", "unused-objects"]
        for verb in ["add", "set", "show", "delete"] { for type in typeNames { candidates.insert("\(verb)-\(type)") } }
        // The string tables routing used to go through, and Check Point commands Rampart does not serve.
        candidates.formUnion([
            "logout", "keepalive", "publish", "discard", "show-session", "show-sessions", "show-task", "show-tasks", "show-changes",
            "show-revisions", "show-objects", "show-object", "where-used", "equals", "show-access-rulebase", "show-layer-structure",
            "test-sic-status", "reset-sic", "show-logs", "install-policy", "verify-policy", "show-gateways-and-servers", "show-ha-status",
            "set-ha-state", "ha-full-sync", "show-ha-state", "ha-promote", "ha-stop", "ha-start", "ha-resolve-collision",
            "ha-export-divergent", "ha-set-replication-mode", "export-management", "login", "show-api-versions",
            "show-commands", "take-over-session", "disconnect", "switch-session", "continue-session-in-smartconsole", "set-session",
            "purge-published-sessions", "install-database", "run-script", "import-management", "migrate-import", "backup", "show-", "",
        ])
        for name in candidates.sorted() {
            var reply = await h.call(name, [:], sid: sid)
            if reply.status == 401 {  // `logout` ended the session
                sid = try await h.login()
                reply = await h.call(name, [:], sid: sid)
            }
            let notFound = reply.status == 404 && reply.body["code"] == "generic_err_command_not_found"
            #expect(notFound == (CommandCatalog.spec(named: name) == nil), "\(name): HTTP \(reply.status) \(reply.body.canonicalString)")
        }
    }

    /// A standby refuses exactly the catalog's changes (HA commands decide for themselves).
    @Test func theStandbyRefusesWhatTheCatalogCallsAChange() async throws {
        let h = try await Self.harness()
        await h.service.attachHA(StandbyStub())
        for spec in CommandCatalog.all where spec.needsSession {
            let sid = try await h.login()
            let reply = await h.call(spec.name, [:], sid: sid)
            let refusedAsStandby = reply.status == 403 && reply.body["message"]?.stringValue?.contains("mgmt-a") == true
            #expect(refusedAsStandby == spec.refusedOnStandby, "\(spec.name): HTTP \(reply.status) \(reply.body.canonicalString)")
            _ = await h.call("logout", sid: sid)
        }
    }
}

/// A standby as the Web API sees it: writes refused, naming the active; HA commands answer "stub".
struct StandbyStub: HAPort {
    func commit(_ revision: Revision, payload: [UInt8], _ append: () throws -> Void) throws -> Bool {
        throw HACommitError.notTakingWrites(writeRefusal ?? "")
    }
    var writeEpoch: RevisionEpoch? { nil }
    var writeRefusal: String? { "This server is a standby; make changes on the active server mgmt-a (https://192.0.2.11:8443)" }
    var isStandby: Bool { true }
    func awaitReplication(revision number: UInt64) async -> ReplicationOutcome { .acknowledged }

    func statusReport() -> HAStatusReport { HAStatusReport(servers: [], successfullySynced: true) }
    func serverStates() -> [HAServerState] { [HAServerState(name: "mgmt-a", address: nil, isActive: true)] }
    func promote(dryRun: Bool, force: Bool) async throws(HACommandRefusal) -> PromotionOutcome {
        PromotionOutcome(report: nil, checks: [], completion: .dryRun)
    }
    func demote() throws(HACommandRefusal) -> HACommandSummary { HACommandSummary("stub") }
    func stop() throws(HACommandRefusal) -> HACommandSummary { HACommandSummary("stub") }
    func start() throws(HACommandRefusal) -> HACommandSummary { HACommandSummary("stub") }
    func requestFullSync(standby name: String) throws(HACommandRefusal) -> HACommandSummary { HACommandSummary("stub") }
    func resolveCollision(keep side: CollisionSide) throws(HACommandRefusal) -> CollisionResolution { CollisionResolution(summary: "stub", exportedTo: nil) }
    func divergentRevisions() throws(HACommandRefusal) -> DivergentRevisions { DivergentRevisions(commonNumber: 0, payloads: [], server: "stub") }
    func setReplicationMode(_ mode: ReplicationMode) throws(HACommandRefusal) -> HACommandSummary { HACommandSummary("stub") }
}

@Suite("Management servers: the HA group's bound")
struct ManagementServerBoundTests {
    /// The issue 18 sweep's case: 22 checkpoint-host objects were accepted and published, and the
    /// server then refused to start ("an HA group holds at most 8 servers").
    @Test func noMoreManagementServersThanAGroupHolds() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        var added = 0
        for index in 1...12 {
            let reply = await h.call("add-checkpoint-host", ["name": .string("mgmt-\(index)"), "ip-address": .string("192.0.2.\(index)")], sid: sid)
            if reply.status == 200 {
                added += 1
            } else {
                #expect(reply.status == 400 && reply.body["message"]?.stringValue?.contains("at most") == true, "\(reply.body.canonicalString)")
            }
        }
        #expect(added == 8)
        _ = try await h.publish(sid: sid)
        #expect(try h.store.objects(types: [.checkpointHost], offset: 0, limit: 1, nameFilter: nil).total == 8)
    }
}
