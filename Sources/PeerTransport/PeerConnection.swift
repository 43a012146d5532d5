import NIOCore
import NIOSSL
import Synchronization
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
    /// The largest frame this connection carries either way (`PeerLimits.frameBytesMax(groupMember:)`).
    public let frameBytesMax: Int
    let role: PeerRole
    let immediate = ImmediateWrites()

    /// The verified identity of the peer; nil on an enrolment connection.
    public var peerIdentity: NodeIdentity? {
        if case .peer(let identity) = kind { identity } else { nil }
    }

    /// The frame type to send on this connection: `message` to a verified peer, `enrolment` otherwise.
    public var frameType: PeerFrameType { kind.userFrameType }

    /// Sends a frame; waits while the peer is not reading (back pressure). Throws `frameTooLarge` for a
    /// payload over `frameBytesMax` and `protocolViolation` for a type this connection does not
    /// carry, without closing the connection.
    public func send(_ frame: PeerFrame) async throws {
        guard frame.type == kind.userFrameType else {
            throw PeerTransportError(
                .protocolViolation,
                "cannot send a \(frame.type) frame on an \(kind) connection; only \(kind.userFrameType) frames")
        }
        guard frame.payload.readableBytes <= frameBytesMax else {
            throw PeerTransportError(
                .frameTooLarge,
                "a frame of \(frame.payload.readableBytes) bytes exceeds the limit of \(frameBytesMax) bytes")
        }
        do {
            try await outbound.write(frame)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw PeerTransportError.map(error, role: role, refusal: nil)
        }
    }

    /// Sends a frame without waiting: written at once when called on the connection's event loop (and
    /// nothing sent from another thread is still on its way there: order is kept), else handed to the
    /// event loop. No back pressure: the frame is dropped, and false returned, while more than
    /// `PeerLimits.unsentBytesMax` bytes sent this way wait for the socket (the caller resends what
    /// matters), or when it is not a frame this connection carries. For latency-bound protocols that
    /// bound what they send themselves (HA); do not mix with `send` on one connection.
    @discardableResult
    public func sendNow(_ frame: PeerFrame) -> Bool {
        let bytes = frame.payload.readableBytes
        guard frame.type == kind.userFrameType, bytes <= frameBytesMax else { return false }
        let eventLoop = channel.eventLoop
        switch immediate.admit(bytes: bytes, unsentBytesMax: limits.unsentBytesMax, onEventLoop: eventLoop.inEventLoop) {
        case .refused:
            return false
        case .now:
            write(frame, bytes: bytes)
        case .queued:
            eventLoop.execute { [self] in
                immediate.queuedRan()
                write(frame, bytes: bytes)
            }
        }
        return true
    }

    private func write(_ frame: PeerFrame, bytes: Int) {
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { [immediate] _ in immediate.written(bytes: bytes) }
        channel.writeAndFlush(frame, promise: written)
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

/// What `PeerConnection.sendNow` has handed over and the socket has not taken yet, and how many of
/// those writes still wait for the event loop (a write on the event loop must queue behind them).
final class ImmediateWrites: Sendable {
    enum Route { case now, queued, refused }

    private struct Counts {
        var unsentBytes = 0
        var queued = 0
    }

    private let counts = Mutex(Counts())

    func admit(bytes: Int, unsentBytesMax: Int, onEventLoop: Bool) -> Route {
        counts.withLock { counts in
            guard counts.unsentBytes + bytes <= unsentBytesMax else { return .refused }
            counts.unsentBytes += bytes
            if onEventLoop, counts.queued == 0 { return .now }
            counts.queued += 1
            return .queued
        }
    }

    func queuedRan() { counts.withLock { $0.queued -= 1 } }
    func written(bytes: Int) { counts.withLock { $0.unsentBytes -= bytes } }
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
        limits: PeerLimits,
        isGroupMember: @escaping PeerGroupMembership = { _ in false }
    ) throws -> Pending {
        // Until the peer is verified, only the small frames of the handshake and enrolment are read.
        let inboundBound = PeerInboundFrameBound(
            bytesMax: min(limits.unauthenticatedFrameBytesMax, limits.frameBytesMax))
        let session = PeerSessionHandler(
            role: role, record: record, isEnrolmentClient: isEnrolmentClient, acceptsEnrolment: acceptsEnrolment,
            limits: limits, isGroupMember: isGroupMember, inboundBound: inboundBound, eventLoop: channel.eventLoop)
        try channel.pipeline.syncOperations.addHandlers([
            tlsHandler,
            ByteToMessageHandler(PeerFrameDecoder(bound: inboundBound)),
            // A backstop: `PeerConnection` checks each frame against its own connection's limit first.
            MessageToByteHandler(PeerFrameEncoder(frameBytesMax: limits.frameBytesMax(groupMember: true))),
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
            outbound: outbound, channel: asyncChannel.channel, limits: limits, frameBytesMax: info.frameBytesMax, role: role)
    }
}
