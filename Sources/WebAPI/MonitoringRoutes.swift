import Hummingbird
import Logging
import ManagementModel
import NIOCore

/// What `/metrics` and `/health/<check>` answer, given by the node: the exposition text, and a
/// health check's status and JSON reason (nil: no such check). No login: nothing secret is in them.
public struct MonitoringEndpoints: Sendable {
    public let contentType: String
    public let metrics: @Sendable () async -> [UInt8]
    public let health: @Sendable (_ check: String) async -> (status: Int, body: JSONValue)?

    public init(
        contentType: String, metrics: @escaping @Sendable () async -> [UInt8],
        health: @escaping @Sendable (_ check: String) async -> (status: Int, body: JSONValue)?
    ) {
        self.contentType = contentType
        self.metrics = metrics
        self.health = health
    }
}

extension WebAPI {
    /// `GET /metrics` and `GET /health/<check>`, mounted beside `/web_api`.
    public static func monitoringMounts(_ endpoints: MonitoringEndpoints) -> [WebAPIMount] {
        let contentType = endpoints.contentType
        return [
            WebAPIMount(path: "/metrics") { group in
                group.get { _, _ in
                    let bytes = await endpoints.metrics()
                    var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
                    buffer.writeBytes(bytes)
                    return Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: buffer))
                }
            },
            WebAPIMount(path: "/health") { group in
                group.get(":check") { _, context in
                    guard let answer = await endpoints.health(context.parameters.get("check") ?? "") else {
                        return json(404, ["healthy": .bool(false), "reason": "no such health check; use active, standby or synchronized"])
                    }
                    return json(answer.status, answer.body)
                }
            },
        ]
    }

    /// `--metrics-listen`: the monitoring routes alone over plain HTTP (for scrapers without the CA),
    /// with the Web API's connection limits and deadlines. No `/web_api` here.
    public static func plainMonitoringApplication(
        _ endpoints: MonitoringEndpoints, host: String, port: Int, logger: Logger, limits: WebAPIConnectionLimits = .default,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        let router = Router(context: APIRequestContext.self)
        for mount in monitoringMounts(endpoints) { mount.addRoutes(router.group(RouterPath(mount.path))) }
        return Application(
            router: router,
            server: try GuardedHTTPSChannel.builder(tls: nil, limits: limits, logger: logger),
            configuration: .init(address: .hostname(host, port: port), serverName: "Rampart"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }
}
