import Crypto
import Foundation
import SwiftASN1
import X509

/// A SIC node certificate as the ICA issued it, with what callers store about it (serial, validity).
public struct IssuedNodeCertificate: Sendable, Equatable {
    /// The certificate.
    public let certificate: Certificate
    /// Whose it is, as written in its subject alternative names.
    public let identity: NodeIdentity
    /// The certificate, DER-encoded (what goes on the wire during enrolment).
    public let certificateDER: [UInt8]
    /// The certificate, PEM-encoded (what goes into `pki/node.pem`).
    public let certificatePEM: String
    /// The serial number as lowercase hex, the form a `RevocationList` holds.
    public var serial: String { NodeCertificate.serialHex(certificate.serialNumber) }
    /// Start of validity (backdated by `TrustLimits.certificateBackdateSeconds`).
    public var notValidBefore: Date { certificate.notValidBefore }
    /// End of validity, never beyond the ICA's own.
    public var notValidAfter: Date { certificate.notValidAfter }

    init(certificate: Certificate, identity: NodeIdentity) throws {
        self.certificate = certificate
        self.identity = identity
        self.certificateDER = try NodeCertificate.derBytes(certificate)
        self.certificatePEM = try wrapCryptographyErrors("encode a node certificate") {
            try certificate.serializeAsPEM().pemString
        }
    }
}

/// How a node's identity is written into, and read from, its certificate.
///
/// Subject `O=Rampart, CN=<name>` (for people reading certificates; never used for decisions), and in the
/// subject alternative names:
/// - `URI urn:rampart:node:<uid>`: the identity that verification compares;
/// - `URI urn:rampart:node-name:<percent-encoded name>`: the exact name, whatever its characters;
/// - `DNS <name lowercased>` when the name is a valid DNS name, so that ordinary tools show it.
public enum NodeCertificate {
    /// URI prefix of the uid name.
    public static let uidURIPrefix = "urn:rampart:node:"
    /// URI prefix of the exact-name name.
    public static let nameURIPrefix = "urn:rampart:node-name:"

    /// Characters kept as they are in the percent-encoded name (RFC 3986 unreserved).
    static let unreservedCharacters = CharacterSet(
        charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// Throws `.invalidArgument` unless `identity` can be written into a certificate: a uid of 1...64
    /// letters, digits, '-', '.', '_' (a UUID, as Check Point writes object uids, fits), and a printable
    /// name of 1...`TrustLimits.commonNameLengthMax` characters.
    public static func validate(_ identity: NodeIdentity) throws {
        let uid = Array(identity.uid.utf8)
        guard !uid.isEmpty, uid.count <= TrustLimits.nodeUIDLengthMax,
            uid.allSatisfy({ byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            })
        else {
            throw TrustError(
                .invalidArgument,
                "node uid must be 1...\(TrustLimits.nodeUIDLengthMax) letters, digits, '-', '.' or '_'")
        }
        try InternalCA.checkPrintable(identity.name, field: "node name", lengthMax: TrustLimits.commonNameLengthMax)
    }

    /// The subject alternative names that carry `identity`.
    static func subjectAlternativeNames(for identity: NodeIdentity) throws -> [GeneralName] {
        try validate(identity)
        guard let encodedName = identity.name.addingPercentEncoding(withAllowedCharacters: unreservedCharacters)
        else { throw TrustError(.invalidArgument, "node name cannot be percent-encoded") }
        var names: [GeneralName] = [
            .uniformResourceIdentifier(uidURIPrefix + identity.uid),
            .uniformResourceIdentifier(nameURIPrefix + encodedName),
        ]
        let lowered = identity.name.lowercased()
        if SubjectNames.isValidDNSName(lowered) { names.append(.dnsName(lowered)) }
        return names
    }

    /// Reads the identity a node certificate carries; nil when it carries none (not a SIC node
    /// certificate, e.g. the Web API's), or an ambiguous one (two uids).
    public static func identity(of certificate: Certificate) -> NodeIdentity? {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return nil }
        var uids: [String] = []
        var exactNames: [String] = []
        var dnsNames: [String] = []
        for name in names {
            switch name {
            case .uniformResourceIdentifier(let uri) where uri.hasPrefix(uidURIPrefix):
                uids.append(String(uri.dropFirst(uidURIPrefix.count)))
            case .uniformResourceIdentifier(let uri) where uri.hasPrefix(nameURIPrefix):
                if let decoded = String(uri.dropFirst(nameURIPrefix.count)).removingPercentEncoding {
                    exactNames.append(decoded)
                }
            case .dnsName(let dns):
                dnsNames.append(dns)
            default:
                continue
            }
        }
        guard uids.count == 1, let uid = uids.first, !uid.isEmpty else { return nil }
        let name = exactNames.first ?? dnsNames.first ?? ""
        return NodeIdentity(uid: uid, name: name)
    }

