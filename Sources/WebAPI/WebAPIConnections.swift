import Foundation
import HummingbirdCore
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import Synchronization

/// Bounds on the Web API's connections: without them, anyone who reaches the port can hold
/// connections (and their memory) forever by sending nothing, or one byte at a time.
public struct WebAPIConnectionLimits: Sendable, Equatable {
    /// From TCP connection to a completed TLS handshake.
    public var tlsHandshakeTimeoutMilliseconds: Int64 = 10_000
    /// Until a request's head (request line and headers) has fully arrived: from the end of the TLS
    /// handshake for the first request, from the request's first byte for later ones.
    public var requestHeadTimeoutMilliseconds: Int64 = 10_000
    /// From a request's head until its whole body has arrived (bodies are at most 1 MiB).
    public var requestBodyTimeoutMilliseconds: Int64 = 30_000
    /// A kept-alive connection with no request in flight is closed after this long. Above the 60 s
    /// after which common clients (AsyncHTTPClient, browsers) drop idle pooled connections themselves,
    /// so they close first and never send on a connection the server is closing.
    public var keepAliveIdleTimeoutMilliseconds: Int64 = 75_000
    /// Most connections open at once from one client address; more are closed at once.
    public var connectionsPerAddressMax: Int = 64

    public init() {}

    /// The limits a server runs with.
    public static let `default` = WebAPIConnectionLimits()
}

/// Builds the HTTPS child channel: per-address admission, TLS, the connection's deadlines, HTTP/1.1.
/// Without TLS (the plain metrics listener) the same admission and deadlines, the handshake's skipped.
struct GuardedHTTPSChannel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let http: HTTP1Channel
    let sslContext: NIOSSLContext?
    let limits: WebAPIConnectionLimits
    let addresses: ConnectionsPerAddress

    /// The server builder for `Application(server:)`.
    static func builder(tls: TLSConfiguration?, limits: WebAPIConnectionLimits, logger: Logger) throws
        -> HTTPServerBuilder
    {
        let sslContext = try tls.map { try NIOSSLContext(configuration: $0) }
        let addresses = ConnectionsPerAddress(limit: limits.connectionsPerAddressMax, logger: logger)
        return HTTPServerBuilder { responder in
            GuardedHTTPSChannel(
                http: HTTP1Channel(responder: responder), sslContext: sslContext, limits: limits, addresses: addresses)
        }
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        guard addresses.admit(channel) else {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(ChannelError.inappropriateOperationForState)
        }
        let deadline = ConnectionDeadline(limits: limits, encrypted: sslContext != nil)
        return channel.eventLoop.makeCompletedFuture {
            let tls: [any ChannelHandler] = sslContext.map { [NIOSSLServerHandler(context: $0)] } ?? []
            try channel.pipeline.syncOperations.addHandlers(tls + [ConnectionByteWatch(deadline)])
        }.flatMap {
            http.setup(channel: channel, logger: logger)
        }.flatMapThrowing { value in
            // Between the HTTP codec and Hummingbird's connection handler: it sees request and response parts.
            let state = try channel.pipeline.syncOperations.handler(type: HTTPConnectionStateHandler.self)
            try channel.pipeline.syncOperations.addHandler(ConnectionRequestWatch(deadline), position: .before(state))
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await http.handle(value: value, logger: logger)
    }
}

/// Open connections per client address; admits a connection while its address has fewer than
/// `limit`, and counts it until it closes.
final class ConnectionsPerAddress: Sendable {
    private struct Entry {
        var open = 0
        /// A refusal was logged since the address was last below its limit (one line per episode).
        var refusalLogged = false
    }

    private let limit: Int
    private let logger: Logger
    private let entries = Mutex([String: Entry]())

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    func admit(_ channel: any Channel) -> Bool {
        let address = channel.remoteAddress?.ipAddress ?? "unknown"
        let (admitted, logRefusal) = entries.withLock { entries -> (Bool, Bool) in
            var entry = entries[address, default: Entry()]
            defer { entries[address] = entry }
            guard entry.open < limit else {
                defer { entry.refusalLogged = true }
                return (false, !entry.refusalLogged)
            }
            entry.open += 1
            return (true, false)
        }
        if logRefusal {
            logger.warning(
                "Web API: connections from one address refused: \(limit) are open",
                metadata: ["address": "\(address)"])
        }
        if admitted {
            channel.closeFuture.whenComplete { [self] _ in release(address) }
        }
        return admitted
    }

