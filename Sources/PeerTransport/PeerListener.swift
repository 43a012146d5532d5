import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import TrustCore

/// What a `PeerListener` needs: where to listen, who this node is, and whom to trust.
public struct PeerListenerConfiguration: Sendable {
    /// Address to bind (DESIGN.md §6: the address given by `--listen`).
    public var host: String
    /// Port to bind; 0 picks a free one (`PeerListener.port` says which).
    public var port: Int
    /// This node's SIC certificate and key, presented to every client.
    public var identity: IssuedIdentity
    /// Judges client certificates (pinned ICA, expiry, revocation); any enrolled node is accepted.
    public var verifier: any PeerCertificateVerifier
    /// Whether a client without a certificate is accepted as an `.enrolment` connection. When false, a
    /// client certificate is required by TLS itself.
    public var acceptsEnrolment: Bool
    public var limits: PeerLimits
    /// Which verified clients may send frames up to `limits.groupFrameBytesMax` (none by default).
    public var isGroupMember: PeerGroupMembership
    /// The time certificates are judged at (injected so tests can move it).
    public var now: @Sendable () -> Date

    public init(
        host: String,
        port: Int = PeerListener.defaultPort,
        identity: IssuedIdentity,
        verifier: any PeerCertificateVerifier,
        acceptsEnrolment: Bool = true,
        limits: PeerLimits = .default,
        isGroupMember: @escaping PeerGroupMembership = { _ in false },
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.isGroupMember = isGroupMember
        self.host = host
        self.port = port
        self.identity = identity
        self.verifier = verifier
        self.acceptsEnrolment = acceptsEnrolment
        self.limits = limits
        self.now = now
    }
}

/// A connection that never became usable, as the listener saw it: a client certificate the verifier
/// refused (`error.trustFailure` says why), a handshake timeout, a client that is not Rampart.
public struct PeerHandshakeFailure: Sendable, CustomStringConvertible {
    public let remoteAddress: SocketAddress?
    public let error: PeerTransportError

    public var description: String {
        "connection from \(remoteAddress.map { "\($0)" } ?? "an unknown address") refused: \(error)"
    }
}

/// The SIC listener (server side): TLS 1.3, this node's certificate, client certificates judged by a
/// `PeerCertificateVerifier`, and, on the same port, enrolment connections from nodes that have no
/// certificate yet.
///
/// Two steps so that the caller learns the bound port before serving: `bind` then `run` (once).
public struct PeerListener: Sendable {
    /// The SIC port (DESIGN.md §6).
    public static let defaultPort = 18191

    /// The address the listener is bound to.
    public let localAddress: SocketAddress
    /// The bound port (the ephemeral one when the configuration said 0).
    public var port: Int { localAddress.port ?? 0 }

    private let serverChannel: NIOAsyncChannel<Accepted, Never>
    private let limits: PeerLimits
    /// Who holds the connection slots (read by tests).
    let slots: PeerConnectionSlots
    private let logger: Logger

