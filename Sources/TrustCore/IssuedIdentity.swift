import NIOSSL

/// A certificate with its private key and the chain above it, all PEM-encoded, ready to be written to
/// files or loaded into NIOSSL.
public struct IssuedIdentity: Sendable, Equatable {
    /// The issued (leaf) certificate.
    public let certificatePEM: String
    /// The leaf's private key (PKCS#8 "PRIVATE KEY"). Secret: store it 0600, never log it.
    public let privateKeyPEM: String
    /// The issuer chain above the leaf, leaf excluded: today just the Internal CA certificate.
    public let chainPEM: String

    /// Creates an identity from its PEM parts.
    public init(certificatePEM: String, privateKeyPEM: String, chainPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
        self.chainPEM = chainPEM
    }

    /// A NIOSSL server configuration presenting this identity (leaf only: clients hold the ICA), with
    /// TLS 1.2 as the minimum. No client certificates are requested.
    public func makeServerTLSConfiguration() throws -> TLSConfiguration {
        try wrapCryptographyErrors("load a certificate and key into NIOSSL") {
            let certificates = try NIOSSLCertificate.fromPEMBytes(Array(certificatePEM.utf8))
            guard !certificates.isEmpty else { throw TrustError(.malformedPEM, "no certificate in the PEM") }
            let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: certificates.map { .certificate($0) },
                privateKey: .privateKey(key)
            )
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        }
    }
}
