import AsyncHTTPClient
import Foundation
import NIOCore
import Testing

/// Issue 18, items 8 and 9, on a real server over HTTPS: each of these requests stopped the whole
/// process (a Swift runtime trap). Now each gets a 400 (or the answer it deserves), and the server
/// is still there afterwards, stopping cleanly on SIGTERM.
@Suite("End to end: hostile requests never stop the server", .serialized, .endToEndSlot)
struct HostileInputEndToEndTests {
    /// Requests sent as raw bytes: the bodies are not what JSONSerialization would ever write.
    struct Exchange {
        let command: String
        let body: String
        let sid: Bool
        let status: Int
        let code: String?
    }

    static let beforeLogin: [Exchange] = [
        Exchange(command: "login", body: #"{"user":"\ud800\u0041","password":"x"}"#, sid: false, status: 400, code: "generic_err_invalid_syntax"),
        Exchange(command: "login", body: #"{"user":"\udc00","password":"x"}"#, sid: false, status: 400, code: "generic_err_invalid_syntax"),
        Exchange(command: "login", body: #"{"user":"admin","password":01}"#, sid: false, status: 400, code: "generic_err_invalid_syntax"),
        Exchange(command: "login", body: #"{"user":"a","user":"b","password":"x"}"#, sid: false, status: 400, code: "generic_err_invalid_syntax"),
        Exchange(command: "login", body: "\u{FEFF}{}", sid: false, status: 400, code: "generic_err_invalid_syntax"),
        Exchange(command: "login", body: #"{"user":"\q"}"#, sid: false, status: 400, code: "generic_err_invalid_syntax"),
        Exchange(command: "login", body: "[" + String(repeating: "[", count: 5_000), sid: false, status: 400, code: "generic_err_invalid_syntax"),
    ]

    /// With a read-only session: Doubles where text or integers are read, offsets near 2^63.
    static let readOnly: [Exchange] = [
        Exchange(command: "show-host", body: #"{"name": 1e300}"#, sid: true, status: 404, code: "generic_err_object_not_found"),
        Exchange(command: "show-objects", body: #"{"filter": 1e19}"#, sid: true, status: 200, code: nil),
        Exchange(command: "where-used", body: #"{"name": -1e400}"#, sid: true, status: 400, code: "generic_err_invalid_syntax"),
        Exchange(command: "where-used", body: #"{"name": -1e300}"#, sid: true, status: 404, code: "generic_err_object_not_found"),
        Exchange(command: "show-revisions", body: #"{"offset": 9223372036854775807}"#, sid: true, status: 400, code: "generic_err_invalid_parameter"),
        Exchange(
            command: "show-changes", body: #"{"offset": 9223372036854775807, "limit": 500}"#, sid: true, status: 400,
            code: "generic_err_invalid_parameter"),
        Exchange(
            command: "show-access-rulebase", body: #"{"name": "Network", "offset": 9223372036854775807}"#, sid: true, status: 400,
            code: "generic_err_invalid_parameter"),
        Exchange(command: "show-hosts", body: #"{"limit": "ten"}"#, sid: true, status: 400, code: "generic_err_invalid_parameter"),
        Exchange(command: "show-hosts", body: #"{"limit": 10.5}"#, sid: true, status: 400, code: "generic_err_invalid_parameter"),
        Exchange(command: "show-revisions", body: #"{"number": 1e300}"#, sid: true, status: 400, code: "generic_err_invalid_parameter"),
    ]

    /// With a read-write session: the service ports that were published and then trapped verify-policy.
    static let readWrite: [Exchange] = [
        Exchange(command: "add-service-tcp", body: #"{"name": "web", "port": " 80"}"#, sid: true, status: 400, code: "generic_err_invalid_parameter"),
        Exchange(command: "add-service-tcp", body: #"{"name": "web", "port": "80 "}"#, sid: true, status: 400, code: "generic_err_invalid_parameter"),
        Exchange(command: "add-service-tcp", body: #"{"name": "web", "port": ">80 "}"#, sid: true, status: 400, code: "generic_err_invalid_parameter"),
    ]

    @Test func hostileRequestsAreAnsweredAndTheServerStaysUp() async throws {
        let scratch = try TemporaryDirectory()
        let data = scratch.path("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let server = try await ServerProcess.start(dataDirectory: data, logName: "hostile")
        defer { server.kill() }
        let password =
            try String(contentsOfFile: "\(data)/initial-admin-password", encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).first.map(String.init) ?? ""

        try await APIClient.with(caFile: "\(data)/pki/ica.pem", port: server.port) { client in
            func send(_ exchanges: [Exchange], sid: String?) async throws {
                for exchange in exchanges {
                    let reply = try await client.raw(exchange.command, exchange.body, sid: exchange.sid ? sid : nil)
                    #expect(reply.status == exchange.status, "\(exchange.command) \(exchange.body.prefix(80)): \(reply.status) \(reply.body)")
                    if let code = exchange.code { #expect(reply.body["code"] as? String == code, "\(exchange.command) \(exchange.body.prefix(80))") }
                    #expect(server.record.exit == nil, "the server stopped after \(exchange.command) \(exchange.body.prefix(80)):\n\(server.logTail)")
                }
            }
            try await send(Self.beforeLogin, sid: nil)
            let reader = try await client.call("login", ["user": "admin", "password": password, "read-only": true])
            let readerSID = try #require(reader.body["sid"] as? String, "\(reader.body)")
            try await send(Self.readOnly, sid: readerSID)

            let writer = try await client.login(user: "admin", password: password)
            try await send(Self.readWrite, sid: writer)
            // What is left valid publishes, and verify-policy runs to its verdict.
            for (command, body) in [
                ("add-service-tcp", ["name": "web", "port": ">80"]),
                ("add-simple-gateway", ["name": "gw-1", "ip-address": "192.0.2.1"]),
                ("add-access-rule", ["layer": "Network", "position": 1, "name": "web-in", "service": ["web"], "action": "Accept"] as [String: Any]),
            ] {
                let reply = try await client.call(command, body, sid: writer)
                #expect(reply.status == 200, "\(command): \(reply.body)")
            }
            #expect(try await client.call("publish", sid: writer).status == 200)
            let verify = try await client.call("verify-policy", ["policy-package": "Standard"], sid: writer)
            let taskID = try #require(verify.body["task-id"] as? String, "\(verify.body)")
            let task = try await client.call("show-task", ["task-id": taskID], sid: writer)
            let status = (task.body["tasks"] as? [[String: Any]])?.first?["status"] as? String
            #expect(status?.hasPrefix("succeeded") == true, "\(task.body)")
            #expect(try await client.call("show-session", sid: readerSID).status == 200)
        }
        #expect(server.record.exit == nil, "the server is still running:\n\(server.logTail)")
        let exit = try await server.stop()
        #expect(exit == Exit(status: 0, bySignal: false), "a clean stop on SIGTERM:\n\(server.logTail)")
    }
}

extension APIClient {
    /// POSTs `body` exactly as given (not re-encoded), and reads the reply.
    func raw(_ command: String, _ body: String, sid: String?) async throws -> Reply {
        var request = HTTPClientRequest(url: "\(baseURL)/\(command)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let sid { request.headers.add(name: "X-chkp-sid", value: sid) }
        request.body = .bytes(ByteBuffer(bytes: Array(body.utf8)))
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        let object = (try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView))) as? [String: Any] ?? [:]
        return Reply(status: Int(response.status.code), body: object)
    }
}
