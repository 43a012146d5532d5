import NIOCore
import NIOSSL
import TrustCore

/// An operating error of the SIC transport: a stable machine-readable `code`, a message for people, and,
/// when a certificate was refused by this side's verifier, the `PeerTrustFailure` that says why.
public struct PeerTransportError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable identifiers for each kind of failure; callers switch on these, logs print them.
    public enum Code: String, Sendable, Equatable {
        /// The listener or connector configuration is unusable (unreadable PEM, no identity to present).
        case invalidConfiguration = "invalid-configuration"
        /// The listener could not bind its address.
        case bindFailed = "bind-failed"
        /// The TCP connection could not be made (refused, unreachable, name not resolved).
        case connectFailed = "connect-failed"
        /// The TCP connection was not made within `PeerLimits.connectTimeoutMilliseconds`.
        case connectTimedOut = "connect-timed-out"
        /// TLS, verification and the `ready` frame did not finish within `handshakeTimeoutMilliseconds`.
        case handshakeTimedOut = "handshake-timed-out"
        /// Listener side: a client was neither verified nor done sending its enrolment request within
        /// `PeerLimits.unauthenticatedTimeoutMilliseconds` of connecting.
        case unauthenticatedTimedOut = "unauthenticated-timed-out"
        /// This side's verifier refused the peer's certificate; `trustFailure` says why.
        case peerCertificateRefused = "peer-certificate-refused"
        /// The peer refused this side's certificate (its verifier said no; the TLS alert does not say why).
        case certificateRefusedByPeer = "certificate-refused-by-peer"
        /// The TLS handshake failed for another reason (version, cipher, a peer that is not TLS).
        case handshakeFailed = "handshake-failed"
        /// A frame's payload is longer than `PeerLimits.frameBytesMax`.
        case frameTooLarge = "frame-too-large"
        /// The bytes on the channel do not start with Rampart's frame magic: the peer is not a Rampart node.
        case badMagic = "bad-magic"
        /// The peer speaks another version of the frame protocol.
        case unsupportedVersion = "unsupported-version"
        /// A frame type this version does not know.
        case unknownFrameType = "unknown-frame-type"
        /// A frame that is not allowed at this point (a non-enrolment frame on an enrolment connection, a
        /// second `ready`, a user frame before `ready`).
        case protocolViolation = "protocol-violation"
        /// The peer closed the connection and said why in an `error` frame.
        case closedByPeer = "closed-by-peer"
        /// The connection closed (or reset) without a reason.
        case connectionClosed = "connection-closed"
    }

    /// What went wrong, as a stable code.
    public let code: Code
    /// What went wrong, for a person.
    public let message: String
    /// When `code` is `.peerCertificateRefused`: the verifier's reason.
    public let trustFailure: PeerTrustFailure?

    /// Creates an error with a code, a human-readable message and, optionally, the trust failure behind it.
    public init(_ code: Code, _ message: String, trustFailure: PeerTrustFailure? = nil) {
        self.code = code
        self.message = message
        self.trustFailure = trustFailure
    }

    /// "code: message", for logs.
    public var description: String { "\(code.rawValue): \(message)" }

    /// True for the errors that mean the peer broke the frame protocol: this side tells the peer why in
    /// an `error` frame before it closes.
    var isProtocolError: Bool {
        switch code {
        case .frameTooLarge, .badMagic, .unsupportedVersion, .unknownFrameType, .protocolViolation: true
        default: false
        }
    }
}

/// Which end of a connection this side is; error messages name the other end.
enum PeerRole: Sendable {
    case server
    case client

    /// The other end, in words: "the server" seen from a client.
    var peerName: String {
        switch self {
        case .server: "the client"
        case .client: "the server"
        }
    }
}