    /// Binds the listening socket; connections are accepted (and kept waiting) until `run` serves them.
    public static func bind(
        _ configuration: PeerListenerConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "rampart.peer-transport")
    ) async throws -> PeerListener {
        let sslContext = try PeerTLS.serverContext(
            identity: configuration.identity, acceptsEnrolment: configuration.acceptsEnrolment)
        let limits = configuration.limits
        let verifier = configuration.verifier
        let now = configuration.now
        let acceptsEnrolment = configuration.acceptsEnrolment
        let isGroupMember = configuration.isGroupMember
        let slots = PeerConnectionSlots(limits: limits)
        let serverChannel: NIOAsyncChannel<Accepted, Never>
        do {
            serverChannel = try await ServerBootstrap(group: eventLoopGroup)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let record = PeerTrustRecord()
                        let callback = PeerTLS.verificationCallback(
                            verifier: verifier, expected: nil, now: now, record: record)
                        let tlsHandler = NIOSSLServerHandler(context: sslContext, customVerificationCallback: callback)
                        let pending = try PeerPipeline.configure(
                            channel: channel, tlsHandler: tlsHandler, role: .server, record: record,
                            acceptsEnrolment: acceptsEnrolment, limits: limits, isGroupMember: isGroupMember)
                        let admission = slots.admit(channel, established: pending.established)
                        // Closed at once, not when the accept loop gets to them (logged there).
                        if let admission { admission.evicted?.close(promise: nil) } else { channel.close(promise: nil) }
                        return Accepted(pending: pending, admission: admission)
                    }
                }
        } catch {
            throw PeerTransportError(
                .bindFailed, "cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
        guard let localAddress = serverChannel.channel.localAddress else {
            try? await serverChannel.channel.close()
            throw PeerTransportError(.bindFailed, "the listening socket has no local address")
        }
        var logger = logger
        logger[metadataKey: "sic.listen"] = "\(localAddress)"
        return PeerListener(localAddress: localAddress, serverChannel: serverChannel, limits: limits, slots: slots, logger: logger)
    }

    private init(
        localAddress: SocketAddress, serverChannel: NIOAsyncChannel<Accepted, Never>, limits: PeerLimits, slots: PeerConnectionSlots,
        logger: Logger
    ) {
        self.localAddress = localAddress
        self.serverChannel = serverChannel
        self.limits = limits
        self.slots = slots
        self.logger = logger
    }

    /// A connection as accepted: its pipeline, and its slot (nil: verified peers hold every slot). The
    /// slot is taken on the event loop as the connection is accepted, before its TLS handshake starts.
    struct Accepted: Sendable {
        let pending: PeerPipeline.Pending
        let admission: PeerConnectionSlots.Admission?
    }

    /// Serves connections until the surrounding task is cancelled (then stops accepting, cancels the
    /// connection bodies, closes every connection and returns) or the listening socket fails. Each usable
    /// connection is handed to `onConnection` in its own child task and closed when it returns; each
    /// connection that fails before it is usable is logged and handed to `onHandshakeFailure`. Call once.
    public func run(
        onConnection: @escaping @Sendable (PeerConnection) async throws -> Void,
        onHandshakeFailure: @escaping @Sendable (PeerHandshakeFailure) async -> Void = { _ in }
    ) async throws {
        let slots = self.slots
        let limits = self.limits
        let logger = self.logger
        try await serverChannel.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                var pendingConnections = inbound.makeAsyncIterator()
                while true {
                    let next: Accepted?
                    do {
                        next = try await pendingConnections.next()
                    } catch is CancellationError {
                        // Cancellation is how a listener is stopped: leave the group, which cancels
                        // and waits for the connection tasks, then close the listening socket.
                        return
                    }
                    guard let accepted = next else { return }
                    let pending = accepted.pending
                    let channel = pending.channel.channel
                    guard let slot = accepted.admission else {
                        logger.warning(
                            "SIC connection refused: \(limits.connectionsMax) connections of verified peers are open",
                            metadata: ["sic.peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
                        continue
                    }
                    if let evicted = slot.evicted {
                        logger.notice(
                            "SIC connection closed to make room: \(limits.unauthenticatedConnectionsMax) unauthenticated connections were open; this was the oldest",
                            metadata: ["sic.peer": "\(evicted.remoteAddress.map { "\($0)" } ?? "?")"])
                    }
                    group.addTask {
                        defer { slots.release(slot.id) }
                        await Self.serve(
                            pending, limits: limits, logger: logger, onConnection: onConnection, onHandshakeFailure: onHandshakeFailure)
                    }
                }
            }
        }
    }

    private static func serve(
        _ pending: PeerPipeline.Pending,
        limits: PeerLimits,
        logger: Logger,
        onConnection: @Sendable (PeerConnection) async throws -> Void,
        onHandshakeFailure: @Sendable (PeerHandshakeFailure) async -> Void
    ) async {
        let channel = pending.channel.channel
        var logger = logger
        logger[metadataKey: "sic.peer"] = "\(channel.remoteAddress.map { "\($0)" } ?? "?")"
        do {
            try await pending.channel.executeThenClose { inbound, outbound in
                let info: PeerSessionInfo
                do {
                    info = try await awaitEstablished(pending.established, channel: channel)
                } catch {
                    let failure = PeerHandshakeFailure(
                        remoteAddress: channel.remoteAddress,
                        error: PeerTransportError.map(error, role: .server, refusal: nil))
                    logger.warning(
                        "SIC connection refused: \(failure.error.message)",
                        metadata: ["sic.code": "\(failure.error.code.rawValue)"])
                    await onHandshakeFailure(failure)
                    return
                }
                logger.debug("SIC connection ready", metadata: ["sic.kind": "\(info.kind)"])
                let connection = PeerPipeline.makeConnection(
                    info, pending.channel, inbound: inbound, outbound: outbound, limits: limits, role: .server)
                try await onConnection(connection)
            }
        } catch {
            logger.debug("SIC connection ended with an error: \(error)")
        }
    }
}

