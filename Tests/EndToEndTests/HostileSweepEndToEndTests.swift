import AsyncHTTPClient
import Foundation
import ManagementService
import NIOCore
import NIOSSL
import Testing

/// Every command of the catalog gets hostile values of every kind, in every parameter, on a real
/// server (a trap in the server is a process exit, so the server is checked after every request):
/// every answer must be a JSON success or a JSON 4xx error, never a dropped connection or a 5xx.
@Suite("End to end: hostile input to every command", .serialized, .endToEndSlot)
struct HostileSweepEndToEndTests {
    @Test("every command, every hostile value class, every parameter: JSON answers, no trap", .timeLimit(.minutes(10)))
    func sweep() async throws {
        let fixture = try EndToEndTests.Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server-hostile")
        let sweep = try await HostileSweep(fixture: fixture, server: server)
        defer { sweep.server.kill() }
        do {
            try await sweep.run()
        } catch {
            Issue.record("the sweep stopped: \(error)")
        }
        try await sweep.http.shutdown()
        print(sweep.summary)
        if !sweep.failures.isEmpty {
            Issue.record(
                """
                \(sweep.failures.count) hostile requests were not answered with JSON 2xx/4xx:
                \(sweep.failures.prefix(60).map(\.description).joined(separator: "\n"))
                \(sweep.summary)
                """)
        }
    }
}

/// One hostile value, as raw JSON text (some cannot be written by a JSON encoder at all).
struct HostileValue: Sendable {
    let kind: String
    let json: String

