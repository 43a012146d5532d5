import Foundation
import HACore
import ManagementModel
import PeerTransport

/// The live SIC channel to each peer. The runtime's `send` writes to it at once, without a task in
/// between (a publish reaches the standby that much sooner); the channel bounds what waits for its socket
/// (`PeerLimits.unsentBytesMax`) and drops past that. A message to a peer with no channel is dropped
/// too: HACore retransmits once the peer is back.
public final class HAPeerLinks: @unchecked Sendable {
    /// Writes one frame to a channel without waiting; false when it was dropped.
    public typealias Send = @Sendable (PeerFrame) -> Bool

    public struct Link: Sendable {
        let token: UInt64
        /// Ends when a newer channel to the peer replaces this one, or it is detached: close it then.
        public let replaced: AsyncStream<Void>
    }

    private struct Route {
        let token: UInt64
        let send: Send
        let ended: AsyncStream<Void>.Continuation
    }

    private let lock = NSLock()
    private var routes: [ServerID: Route] = [:]
    private var nextToken: UInt64 = 0
    /// Why a peer's channel cannot be trusted now (its certificate revoked or refused), until a channel is up again.
    private var trustProblems: [ServerID: String] = [:]

    public init() {}

    /// Makes this channel (`send` writes to it) the route to `peer`, replacing (and ending) an older one:
    /// a reconnecting peer's new channel wins over the half-dead old one.
    public func attach(_ peer: ServerID, send: @escaping Send) -> Link {
        let (replaced, ended) = AsyncStream.makeStream(of: Void.self)
        let (token, old) = lock.withLock { () -> (UInt64, Route?) in
            nextToken += 1
            let previous = routes[peer]
            routes[peer] = Route(token: nextToken, send: send, ended: ended)
            trustProblems[peer] = nil
            return (nextToken, previous)
        }
        old?.ended.finish()
        return Link(token: token, replaced: replaced)
    }

    /// Removes the route if it is still `link` (a newer channel may have replaced it).
    public func detach(_ peer: ServerID, _ link: Link) {
        let ended: Route? = lock.withLock {
            guard let current = routes[peer], current.token == link.token else { return nil }
            routes[peer] = nil
            return current
        }
        ended?.ended.finish()
    }

    public func isConnected(_ peer: ServerID) -> Bool { lock.withLock { routes[peer] != nil } }

    /// Records why the channel to `peer` cannot be trusted (a revoked certificate, one refused at the
    /// handshake), for `ha status` (sync status `trust-error`); cleared when a channel to it is up again.
    public func recordTrustProblem(_ peer: ServerID, _ problem: String) {
        lock.withLock { trustProblems[peer] = String(problem.prefix(512)) }
    }

    /// Why the channel to `peer` cannot be trusted, if it cannot.
    public func trustProblem(_ peer: ServerID) -> String? { lock.withLock { trustProblems[peer] } }

    /// Identifies the current channel to `peer` (nil when none): a new token means a new channel.
    public func channelToken(_ peer: ServerID) -> UInt64? { lock.withLock { routes[peer]?.token } }

    /// Sends a channel message that is not an HA core message (addresses, ICA state).
    public func send(_ message: JSONValue, to peer: ServerID) {
        send(PeerFrame(type: .message, bytes: message.canonicalBytes), to: peer)
    }

    public func send(_ envelope: Envelope) {
        send(HAMessageCodec.frame(envelope.message), to: envelope.to)
    }

    private func send(_ frame: PeerFrame, to peer: ServerID) {
        let route = lock.withLock { routes[peer] }
        _ = route?.send(frame)
    }
}
