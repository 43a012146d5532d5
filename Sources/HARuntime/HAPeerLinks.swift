import Foundation
import HACore
import ManagementModel
import PeerTransport
import Synchronization

/// The live SIC channel to each peer. The runtime's `send` writes to it at once, without a task in
/// between (a publish reaches the standby that much sooner); the channel bounds what waits for its socket
/// (`PeerLimits.unsentBytesMax`) and drops past that. A message to a peer with no channel is dropped
/// too: HACore retransmits once the peer is back. A message whose frame is larger than the channel
/// carries is not dropped silently: `send` throws, and the runtime shows it as its last error.
public final class HAPeerLinks: Sendable {
    /// Writes one frame to a channel without waiting; false when it was dropped.
    public typealias Send = @Sendable (PeerFrame) -> Bool

    public struct Link: Sendable {
        let token: UInt64
        /// Ends when a newer channel to the peer replaces this one, or it is detached: close it then.
        public let replaced: AsyncStream<Void>
    }

    private struct Route {
        let token: UInt64
        /// The largest frame the channel carries (`PeerConnection.frameBytesMax`).
        let frameBytesMax: Int
        let send: Send
        let ended: AsyncStream<Void>.Continuation
    }

    private struct State {
        var routes: [ServerID: Route] = [:]
        var nextToken: UInt64 = 0
        /// Why a peer's channel cannot be trusted now (its certificate revoked or refused), until a channel is up again.
        var trustProblems: [ServerID: String] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    /// Makes this channel (`send` writes to it) the route to `peer`, replacing (and ending) an older one:
    /// a reconnecting peer's new channel wins over the half-dead old one.
    public func attach(_ peer: ServerID, frameBytesMax: Int = .max, send: @escaping Send) -> Link {
        let (replaced, ended) = AsyncStream.makeStream(of: Void.self)
        let (token, old) = state.withLock { state -> (UInt64, Route?) in
            state.nextToken += 1
            let previous = state.routes[peer]
            state.routes[peer] = Route(token: state.nextToken, frameBytesMax: frameBytesMax, send: send, ended: ended)
            state.trustProblems[peer] = nil
            return (state.nextToken, previous)
        }
        old?.ended.finish()
        return Link(token: token, replaced: replaced)
    }

    /// Removes the route if it is still `link` (a newer channel may have replaced it).
    public func detach(_ peer: ServerID, _ link: Link) {
        let ended: Route? = state.withLock { state in
            guard let current = state.routes[peer], current.token == link.token else { return nil }
            state.routes[peer] = nil
            return current
        }
        ended?.ended.finish()
    }

    public func isConnected(_ peer: ServerID) -> Bool { state.withLock { $0.routes[peer] != nil } }

    /// Records why the channel to `peer` cannot be trusted (a revoked certificate, one refused at the
    /// handshake), for `ha status` (sync status `trust-error`); cleared when a channel to it is up again.
    public func recordTrustProblem(_ peer: ServerID, _ problem: String) {
        state.withLock { $0.trustProblems[peer] = String(problem.prefix(512)) }
    }

    /// Why the channel to `peer` cannot be trusted, if it cannot.
    public func trustProblem(_ peer: ServerID) -> String? { state.withLock { $0.trustProblems[peer] } }

    /// Identifies the current channel to `peer` (nil when none): a new token means a new channel.
    public func channelToken(_ peer: ServerID) -> UInt64? { state.withLock { $0.routes[peer]?.token } }

    /// Sends a channel message that is not an HA core message (addresses, ICA state).
    public func send(_ message: JSONValue, to peer: ServerID) {
        send(PeerFrame(type: .message, bytes: message.canonicalBytes), to: peer)
    }

    /// Sends an HA core message; throws when its frame is larger than the channel to the peer carries
    /// (resending cannot help: a revision must fit `PublishLimits.revisionBytesMax`).
    public func send(_ envelope: Envelope) throws(HAFrameTooLarge) {
        let frame = HAMessageCodec.frame(envelope.message)
        guard let route = state.withLock({ $0.routes[envelope.to] }) else { return }
        guard frame.payload.readableBytes <= route.frameBytesMax else {
            throw HAFrameTooLarge(
                peer: envelope.to, message: HAFrameTooLarge.describe(envelope.message.body),
                frameBytes: frame.payload.readableBytes, frameBytesMax: route.frameBytesMax)
        }
        _ = route.send(frame)
    }

    private func send(_ frame: PeerFrame, to peer: ServerID) {
        let route = state.withLock { $0.routes[peer] }
        _ = route?.send(frame)
    }
}

/// An HA message that was not sent because its frame exceeds what the SIC channel to the peer carries.
public struct HAFrameTooLarge: Error, Equatable, CustomStringConvertible {
    public let peer: ServerID
    /// Which message, in words ("append of revisions 3 to 5").
    public let message: String
    public let frameBytes: Int
    public let frameBytesMax: Int

    public var description: String {
        "the HA \(message) to \(peer.name) was not sent: its frame of \(frameBytes) bytes exceeds the \(frameBytesMax) bytes its SIC channel carries"
    }

    static func describe(_ body: HAMessage.Body) -> String {
        switch body {
        case .append(_, let revisions, _):
            guard let first = revisions.first, let last = revisions.last else { return "empty append" }
            return first.number == last.number ? "append of revision \(first.number)" : "append of revisions \(first.number) to \(last.number)"
        case .snapshotChunk(_, let index, _, _): return "snapshot chunk \(index)"
        default: return "message"
        }
    }
}
