import NIOCore
import NIOSSL
import NIOTLS
import TrustCore

/// What a usable connection is: a verified peer, or a node without a certificate that may only enrol.
public enum PeerConnectionKind: Sendable, Equatable, CustomStringConvertible {
    /// Mutual TLS with a certificate the verifier accepted; only `message` frames flow.
    case peer(NodeIdentity)
    /// No client certificate (and, on the client, no verification of the server); only `enrolment`
    /// frames flow, and the enrolment protocol proves both sides with the activation key.
    case enrolment

    public var description: String {
        switch self {
        case .peer(let identity): "peer \(identity)"
        case .enrolment: "enrolment"
        }
    }

    /// The frame type users exchange on a connection of this kind.
    var userFrameType: PeerFrameType {
        switch self {
        case .peer: .message
        case .enrolment: .enrolment
        }
    }
}

/// What the session handler hands up once a connection is usable.
struct PeerSessionInfo: Sendable {
    let kind: PeerConnectionKind
    let remoteAddress: SocketAddress?
    /// The largest frame either side may send now (the group's limit for a member of it).
    let frameBytesMax: Int
}

/// The connection's state machine above TLS and framing: bounds the handshake in time, has the server
/// announce `ready` (in TLS 1.3 the client's handshake ends before the server has judged the client's
/// certificate, so the client waits for this frame before it uses the channel), enforces which frame
/// types may flow on which kind of connection, turns errors into `PeerTransportError`s and, for protocol
/// errors, tells the peer why in an `error` frame before closing.
///
/// On the listener, a client stays unauthenticated until its certificate is verified: until then its
/// frames are bounded by `PeerLimits.unauthenticatedFrameBytesMax`, and it must be verified, or deliver
/// its one enrolment request, within `unauthenticatedTimeoutMilliseconds` of connecting. An enrolment
/// connection carries one request.
final class PeerSessionHandler: ChannelDuplexHandler {
    typealias InboundIn = PeerFrame
    typealias InboundOut = PeerFrame
    typealias OutboundIn = PeerFrame
    typealias OutboundOut = PeerFrame

    private enum State {
        /// TLS or the `ready` frame is not done yet.
        case handshaking
        /// Usable; frames of the kind's type flow.
        case established(PeerConnectionKind)
        /// An error or close happened; nothing more is delivered.
        case closing
    }

    private let role: PeerRole
    private let record: PeerTrustRecord
    /// Client only: this is an enrolment connection (no certificate, server not verified).
    private let isEnrolmentClient: Bool
    /// Server only: a client without a certificate is an enrolment connection (else TLS refuses it; this
    /// flag makes the handler fail closed should TLS ever let one through).
    private let acceptsEnrolment: Bool
    private let limits: PeerLimits
    private let isGroupMember: PeerGroupMembership
    /// The decoder's limit, raised once the peer is verified.
    private let inboundBound: PeerInboundFrameBound
    private let establishedPromise: EventLoopPromise<PeerSessionInfo>
    private var state: State = .handshaking
    private var isTLSUp = false
    private var isSettled = false
    private var handshakeTimeout: Scheduled<Void>?
    /// Server only: closes a client that is neither verified nor done with its enrolment request in time.
    private var unauthenticatedTimeout: Scheduled<Void>?
    /// Server only: the enrolment request has arrived (the connection carries no other).
    private var hasEnrolmentRequest = false

    /// Succeeds when the connection is usable, fails with a `PeerTransportError` saying why it is not.
    var established: EventLoopFuture<PeerSessionInfo> { establishedPromise.futureResult }