extension PeerTransportError {
    /// Turns whatever a channel reported into a `PeerTransportError` whose message names the cause.
    /// `refusal` is the reason this side's verifier gave, if it refused the peer's certificate.
    static func map(_ error: any Error, role: PeerRole, refusal: PeerTrustFailure?) -> PeerTransportError {
        if let error = error as? PeerTransportError { return error }
        if let refusal {
            return PeerTransportError(
                .peerCertificateRefused, "we refused \(role.peerName)'s certificate: \(refusal)",
                trustFailure: refusal)
        }
        if let error = error as? NIOSSLError {
            switch error {
            case .uncleanShutdown:
                return PeerTransportError(
                    .connectionClosed, "\(role.peerName) closed the connection without a TLS close")
            case .handshakeFailed(let underlying):
                return mapBoringSSL(String(describing: underlying), role: role)
            default:
                return PeerTransportError(.handshakeFailed, "TLS failed: \(error)")
            }
        }
        if let error = error as? BoringSSLError {
            // In TLS 1.3 the server checks the client's certificate after the client has finished its
            // handshake, so a refusal reaches the client as an alert on its first read.
            return mapBoringSSL(String(describing: error), role: role)
        }
        if let error = error as? ChannelError {
            switch error {
            case .connectTimeout(let amount):
                return PeerTransportError(
                    .connectTimedOut, "no TCP connection within \(amount.nanoseconds / 1_000_000) ms")
            case .eof, .ioOnClosedChannel, .alreadyClosed, .outputClosed, .inputClosed:
                return PeerTransportError(.connectionClosed, "the connection is closed")
            default:
                return PeerTransportError(.connectionClosed, "channel error: \(error)")
            }
        }
        if let error = error as? IOError {
            return PeerTransportError(.connectionClosed, "I/O error: \(error)")
        }
        return PeerTransportError(.connectionClosed, "\(error)")
    }

    /// BoringSSL reports a received alert as text such as
    /// `SSLV3_ALERT_CERTIFICATE_UNKNOWN` or `TLSV1_ALERT_UNKNOWN_CA`; the alert's name is the only
    /// thing the refused side learns, so it is kept in the message.
    private static func mapBoringSSL(_ text: String, role: PeerRole) -> PeerTransportError {
        let upper = text.uppercased()
        let alert = alertName(in: upper)
        if upper.contains("PEER_DID_NOT_RETURN_A_CERTIFICATE") {
            // This side required a certificate (a listener that does not accept enrolment) and got none.
            return PeerTransportError(
                .peerCertificateRefused, "we refused \(role.peerName): \(PeerTrustFailure.noCertificate)",
                trustFailure: .noCertificate)
        }
        if upper.contains("CERTIFICATE_REQUIRED") {
            return PeerTransportError(
                .certificateRefusedByPeer,
                "\(role.peerName) requires a certificate and we presented none: it does not accept enrolment on this port (TLS alert \(alert ?? "certificate required"))"
            )
        }
        if let alert, alert.contains("CERTIFICATE") || alert.contains("UNKNOWN_CA") || alert.contains("ACCESS_DENIED") {
            return PeerTransportError(
                .certificateRefusedByPeer,
                "\(role.peerName) refused our certificate (TLS alert \(alert)); check this node's certificate with `rampart sic status`, renew it or reset SIC"
            )
        }
        if upper.contains("PROTOCOL_VERSION") || upper.contains("UNSUPPORTED_PROTOCOL") {
            return PeerTransportError(
                .handshakeFailed,
                "TLS version mismatch with \(role.peerName): Rampart peers speak TLS 1.3 only (\(text))")
        }
        if upper.contains("WRONG_VERSION_NUMBER") || upper.contains("HTTP_REQUEST") {
            return PeerTransportError(.handshakeFailed, "\(role.peerName) does not speak TLS (\(text))")
        }
        if let alert {
            return PeerTransportError(.handshakeFailed, "TLS alert \(alert) from \(role.peerName)")
        }
        return PeerTransportError(.handshakeFailed, "TLS handshake with \(role.peerName) failed: \(text)")
    }

    /// The `..._ALERT_...` token in a BoringSSL error text, if any.
    private static func alertName(in upper: String) -> String? {
        for token in upper.split(whereSeparator: { !($0.isLetter || $0.isNumber || $0 == "_") })
        where token.contains("_ALERT_") {
            return String(token)
        }
        return nil
    }
}
