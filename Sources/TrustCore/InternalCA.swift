import Crypto
import Foundation
import SwiftASN1
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The Internal CA (ICA): the root of trust of a Rampart installation, created at the primary's first
/// start. It signs the HTTPS certificate of the Web API now, and SIC node certificates later.
///
/// A P-256 key and a self-signed certificate with subject `O=Rampart, CN=Rampart Internal CA <name>`,
/// basicConstraints CA (path length 0: it issues only end-entity certificates), keyUsage keyCertSign and
/// cRLSign. Pure apart from randomness: time is always a parameter.
public struct InternalCA: Sendable {
    /// Prefix of the ICA's common name.
    public static let commonNamePrefix = "Rampart Internal CA "
    /// Organization of every certificate Rampart makes.
    public static let organization = "Rampart"

    /// The ICA's self-signed certificate.
    public let certificate: Certificate
    /// The key's 32-byte scalar. Kept as bytes because swift-crypto's key types are not `Sendable`;
    /// `privateKey` rebuilds the key (microseconds) where it is needed.
    private let privateKeyScalar: [UInt8]

    var privateKey: P256.Signing.PrivateKey { .rebuilt(fromScalar: privateKeyScalar) }

    /// Creates a new ICA named `name` (at most `TrustLimits.icaNameLengthMax` characters), valid from
    /// `now` (backdated by `TrustLimits.certificateBackdateSeconds`) for `validityDays`.
    public static func create(
        name: String, now: Date, validityDays: Int = TrustLimits.icaValidityDays
    ) throws -> InternalCA {
        try checkPrintable(name, field: "ICA name", lengthMax: TrustLimits.icaNameLengthMax)
        guard validityDays > 0 && validityDays <= 36_500 else {
            throw TrustError(.invalidArgument, "ICA validity must be 1...36500 days, got \(validityDays)")
        }
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName(organization)
            CommonName(commonNamePrefix + name)
        }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let notBefore = now.addingTimeInterval(-Double(TrustLimits.certificateBackdateSeconds))
        let certificate = try wrapCryptographyErrors("create the ICA certificate") {
            try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: notBefore,
                notValidAfter: now.addingTimeInterval(Double(validityDays) * 86_400),
                issuer: subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: Certificate.PrivateKey(key)
            )
        }
        return InternalCA(certificate: certificate, privateKey: key)
    }

    /// Loads an ICA from its certificate and key PEMs, checking that the key belongs to the certificate,
    /// that it is a CA, and that it is self-signed.
    public init(certificatePEM: String, privateKeyPEM: String) throws {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw TrustError(.malformedPEM, "ICA certificate PEM cannot be parsed: \(error)")
        }
        let key: P256.Signing.PrivateKey
        do {
            key = try P256.Signing.PrivateKey(pemRepresentation: privateKeyPEM)
        } catch {
            // The error text of a key parser could quote key bytes: do not include it.
            throw TrustError(.malformedPEM, "ICA private key PEM is not a P-256 private key")
        }
        guard Certificate.PublicKey(key.publicKey) == certificate.publicKey else {
            throw TrustError(.keyMismatch, "ICA private key does not belong to certificate \(certificate.subject)")
        }
        guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else {
            throw TrustError(.notACertificateAuthority, "\(certificate.subject) is not a CA certificate")
        }
        guard certificate.issuer == certificate.subject,
            certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
        else {
            throw TrustError(.notACertificateAuthority, "\(certificate.subject) is not self-signed")
        }
        self.init(certificate: certificate, privateKey: key)
    }

    init(certificate: Certificate, privateKey: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.privateKeyScalar = [UInt8](privateKey.rawRepresentation)
    }

    /// The ICA certificate, PEM-encoded: what clients and peers trust.
    public var certificatePEM: String {
        // Serializing a certificate we parsed or built cannot fail.
        do { return try certificate.serializeAsPEM().pemString } catch {
            preconditionFailure("cannot serialize ICA certificate: \(error)")
        }
    }

    /// The ICA private key (PKCS#8 PEM). Secret: store it 0600, never log it.
    public var privateKeyPEM: String { privateKey.pemRepresentation }

    /// The date after which the ICA and everything it signed stop being valid.
    public var notValidAfter: Date { certificate.notValidAfter }

    /// Issues a TLS certificate for a server (and, for SIC later, a client) with a fresh P-256 key:
    /// subject `O=Rampart, CN=<commonName>`, subject alternative names from `dnsNames` and `ipAddresses`
    /// (IPv4 or IPv6 text; brackets allowed), extendedKeyUsage serverAuth and clientAuth. Valid from `now`
    /// (backdated by `TrustLimits.certificateBackdateSeconds`) for `validityDays`, and never beyond the
    /// ICA's own validity.
    public func issueTLSServerCertificate(
        commonName: String,
        dnsNames: [String],
        ipAddresses: [String],
        now: Date,
        validityDays: Int = TrustLimits.serverCertificateValidityDays
    ) throws -> IssuedIdentity {
        try Self.checkPrintable(commonName, field: "common name", lengthMax: TrustLimits.commonNameLengthMax)
        var names = SubjectNames()
        for name in dnsNames { try names.addDNSName(name) }
        for address in ipAddresses { try names.addIPAddress(address) }
        guard names.count <= TrustLimits.subjectAlternativeNamesMax else {
            throw TrustError(
                .invalidArgument, "at most \(TrustLimits.subjectAlternativeNamesMax) subject alternative names")
        }
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName(Self.organization)
            CommonName(commonName)
        }
        let certificate = try issueCertificate(
            publicKey: Certificate.PublicKey(key.publicKey),
            subject: subject,
            subjectAlternativeNames: names.generalNames,
            extendedKeyUsage: [.serverAuth, .clientAuth],
            now: now,
            validityDays: validityDays
        )
        return IssuedIdentity(
            certificatePEM: try wrapCryptographyErrors("encode certificate") {
                try certificate.serializeAsPEM().pemString
            },
            privateKeyPEM: key.pemRepresentation,
            chainPEM: certificatePEM
        )
    }

    /// Signs an end-entity certificate for `publicKey`. The seam that SIC node certificates will use.
    func issueCertificate(
        publicKey: Certificate.PublicKey,
        subject: DistinguishedName,
        subjectAlternativeNames: [GeneralName],
        extendedKeyUsage: [ExtendedKeyUsage.Usage],
        now: Date,
        validityDays: Int
    ) throws -> Certificate {
        guard validityDays > 0 && validityDays <= 36_500 else {
            throw TrustError(.invalidArgument, "certificate validity must be 1...36500 days, got \(validityDays)")
        }
        let notBefore = max(
            now.addingTimeInterval(-Double(TrustLimits.certificateBackdateSeconds)), certificate.notValidBefore)
        let notAfter = min(now.addingTimeInterval(Double(validityDays) * 86_400), certificate.notValidAfter)
        guard now >= certificate.notValidBefore, notAfter > now else {
            throw TrustError(
                .invalidArgument,
                "the ICA is not valid at \(now) (valid \(certificate.notValidBefore) to \(certificate.notValidAfter))"
            )
        }
        let issuerKeyIdentifier = try? certificate.extensions.subjectKeyIdentifier?.keyIdentifier
        return try wrapCryptographyErrors("issue a certificate for \(subject)") {
            try Certificate(
                version: .v3,
                serialNumber: Certificate.SerialNumber(),
                publicKey: publicKey,
                notValidBefore: notBefore,
                notValidAfter: notAfter,
                issuer: certificate.subject,
                subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage(extendedKeyUsage)
                    SubjectKeyIdentifier(hash: publicKey)
                    AuthorityKeyIdentifier(keyIdentifier: issuerKeyIdentifier)
                    if !subjectAlternativeNames.isEmpty {
                        SubjectAlternativeNames(subjectAlternativeNames)
                    }
                },
                issuerPrivateKey: Certificate.PrivateKey(privateKey)
            )
        }
    }

    static func checkPrintable(_ value: String, field: String, lengthMax: Int) throws {
        guard !value.isEmpty, value.count <= lengthMax else {
            throw TrustError(.invalidArgument, "\(field) must be 1...\(lengthMax) characters")
        }
        guard value.unicodeScalars.allSatisfy({ !$0.properties.generalCategory.isControlOrFormat }) else {
            throw TrustError(.invalidArgument, "\(field) contains control characters")
        }
    }
}

