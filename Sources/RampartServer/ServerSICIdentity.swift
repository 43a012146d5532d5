import Foundation
import Logging
import TrustCore

/// This server's own SIC certificate (pki/node.pem), issued by its Internal CA at first start and
/// again when two thirds of its lifetime have passed.
enum ServerSICIdentity {
    static func loadOrIssue(pki: PKIDirectory, identity: NodeIdentity, now: Date, logger: Logger) throws -> NodeCredentials {
        if let current = try? NodeCredentials.load(from: pki.directory), current.identity == identity,
            let certificate = try? current.certificate(), !CertificateLifecycle.renewalDue(certificate, now: now)
        {
            return current
        }
        let keyPair = NodeKeyPair.generate()
        let issued = try pki.internalCA.issueNodeCertificate(publicKey: keyPair.publicKey, identity: identity, now: now)
        let credentials = NodeCredentials(
            identity: identity, privateKeyPEM: keyPair.privateKeyPEM,
            certificatePEM: issued.certificatePEM, icaPEM: pki.internalCA.certificatePEM)
        try credentials.write(to: pki.directory)
        logger.info("SIC certificate issued for this server", metadata: ["serial": "\(issued.serial)", "valid-until": "\(issued.notValidAfter)"])
        return credentials
    }
}