    private func release(_ address: String) {
        entries.withLock { entries in
            guard var entry = entries[address] else { return }
            entry.open -= 1
            entry.refusalLogged = false
            entries[address] = entry.open > 0 ? entry : nil
        }
    }

    /// Open connections from `address` (for tests).
    func openCount(_ address: String) -> Int { entries.withLock { $0[address]?.open ?? 0 } }
}

/// The one deadline a connection has at any time, by phase: TLS handshake, request head, request body,
/// or keep-alive idle; none while the server works on a request. Closes the connection when it passes.
/// Confined to the channel's event loop.
final class ConnectionDeadline {
    private enum Phase {
        case handshaking
        /// TLS is up; the first request's head is due within the head timeout.
        case awaitingFirstRequest
        /// Between requests; the next one's first byte starts its head timeout.
        case idle
        case readingHead
        case readingBody
        case responding
    }

    private let limits: WebAPIConnectionLimits
    private var phase: Phase
    /// Requests whose head has arrived and whose response has not ended (HTTP/1.1 pipelining).
    private var requestsInFlight = 0
    private var scheduled: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    /// `encrypted: false`: no handshake, the first request's head is due from the connection's start.
    init(limits: WebAPIConnectionLimits, encrypted: Bool = true) {
        self.limits = limits
        phase = encrypted ? .handshaking : .awaitingFirstRequest
    }

    func connected(_ context: ChannelHandlerContext) {
        guard self.context == nil else { return }
        self.context = context
        arm(phase == .handshaking ? limits.tlsHandshakeTimeoutMilliseconds : limits.requestHeadTimeoutMilliseconds)
    }

    func tlsEstablished() {
        guard phase == .handshaking else { return }
        phase = .awaitingFirstRequest
        arm(limits.requestHeadTimeoutMilliseconds)
    }

    func bytesArrived() {
        switch phase {
        case .idle:
            phase = .readingHead
            arm(limits.requestHeadTimeoutMilliseconds)
        case .awaitingFirstRequest:
            phase = .readingHead  // its deadline runs from the handshake
        case .handshaking, .readingHead, .readingBody, .responding:
            break
        }
    }

    func headReceived() {
        requestsInFlight += 1
        phase = .readingBody
        arm(limits.requestBodyTimeoutMilliseconds)
    }

    func requestEnded() {
        guard phase == .readingBody else { return }
        phase = .responding
        settle()
    }

    func responseEnded() {
        requestsInFlight = max(0, requestsInFlight - 1)
        settle()
    }

    /// Between a request's end and its response's there is no deadline (the server works); once every
    /// response has ended (or the server answered before the body ended, and it has now), idle.
    private func settle() {
        guard phase == .responding else { return }
        if requestsInFlight > 0 {
            disarm()
        } else {
            phase = .idle
            arm(limits.keepAliveIdleTimeoutMilliseconds)
        }
    }

    func closed() {
        disarm()
        context = nil
    }

    private func arm(_ milliseconds: Int64) {
        disarm()
        guard let context else { return }
        scheduled = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) { [self] in
            scheduled = nil
            self.context?.close(promise: nil)
        }
    }

    private func disarm() {
        scheduled?.cancel()
        scheduled = nil
    }
}

/// Right above TLS: the connection's start, the handshake's end and the arrival of bytes.
final class ConnectionByteWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let deadline: ConnectionDeadline

    init(_ deadline: ConnectionDeadline) { self.deadline = deadline }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { deadline.connected(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        deadline.connected(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline.closed()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline.closed()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { deadline.tlsEstablished() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        deadline.bytesArrived()
        context.fireChannelRead(data)
    }
}

/// Between the HTTP codec and Hummingbird: a request's head and end, and the end of each response.
final class ConnectionRequestWatch: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPConnectionStateHandler.InboundIn
    typealias InboundOut = HTTPConnectionStateHandler.InboundIn
    typealias OutboundIn = HTTPConnectionStateHandler.OutboundIn
    typealias OutboundOut = HTTPConnectionStateHandler.OutboundIn

    private let deadline: ConnectionDeadline

    init(_ deadline: ConnectionDeadline) { self.deadline = deadline }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: deadline.headReceived()
        case .body: break
        case .end: deadline.requestEnded()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { deadline.responseEnded() }
        context.write(data, promise: promise)
    }
}