    /// Lowercase hex of a serial number's bytes.
    public static func serialHex(_ serial: Certificate.SerialNumber) -> String {
        hex(serial.bytes)
    }

    static func hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var result = [UInt8]()
        for byte in bytes {
            result.append(digits[Int(byte >> 4)])
            result.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: result, as: UTF8.self)
    }

    static func derBytes(_ certificate: Certificate) throws -> [UInt8] {
        try wrapCryptographyErrors("DER-encode a certificate") {
            var serializer = DER.Serializer()
            try serializer.serialize(certificate)
            return serializer.serializedBytes
        }
    }

    /// Parses a DER certificate, refusing oversized input before parsing it.
    static func parse(der: [UInt8]) throws -> Certificate {
        guard !der.isEmpty, der.count <= TrustLimits.certificateBytesMax else {
            throw TrustError(
                .malformedPEM, "certificate must be 1...\(TrustLimits.certificateBytesMax) bytes, got \(der.count)")
        }
        do {
            return try Certificate(derEncoded: der)
        } catch {
            throw TrustError(.malformedPEM, "certificate DER cannot be parsed: \(error)")
        }
    }

    /// True when `publicKey` is of a kind SIC accepts for node keys: ECDSA P-256 or P-384.
    static func isAcceptedNodeKey(_ publicKey: Certificate.PublicKey) -> Bool {
        P256.Signing.PublicKey(publicKey) != nil || P384.Signing.PublicKey(publicKey) != nil
    }
}

extension InternalCA {
    /// Issues a SIC node certificate for the public key of a PKCS#10 request, after checking the request's
    /// signature (the node holds the key). What the request asks for (subject, extensions) is ignored: the
    /// server decides the identity. Extended key usage serverAuth and clientAuth (a node is both ends of
    /// mutual TLS). Valid from `now` (backdated) for `validityDays`, never beyond the ICA.
    public func issueNodeCertificate(
        csrDER: [UInt8], identity: NodeIdentity, now: Date,
        validityDays: Int = TrustLimits.nodeCertificateValidityDays
    ) throws -> IssuedNodeCertificate {
        let request = try NodeKeyPair.parseVerifiedCSR(der: csrDER)
        return try issueNodeCertificate(
            publicKey: request.publicKey, identity: identity, now: now, validityDays: validityDays)
    }

    /// Issues a SIC node certificate for `publicKey` (ECDSA P-256 or P-384); see the CSR variant.
    public func issueNodeCertificate(
        publicKey: Certificate.PublicKey, identity: NodeIdentity, now: Date,
        validityDays: Int = TrustLimits.nodeCertificateValidityDays
    ) throws -> IssuedNodeCertificate {
        guard NodeCertificate.isAcceptedNodeKey(publicKey) else {
            throw TrustError(.invalidArgument, "node keys must be ECDSA P-256 or P-384")
        }
        guard publicKey != certificate.publicKey else {
            throw TrustError(.invalidArgument, "a node certificate must not reuse the ICA's key")
        }
        let names = try NodeCertificate.subjectAlternativeNames(for: identity)
        let subject = try DistinguishedName {
            OrganizationName(Self.organization)
            CommonName(identity.name)
        }
        let issued = try issueCertificate(
            publicKey: publicKey, subject: subject, subjectAlternativeNames: names,
            extendedKeyUsage: [.serverAuth, .clientAuth], now: now, validityDays: validityDays)
        return try IssuedNodeCertificate(certificate: issued, identity: identity)
    }

