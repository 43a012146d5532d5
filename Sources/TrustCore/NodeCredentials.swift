import Foundation
import X509

/// What an enrolled node keeps in its `pki/` folder (DESIGN.md §6):
///
/// | file | content | mode |
/// |---|---|---|
/// | `node.key` | the node's private key | 0600 |
/// | `node.pem` | the node's certificate, issued by the ICA | 0644 |
/// | `ica.pem` | the ICA certificate the node pins | 0644 |
/// | `revocations.json` | the ICA's revocation list as last received | 0644 |
public struct NodeCredentials: Sendable, Equatable {
    /// File names inside `pki/`.
    public enum FileName {
        public static let nodeKey = "node.key"
        public static let nodeCertificate = "node.pem"
        public static let icaCertificate = "ica.pem"
        public static let revocations = "revocations.json"
    }

    /// Who this node is, as its certificate says.
    public let identity: NodeIdentity
    /// The node's private key (PKCS#8 PEM). Secret: 0600, never logged.
    public let privateKeyPEM: String
    /// The node's certificate.
    public let certificatePEM: String
    /// The ICA certificate: the only issuer this node trusts for SIC.
    public let icaPEM: String
    /// The ICA's revocation list.
    public let revocations: RevocationList

    public init(
        identity: NodeIdentity, privateKeyPEM: String, certificatePEM: String, icaPEM: String,
        revocations: RevocationList = RevocationList()
    ) {
        self.identity = identity
        self.privateKeyPEM = privateKeyPEM
        self.certificatePEM = certificatePEM
        self.icaPEM = icaPEM
        self.revocations = revocations
    }

    /// The certificate, key and chain as an `IssuedIdentity`, e.g. for a TLS configuration.
    public var issuedIdentity: IssuedIdentity {
        IssuedIdentity(certificatePEM: certificatePEM, privateKeyPEM: privateKeyPEM, chainPEM: icaPEM)
    }

    /// A verifier pinning this node's ICA, with its revocation list.
    public func makeVerifier() throws -> SICVerifier {
        try SICVerifier(icaPEM: icaPEM, revocations: revocations)
    }

    /// When this node's certificate stops being valid (nil when it cannot be read).
    public var certificateNotValidAfter: Date? { try? certificate().notValidAfter }

    /// When the group's Internal CA certificate stops being valid (nil when it cannot be read).
    public var icaNotValidAfter: Date? { try? Certificate(pemEncoded: icaPEM).notValidAfter }

    /// The node certificate, parsed.
    public func certificate() throws -> Certificate {
        do { return try Certificate(pemEncoded: certificatePEM) } catch {
            throw TrustError(.malformedPEM, "node certificate PEM cannot be parsed: \(error)")
        }
    }

    /// Writes the credentials into `pkiDirectory` (created 0700 if missing; its parent must exist), each
    /// file atomically and durably. The key goes first: a crash in between leaves a key without a
    /// matching certificate, which `load` refuses, rather than a certificate whose key is lost.
    public func write(to pkiDirectory: URL) throws {
        try DurableFile.ensureDirectory(pkiDirectory, mode: 0o700)
        try DurableFile.removeStaleTemporaryFiles(in: pkiDirectory)
        let file = { (name: String) in pkiDirectory.appendingPathComponent(name) }
        try DurableFile.write(Array(privateKeyPEM.utf8), to: file(FileName.nodeKey), mode: 0o600)
        try DurableFile.write(Array(icaPEM.utf8), to: file(FileName.icaCertificate), mode: 0o644)
        try DurableFile.write(Array(revocations.jsonText.utf8), to: file(FileName.revocations), mode: 0o644)
        try DurableFile.write(Array(certificatePEM.utf8), to: file(FileName.nodeCertificate), mode: 0o644)
    }

    /// Reads credentials written by `write`, checking that the key belongs to the certificate, that the
    /// ICA signed it, and that it carries a node identity (validity in time is the verifier's business:
    /// an expired certificate still loads, so that the node can say so). A missing `revocations.json`
    /// is an empty list.
    public static func load(from pkiDirectory: URL) throws -> NodeCredentials {
        func read(_ name: String) throws -> String? {
            let url = pkiDirectory.appendingPathComponent(name)
            guard FileManager.default.fileExists(atPath: url.path) else { return nil }
            do { return try String(contentsOf: url, encoding: .utf8) } catch {
                throw TrustError(.fileSystem, "cannot read \(url.path): \(error)")
            }
        }
        guard let keyPEM = try read(FileName.nodeKey), let certificatePEM = try read(FileName.nodeCertificate),
            let icaPEM = try read(FileName.icaCertificate)
        else {
            throw TrustError(
                .fileSystem,
                "\(pkiDirectory.path) does not hold \(FileName.nodeKey), \(FileName.nodeCertificate) and "
                    + "\(FileName.icaCertificate): this node is not enrolled")
        }
        let revocations = try read(FileName.revocations).map(RevocationList.init(jsonText:)) ?? RevocationList()
        let keyPair = try NodeKeyPair(privateKeyPEM: keyPEM)
        let credentials = NodeCredentials(
            identity: NodeIdentity(uid: "", name: ""), privateKeyPEM: keyPEM, certificatePEM: certificatePEM,
            icaPEM: icaPEM, revocations: revocations)
        let certificate = try credentials.certificate()
        guard certificate.publicKey == keyPair.publicKey else {
            throw TrustError(.keyMismatch, "\(FileName.nodeKey) does not belong to \(FileName.nodeCertificate)")
        }
        let verifier = try credentials.makeVerifier()
        guard certificate.issuer == verifier.icaCertificate.subject,
            verifier.icaCertificate.publicKey.isValidSignature(certificate.signature, for: certificate)
        else {
            throw TrustError(
                .keyMismatch, "\(FileName.nodeCertificate) was not issued by the ICA in \(FileName.icaCertificate)")
        }
        guard let identity = NodeCertificate.identity(of: certificate) else {
            throw TrustError(.malformedPEM, "\(FileName.nodeCertificate) carries no SIC node identity")
        }
        return NodeCredentials(
            identity: identity, privateKeyPEM: keyPEM, certificatePEM: certificatePEM, icaPEM: icaPEM,
            revocations: revocations)
    }
}

