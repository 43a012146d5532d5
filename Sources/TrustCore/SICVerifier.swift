import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// The SIC trust decision: a peer's certificate is trusted when it was signed by this group's pinned
/// Internal CA, is valid at `now` (the ICA too), is a node certificate (not a CA, carries a node
/// identity), is not revoked, and, when the caller names whom it meant to reach, is that node's.
///
/// The checks are direct and synchronous, because NIOSSL's verification callback is; `validate` runs the
/// same decision through swift-certificates' `Verifier` (RFC 5280 at a fixed time plus `SICPolicy`), for
/// callers that can await. Both return the same `PeerTrustFailure` for the same certificate.
///
/// Identity is the uid: a node renamed in the management database keeps its trust; the name in the
/// certificate is shown in messages.
public struct SICVerifier: PeerCertificateVerifier, Sendable {
    /// The pinned ICA certificate: the only issuer trusted.
    public let icaCertificate: Certificate
    /// Serials refused even though correctly signed.
    public var revocations: RevocationList

    /// A verifier trusting `icaCertificate` alone.
    public init(icaCertificate: Certificate, revocations: RevocationList = RevocationList()) {
        self.icaCertificate = icaCertificate
        self.revocations = revocations
    }

    /// A verifier trusting the ICA certificate in `icaPEM` (e.g. `pki/ica.pem`).
    public init(icaPEM: String, revocations: RevocationList = RevocationList()) throws {
        let certificate: Certificate
        do {
            certificate = try Certificate(pemEncoded: icaPEM)
        } catch {
            throw TrustError(.malformedPEM, "ICA certificate PEM cannot be parsed: \(error)")
        }
        guard case .isCertificateAuthority = try? certificate.extensions.basicConstraints else {
            throw TrustError(.notACertificateAuthority, "\(certificate.subject) is not a CA certificate")
        }
        self.init(icaCertificate: certificate, revocations: revocations)
    }

    public func verify(leafDER: [UInt8], expected: NodeIdentity?, now: Date) -> Result<NodeIdentity, PeerTrustFailure> {
        guard !leafDER.isEmpty else { return .failure(.noCertificate) }
        guard leafDER.count <= TrustLimits.certificateBytesMax else {
            return .failure(.malformed("larger than \(TrustLimits.certificateBytesMax) bytes"))
        }
        let leaf: Certificate
        do {
            leaf = try Certificate(derEncoded: leafDER)
        } catch {
            return .failure(.malformed("not a DER X.509 certificate (\(error))"))
        }
        return verify(leaf: leaf, expected: expected, now: now)
    }

    /// The same decision for a parsed certificate.
    public func verify(leaf: Certificate, expected: NodeIdentity?, now: Date) -> Result<NodeIdentity, PeerTrustFailure> {
        guard leaf.issuer == icaCertificate.subject,
            icaCertificate.publicKey.isValidSignature(leaf.signature, for: leaf)
        else {
            return .failure(.otherCA(issuer: leaf.issuer.description))
        }
        // The ICA's own window bounds everything it signed (a leaf never outlives it when Rampart issued it,
        // but the pinned certificate is what an operator can check and replace).
        if now < icaCertificate.notValidBefore {
            return .failure(.notYetValid(notValidBefore: icaCertificate.notValidBefore))
        }
        if now > icaCertificate.notValidAfter { return .failure(.expired(notValidAfter: icaCertificate.notValidAfter)) }
        return checkNodeCertificate(leaf, expected: expected, now: now, checkValidity: true)
    }

