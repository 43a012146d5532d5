import TrustCore

/// Which verified peers are members of this node's group (and may exchange frames up to
/// `PeerLimits.groupFrameBytesMax`). Asked once per connection, on its event loop, when the peer's
/// certificate has been verified: it must answer at once, without blocking.
public typealias PeerGroupMembership = @Sendable (NodeIdentity) -> Bool

/// Every bound of the SIC transport in one place (DESIGN.md §2: "Bound everything ... Keep limits in
/// one place"). Units are last in names.
///
/// Before a client's certificate is verified, a connection gets far less: small frames
/// (`unauthenticatedFrameBytesMax`), a short deadline (`unauthenticatedTimeoutMilliseconds`) and a share
/// of the slots (`unauthenticatedConnectionsMax`), so nobody can use the SIC port's enrolment door to
/// hold memory or lock enrolled peers out.
///
/// A value type so that tests (and, later, node-local settings) can shrink a bound; the defaults are what
/// a server runs with.
public struct PeerLimits: Sendable, Equatable {
    /// Largest payload of one frame. A full sync ships a snapshot in many frames, so this bounds memory
    /// per frame, not the size of a database. A peer that announces a longer frame is disconnected before
    /// its payload is read.
    public var frameBytesMax: Int = 16 * 1024 * 1024
    /// Largest payload of one frame between members of one group: a verified peer the owner's
    /// `PeerGroupMembership` names (the management servers of an HA group). An HA append carries one
    /// whole revision in one frame, and a session of `changesPerSessionMax` ordinary changes makes
    /// about 32 MB. Only such a peer can make this node hold `inboundFramesBufferedMax` frames of this
    /// size (256 MiB) per connection; gateways and unauthenticated clients stay at the smaller limits.
    public var groupFrameBytesMax: Int = 64 * 1024 * 1024
    /// Longest time for the TCP connection to be established (client side).
    public var connectTimeoutMilliseconds: Int64 = 10_000
    /// Longest time from TCP connection to a usable channel: TLS handshake, certificate verification and
    /// the server's `ready` frame. Bounds a peer that connects and then says nothing (both sides).
    public var handshakeTimeoutMilliseconds: Int64 = 10_000
    /// Most inbound frames buffered per connection before the transport stops reading from the socket
    /// (back pressure). With `frameBytesMax` this bounds inbound memory per connection.
    public var inboundFramesBufferedMax: Int = 4
    /// Bytes sent with `PeerConnection.sendNow` that may wait for the socket; past this such frames are
    /// dropped (a stalled peer cannot make the sender hold more). Twice `groupFrameBytesMax`: a frame at
    /// the limit is never refused for its size alone, and the next one may wait behind it.
    public var unsentBytesMax: Int = 128 * 1024 * 1024
    /// Most connections a listener keeps open at once; further ones are closed at once and logged.
    public var connectionsMax: Int = 1024
    /// Largest payload a listener reads before the client's certificate is verified. Such a client may
    /// only send one enrolment request, so this is the largest request TrustCore decodes (its fields at
    /// their bounds; a real one is under 1 KiB).
    public var unauthenticatedFrameBytesMax: Int = TrustLimits.enrolmentRequestBytesMax
    /// Largest payload an enrolling client reads from the (not yet trusted) server: an enrolment answer,
    /// which may carry the revocation list.
    public var enrolmentAnswerFrameBytesMax: Int = TrustLimits.enrolmentMessageBytesMax
    /// Listener side: longest time a connection may stay unauthenticated, from TCP connection until its
    /// client certificate is verified or, without one, until its enrolment request has fully arrived.
    /// Closes idle and slow (byte-trickling) clients; enrolment itself needs well under a second.
    public var unauthenticatedTimeoutMilliseconds: Int64 = 5_000
    /// Most connections without a verified client certificate (handshaking or enrolling) a listener
    /// keeps. A new connection beyond this, or beyond `connectionsMax`, closes the oldest of them
    /// instead of being refused: a verified peer always finds a slot unless verified peers hold them all.
    public var unauthenticatedConnectionsMax: Int = 256
    /// Longest reason text carried by an `error` frame; longer reasons are cut.
    public var errorReasonBytesMax: Int = 1024
    /// Longest time a side waits for a closing `error` frame to be written before it closes anyway.
    public var closeFlushTimeoutMilliseconds: Int64 = 2_000

    /// The defaults.
    public init() {}

    /// The largest frame a verified peer may send or be sent: the group's limit for a member.
    public func frameBytesMax(groupMember: Bool) -> Int { groupMember ? max(frameBytesMax, groupFrameBytesMax) : frameBytesMax }

    /// The limits a server runs with.
    public static let `default` = PeerLimits()
}