/// When certificates should renew, and what to warn operators about.
public enum CertificateLifecycle {
    /// The instant at two thirds of the lifetime from `notValidBefore` to `notValidAfter`.
    public static func renewalTime(notValidBefore: Date, notValidAfter: Date) -> Date {
        notValidBefore.addingTimeInterval(notValidAfter.timeIntervalSince(notValidBefore) * 2 / 3)
    }

    /// True from two thirds of the certificate's lifetime on: the node asks for a new certificate over
    /// its trusted channel, with a third of the lifetime left to succeed.
    public static func renewalDue(notValidBefore: Date, notValidAfter: Date, now: Date) -> Bool {
        now >= renewalTime(notValidBefore: notValidBefore, notValidAfter: notValidAfter)
    }

    /// `renewalDue` for a certificate.
    public static func renewalDue(_ certificate: Certificate, now: Date) -> Bool {
        renewalDue(notValidBefore: certificate.notValidBefore, notValidAfter: certificate.notValidAfter, now: now)
    }

    /// A certificate near or past its end, and what the operator should do.
    public struct ExpiringCertificate: Sendable, Equatable {
        public enum Which: String, Sendable {
            case internalCA = "internal-ca"
            case sicCertificate = "sic-certificate"
        }
        public let which: Which
        public let notValidAfter: Date
        /// Whole days left (negative once expired).
        public let daysLeft: Int
        public let advice: String
    }

    /// Warnings for an operator, most urgent first: the ICA within `TrustLimits.icaExpiryWarningDays` of
    /// expiry (or expired), the node certificate within `TrustLimits.nodeCertificateExpiryWarningDays`
    /// (or expired). Empty when all is well.
    public static func expiryWarnings(icaNotValidAfter: Date, nodeNotValidAfter: Date?, now: Date) -> [String] {
        expiringCertificates(icaNotValidAfter: icaNotValidAfter, nodeNotValidAfter: nodeNotValidAfter, now: now).map(\.advice)
    }

    /// `expiryWarnings` as values.
    public static func expiringCertificates(icaNotValidAfter: Date, nodeNotValidAfter: Date?, now: Date) -> [ExpiringCertificate] {
        var warnings: [ExpiringCertificate] = []
        let icaDays = daysLeft(icaNotValidAfter, now: now)
        func add(_ which: ExpiringCertificate.Which, _ notValidAfter: Date, _ days: Double, _ advice: String) {
            // Days are bounded by certificate lifetimes (years), far inside Int.
            let whole = days.isFinite ? Int(max(min(days, 1e9), -1e9).rounded(.down)) : 0
            warnings.append(ExpiringCertificate(which: which, notValidAfter: notValidAfter, daysLeft: whole, advice: advice))
        }
        if icaDays < 0 {
            add(
                .internalCA, icaNotValidAfter, icaDays,
                "the Internal CA expired at \(icaNotValidAfter): no SIC connection can be trusted; create a new ICA and enrol every node again")
        } else if icaDays < Double(TrustLimits.icaExpiryWarningDays) {
            add(
                .internalCA, icaNotValidAfter, icaDays,
                "the Internal CA expires in \(Int(icaDays)) days (at \(icaNotValidAfter)); plan its replacement: every node must be enrolled again")
        }
        if let nodeNotValidAfter {
            let nodeDays = daysLeft(nodeNotValidAfter, now: now)
            if nodeDays < 0 {
                add(
                    .sicCertificate, nodeNotValidAfter, nodeDays,
                    "this node's SIC certificate expired at \(nodeNotValidAfter); reset SIC for it and enrol it again")
            } else if nodeDays < Double(TrustLimits.nodeCertificateExpiryWarningDays) {
                add(
                    .sicCertificate, nodeNotValidAfter, nodeDays,
                    "this node's SIC certificate expires in \(Int(nodeDays)) days (at \(nodeNotValidAfter)) and has not renewed; check its connection to the active server"
                )
            }
        }
        return warnings
    }

    private static func daysLeft(_ date: Date, now: Date) -> Double {
        date.timeIntervalSince(now) / 86_400
    }
}
