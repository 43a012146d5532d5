import Foundation
import HARuntime
import ManagementModel
import ManagementService
import PeerTransport
import TrustCore

/// The node side of the channel: connect with the node's credentials, send one message, read one.
public struct SICNodeChannel: Sendable {
    let credentials: NodeCredentials
    let host: String
    let port: Int

    public init(credentials: NodeCredentials, host: String, port: Int) {
        self.credentials = credentials
        self.host = host
        self.port = port
    }

    public func exchange(_ message: JSONValue) async throws -> (server: NodeIdentity?, reply: JSONValue) {
        let connector = try PeerConnector(identity: credentials.issuedIdentity, verifier: try credentials.makeVerifier())
        return try await connector.connect(host: host, port: port, expecting: nil) { connection in
            try await connection.send(SICChannelMessage.frame(message))
            for try await frame in connection.inbound {
                guard let reply = SICChannelMessage.decode(frame) else { throw SICChannelFailure("the server answered something that is not a SIC message") }
                return (connection.peerIdentity, reply)
            }
            throw SICChannelFailure("the server closed the channel without answering")
        }
    }

    /// Renews the node's certificate: a new key and CSR, the server's new certificate checked
    /// against the ICA and the new key, written in place of the old.
    public func renew(pkiDirectory: URL) async throws -> NodeCredentials {
        let keyPair = NodeKeyPair.generate()
        let (_, reply) = try await exchange(SICChannelMessage.renew(csrDER: try keyPair.makeCSR(identity: credentials.identity)))
        guard reply["type"]?.stringValue == "renewed", let pem = reply["certificate"]?.stringValue else {
            throw SICChannelFailure("renewal refused: \(reply["message"]?.stringValue ?? reply.canonicalString)")
        }
        let renewed = NodeCredentials(
            identity: credentials.identity, privateKeyPEM: keyPair.privateKeyPEM, certificatePEM: pem,
            icaPEM: credentials.icaPEM, revocations: credentials.revocations)
        // Check the whole set before it replaces the working one: key, certificate and CA must agree.
        let staging = pkiDirectory.deletingLastPathComponent().appendingPathComponent("pki-renewal")
        try DurableFile.ensureDirectory(staging, mode: 0o700)
        defer { try? FileManager.default.removeItem(at: staging) }
        try renewed.write(to: staging)
        let checked = try NodeCredentials.load(from: staging)
        guard checked.identity == credentials.identity else {
            throw SICChannelFailure("the renewed certificate is for \(checked.identity), not \(credentials.identity)")
        }
        try renewed.write(to: pkiDirectory)
        return renewed
    }
}

/// The server's answer on a node's channel was not what the node asked for.
public struct SICChannelFailure: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
