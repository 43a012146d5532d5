import Foundation
import Hummingbird
import HummingbirdTLS
import Logging
import ManagementModel
import ManagementService
import NIOCore
import NIOSSL

/// Request context that remembers the client's address (for login throttling and sessions).
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteAddress = source.channel.remoteAddress?.ipAddress ?? "local"
    }
}

enum RequestLimits {
    /// How deep a request body may nest. Check Point's bodies nest a few levels; what a request stores
    /// sits some levels deeper inside a revision, a session's draft and a replicated message, all read
    /// back with `Limits.jsonDepthMax`: a value the API accepts must never make the journal unreadable.
    static let bodyDepthMax = Limits.jsonDepthMax / 2
}

/// Routes served beside `/web_api` on the same listener (the metrics endpoint, a web console): a path
/// of their own, and what to add under it. They never reach into `/web_api`, so the Check Point API
/// stays exactly as the command table serves it.
public struct WebAPIMount: Sendable {
    public let path: String
    let addRoutes: @Sendable (RouterGroup<APIRequestContext>) -> Void

    /// `path` ("/metrics", "/console"): neither the root nor `/web_api` or anything under it.
    public init(path: String, _ addRoutes: @escaping @Sendable (RouterGroup<APIRequestContext>) -> Void) {
        let first = path.split(separator: "/").first.map(String.init)
        precondition(first != nil && first != "web_api", "a router is mounted beside /web_api, at a path of its own: \(path)")
        self.path = path
        self.addRoutes = addRoutes
    }
}

/// The Web API over HTTP: `POST /web_api/<command>` and `/web_api/v<version>/<command>`, JSON in
/// and out. Every reply is a JSON object; no cookies are ever set (CHECKPOINT-API.md §1.3).
public enum WebAPI {
    /// The router of the Web API, with `mounts` beside it.
    public static func router(service: ManagementService, isLocalSocket: Bool, mounting mounts: [WebAPIMount] = []) -> Router<APIRequestContext> {
        let router = Router(context: APIRequestContext.self)
        router.add(middleware: UnroutedWebAPIRequestMiddleware())
        for mount in mounts { mount.addRoutes(router.group(RouterPath(mount.path))) }
        // The contract, without login: it says what the commands take, nothing of the data.
        router.get("/web_api/openapi.json") { _, _ in json(200, OpenAPIDocument.json) }
        router.post("/web_api/:first") { request, context in
            await respond(service, request, context, command: context.parameters.get("first") ?? "", version: nil, isLocalSocket: isLocalSocket)
        }
        router.post("/web_api/:first/:command") { request, context in
            await respond(
                service, request, context, command: context.parameters.get("command") ?? "",
                version: context.parameters.get("first"), isLocalSocket: isLocalSocket)
        }
        return router
    }

    static func respond(
        _ service: ManagementService, _ request: Request, _ context: APIRequestContext,
        command: String, version: String?, isLocalSocket: Bool
    ) async -> Response {
        if let version, !APIVersions.supported.contains(version.hasPrefix("v") ? String(version.dropFirst()) : version) {
            return json(
                400,
                ManagementError(
                    code: "err_unknown_api_version", message: "Unknown API version [\(version)]; supported: \(APIVersions.supported.joined(separator: ", "))",
                    httpStatus: 400
                ).body)
        }
        let bytes: ByteBuffer
        do {
            bytes = try await request.body.collect(upTo: Limits.requestBodyBytesMax)
        } catch {
            return json(
                413,
                ManagementError(code: "generic_err_invalid_syntax", message: "Request body larger than \(Limits.requestBodyBytesMax) bytes", httpStatus: 413)
                    .body)
        }
        let body: JSONValue
        if bytes.readableBytes == 0 {
            body = .object([:])
        } else {
            do { body = try JSONValue.parse(bytes.readableBytesView, maxDepth: RequestLimits.bodyDepthMax) } catch {
                return json(400, ManagementError(code: "generic_err_invalid_syntax", message: "Request body is not valid JSON: \(error)", httpStatus: 400).body)
            }
        }
        let sid = request.headers.first { $0.name.canonicalName == "x-chkp-sid" }?.value
        let client = ClientInfo(address: isLocalSocket ? "local-socket" : context.remoteAddress, isLocalSocket: isLocalSocket)
        let reply = await service.handle(command: command, body: body, sid: sid, client: client)
        return json(reply.status, reply.body)
    }

    static func json(_ status: Int, _ body: JSONValue) -> Response {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        buffer.writeBytes(body.canonicalBytes)
        return Response(status: .init(code: status), headers: [.contentType: "application/json"], body: .init(byteBuffer: buffer))
    }
}

/// What no `/web_api` route serves is still answered as a Check Point error (code and message), not
/// an empty 404: another method than POST is a 405 naming POST, a path with no command a 404.
struct UnroutedWebAPIRequestMiddleware: RouterMiddleware {
    typealias Context = APIRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard path == "/web_api" || path.hasPrefix("/web_api/") else { return try await next(request, context) }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            guard request.method == .post else {
                var response = WebAPI.json(
                    405,
                    ManagementError(code: "generic_err_method_not_allowed", message: "Web API commands are sent with POST", httpStatus: 405).body)
                response.headers[.allow] = "POST"
                return response
            }
            return WebAPI.json(
                404, ManagementError(code: "generic_err_command_not_found", message: "No command in the path: use /web_api/<command>", httpStatus: 404).body)
        }
    }
}

extension WebAPI {
    /// The Web API over HTTPS on a TCP port (0: any free port; `onRunning` gets the real one), its
    /// connections bounded by `limits` (handshake, request and idle timeouts, connections per address),
    /// with `mounts` served beside `/web_api` on the same listener.
    public static func httpsApplication(
        service: ManagementService, host: String, port: Int, tls: TLSConfiguration, logger: Logger,
        limits: WebAPIConnectionLimits = .default, mounting mounts: [WebAPIMount] = [],
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        Application(
            router: router(service: service, isLocalSocket: false, mounting: mounts),
            server: try GuardedHTTPSChannel.builder(tls: tls, limits: limits, logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: "Rampart"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// The Web API over plain HTTP on the operator's Unix socket (mode 0600): the file system is the
    /// authority, so `login` there may ask for root without a password.
    public static func localSocketApplication(
        service: ManagementService, path: String, logger: Logger,
        onRunning: @escaping @Sendable () async -> Void = {}
    ) -> some ApplicationProtocol {
        try? FileManager.default.removeItem(atPath: path)
        return Application(
            router: router(service: service, isLocalSocket: true),
            configuration: .init(address: .unixDomainSocket(path: path), serverName: "Rampart"),
            onServerRunning: { _ in
                chmod(path, 0o600)
                await onRunning()
            },
            logger: logger)
    }
}
