import Foundation
import ManagementService
import ManagementModel
import PeerTransport
import TrustCore

/// Messages on an enrolled node's SIC channel (JSON in `message` frames): a test, and certificate
/// renewal over the trusted channel. Sync will add its own types here.
enum SICChannelMessage {
    static func ping() -> JSONValue { ["type": "ping"] }
    static func pong(server: String) -> JSONValue { ["type": "pong", "server": .string(server)] }
    static func renew(csrDER: [UInt8]) -> JSONValue { ["type": "renew", "csr": .string(Data(csrDER).base64EncodedString())] }
    static func renewed(certificatePEM: String) -> JSONValue { ["type": "renewed", "certificate": .string(certificatePEM)] }
    static func error(_ message: String) -> JSONValue { ["type": "error", "message": .string(message)] }
    /// A management server asks for the Internal CA's state (it joined, or starts without the key).
    static func icaStateRequest() -> JSONValue { ["type": "ica-state"] }
    static func icaState(_ state: ICAStateForServer) -> JSONValue {
        ["type": "ica-state", "certificate": .string(state.certificatePEM), "key": .string(state.privateKeyPEM),
         "revocations": .string(state.revocationsText), "addresses": .array(state.addresses.map(JSONValue.string))]
    }

    static func frame(_ value: JSONValue) -> PeerFrame { PeerFrame(type: .message, bytes: value.canonicalBytes) }
    static func decode(_ frame: PeerFrame) -> JSONValue? { try? JSONValue.parse(frame.payloadBytes) }
}

/// The node side of the channel: connect with the node's credentials, send one message, read one.
struct SICNodeChannel {
    let credentials: NodeCredentials
    let host: String
    let port: Int

    func exchange(_ message: JSONValue) async throws -> (server: NodeIdentity?, reply: JSONValue) {
        let connector = try PeerConnector(identity: credentials.issuedIdentity, verifier: try credentials.makeVerifier())
        return try await connector.connect(host: host, port: port, expecting: nil) { connection in
            try await connection.send(SICChannelMessage.frame(message))
            for try await frame in connection.inbound {
                guard let reply = SICChannelMessage.decode(frame) else { throw CommandFailure("the server answered something that is not a SIC message") }
                return (connection.peerIdentity, reply)
            }
            throw CommandFailure("the server closed the channel without answering")
        }
    }

    /// Renews the node's certificate: a new key and CSR, the server's new certificate checked
    /// against the ICA and the new key, written in place of the old.
    func renew(pkiDirectory: URL) async throws -> NodeCredentials {
        let keyPair = NodeKeyPair.generate()
        let (_, reply) = try await exchange(SICChannelMessage.renew(csrDER: try keyPair.makeCSR(identity: credentials.identity)))
        guard reply["type"]?.stringValue == "renewed", let pem = reply["certificate"]?.stringValue else {
            throw CommandFailure("renewal refused: \(reply["message"]?.stringValue ?? reply.canonicalString)")
        }
        let renewed = NodeCredentials(identity: credentials.identity, privateKeyPEM: keyPair.privateKeyPEM, certificatePEM: pem,
                                      icaPEM: credentials.icaPEM, revocations: credentials.revocations)
        // Check the whole set before it replaces the working one: key, certificate and CA must agree.
        let staging = pkiDirectory.deletingLastPathComponent().appendingPathComponent("pki-renewal")
        try DurableFile.ensureDirectory(staging, mode: 0o700)
        defer { try? FileManager.default.removeItem(at: staging) }
        try renewed.write(to: staging)
        let checked = try NodeCredentials.load(from: staging)
        guard checked.identity == credentials.identity else { throw CommandFailure("the renewed certificate is for \(checked.identity), not \(credentials.identity)") }
        try renewed.write(to: pkiDirectory)
        return renewed
    }
}