extension Unicode.GeneralCategory {
    fileprivate var isControlOrFormat: Bool {
        switch self {
        case .control, .format, .lineSeparator, .paragraphSeparator, .unassigned, .surrogate, .privateUse: true
        default: false
        }
    }
}

/// Runs `body`, turning a library error into a `TrustError` with code `.cryptography`.
func wrapCryptographyErrors<T>(_ action: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as TrustError {
        throw error
    } catch {
        throw TrustError(.cryptography, "cannot \(action): \(error)")
    }
}

/// A normalized set of subject alternative names: DNS names lowercased, IP addresses as bytes (so that
/// "::1" and "0:0:0:0:0:0:0:1" are one name). Order of insertion is kept, duplicates dropped.
struct SubjectNames: Equatable {
    private(set) var dnsNames: [String] = []
    private(set) var ipAddresses: [[UInt8]] = []

    var count: Int { dnsNames.count + ipAddresses.count }

    var generalNames: [GeneralName] {
        dnsNames.map { GeneralName.dnsName($0) }
            + ipAddresses.map { GeneralName.ipAddress(ASN1OctetString(contentBytes: $0[...])) }
    }

    /// Reads the subject alternative names of a certificate (names of other kinds are ignored).
    init(certificate: Certificate) throws {
        guard let names = try certificate.extensions.subjectAlternativeNames else { return }
        for name in names {
            switch name {
            case .dnsName(let dns): appendUnique(dns: dns.lowercased())
            case .ipAddress(let octets): appendUnique(ip: Array(octets.bytes))
            default: continue
            }
        }
    }

