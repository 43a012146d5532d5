import Foundation
import HACore
import ManagementModel
import PeerTransport

/// The live SIC channel to each peer, as a bounded queue of outbound HA messages per peer. The runtime's
/// `send` enqueues here without blocking; each channel's writer task drains its queue into the socket.
/// A message to a peer with no channel is dropped: HACore retransmits once the peer is back.
public final class HAPeerLinks: @unchecked Sendable {
    /// Outbound messages queued per peer; past this the oldest are dropped (the core retransmits).
    public static let outboundMessagesMax = 256

    public struct Link: Sendable {
        let token: UInt64
        public let outbound: AsyncStream<PeerFrame>
    }

    private let lock = NSLock()
    private var continuations: [ServerID: (token: UInt64, continuation: AsyncStream<PeerFrame>.Continuation)] = [:]
    private var nextToken: UInt64 = 0

    public init() {}

    /// Makes this channel the route to `peer`, replacing (and ending) an older one: a reconnecting peer's
    /// new channel wins over the half-dead old one.
    public func attach(_ peer: ServerID) -> Link {
        let (stream, continuation) = AsyncStream.makeStream(of: PeerFrame.self, bufferingPolicy: .bufferingNewest(Self.outboundMessagesMax))
        let (token, old) = lock.withLock { () -> (UInt64, AsyncStream<PeerFrame>.Continuation?) in
            nextToken += 1
            let previous = continuations[peer]?.continuation
            continuations[peer] = (nextToken, continuation)
            return (nextToken, previous)
        }
        old?.finish()
        return Link(token: token, outbound: stream)
    }

    /// Removes the route if it is still `link` (a newer channel may have replaced it).
    public func detach(_ peer: ServerID, _ link: Link) {
        let ended: AsyncStream<PeerFrame>.Continuation? = lock.withLock {
            guard let current = continuations[peer], current.token == link.token else { return nil }
            continuations[peer] = nil
            return current.continuation
        }
        ended?.finish()
    }

    public func isConnected(_ peer: ServerID) -> Bool { lock.withLock { continuations[peer] != nil } }

    /// Identifies the current channel to `peer` (nil when none): a new token means a new channel.
    public func channelToken(_ peer: ServerID) -> UInt64? { lock.withLock { continuations[peer]?.token } }

    /// Queues a channel message that is not an HA core message (addresses, ICA state).
    public func send(_ message: JSONValue, to peer: ServerID) {
        let continuation = lock.withLock { continuations[peer]?.continuation }
        continuation?.yield(PeerFrame(type: .message, bytes: message.canonicalBytes))
    }

    public func send(_ envelope: Envelope) {
        let continuation = lock.withLock { continuations[envelope.to]?.continuation }
        continuation?.yield(HAMessageCodec.frame(envelope.message))
    }
}
