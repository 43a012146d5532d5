import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import ManagementModel
import ManagementService
import NIOCore
import Testing
import TrustCore
import WebAPI

@Suite("Web API over HTTP")
struct HTTPTests {
    func post(_ client: some TestClientProtocol, _ path: String, _ body: String, sid: String? = nil) async throws -> (
        status: Int, body: JSONValue, headers: HTTPFields
    ) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let sid { headers[HTTPField.Name("X-chkp-sid")!] = sid }
        return try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (Int(response.status.code), (try? JSONValue.parse(response.body.readableBytesView)) ?? .null, response.headers)
        }
    }

    @Test func routerServesVersionedPathsWithoutCookies() async throws {
        let h = try await Harness()
        let app = Application(router: WebAPI.router(service: h.service, isLocalSocket: false))
        try await app.test(.router) { client in
            let login = try await post(client, "/web_api/login", #"{"user":"admin","password":"adminpw"}"#)
            #expect(login.status == 200)
            #expect(login.headers[.setCookie] == nil)
            let sid = login.body["sid"]!.stringValue!
            #expect(try await post(client, "/web_api/v1.8/show-hosts", "{}", sid: sid).status == 200)
            #expect(try await post(client, "/web_api/show-hosts", "", sid: sid).status == 200)
            #expect(try await post(client, "/web_api/v9.9/show-hosts", "{}", sid: sid).body["code"] == "err_unknown_api_version")
            let notJSON = try await post(client, "/web_api/show-hosts", "{nope", sid: sid)
            #expect(notJSON.status == 400 && notJSON.body["code"] == "generic_err_invalid_syntax")
            let huge = "{\"name\":\"" + String(repeating: "x", count: Limits.requestBodyBytesMax) + "\"}"
            #expect(try await post(client, "/web_api/add-host", huge, sid: sid).status == 413)
        }
    }

    @Test func liveHTTPSServerAnswers() async throws {
        let h = try await Harness()
        let pki = try PKIDirectory.loadOrCreate(dataDirectory: h.directory, serverName: "primary", listenAddresses: ["127.0.0.1"], now: Date())
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let app = try WebAPI.httpsApplication(service: h.service, host: "127.0.0.1", port: 0, tls: try pki.makeServerTLSConfiguration(), logger: logger)
        try await app.test(.ahc(.https)) { client in
            let login = try await post(client, "/web_api/login", #"{"user":"admin","password":"adminpw"}"#)
            #expect(login.status == 200)
            let sid = login.body["sid"]!.stringValue!
            let added = try await post(client, "/web_api/add-host", #"{"name":"web","ip-address":"192.0.2.7"}"#, sid: sid)
            #expect(added.body["ipv4-address"] == "192.0.2.7")
            #expect(try await post(client, "/web_api/publish", "{}", sid: sid).body["task-id"] != nil)
        }
    }

    /// A router mounted beside /web_api (as the metrics endpoint and the web console will be) answers
    /// on the Web API's own HTTPS listener, and the Web API beside it is unchanged.
    @Test func aMountedRouterIsServedBesideTheWebAPIOnTheSameListener() async throws {
        let h = try await Harness()
        let pki = try PKIDirectory.loadOrCreate(dataDirectory: h.directory, serverName: "primary", listenAddresses: ["127.0.0.1"], now: Date())
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let metrics = WebAPIMount(path: "/metrics") { group in
            group.get("ping") { _, _ in "pong" }
        }
        let app = try WebAPI.httpsApplication(
            service: h.service, host: "127.0.0.1", port: 0, tls: try pki.makeServerTLSConfiguration(),
            logger: logger, mounting: [metrics])
        try await app.test(.ahc(.https)) { client in
            let pong = try await client.execute(uri: "/metrics/ping", method: .get) { response in
                (Int(response.status.code), String(buffer: response.body))
            }
            #expect(pong.0 == 200 && pong.1 == "pong")
            let login = try await post(client, "/web_api/login", #"{"user":"admin","password":"adminpw"}"#)
            #expect(login.status == 200 && login.body["sid"]?.stringValue != nil)
            let unknown = try await post(client, "/web_api/metrics", "{}", sid: login.body["sid"]?.stringValue)
            #expect(unknown.status == 404 && unknown.body["code"] == "generic_err_command_not_found")
        }
    }
}

@Suite("Web API: what a request stores can be read back")
struct StoredDepthTests {
    func nested(_ depth: Int) -> String { String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth) }

    /// The issue 18 sweep's case: a host whose nat-settings nested 30 deep was accepted and published;
    /// at the next start the journal did not verify ("stored revision cannot be decoded") and the
    /// server refused to run. The deepest body the API takes must come back from the journal.
    @Test func theDeepestAcceptedBodyIsReadableFromTheJournal() async throws {
        let h = try await Harness()
        let app = Application(router: WebAPI.router(service: h.service, isLocalSocket: false))
        try await app.test(.router) { client in
            let login = try await HTTPTests().post(client, "/web_api/login", #"{"user":"admin","password":"adminpw"}"#)
            let sid = try #require(login.body["sid"]?.stringValue)
            var accepted = 0
            for depth in stride(from: Limits.jsonDepthMax + 2, through: 1, by: -1) {
                let body = #"{"name":"deep-\#(depth)","ip-address":"192.0.2.9","nat-settings":\#(nested(depth))}"#
                let reply = try await HTTPTests().post(client, "/web_api/add-host", body, sid: sid)
                if reply.status == 200 {
                    accepted = depth
                    break
                }
                #expect(reply.status == 400 && reply.body["code"] == "generic_err_invalid_syntax", "\(reply.body.canonicalString)")
            }
            #expect(accepted > 3, "Check Point's own bodies nest a few levels")
            #expect(try await HTTPTests().post(client, "/web_api/publish", "{}", sid: sid).status == 200)
        }
        #expect(try h.store.verifyJournal() == nil)
        let restarted = try await Harness(directory: h.directory, clock: h.clock)
        #expect(try restarted.store.verifyJournal() == nil)
    }
}
