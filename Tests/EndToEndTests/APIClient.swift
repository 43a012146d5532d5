import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL

/// A minimal Web API client for driving load from inside the test (the burst of publishes), where
/// starting one `rampart mgmt` process per call would be too slow to be a burst. It trusts only the
/// server's Internal CA, as `rampart mgmt --data DIR` does.
struct APIClient: Sendable {
    let http: HTTPClient
    let baseURL: String

    struct Reply: @unchecked Sendable {
        let status: Int
        let body: [String: Any]
    }

    static func with<T: Sendable>(caFile: String, port: Int, _ body: (APIClient) async throws -> T) async throws -> T {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
        // Once the server is killed, calls must fail at once rather than retry until a timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result: Result<T, any Error>
        do { result = .success(try await body(APIClient(http: http, baseURL: "https://127.0.0.1:\(port)/web_api"))) } catch { result = .failure(error) }
        try? await http.shutdown()
        return try result.get()
    }

    func call(_ command: String, _ body: [String: Any] = [:], sid: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: "\(baseURL)/\(command)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        if let sid { request.headers.add(name: "X-chkp-sid", value: sid) }
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        let response = try await http.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        let data = Data(bytes.readableBytesView)
        let object = data.isEmpty ? [:] : (try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:])
        return Reply(status: Int(response.status.code), body: object)
    }

    func login(user: String, password: String) async throws -> String {
        let reply = try await call("login", ["user": user, "password": password])
        guard reply.status == 200, let sid = reply.body["sid"] as? String else {
            throw E2EFailure("login failed: HTTP \(reply.status) \(reply.body)")
        }
        return sid
    }
}
