import ManagementModel
import Testing

@testable import ManagementClient

/// The mgmt_cli argument rules of `rampart mgmt`, one by one (no process, no server).
@Suite("rampart mgmt: key=value arguments and output")
struct MgmtParametersTests {
    func body(_ arguments: String...) throws -> JSONValue {
        .object(try MgmtParameters.body(from: arguments))
    }

    func failure(_ arguments: String...) -> String? {
        do {
            _ = try MgmtParameters.body(from: arguments)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func plainValuesStayStringsAndBooleansBecomeBooleans() throws {
        #expect(
            try body("name=web-1", "ip-address=192.0.2.10", "position=1", "enabled=false", "ignore-warnings=true", "comments=")
                == .object([
                    "name": "web-1", "ip-address": "192.0.2.10", "position": "1", "enabled": .bool(false),
                    "ignore-warnings": .bool(true), "comments": "",
                ]))
    }

    @Test func valuesMayContainEqualsSignsAndDots() throws {
        #expect(try body("comments=a=b.c", "name=x.y") == .object(["comments": "a=b.c", "name": "x.y"]))
    }

    @Test func numberedKeysMakeLists() throws {
        #expect(try body("members.2=b", "members.1=a", "name=g") == .object(["members": .array(["a", "b"]), "name": "g"]))
    }

    @Test func dottedKeysMakeObjects() throws {
        #expect(
            try body("nat-settings.auto-rule=true", "nat-settings.method=hide", "position.above=r1")
                == .object(["nat-settings": .object(["auto-rule": .bool(true), "method": "hide"]), "position": .object(["above": "r1"])]))
    }

    @Test func listsOfObjects() throws {
        #expect(
            try body("interfaces.1.name=eth0", "interfaces.1.subnet=10.0.0.0", "interfaces.2.name=eth1")
                == .object(["interfaces": .array([.object(["name": "eth0", "subnet": "10.0.0.0"]), .object(["name": "eth1"])])]))
    }

    @Test func badArgumentsAreNamed() {
        #expect(failure("name=a", "ip-address")?.contains("'ip-address'") == true)
        #expect(failure("=x")?.contains("'=x'") == true)
        #expect(failure("a..b=x")?.contains("a..b") == true)
        #expect(failure("name=a", "name=b")?.contains("'name=b'") == true)
        #expect(failure("members.1=a", "members.3=c")?.contains("members.3") == true)
        #expect(failure("members.1=a", "members.x=c")?.contains("mixes") == true)
        #expect(failure("position=1", "position.above=r")?.contains("position=1") == true)
        #expect(failure("members.0=a") == nil)  // "0" is a name, not a list index
    }

    @Test func autoPublishOnlyAfterChanges() {
        for command in ["add-host", "set-group", "delete-access-rule", "install-policy"] { #expect(MgmtInvocation.changesDatabase(command)) }
        for command in ["show-hosts", "show-task", "login", "logout", "where-used", "equals", "publish", "discard", "keepalive"] {
            #expect(!MgmtInvocation.changesDatabase(command))
        }
    }

    @Test func jsonIsPrettyAndSorted() {
        let text = MgmtRendering.json(.object(["b": .array([.int(1), .bool(true)]), "a": .object([:]), "c": .array([])]))
        #expect(text == "{\n  \"a\": {},\n  \"b\": [\n    1,\n    true\n  ],\n  \"c\": []\n}\n")
    }

    @Test func textIsYamlLike() {
        let value: JSONValue = .object([
            "uid": "u1", "name": "web", "ipv4-address": "192.0.2.1", "comments": "", "enabled": .bool(true), "port": "443",
            "groups": .array([.object(["name": "g1", "uid": "u2"])]), "tags": .array([]), "nat-settings": .object(["auto-rule": .bool(false)]),
        ])
        #expect(
            MgmtRendering.text(value) == """
                name: web
                uid: u1
                comments: ""
                enabled: true
                groups:
                  - name: g1
                    uid: u2
                ipv4-address: 192.0.2.1
                nat-settings:
                  auto-rule: false
                port: "443"
                tags: []

                """)
    }
}