    /// The checks beyond "signed by the ICA": node certificate shape, revocation, validity window (unless
    /// `checkValidity` is false because RFC 5280 policy did it), identity.
    func checkNodeCertificate(
        _ leaf: Certificate, expected: NodeIdentity?, now: Date, checkValidity: Bool
    ) -> Result<NodeIdentity, PeerTrustFailure> {
        if case .isCertificateAuthority = try? leaf.extensions.basicConstraints {
            return .failure(.malformed("it is a CA certificate, not a node certificate"))
        }
        guard let found = NodeCertificate.identity(of: leaf) else {
            return .failure(.malformed("it carries no SIC node identity (\(NodeCertificate.uidURIPrefix)<uid>)"))
        }
        let serial = NodeCertificate.serialHex(leaf.serialNumber)
        if revocations.contains(serial: serial) { return .failure(.revoked(serial: serial)) }
        if checkValidity {
            if now < leaf.notValidBefore { return .failure(.notYetValid(notValidBefore: leaf.notValidBefore)) }
            if now > leaf.notValidAfter { return .failure(.expired(notValidAfter: leaf.notValidAfter)) }
        }
        if let expected, expected.uid != found.uid {
            return .failure(.wrongIdentity(expected: expected, found: found.description))
        }
        return .success(found)
    }

    /// The same decision made by swift-certificates' `Verifier`: chain to the pinned ICA, RFC 5280 checks
    /// with expiry at the fixed time `now`, and `SICPolicy`. A refusal is classified by the direct checks
    /// so that it names its cause.
    public func validate(leafDER: [UInt8], expected: NodeIdentity?, now: Date) async -> Result<
        NodeIdentity, PeerTrustFailure
    > {
        guard !leafDER.isEmpty else { return .failure(.noCertificate) }
        guard leafDER.count <= TrustLimits.certificateBytesMax,
            let leaf = try? Certificate(derEncoded: leafDER)
        else {
            return verify(leafDER: leafDER, expected: expected, now: now)
        }
        let sicPolicy = SICPolicy(verifier: self, expected: expected, now: now)
        var verifier = Verifier(rootCertificates: CertificateStore([icaCertificate])) {
            RFC5280Policy(fixedExpiryValidationTime: now)
            sicPolicy
        }
        let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
        switch result {
        case .validCertificate:
            return checkNodeCertificate(leaf, expected: expected, now: now, checkValidity: false)
        case .couldNotValidate(let failures):
            let direct = verify(leaf: leaf, expected: expected, now: now)
            if case .failure = direct { return direct }
            let reasons = failures.map { $0.policyFailureReason.description }.joined(separator: "; ")
            return .failure(.malformed("refused by RFC 5280 validation: \(reasons)"))
        }
    }
}

/// SIC's part of certificate policy, for swift-certificates' `Verifier`: the leaf is a node certificate,
/// not revoked, and for the expected node. Compose it with `RFC5280Policy(fixedExpiryValidationTime:)`,
/// which checks signatures, CA constraints and expiry.
public struct SICPolicy: VerifierPolicy, Sendable {
    /// SIC adds no critical extension of its own.
    public let verifyingCriticalExtensions: [ASN1ObjectIdentifier] = []
    let verifier: SICVerifier
    let expected: NodeIdentity?
    let now: Date

    /// A policy with the revocation list of `verifier`, for the peer `expected` (nil: any node).
    public init(verifier: SICVerifier, expected: NodeIdentity?, now: Date) {
        self.verifier = verifier
        self.expected = expected
        self.now = now
    }

    public mutating func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) async -> PolicyEvaluationResult {
        // The chain must be exactly leaf → pinned ICA: the ICA has path length 0, and no other root is trusted.
        guard chain.count == 2, chain[1] == verifier.icaCertificate else {
            return .failsToMeetPolicy(reason: "SIC: the chain does not end at the pinned Internal CA")
        }
        switch verifier.checkNodeCertificate(chain.leaf, expected: expected, now: now, checkValidity: false) {
        case .success: return .meetsPolicy
        case .failure(let failure):
            let description = failure.description
            return .failsToMeetPolicy(reason: "SIC: \(description)")
        }
    }
}

extension PeerTrustFailure {
    /// A stable machine-readable name of the cause, for logs, metrics and the API's `sic-message`.
    public var code: String {
        switch self {
        case .noCertificate: "no-certificate"
        case .malformed: "malformed"
        case .otherCA: "other-ca"
        case .expired: "expired"
        case .notYetValid: "not-yet-valid"
        case .revoked: "revoked"
        case .wrongIdentity: "wrong-identity"
        }
    }
}
