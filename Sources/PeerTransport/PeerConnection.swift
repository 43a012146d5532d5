import NIOCore
import NIOSSL
import TrustCore

/// A usable SIC connection, handed to the body of `PeerListener.run` or `PeerConnector.connect`. It
/// lives as long as that body: when the body returns, the connection is closed.
public struct PeerConnection: Sendable {
    /// A verified peer, or an enrolment connection.
    public let kind: PeerConnectionKind
    /// The peer's address, when the socket knows it.
    public let remoteAddress: SocketAddress?
    /// Frames from the peer, in order, of the connection's user type (`message`, or `enrolment`). Ends
    /// when the peer closes; throws a `PeerTransportError` when the connection fails (a frame over the
    /// limit, a protocol violation, the peer's `error` frame). Iterate it from one task only.
    public let inbound: PeerInboundFrames

    let outbound: NIOAsyncChannelOutboundWriter<PeerFrame>
    let channel: any Channel
    let limits: PeerLimits
    let role: PeerRole

    /// The verified identity of the peer; nil on an enrolment connection.
    public var peerIdentity: NodeIdentity? {
        if case .peer(let identity) = kind { identity } else { nil }
    }

    /// The frame type to send on this connection: `message` to a verified peer, `enrolment` otherwise.
    public var frameType: PeerFrameType { kind.userFrameType }

    /// Sends a frame; waits while the peer is not reading (back pressure). Throws `frameTooLarge` for a
    /// payload over `PeerLimits.frameBytesMax` and `protocolViolation` for a type this connection does not
    /// carry, without closing the connection.
    public func send(_ frame: PeerFrame) async throws {
        guard frame.type == kind.userFrameType else {
            throw PeerTransportError(
                .protocolViolation,
                "cannot send a \(frame.type) frame on an \(kind) connection; only \(kind.userFrameType) frames")
        }
        guard frame.payload.readableBytes <= limits.frameBytesMax else {
            throw PeerTransportError(
                .frameTooLarge,
                "a frame of \(frame.payload.readableBytes) bytes exceeds the limit of \(limits.frameBytesMax) bytes")
        }
        do {
            try await outbound.write(frame)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw PeerTransportError.map(error, role: role, refusal: nil)
        }
    }

    /// Sends `bytes` as a frame of this connection's type.
    public func send(bytes: some Sequence<UInt8>) async throws {
        try await send(PeerFrame(type: kind.userFrameType, bytes: bytes))
    }

    /// Closes the connection (TLS close, then TCP). Frames already sent are flushed first. Idempotent.
    public func close() async {
        outbound.finish()
        try? await channel.close()
    }
}

/// The inbound frames of a `PeerConnection`.
public struct PeerInboundFrames: AsyncSequence, Sendable {
    public typealias Element = PeerFrame
    public typealias Failure = any Error

    let stream: NIOAsyncChannelInboundStream<PeerFrame>
    let role: PeerRole

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: NIOAsyncChannelInboundStream<PeerFrame>.AsyncIterator
        let role: PeerRole

        public mutating func next() async throws -> PeerFrame? {
            do {
                return try await base.next()
            } catch let error as CancellationError {
                throw error
            } catch {
                throw PeerTransportError.map(error, role: role, refusal: nil)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: stream.makeAsyncIterator(), role: role)
    }
}

/// The channel pipeline both ends share: TLS, framing, the session state machine, then NIOAsyncChannel.
enum PeerPipeline {
    typealias AsyncChannel = NIOAsyncChannel<PeerFrame, PeerFrame>
    typealias Pending = (channel: AsyncChannel, established: EventLoopFuture<PeerSessionInfo>)

    /// Adds the handlers to `channel`; must run on its event loop (inside a channel initializer).
    static func configure(
        channel: any Channel,
        tlsHandler: NIOSSLHandler,
        role: PeerRole,
        record: PeerTrustRecord,
        isEnrolmentClient: Bool = false,
        acceptsEnrolment: Bool = false,
        limits: PeerLimits
    ) throws -> Pending {
        let session = PeerSessionHandler(
            role: role, record: record, isEnrolmentClient: isEnrolmentClient, acceptsEnrolment: acceptsEnrolment,
            limits: limits, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandlers([
            tlsHandler,
            ByteToMessageHandler(PeerFrameDecoder(frameBytesMax: limits.frameBytesMax)),
            MessageToByteHandler(PeerFrameEncoder(frameBytesMax: limits.frameBytesMax)),
            session,
        ])
        let high = max(1, limits.inboundFramesBufferedMax)
        let asyncChannel = try AsyncChannel(
            wrappingChannelSynchronously: channel,
            configuration: .init(backPressureStrategy: .init(lowWatermark: max(0, high / 2), highWatermark: high)))
        return (asyncChannel, session.established)
    }

    static func makeConnection(
        _ info: PeerSessionInfo, _ asyncChannel: AsyncChannel,
        inbound: NIOAsyncChannelInboundStream<PeerFrame>, outbound: NIOAsyncChannelOutboundWriter<PeerFrame>,
        limits: PeerLimits, role: PeerRole
    ) -> PeerConnection {
        PeerConnection(
            kind: info.kind, remoteAddress: info.remoteAddress,
            inbound: PeerInboundFrames(stream: inbound, role: role),
            outbound: outbound, channel: asyncChannel.channel, limits: limits, role: role)
    }
}