    /// Records the revocation of the certificate with `serial` in `list` (the ICA state that HA syncs).
    /// Returns false when it was already revoked (the first revocation is kept). Pass the certificate's
    /// `notValidAfter` when known, so the entry can be pruned once the certificate has expired anyway.
    @discardableResult
    public func revoke(
        serial: String, reason: RevocationList.Reason, certificateNotValidAfter: Date? = nil, now: Date,
        in list: inout RevocationList
    ) throws -> Bool {
        try list.revoke(serial: serial, reason: reason, certificateNotValidAfter: certificateNotValidAfter, now: now)
    }
}

/// A node's own key pair (P-256), made on the node; the private key never leaves it.
public struct NodeKeyPair: Sendable {
    /// The private key's scalar (swift-crypto's key types are not `Sendable`).
    private let privateKeyScalar: [UInt8]

    var privateKey: P256.Signing.PrivateKey { .rebuilt(fromScalar: privateKeyScalar) }

    init(privateKey: P256.Signing.PrivateKey) {
        self.privateKeyScalar = [UInt8](privateKey.rawRepresentation)
    }

    /// A new random key pair.
    public static func generate() -> NodeKeyPair {
        NodeKeyPair(privateKey: P256.Signing.PrivateKey())
    }

    /// Loads a key pair from its PKCS#8 PEM (`pki/node.key`).
    public init(privateKeyPEM: String) throws {
        do {
            self.init(privateKey: try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM))
        } catch {
            // The parser's error text could quote key bytes: do not include it.
            throw TrustError(.malformedPEM, "node private key PEM is not a P-256 private key")
        }
    }

    /// The private key (PKCS#8 PEM). Secret: store it 0600, never log it.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// The public key, as certificates carry it.
    public var publicKey: Certificate.PublicKey { Certificate.PublicKey(privateKey.publicKey) }

    /// A PKCS#10 certificate signing request for this key, DER-encoded. The subject names the node for
    /// people reading it; the ICA ignores it and writes the identity it decides.
    public func makeCSR(identity: NodeIdentity) throws -> [UInt8] {
        try NodeCertificate.validate(identity)
        let subject = try DistinguishedName {
            OrganizationName(InternalCA.organization)
            CommonName(identity.name)
        }
        return try wrapCryptographyErrors("make a certificate signing request") {
            let request = try CertificateSigningRequest(
                version: .v1, subject: subject, privateKey: Certificate.PrivateKey(privateKey),
                attributes: CertificateSigningRequest.Attributes(), signatureAlgorithm: .ecdsaWithSHA256)
            var serializer = DER.Serializer()
            try serializer.serialize(request)
            return serializer.serializedBytes
        }
    }

    /// The same request, PEM-encoded ("CERTIFICATE REQUEST").
    public func makeCSRPEM(identity: NodeIdentity) throws -> String {
        PEMDocument(type: "CERTIFICATE REQUEST", derBytes: try makeCSR(identity: identity)).pemString
    }

    /// Parses a DER CSR and checks its signature and key kind. Throws `.invalidArgument` otherwise.
    static func parseVerifiedCSR(der: [UInt8]) throws -> CertificateSigningRequest {
        guard !der.isEmpty, der.count <= TrustLimits.certificateSigningRequestBytesMax else {
            throw TrustError(
                .invalidArgument,
                "certificate signing request must be 1...\(TrustLimits.certificateSigningRequestBytesMax) bytes")
        }
        let request: CertificateSigningRequest
        do {
            request = try CertificateSigningRequest(derEncoded: der)
        } catch {
            throw TrustError(.invalidArgument, "certificate signing request cannot be parsed: \(error)")
        }
        guard NodeCertificate.isAcceptedNodeKey(request.publicKey) else {
            throw TrustError(.invalidArgument, "node keys must be ECDSA P-256 or P-384")
        }
        guard request.publicKey.isValidSignature(request.signature, for: request) else {
            throw TrustError(.invalidArgument, "the certificate signing request's signature is not valid")
        }
        return request
    }
}