/// Secrets never come from the command line, where `ps` shows them.
@Suite("rampart mgmt: secrets come from files, the environment or a prompt")
struct MgmtSecretParametersTests {
    func body(_ arguments: [String], secrets: [MgmtSecrets.Source: String] = [:]) throws -> JSONValue {
        .object(
            try MgmtParameters.body(from: arguments) { source, key throws(MgmtParameters.Failure) in
                guard let value = secrets[source] else { throw MgmtParameters.Failure(description: "no \(key)") }
                return value
            })
    }

    @Test("every secret key is refused as key=value, at any depth, without echoing its value")
    func secretsOnTheCommandLineAreRefused() throws {
        for key in ["password", "one-time-password", "new-password", "shared-secret", "members.1.one-time-password"] {
            let error = #expect(throws: MgmtParameters.Failure.self) {
                try body(["name=x", "\(key)=hunter2-SECRET"])
            }
            #expect(error?.description.contains("'\(key)=…' is refused") == true, "\(key)")
            #expect(error?.description.contains("\(key)-file=FILE") == true)
            #expect(error?.description.contains("\(key)-env=VARIABLE") == true)
            #expect(error?.description.contains("hunter2") == false)
        }
        let oneTime = #expect(throws: MgmtParameters.Failure.self) { try body(["one-time-password=k"]) }
        #expect(oneTime?.description.contains("rampart sic new-key --out FILE") == true)
    }

    @Test("KEY-file, KEY-env and KEY-file=- give the secret under its own key")
    func secretsFromSources() throws {
        let secrets: [MgmtSecrets.Source: String] = [.file("gw.key"), .environment("GW_KEY"), .prompt]
            .enumerated().reduce(into: [:]) { $0[$1.element] = "secret-\($1.offset)" }
        #expect(
            try body(["name=gw", "one-time-password-file=gw.key"], secrets: secrets)
                == .object(["name": "gw", "one-time-password": "secret-0"]))
        #expect(
            try body(["members.1.name=a", "members.1.one-time-password-env=GW_KEY"], secrets: secrets)
                == .object(["members": .array([.object(["name": "a", "one-time-password": "secret-1"])])]))
        #expect(try body(["new-password-file=-"], secrets: secrets) == .object(["new-password": "secret-2"]))
        // Not secrets: kept as they are.
        #expect(try body(["name-file=x", "comments-env=y"]) == .object(["name-file": "x", "comments-env": "y"]))
    }
}

@Suite("rampart mgmt: text output names objects")
struct MgmtNamesTests {
    @Test("show-access-rulebase in text shows the names of the objects its rules refer to, not their uids")
    func rulebaseTextShowsNames() throws {
        let reply: JSONValue = [
            "uid": "layer-uid", "name": "Network",
            "rulebase": [
                [
                    "uid": "rule-uid", "name": "web-in", "source": ["host-uid"], "action": "accept-uid",
                    "track": ["type": "log-uid"], "rule-number": 1,
                ]
            ],
            "objects-dictionary": [
                ["uid": "host-uid", "name": "web-1", "type": "host"],
                ["uid": "accept-uid", "name": "Accept", "type": "RulebaseAction"],
                ["uid": "log-uid", "name": "Log", "type": "Track"],
            ],
        ]
        let text = MgmtRendering.text(MgmtRendering.withNames(reply))
        #expect(text.contains("action: Accept") && text.contains("- web-1") && text.contains("type: Log"), "\(text)")
        #expect(!text.contains("host-uid") && !text.contains("accept-uid") && !text.contains("objects-dictionary"), "\(text)")
        #expect(text.contains("uid: rule-uid"), "a rule keeps its own uid: \(text)")
        // Replies without a dictionary are shown as they are.
        let plain: JSONValue = ["name": "web-1", "uid": "host-uid"]
        #expect(MgmtRendering.withNames(plain) == plain)
    }
}

@Suite("rampart mgmt: which commands it publishes after")
struct MgmtPublishTests {
    /// set-ha-state to standby ends the session: publishing after it failed the command.
    @Test func mgmtPublishesAfterChangesButNotAfterHACommands() {
        #expect(MgmtInvocation.changesDatabase("add-host") && MgmtInvocation.changesDatabase("reset-sic") && MgmtInvocation.changesDatabase("install-policy"))
        #expect(
            !MgmtInvocation.changesDatabase("set-ha-state") && !MgmtInvocation.changesDatabase("ha-promote") && !MgmtInvocation.changesDatabase("show-hosts"))
    }
}