    init(
        role: PeerRole, record: PeerTrustRecord, isEnrolmentClient: Bool, acceptsEnrolment: Bool, limits: PeerLimits,
        isGroupMember: @escaping PeerGroupMembership, inboundBound: PeerInboundFrameBound, eventLoop: any EventLoop
    ) {
        self.isGroupMember = isGroupMember
        self.role = role
        self.record = record
        self.isEnrolmentClient = isEnrolmentClient
        self.acceptsEnrolment = acceptsEnrolment
        self.limits = limits
        self.inboundBound = inboundBound
        self.establishedPromise = eventLoop.makePromise(of: PeerSessionInfo.self)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startHandshakeTimeout(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        unauthenticatedTimeout?.cancel()
        settle(.failure(PeerTransportError(.connectionClosed, "the connection was torn down during the handshake")))
    }

    func channelActive(context: ChannelHandlerContext) {
        startHandshakeTimeout(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        handshakeTimeout?.cancel()
        unauthenticatedTimeout?.cancel()
        if case .handshaking = state {
            let error: PeerTransportError =
                if let refusal = record.refusal {
                    .map(ChannelError.eof, role: role, refusal: refusal)
                } else {
                    PeerTransportError(
                        .connectionClosed, "\(role.peerName) closed the connection before it was established")
                }
            settle(.failure(error))
        }
        state = .closing
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            isTLSUp = true
            switch role {
            case .server:
                // The verifier ran inside the handshake; a certificate it refused never gets here. Fail
                // closed all the same if the record disagrees.
                if let refusal = record.refusal {
                    fail(context: context, PeerTransportError.map(ChannelError.eof, role: role, refusal: refusal))
                } else if record.identity == nil && !acceptsEnrolment {
                    fail(
                        context: context,
                        PeerTransportError.map(ChannelError.eof, role: role, refusal: .noCertificate))
                } else {
                    let kind: PeerConnectionKind = record.identity.map { .peer($0) } ?? .enrolment
                    // Established first: whoever waits on it (the listener's slots) knows before the client.
                    establish(context: context, kind: kind)
                    context.writeAndFlush(wrapOutboundOut(PeerFrame(type: .ready, payload: ByteBuffer())), promise: nil)
                }
            case .client:
                if !isEnrolmentClient && record.identity == nil {
                    fail(
                        context: context,
                        PeerTransportError(.handshakeFailed, "the TLS handshake ended without verifying the server"))
                }
            // Otherwise wait for the server's `ready`.
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch state {
        case .closing:
            return
        case .handshaking:
            switch (role, frame.type) {
            case (.client, .ready):
                if isEnrolmentClient {
                    establish(context: context, kind: .enrolment)
                } else if let identity = record.identity {
                    establish(context: context, kind: .peer(identity))
                } else {
                    fail(context: context, PeerTransportError(.handshakeFailed, "ready before the server was verified"))
                }
            case (_, .error):
                fail(context: context, closedByPeer(frame))
            default:
                fail(
                    context: context,
                    PeerTransportError(
                        .protocolViolation,
                        "\(role.peerName) sent a \(frame.type) frame before the connection was ready"))
            }
        case .established(let kind):
            if frame.type == kind.userFrameType, role == .server, kind == .enrolment {
                acceptEnrolmentRequest(context: context, data)
            } else if frame.type == kind.userFrameType {
                context.fireChannelRead(data)
            } else if frame.type == .error {
                fail(context: context, closedByPeer(frame))
            } else {
                fail(
                    context: context,
                    PeerTransportError(
                        .protocolViolation,
                        "\(role.peerName) sent a \(frame.type) frame on an \(kind) connection, where only \(kind.userFrameType) frames are allowed"
                    ))
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Once closing, the reader above (NIOAsyncChannel) has stopped asking for reads; keep reading
        // so that NIOSSL sees the peer's close_notify and the close completes now rather than at its
        // shutdown timeout. What arrives meanwhile is dropped (see `channelRead`).
        if case .closing = state, context.channel.isActive { context.read() }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        switch state {
        case .established(let kind) where frame.type == kind.userFrameType:
            context.write(data, promise: promise)
        case .established(let kind):
            promise?.fail(
                PeerTransportError(
                    .protocolViolation,
                    "cannot send a \(frame.type) frame on an \(kind) connection; only \(kind.userFrameType) frames"))
        case .handshaking:
            promise?.fail(PeerTransportError(.protocolViolation, "cannot send before the connection is ready"))
        case .closing:
            promise?.fail(PeerTransportError(.connectionClosed, "the connection is closed"))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if case .closing = state { return }
        fail(context: context, PeerTransportError.map(error, role: role, refusal: record.refusal))
    }

    // MARK: - Transitions

    /// Server: hands up the enrolment request, the one frame an enrolment connection carries.
    private func acceptEnrolmentRequest(context: ChannelHandlerContext, _ data: NIOAny) {
        guard !hasEnrolmentRequest else {
            fail(
                context: context,
                PeerTransportError(.protocolViolation, "the client sent a second frame; an enrolment connection carries one request"))
            return
        }
        hasEnrolmentRequest = true
        unauthenticatedTimeout?.cancel()
        context.fireChannelRead(data)
    }

    private func startHandshakeTimeout(context: ChannelHandlerContext) {
        if role == .server { startUnauthenticatedTimeout(context: context) }
        guard handshakeTimeout == nil, case .handshaking = state else { return }
        let milliseconds = limits.handshakeTimeoutMilliseconds
        handshakeTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) {
            guard case .handshaking = self.state else { return }
            self.fail(
                context: context,
                PeerTransportError(
                    .handshakeTimedOut,
                    "the connection with \(self.role.peerName) was not ready within \(milliseconds) ms (TLS handshake and verification)"
                ))
        }
    }

    private func startUnauthenticatedTimeout(context: ChannelHandlerContext) {
        guard unauthenticatedTimeout == nil, case .handshaking = state else { return }
        let milliseconds = limits.unauthenticatedTimeoutMilliseconds
        unauthenticatedTimeout = context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(milliseconds)) {
            switch self.state {
            case .closing, .established(.peer): return
            case .handshaking, .established(.enrolment): break
            }
            self.fail(
                context: context,
                PeerTransportError(
                    .unauthenticatedTimedOut,
                    "the client was neither verified nor done sending its enrolment request within \(milliseconds) ms of connecting"
                ))
        }
    }

    private func establish(context: ChannelHandlerContext, kind: PeerConnectionKind) {
        handshakeTimeout?.cancel()
        // What this side may send: what the peer reads once established (the group's limit for a member).
        var sendBytesMax = limits.frameBytesMax
        switch (kind, role) {
        case (.peer(let identity), _):
            unauthenticatedTimeout?.cancel()
            // Raised before the next frame is decoded: a member's first large frame is never refused.
            sendBytesMax = limits.frameBytesMax(groupMember: isGroupMember(identity))
            inboundBound.bytesMax = sendBytesMax
        case (.enrolment, .client):
            inboundBound.bytesMax = min(limits.enrolmentAnswerFrameBytesMax, limits.frameBytesMax)
        case (.enrolment, .server):
            break  // still unauthenticated: small frames, the deadline runs on
        }
        state = .established(kind)
        settle(.success(PeerSessionInfo(kind: kind, remoteAddress: context.channel.remoteAddress, frameBytesMax: sendBytesMax)))
    }

    private func settle(_ result: Result<PeerSessionInfo, PeerTransportError>) {
        guard !isSettled else { return }
        isSettled = true
        switch result {
        case .success(let info): establishedPromise.succeed(info)
        case .failure(let error): establishedPromise.fail(error)
        }
    }

    /// Ends the connection because of `error`: the waiter for `established` or the reader of inbound
    /// frames gets it; a peer that broke the protocol is told why first.
    private func fail(context: ChannelHandlerContext, _ error: PeerTransportError) {
        let wasEstablished: Bool
        if case .established = state { wasEstablished = true } else { wasEstablished = false }
        state = .closing
        handshakeTimeout?.cancel()
        unauthenticatedTimeout?.cancel()
        settle(.failure(error))
        if wasEstablished { context.fireErrorCaught(error) }
        if context.channel.isActive { context.read() }

        guard error.isProtocolError, isTLSUp, context.channel.isActive else {
            // Closed on the next tick, not from inside this read: the bytes NIOSSL is still delivering
            // may hold the peer's close_notify, and answering it first lets the close finish at once
            // instead of at NIOSSL's shutdown timeout.
            context.eventLoop.assumeIsolated().execute { context.close(promise: nil) }
            return
        }
        let reason = Array(error.description.utf8.prefix(limits.errorReasonBytesMax))
        let flushTimeout = context.eventLoop.assumeIsolated().scheduleTask(
            in: .milliseconds(limits.closeFlushTimeoutMilliseconds)
        ) {
            context.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(PeerFrame(type: .error, bytes: reason))).assumeIsolated().whenComplete {
            _ in
            flushTimeout.cancel()
            context.close(promise: nil)
        }
    }

    private func closedByPeer(_ frame: PeerFrame) -> PeerTransportError {
        let bytes = frame.payload.readableBytesView.prefix(limits.errorReasonBytesMax)
        // The text comes from the network: keep it printable before it reaches logs.
        let reason = String(decoding: bytes, as: UTF8.self).unicodeScalars
            .map { $0.properties.generalCategory == .control ? " " : String($0) }.joined()
        return PeerTransportError(.closedByPeer, "\(role.peerName) closed the connection: \(reason)")
    }
}
