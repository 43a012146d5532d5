import Foundation

/// Who a node certificate says its holder is: the node's uid and name, carried in the SAN
/// (the name as a DNS name, the uid as a URI `urn:rampart:node:<uid>`).
public struct NodeIdentity: Sendable, Hashable, CustomStringConvertible {
    public let uid: String
    public let name: String
    public init(uid: String, name: String) {
        self.uid = uid
        self.name = name
    }
    public var description: String { "\(name) (\(uid))" }
}

/// Why a peer's certificate is not trusted. Each case says the cause in words an operator can act on.
public enum PeerTrustFailure: Error, Sendable, Equatable, CustomStringConvertible {
    case noCertificate
    case malformed(String)
    case otherCA(issuer: String)
    case expired(notValidAfter: Date)
    case notYetValid(notValidBefore: Date)
    case revoked(serial: String)
    case wrongIdentity(expected: NodeIdentity, found: String)

    public var description: String {
        switch self {
        case .noCertificate: return "the peer presented no certificate"
        case .malformed(let reason): return "the peer's certificate cannot be read: \(reason)"
        case .otherCA(let issuer): return "the peer's certificate was issued by another CA (\(issuer)), not this group's Internal CA"
        case .expired(let date): return "the peer's certificate expired at \(date); renew it or reset SIC"
        case .notYetValid(let date): return "the peer's certificate is not valid before \(date); check both clocks"
        case .revoked(let serial): return "the peer's certificate (serial \(serial)) has been revoked; reset SIC for that node"
        case .wrongIdentity(let expected, let found): return "the peer's certificate is for \(found), not \(expected)"
        }
    }
}

/// Decides whether a peer's leaf certificate is trusted at a given time, and whose it is. The SIC
/// transport calls it on both ends of every mutual-TLS connection.
public protocol PeerCertificateVerifier: Sendable {
    /// `leafDER` is the peer's certificate; `expected` the identity the caller meant to reach
    /// (nil on a server accepting any enrolled node).
    func verify(leafDER: [UInt8], expected: NodeIdentity?, now: Date) -> Result<NodeIdentity, PeerTrustFailure>
}
