import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import TrustCore

/// The SIC client: connects to a peer's listener with TLS 1.3, presents this node's certificate and
/// judges the server's with the verifier against the identity the caller meant to reach.
///
/// Connections are scoped (structured concurrency, no unowned tasks): `connect` runs a body with the
/// usable `PeerConnection` and closes it when the body returns or throws.
public struct PeerConnector: Sendable {
    private let sslContext: NIOSSLContext
    private let verifier: any PeerCertificateVerifier
    private let limits: PeerLimits
    private let isGroupMember: PeerGroupMembership
    private let now: @Sendable () -> Date
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger

    /// A connector presenting `identity` (this node's SIC certificate and key) and judging servers with
    /// `verifier` at the time `now` returns. Servers `isGroupMember` names exchange frames up to
    /// `limits.groupFrameBytesMax`.
    public init(
        identity: IssuedIdentity,
        verifier: any PeerCertificateVerifier,
        limits: PeerLimits = .default,
        isGroupMember: @escaping PeerGroupMembership = { _ in false },
        now: @escaping @Sendable () -> Date = { Date() },
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "rampart.peer-transport")
    ) throws {
        self.sslContext = try PeerTLS.clientContext(identity: identity)
        self.verifier = verifier
        self.limits = limits
        self.isGroupMember = isGroupMember
        self.now = now
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
    }

    /// Connects to `host:port`, which must prove to be `expecting` (nil: any node the pinned ICA
    /// certified and did not revoke, as a node that only knows its server's address) (the verifier's verdict, e.g.
    /// `.wrongIdentity`, is the error otherwise), waits until the server has accepted this node's
    /// certificate, then runs `body` with the connection and closes it.
    ///
    /// Errors are `PeerTransportError`s: `.peerCertificateRefused` (with `trustFailure`) when this side
    /// refused the server, `.certificateRefusedByPeer` when the server refused this node,
    /// `.connectFailed`, `.connectTimedOut`, `.handshakeTimedOut`, ... Errors thrown by `body` pass through.
    public func connect<Result: Sendable>(
        host: String,
        port: Int,
        expecting expected: NodeIdentity?,
        _ body: (PeerConnection) async throws -> Result
    ) async throws -> Result {
        let sslContext = self.sslContext
        let verifier = self.verifier
        let now = self.now
        let limits = self.limits
        return try await Self.connect(
            host: host, port: port, limits: limits, isGroupMember: isGroupMember, eventLoopGroup: eventLoopGroup, logger: logger,
            makeTLSHandler: { record in
                let callback = PeerTLS.verificationCallback(
                    verifier: verifier, expected: expected, now: now, record: record)
                return try NIOSSLClientHandler(
                    context: sslContext, serverHostname: nil, customVerificationCallback: callback)
            },
            isEnrolment: false, body)
    }

    /// Connects to `host:port` for enrolment: no client certificate, and the server's certificate is
    /// NOT verified. The enrolment protocol must carry its own proofs (the activation key proves both
    /// sides to each other); nothing else may be sent on this connection, and the listener accepts
    /// only `enrolment` frames on it.
    public static func connectForEnrolment<Result: Sendable>(
        host: String,
        port: Int,
        limits: PeerLimits = .default,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "rampart.peer-transport"),
        _ body: (PeerConnection) async throws -> Result
    ) async throws -> Result {
        let sslContext = try PeerTLS.clientContext(identity: nil)
        return try await connect(
            host: host, port: port, limits: limits, isGroupMember: { _ in false }, eventLoopGroup: eventLoopGroup, logger: logger,
            makeTLSHandler: { _ in try NIOSSLClientHandler(context: sslContext, serverHostname: nil) },
            isEnrolment: true, body)
    }

    private static func connect<Result: Sendable>(
        host: String,
        port: Int,
        limits: PeerLimits,
        isGroupMember: @escaping PeerGroupMembership,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        makeTLSHandler: @escaping @Sendable (PeerTrustRecord) throws -> NIOSSLClientHandler,
        isEnrolment: Bool,
        _ body: (PeerConnection) async throws -> Result
    ) async throws -> Result {
        let pending: PeerPipeline.Pending
        do {
            pending = try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(.milliseconds(limits.connectTimeoutMilliseconds))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: host, port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let record = PeerTrustRecord()
                        return try PeerPipeline.configure(
                            channel: channel, tlsHandler: try makeTLSHandler(record), role: .client, record: record,
                            isEnrolmentClient: isEnrolment, limits: limits, isGroupMember: isGroupMember)
                    }
                }
        } catch let error as PeerTransportError {
            throw error
        } catch let error as ChannelError {
            if case .connectTimeout = error {
                throw PeerTransportError(
                    .connectTimedOut,
                    "no TCP connection to \(host):\(port) within \(limits.connectTimeoutMilliseconds) ms")
            }
            throw PeerTransportError(.connectFailed, "cannot connect to \(host):\(port): \(error)")
        } catch {
            throw PeerTransportError(.connectFailed, "cannot connect to \(host):\(port): \(error)")
        }
        let channel = pending.channel.channel
        return try await pending.channel.executeThenClose { inbound, outbound in
            let info: PeerSessionInfo
            do {
                info = try await awaitEstablished(pending.established, channel: channel)
            } catch {
                let mapped = PeerTransportError.map(error, role: .client, refusal: nil)
                logger.warning(
                    "SIC connection to \(host):\(port) failed: \(mapped.message)",
                    metadata: ["sic.code": "\(mapped.code.rawValue)"])
                throw mapped
            }
            let connection = PeerPipeline.makeConnection(
                info, pending.channel, inbound: inbound, outbound: outbound, limits: limits, role: .client)
            return try await body(connection)
        }
    }
}