/// The listener's connection slots: at most `connectionsMax` connections, of which at most
/// `unauthenticatedConnectionsMax` have no verified client certificate yet (handshaking or enrolling).
/// A new connection that finds either bound reached takes the slot of the oldest unauthenticated
/// connection, which is closed; it is refused only when verified peers hold every slot. So idle or slow
/// clients can hold neither memory nor the slots enrolled peers and gateways need.
final class PeerConnectionSlots: Sendable {
    struct Admission {
        let id: UInt64
        /// The unauthenticated connection to close to make room.
        let evicted: (any Channel)?
    }

    private struct State {
        var nextID: UInt64 = 0
        /// Unauthenticated connections, oldest first.
        var unauthenticated: [(id: UInt64, channel: any Channel)] = []
        var verified: Set<UInt64> = []
    }

    private let limits: PeerLimits
    private let state = Mutex(State())

    init(limits: PeerLimits) { self.limits = limits }

    /// A slot for a new connection (unauthenticated), or nil when verified peers hold every slot. Once
    /// `established` succeeds for a verified peer, the slot is a verified one: on the event loop, as the
    /// handshake settles and before the peer can act on `ready`. (Marked later, from the serving task, a
    /// peer on a loaded machine could open connections before that task ran and have its own evicted.)
    func admit(_ channel: any Channel, established: EventLoopFuture<PeerSessionInfo>) -> Admission? {
        let admission = admit(channel)
        if let admission {
            established.whenSuccess { info in
                if case .peer = info.kind { self.verified(admission.id) }
            }
        }
        return admission
    }

    /// A slot for a new connection (unauthenticated), or nil when verified peers hold every slot.
    func admit(_ channel: any Channel) -> Admission? {
        state.withLock { state in
            var evicted: (any Channel)?
            let open = state.unauthenticated.count + state.verified.count
            if state.unauthenticated.count >= limits.unauthenticatedConnectionsMax || open >= limits.connectionsMax {
                guard !state.unauthenticated.isEmpty else { return nil }
                evicted = state.unauthenticated.removeFirst().channel
            }
            state.nextID &+= 1
            state.unauthenticated.append((state.nextID, channel))
            return Admission(id: state.nextID, evicted: evicted)
        }
    }

    /// The connection's client certificate was verified: it no longer counts as unauthenticated (unless
    /// it was already closed to make room).
    func verified(_ id: UInt64) {
        state.withLock { state in
            guard let index = state.unauthenticated.firstIndex(where: { $0.id == id }) else { return }
            state.unauthenticated.remove(at: index)
            state.verified.insert(id)
        }
    }

    /// The connection ended.
    func release(_ id: UInt64) {
        state.withLock { state in
            state.unauthenticated.removeAll { $0.id == id }
            state.verified.remove(id)
        }
    }

    /// How many connections hold a slot, and how many of them are unauthenticated.
    var counts: (open: Int, unauthenticated: Int) {
        state.withLock { ($0.unauthenticated.count + $0.verified.count, $0.unauthenticated.count) }
    }
}

/// Waits for the session to be usable; cancelling the waiting task closes the channel (which fails the
/// wait at once instead of at the handshake timeout).
func awaitEstablished(_ future: EventLoopFuture<PeerSessionInfo>, channel: any Channel) async throws -> PeerSessionInfo {
    try await withTaskCancellationHandler {
        try await future.get()
    } onCancel: {
        channel.close(promise: nil)
    }
}
