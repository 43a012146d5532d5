import Foundation
import Testing
import TrustCore

@testable import PeerTransport

/// The transport with TrustCore's real verifier and node certificates, rather than the test stand-in.
@Suite("SIC transport with SICVerifier")
struct SICVerifierIntegrationTests {
    /// A node certificate issued by `ca` through TrustCore's SIC path, as `IssuedIdentity` for the transport.
    func node(_ identity: NodeIdentity, ca: InternalCA) throws -> (IssuedIdentity, serial: String) {
        let keys = NodeKeyPair.generate()
        let issued = try ca.issueNodeCertificate(
            publicKey: keys.publicKey, identity: identity, now: testNow.addingTimeInterval(-86_400))
        return (
            IssuedIdentity(
                certificatePEM: issued.certificatePEM, privateKeyPEM: keys.privateKeyPEM, chainPEM: ca.certificatePEM),
            issued.serial
        )
    }

    @Test("verified peers exchange frames; a revoked client is refused and the server says so")
    func exchangeAndRevocation() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let (server, _) = try node(serverIdentity, ca: pki.ca)
        let (client, clientSerial) = try node(clientIdentity, ca: pki.ca)
        let revokedIdentity = NodeIdentity(uid: "0f1e2d3c-0000-4000-8000-000000000003", name: "revoked")
        let (revoked, revokedSerial) = try node(revokedIdentity, ca: pki.ca)
        var revocations = RevocationList()
        try revocations.revoke(serial: revokedSerial, reason: .sicReset, now: testNow)
        let verifier = SICVerifier(icaCertificate: pki.ca.certificate, revocations: revocations)

        let (events, continuation) = AsyncStream.makeStream(of: ServerEvent.self)
        let listener = try await PeerListener.bind(
            PeerListenerConfiguration(
                host: "127.0.0.1", port: 0, identity: server, verifier: verifier, now: { testNow }),
            eventLoopGroup: loops.server, logger: quietLogger)
        try await withTimeout {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await listener.run(
                        onConnection: { connection in
                            continuation.yield(.connected(connection.kind))
                            try await echo(connection)
                        },
                        onHandshakeFailure: { continuation.yield(.handshakeFailed($0.error)) })
                }
                var serverEvents = events.makeAsyncIterator()

                let connector = try PeerConnector(
                    identity: client, verifier: verifier, now: { testNow }, eventLoopGroup: loops.client,
                    logger: quietLogger)
                try await connector.connect(host: "127.0.0.1", port: listener.port, expecting: serverIdentity) {
                    connection in
                    #expect(connection.peerIdentity?.uid == serverIdentity.uid)
                    try await connection.send(bytes: Array("hello".utf8))
                    var inbound = connection.inbound.makeAsyncIterator()
                    #expect(try await inbound.next()?.text == "echo:hello")
                }
                guard case .connected(.peer(let seen)) = await serverEvents.next() else {
                    Issue.record("the server reported no verified connection")
                    return
                }
                #expect(seen.uid == clientIdentity.uid)
                #expect(clientSerial != revokedSerial)

                let revokedConnector = try PeerConnector(
                    identity: revoked, verifier: verifier, now: { testNow }, eventLoopGroup: loops.client,
                    logger: quietLogger)
                let error = await #expect(throws: PeerTransportError.self) {
                    try await revokedConnector.connect(
                        host: "127.0.0.1", port: listener.port, expecting: serverIdentity
                    ) { _ in }
                }
                #expect(error?.code == .certificateRefusedByPeer)
                guard case .handshakeFailed(let serverError) = await serverEvents.next() else {
                    Issue.record("the server did not report the refusal")
                    return
                }
                #expect(serverError.trustFailure == .revoked(serial: revokedSerial))
                #expect(serverError.message.contains("revoked"))

                group.cancelAll()
                try await group.waitForAll()
            }
        }
        continuation.finish()
        try await loops.shutdown()
    }
}
