import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ManagementModel
import NIOCore
import Testing
import WebAPI

@testable import ManagementService

/// The Web API as a contract (issue 23): `/web_api/openapi.json` names exactly the commands the
/// dispatcher serves, each with the parameters the catalog gives it, and every error's shape.
@Suite("Web API: the OpenAPI contract")
struct OpenAPIContractTests {
    func served() async throws -> (status: Int, contentType: String?, body: JSONValue) {
        let h = try await Harness()
        let app = Application(router: WebAPI.router(service: h.service, isLocalSocket: false))
        return try await app.test(.router) { client in
            try await client.execute(uri: "/web_api/openapi.json", method: .get) { response in
                (Int(response.status.code), response.headers[.contentType], (try? JSONValue.parse(response.body.readableBytesView)) ?? .null)
            }
        }
    }

    /// Served without login; every command of the table is a path, and no other path is there.
    @Test func theServedDocumentNamesEveryCommandOfTheTableAndNoOther() async throws {
        let document = try await served()
        #expect(document.status == 200 && document.contentType == "application/json")
        #expect(document.body["openapi"]?.stringValue?.hasPrefix("3.") == true)
        let paths = Set(document.body["paths"]?.objectValue?.keys.map { String($0) } ?? [])
        let table = Set(CommandTable.entries.keys.map { "/web_api/\($0)" })
        #expect(!table.isEmpty)
        #expect(paths.subtracting(table).isEmpty, "paths no command serves: \(paths.subtracting(table).sorted())")
        #expect(table.subtracting(paths).isEmpty, "commands the document lacks: \(table.subtracting(paths).sorted())")
    }

    /// Each operation's body lists the catalog's parameters with their required ones; session commands
    /// ask for X-chkp-sid; every refusal points at the common {code, message} shape.
    @Test func eachOperationCarriesTheCatalogsParametersAndTheErrorShape() async throws {
        let document = try await served().body
        #expect(document["components"]?["schemas"]?["Error"]?["required"] == ["code", "message"])
        for entry in CommandTable.entries.values {
            let spec = entry.spec
            let operation = try #require(document["paths"]?["/web_api/\(spec.name)"]?["post"], "\(spec.name)")
            let schema = operation["requestBody"]?["content"]?["application/json"]?["schema"]
            let properties = Set(schema?["properties"]?.objectValue?.keys.map { String($0) } ?? [])
            #expect(properties == Set(spec.parameters.map(\.name)), "\(spec.name)")
            let required = Set(schema?["required"]?.arrayValue?.compactMap(\.stringValue) ?? [])
            #expect(required == Set(spec.parameters.filter(\.required).map(\.name)), "\(spec.name)")
            #expect((operation["security"]?.arrayValue?.isEmpty == false) == spec.needsSession, "\(spec.name)")
            #expect(operation["responses"]?["default"]?["content"]?["application/json"]?["schema"]?["$ref"] == "#/components/schemas/Error")
        }
        let login = document["paths"]?["/web_api/login"]?["post"]?["requestBody"]?["content"]?["application/json"]?["schema"]
        #expect(login?["properties"]?["session-timeout"]?["type"] == "integer")
        #expect(login?["required"] == ["user", "password"] || login?["required"] == ["password", "user"])
    }
}

/// Found by the contract fuzz (Tests/contract): a request to /web_api with another method than POST,
/// or a path with no command, was answered 404 with an empty body; every Web API reply is a JSON
/// object with a code and a message.
@Suite("Web API: every refusal has a code and a message")
struct WebAPIMethodTests {
    @Test func otherMethodsAndStrayPathsAreRefusedWithACheckPointError() async throws {
        let h = try await Harness()
        let app = Application(router: WebAPI.router(service: h.service, isLocalSocket: false))
        try await app.test(.router) { client in
            for method in [HTTPRequest.Method.get, .put, .delete, .patch, .trace, .options] {
                for path in ["/web_api/show-hosts", "/web_api/v1.8/show-hosts"] {
                    let reply = try await client.execute(uri: path, method: method, body: ByteBuffer(string: "{}")) { response in
                        (Int(response.status.code), response.headers[.allow], try? JSONValue.parse(response.body.readableBytesView))
                    }
                    #expect(reply.0 == 405 && reply.1 == "POST", "\(method) \(path)")
                    #expect(reply.2?["code"] == "generic_err_method_not_allowed", "\(method) \(path)")
                    #expect(reply.2?["message"]?.stringValue?.isEmpty == false, "\(method) \(path)")
                }
            }
            for path in ["/web_api", "/web_api/", "/web_api/v1.8/show-hosts/extra"] {
                let reply = try await client.execute(uri: path, method: .post, body: ByteBuffer(string: "{}")) { response in
                    (Int(response.status.code), try? JSONValue.parse(response.body.readableBytesView))
                }
                #expect(reply.0 == 404 && reply.1?["code"] == "generic_err_command_not_found", "\(path)")
                #expect(reply.1?["message"]?.stringValue?.isEmpty == false, "\(path)")
            }
        }
    }
}