    static let all: [HostileValue] = [
        .init(kind: "string with NUL", json: #""a\u0000b""#),
        .init(kind: "string with control characters", json: #""x\nFORGED\r\t\u001b[31m\u0085\u2028\u202e""#),
        .init(kind: "huge string (200 KB)", json: "\"" + String(repeating: "x", count: 200_000) + "\""),
        .init(kind: "empty string", json: #""""#),
        .init(kind: "number in spaces", json: #"" 80 ""#),
        .init(kind: "broken surrogate pair", json: #""\ud800\u0041""#),
        .init(kind: "1e300", json: "1e300"),
        .init(kind: "-1e400", json: "-1e400"),
        .init(kind: "1e19", json: "1e19"),
        .init(kind: "2^63", json: "9223372036854775808"),
        .init(kind: "2^63-1", json: "9223372036854775807"),
        .init(kind: "-1", json: "-1"),
        .init(kind: "float for an integer", json: "1.5"),
        .init(kind: "boolean", json: "true"),
        .init(kind: "null", json: "null"),
        .init(kind: "list for a scalar", json: #"["x", 1, null, {}]"#),
        .init(kind: "list of 20,000", json: "[" + Array(repeating: "\"x\"", count: 20_000).joined(separator: ",") + "]"),
        .init(kind: "empty object", json: "{}"),
        .init(kind: "object 30 deep", json: String(repeating: #"{"a":"#, count: 30) + "1" + String(repeating: "}", count: 30)),
        .init(kind: "object 100 deep", json: String(repeating: #"{"a":"#, count: 100) + "1" + String(repeating: "}", count: 100)),
        .init(kind: "list 100 deep", json: String(repeating: "[", count: 100) + String(repeating: "]", count: 100)),
    ]

    /// Values that are nearly right for one kind of parameter: what a lenient parser lets through.
    static func typed(_ type: ParameterType) -> [HostileValue] {
        func word(_ text: String) -> HostileValue { .init(kind: "near-valid \(type.text)", json: "\"\(text)\"") }
        switch type {
        case .port:
            return [word(" 80"), word("80 "), word(">80 "), word("0"), word("65536"), word("2000-1000"), word("80-"), word(">65535"), word("<1"), word("-")]
        case .integer: return [word(" 5"), word("0x10"), word("1e3"), word("+1"), word("99999999999999999999")]
        case .ipAddress, .ipv4Address, .ipv6Address:
            return [word("1.2.3.4::"), word("+1::"), word("256.1.1.1"), word("1.2.3.4 "), word("1.2.3.04"), word("::ffff:1.2.3.4%eth0")]
        case .position:
            return [
                .init(kind: "near-valid position", json: #"{"above":{"above":"x"}}"#), word("0"), word("99999999"),
                .init(kind: "near-valid position", json: #"{"above":"x","below":"y"}"#),
            ]
        case .choice(let words): return words.prefix(1).map { word(" \($0)") } + [word("")]
        case .boolean: return [word("yes"), word("TRUE "), .init(kind: "near-valid boolean", json: "1")]
        case .references:
            return [
                .init(kind: "near-valid list of names or uids", json: #"{"add":["sweep-group"],"remove":"x"}"#),
                .init(kind: "near-valid list of names or uids", json: #"["sweep-group","sweep-group"]"#),
            ]
        default: return []
        }
    }

    /// Wrong types for the paging parameters (`limit`, `offset`, `details-level`).
    static let paging: [HostileValue] =
        all.filter {
            ["-1", "float for an integer", "boolean", "list for a scalar", "empty object", "2^63-1", "2^63", "1e300", "string with NUL"].contains($0.kind)
        } + [.init(kind: "word for a number", json: #""many""#), .init(kind: "number for a word", json: "5")]
}

/// The sweep's state: the server (restarted after a trap), the admin session, the counts.
final class HostileSweep {
    struct Failure: CustomStringConvertible {
        let request: String
        let problem: String
        var description: String { "\(request): \(problem)" }
    }

    static let restartsMax = 8
    let fixture: EndToEndTests.Fixture
    var server: ServerProcess
    let http: HTTPClient
    var sid = ""
    var failures: [Failure] = []
    var countsByKind: [String: Int] = [:]
    var countsByStatus: [String: Int] = [:]
    var restarts = 0
    var nameCounter = 0
    var fixtureUIDs: [String: String] = [:]
    var taskID = ""

    init(fixture: EndToEndTests.Fixture, server: ServerProcess) async throws {
        self.fixture = fixture
        self.server = server
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file("\(fixture.data)/pki/ica.pem")
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        configuration.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    // MARK: requests

    struct Reply {
        let status: Int
        let body: [String: Any]?
    }

    func post(_ command: String, _ body: [UInt8], sid: String?) async throws -> Reply {
        var request = HTTPClientRequest(url: "https://127.0.0.1:\(server.port)/web_api/\(command)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let sid { request.headers.add(name: "X-chkp-sid", value: sid) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let object = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any]
        return Reply(status: Int(response.status.code), body: object)
    }

    func call(_ command: String, _ body: [String: Any]) async throws -> [String: Any] {
        let reply = try await post(command, Array(try JSONSerialization.data(withJSONObject: body)), sid: sid)
        guard reply.status == 200, let object = reply.body else { throw E2EFailure("\(command): HTTP \(reply.status) \(reply.body ?? [:])") }
        return object
    }

    func login() async throws {
        let password = try String(contentsOfFile: fixture.passwordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let reply = try await post("login", Array(try JSONSerialization.data(withJSONObject: ["user": "admin", "password": password])), sid: nil)
        guard reply.status == 200, let sid = reply.body?["sid"] as? String else { throw E2EFailure("login: HTTP \(reply.status) \(reply.body ?? [:])") }
        self.sid = sid
    }

    /// Sends one hostile request and checks the answer and that the server lives; restarts it after a trap.
    func send(_ command: String, _ body: String, kind: String, withSession: Bool = true, mustRefuse parameter: String? = nil) async throws {
        countsByKind[kind, default: 0] += 1
        let described = "\(command) \(body.count > 160 ? String(body.prefix(120)) + "… (\(body.utf8.count) bytes)" : body) [\(kind)]"
        var problem: String?
        do {
            let reply = try await post(command, Array(body.utf8), sid: withSession ? sid : nil)
            countsByStatus["\(reply.status / 100)xx", default: 0] += 1
            if reply.status == 401 && withSession {
                try await login()  // the command ended the session (logout); not a failure
            } else if reply.body == nil || (reply.status != 200 && !(reply.body?["code"] is String && reply.body?["message"] is String)) {
                problem = "HTTP \(reply.status) with a body that is not a Check Point error object"
            } else if reply.status >= 500 {
                problem = "HTTP \(reply.status) \(reply.body?["code"] ?? ""): \(String(describing: reply.body?["message"] ?? "").prefix(300))"
            } else if let parameter, reply.status == 200 {
                failures.append(Failure(request: described, problem: "\(parameter) of the wrong type was accepted (HTTP 200), not refused"))
                return
            }
        } catch {
            countsByStatus["no answer", default: 0] += 1
            problem = "no answer: \(error)"
        }
        let exited = try await server.record.wait(seconds: problem == nil ? 0 : 5)
        if let exited { problem = "the server \(exited) (\(problem ?? "")): \(crashReason(server.log))" }
        guard let problem else { return }
        failures.append(Failure(request: described, problem: problem))
        if exited != nil { try await restart() }
    }

    /// The runtime's reason and the first frames of the trap, from the server's log.
    func crashReason(_ log: String) -> String {
        let lines = log.split(separator: "\n")
        guard let start = lines.firstIndex(where: { $0.contains("Fatal error") || $0.contains("Crash") || $0.contains("crashed") }) else {
            return String(log.suffix(600))
        }
        return lines[start...].filter { $0.contains("Fatal error") || $0.contains(" in rampart at ") || $0.contains("crashed") }
            .prefix(6).joined(separator: " | ")
    }

    func restart() async throws {
        restarts += 1
        guard restarts <= Self.restartsMax else {
            throw E2EFailure("the server died \(restarts) times; giving up:\n\(failures.map(\.description).joined(separator: "\n"))\n\(summary)")
        }
        server = try await ServerProcess.start(dataDirectory: fixture.data, preferredPort: server.port, logName: "server-hostile-restart-\(restarts)")
        // Sessions survive a restart: keep ours rather than open one more.
        if (try? await post("keepalive", Array("{}".utf8), sid: sid))?.status != 200 { try await login() }
    }

    // MARK: the sweep

    func run() async throws {
        try await login()
        try await createFixtures()
        let specs = CommandCatalog.all
        let phases: [(CommandSpec) -> Bool] = [
            { !$0.changes && !["login", "logout", "discard", "verify-policy"].contains($0.name) },
            { $0.name == "login" },
            { $0.name.hasPrefix("add-") || $0.name.hasPrefix("set-") || ["reset-sic", "import-smart-task"].contains($0.name) },
            { ["publish", "install-policy", "verify-policy", "discard"].contains($0.name) },
            { $0.changes && !$0.draftsChanges && !["publish", "install-policy"].contains($0.name) || $0.name == "export-management" },
            { $0.name.hasPrefix("delete-") },
            { $0.name == "logout" },
        ]
        var done = Set<String>()
        for belongs in phases {
            for (index, spec) in specs.enumerated() where belongs(spec) && !done.contains(spec.name) {
                done.insert(spec.name)
                try await sweep(spec, offset: index)
            }
        }
        let missed = specs.filter { !done.contains($0.name) }.map(\.name)
        if !missed.isEmpty { failures.append(Failure(request: missed.joined(separator: ", "), problem: "not swept (test bug)")) }
        // Stored poison: read everything back once more after publishing whatever hostile input was accepted.
        for spec in specs where !spec.changes && spec.needsSession && spec.name != "logout" {
            try await send(spec.name, bodyText(base(spec)), kind: "read after publish")
        }
    }

    func sweep(_ spec: CommandSpec, offset: Int) async throws {
        let targets = spec.parameters.map(\.name) + ["no-such-parameter"]
        var poisoned = Set<String>()
        for (index, value) in HostileValue.all.enumerated() {
            let target = targets[(index + offset) % targets.count]
            poisoned.insert(target)
            try await sendPoisoned(spec, target, value)
        }
        for (index, target) in targets.enumerated() where !poisoned.contains(target) {
            try await sendPoisoned(spec, target, HostileValue.all[(index + offset) % HostileValue.all.count])
        }
        for parameter in spec.parameters {
            for value in HostileValue.typed(parameter.type) { try await sendPoisoned(spec, parameter.name, value) }
        }
        for target in ["limit", "offset", "details-level"] where targets.contains(target) {
            for value in HostileValue.paging {
                // Issue 18 item 11: a limit or offset of the wrong type is refused, not replaced by the default.
                let valid = target == "details-level" || value.kind == "number for a word" || value.kind == "2^63-1" && target == "offset"
                try await sendPoisoned(
                    spec, target, value, kind: "paging: \(value.kind)",
                    mustRefuse: valid ? nil : target)
            }
        }
        for (kind, body) in [
            ("body not an object", "[]"), ("body a string", #""x""#), ("body not JSON", "{\"a\":01"),
            ("body with NUL keys", #"{"\u0000":1,"no-such-key":{"\u0000":[]}}"#),
        ] {
            try await send(spec.name, body, kind: kind, withSession: spec.needsSession)
        }
        if offset % 10 == 0 {
            try await send(
                spec.name, "{\"name\":\"" + String(repeating: "x", count: 1 << 21) + "\"}", kind: "body over 1 MiB",
                withSession: spec.needsSession)
        }
    }

    func sendPoisoned(
        _ spec: CommandSpec, _ target: String, _ value: HostileValue, kind: String? = nil,
        mustRefuse: String? = nil
    ) async throws {
        var body = base(spec)
        body.removeAll { $0.key == target }
        body.append((target, value.json))
        try await send(spec.name, bodyText(body), kind: kind ?? value.kind, withSession: spec.needsSession, mustRefuse: mustRefuse)
    }

    func bodyText(_ pairs: [(key: String, json: String)]) -> String {
        "{" + pairs.map { "\"\($0.key)\":\($0.json)" }.joined(separator: ",") + "}"
    }

    func quoted(_ text: String) -> String { "\"\(text)\"" }

    /// A valid body for the command, on the fixtures (so hostile values reach past the identity checks).
    func base(_ spec: CommandSpec) -> [(key: String, json: String)] {
        nameCounter += 1
        let fresh = quoted("sweep-new-\(nameCounter)")
        let name = spec.name
        if let verb = ["add-", "set-", "show-", "delete-"].first(where: name.hasPrefix) {
            let type = String(name.dropFirst(verb.count))
            if verb == "add-" { return addBody(type, name: fresh) }
            if let existing = Self.fixtureNames[type] {
                var body = [(key: "name", json: quoted(existing))]
                if type == "access-rule" || type == "access-section" { body.append((key: "layer", json: quoted("sweep-layer"))) }
                return body
            }
        }
        switch name {
        case "login": return [("user", quoted("sweep-login")), ("password", quoted("sweep-login-password"))]
        case "show-task": return [("task-id", quoted(taskID))]
        case "show-object": return [("uid", quoted(fixtureUIDs["host"] ?? ""))]
        case "where-used": return [("name", quoted("sweep-host"))]
        case "equals": return [("type", quoted("host")), ("params", #"{"name":"sweep-host","color":"red"}"#)]
        case "show-logs": return [("new-query", #"{"filter":"action:drop","time-frame":"all-time"}"#)]
        case "show-access-rulebase", "show-layer-structure": return [("name", quoted("sweep-layer"))]
        case "install-policy", "verify-policy": return [("policy-package", quoted("sweep-package"))]
        case "test-sic-status", "reset-sic": return [("name", quoted("sweep-gateway"))]
        case "set-ha-state": return [("new-state", quoted("active"))]
        case "ha-full-sync": return [("name", quoted("sweep-missing"))]
        case "ha-promote": return [("dry-run", "true")]
        case "ha-resolve-collision": return [("keep", quoted("peer"))]
        case "ha-set-replication-mode": return [("mode", quoted("async"))]
        case "export-management": return [("file-path", quoted(fixture.scratch.path("export-\(nameCounter).json")))]
        default: return []
        }
    }

    static let fixtureNames: [String: String] = [
        "host": "sweep-host", "network": "sweep-network", "address-range": "sweep-range", "group": "sweep-group",
        "service-tcp": "sweep-tcp", "service-udp": "sweep-udp", "service-group": "sweep-services", "access-layer": "sweep-layer",
        "access-section": "sweep-section", "access-rule": "sweep-rule", "package": "sweep-package", "administrator": "sweep-admin",
        "simple-gateway": "sweep-gateway", "checkpoint-host": "sweep-missing", "simple-cluster": "sweep-missing",
    ]

    func addBody(_ type: String, name: String) -> [(key: String, json: String)] {
        var body = [(key: "name", json: name)]
        switch type {
        case "host", "checkpoint-host", "simple-gateway": body.append(("ip-address", quoted("192.0.2.200")))
        case "simple-cluster": body += [("ip-address", quoted("192.0.2.201")), ("members", #"[{"name":"m1","ip-address":"192.0.2.202"}]"#)]
        case "network": body += [("subnet", quoted("10.77.0.0")), ("mask-length", "16")]
        case "address-range": body += [("ip-address-first", quoted("10.78.0.1")), ("ip-address-last", quoted("10.78.0.9"))]
        case "service-tcp", "service-udp": body.append(("port", quoted("8081")))
        case "access-rule", "access-section": body += [("layer", quoted("sweep-layer")), ("position", quoted("top"))]
        case "administrator": body += [("password", quoted("sweep-password-1")), ("permissions-profile", quoted("read-only"))]
        default: break
        }
        return body
    }

    func createFixtures() async throws {
        let adds: [(String, [String: Any])] = [
            ("add-host", ["name": "sweep-host", "ip-address": "192.0.2.1"]),
            ("add-network", ["name": "sweep-network", "subnet": "10.9.0.0", "mask-length": 16]),
            ("add-address-range", ["name": "sweep-range", "ip-address-first": "10.8.0.1", "ip-address-last": "10.8.0.9"]),
            ("add-group", ["name": "sweep-group", "members": ["sweep-host"]]),
            ("add-service-tcp", ["name": "sweep-tcp", "port": "8080"]),
            ("add-service-udp", ["name": "sweep-udp", "port": "5353"]),
            ("add-service-group", ["name": "sweep-services", "members": ["sweep-tcp"]]),
            ("add-access-layer", ["name": "sweep-layer"]),
            ("add-access-section", ["name": "sweep-section", "layer": "sweep-layer", "position": "top"]),
            (
                "add-access-rule",
                ["name": "sweep-rule", "layer": "sweep-layer", "position": "bottom", "source": ["sweep-group"], "service": ["sweep-tcp"], "action": "Accept"]
            ),
            ("add-package", ["name": "sweep-package", "access-layers": ["sweep-layer"]]),
            ("add-administrator", ["name": "sweep-admin", "password": "sweep-admin-password", "permissions-profile": "read-only"]),
            ("add-administrator", ["name": "sweep-login", "password": "sweep-login-password", "permissions-profile": "read-only"]),
            ("add-simple-gateway", ["name": "sweep-gateway", "ip-address": "192.0.2.50"]),
        ]
        for (command, body) in adds { _ = try await call(command, body) }
        taskID = try await call("publish", [:])["task-id"] as? String ?? ""
        fixtureUIDs["host"] = try await call("show-host", ["name": "sweep-host"])["uid"] as? String
    }

    var summary: String {
        let total = countsByKind.filter { !$0.key.hasPrefix("skipped") }.values.reduce(0, +)
        let kinds = countsByKind.sorted { $0.key < $1.key }.map { "  \($0.key): \($0.value)" }.joined(separator: "\n")
        let statuses = countsByStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return """
            Hostile sweep: \(total) requests over \(CommandCatalog.all.count) commands; answers: \(statuses); \
            server restarts after a trap: \(restarts); failures: \(failures.count)
            Requests by kind:
            \(kinds)
            """
    }
}