    init() {}

    /// True when every name in `other` is also in `self`.
    func covers(_ other: SubjectNames) -> Bool {
        other.dnsNames.allSatisfy(dnsNames.contains) && other.ipAddresses.allSatisfy(ipAddresses.contains)
    }

    /// The names of `other` that `self` lacks, as text, for messages.
    func missing(from other: SubjectNames) -> [String] {
        other.dnsNames.filter { !dnsNames.contains($0) }
            + other.ipAddresses.filter { !ipAddresses.contains($0) }.map(Self.ipText)
    }

    mutating func addDNSName(_ name: String) throws {
        let lowered = name.lowercased()
        guard Self.isValidDNSName(lowered) else {
            throw TrustError(.invalidArgument, "not a valid DNS name: \(name.prefix(TrustLimits.dnsNameLengthMax))")
        }
        appendUnique(dns: lowered)
    }

    mutating func addIPAddress(_ text: String) throws {
        guard let bytes = Self.ipAddressBytes(text) else {
            throw TrustError(.invalidArgument, "not a valid IP address: \(text.prefix(64))")
        }
        appendUnique(ip: bytes)
    }

    /// Adds `text` as an IP address if it is one, else as a DNS name.
    mutating func add(_ text: String) throws {
        if Self.ipAddressBytes(text) != nil { try addIPAddress(text) } else { try addDNSName(text) }
    }

    private mutating func appendUnique(dns: String) {
        if !dnsNames.contains(dns) { dnsNames.append(dns) }
    }

    private mutating func appendUnique(ip: [UInt8]) {
        if !ipAddresses.contains(ip) { ipAddresses.append(ip) }
    }

    /// Letters, digits and hyphens in dot-separated labels of 1...63 characters, at most 253 in all, no
    /// leading or trailing hyphen in a label. No wildcards: Rampart never issues them.
    static func isValidDNSName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= TrustLimits.dnsNameLengthMax else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        return labels.allSatisfy { label in
            let bytes = Array(label.utf8)
            guard !bytes.isEmpty, bytes.count <= 63, bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-")
            else { return false }
            return bytes.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: "-")
            }
        }
    }

    /// The 4 or 16 bytes of an IPv4 or IPv6 address in text form ("[::1]" allowed; zone ids are not).
    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var text = text
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }

    /// True for 0.0.0.0 and ::, the addresses that mean "every interface" in a listen address.
    static func isUnspecified(_ bytes: [UInt8]) -> Bool {
        bytes.allSatisfy { $0 == 0 }
    }

    static func ipText(_ bytes: [UInt8]) -> String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard ok else { return bytes.map(String.init).joined(separator: ".") }
        let length = buffer.firstIndex(of: 0) ?? buffer.count
        return String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension P256.Signing.PrivateKey {
    /// A key kept as its scalar (swift-crypto's key types are not `Sendable`), rebuilt where needed.
    static func rebuilt(fromScalar scalar: [UInt8]) -> P256.Signing.PrivateKey {
        do {
            return try P256.Signing.PrivateKey(rawRepresentation: scalar)
        } catch {
            preconditionFailure("the raw representation of a valid P-256 key must load again")
        }
    }
}
