import Foundation
import NIOCore
import NIOSSL
import TrustCore

/// What one connection's certificate check found. Created per connection on its event loop, written by
/// the verification callback and read by `PeerSessionHandler` on the same loop.
final class PeerTrustRecord {
    /// The identity the verifier accepted.
    var identity: NodeIdentity?
    /// Why the verifier refused the peer's certificate.
    var refusal: PeerTrustFailure?
}

/// TLS 1.3 contexts for the SIC channel. BoringSSL's own chain checks are replaced entirely by a custom
/// verification callback that asks the `PeerCertificateVerifier` (pinned ICA, identity, expiry at an
/// injected time, revocation), so no system trust store is involved.
enum PeerTLS {
    /// Loads a leaf certificate and key from PEM.
    static func loadIdentity(_ identity: IssuedIdentity) throws -> ([NIOSSLCertificateSource], NIOSSLPrivateKeySource) {
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(Array(identity.certificatePEM.utf8))
        } catch {
            throw PeerTransportError(.invalidConfiguration, "the node certificate PEM cannot be read: \(error)")
        }
        guard !certificates.isEmpty else {
            throw PeerTransportError(.invalidConfiguration, "the node certificate PEM holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(bytes: Array(identity.privateKeyPEM.utf8), format: .pem)
        } catch {
            // A key parser's error text could quote key bytes: do not include it.
            throw PeerTransportError(.invalidConfiguration, "the node private key PEM cannot be read")
        }
        return (certificates.map { .certificate($0) }, .privateKey(key))
    }

    static func makeContext(_ configuration: TLSConfiguration) throws -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw PeerTransportError(.invalidConfiguration, "cannot build the TLS context: \(error)")
        }
    }

    /// Server: presents `identity`; asks for a client certificate, which is required unless enrolment
    /// is accepted (then a client without one is an enrolment connection).
    static func serverContext(identity: IssuedIdentity, acceptsEnrolment: Bool) throws -> NIOSSLContext {
        let (chain, key) = try loadIdentity(identity)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        configuration.certificateVerification = acceptsEnrolment ? .optionalVerification : .noHostnameVerification
        configuration.trustRoots = .certificates([])
        return try makeContext(configuration)
    }

    /// Client: presents `identity` when it has one (nil: enrolment, the server is not verified either,
    /// since the enrolment protocol carries its own proofs).
    static func clientContext(identity: IssuedIdentity?) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        configuration.trustRoots = .certificates([])
        if let identity {
            let (chain, key) = try loadIdentity(identity)
            configuration.certificateChain = chain
            configuration.privateKey = key
            // Names are checked by the verifier (the node uid in the SAN), not against a host name.
            configuration.certificateVerification = .noHostnameVerification
        } else {
            configuration.certificateVerification = .none
        }
        return try makeContext(configuration)
    }

    /// The NIOSSL callback that asks `verifier` about the peer's leaf and writes the answer to `record`.
    static func verificationCallback(
        verifier: any PeerCertificateVerifier,
        expected: NodeIdentity?,
        now: @escaping @Sendable () -> Date,
        record: PeerTrustRecord
    ) -> NIOSSLCustomVerificationCallback {
        { certificates, promise in
            guard let leaf = certificates.first else {
                record.refusal = .noCertificate
                promise.succeed(.failed)
                return
            }
            let der: [UInt8]
            do {
                der = try leaf.toDERBytes()
            } catch {
                record.refusal = .malformed("\(error)")
                promise.succeed(.failed)
                return
            }
            switch verifier.verify(leafDER: der, expected: expected, now: now()) {
            case .success(let identity):
                record.identity = identity
                promise.succeed(.certificateVerified)
            case .failure(let failure):
                record.refusal = failure
                promise.succeed(.failed)
            }
        }
    }
}
