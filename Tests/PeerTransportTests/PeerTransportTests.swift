import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing
import TrustCore

@testable import PeerTransport

@Suite("SIC transport on loopback")
struct PeerTransportLiveTests {
    @Test("frames flow both ways between verified peers, each side knowing the other's identity")
    func exchange() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let server = try pki.node(serverIdentity)
        let client = try pki.node(clientIdentity)
        try await withListener(pki: pki, identity: server, loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            let connector = try PeerConnector(
                identity: client, verifier: pki.verifier, now: { testNow }, eventLoopGroup: loops.client,
                logger: quietLogger)
            try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { connection in
                #expect(connection.peerIdentity == serverIdentity)
                #expect(connection.kind == .peer(serverIdentity))
                var inbound = connection.inbound.makeAsyncIterator()
                for index in 0..<3 {
                    try await connection.send(bytes: Array("frame \(index)".utf8))
                    let reply = try await inbound.next()
                    #expect(reply?.type == .message)
                    #expect(reply?.text == "echo:frame \(index)")
                }
                // An empty payload is a frame too.
                try await connection.send(bytes: [])
                #expect(try await inbound.next()?.text == "echo:")
            }
            guard case .connected(let kind) = await events.next() else {
                Issue.record("the server reported no connection")
                return
            }
            #expect(kind == .peer(clientIdentity))
            // The client closed: the server's inbound ended without an error.
            guard case .inboundEnded(let error) = await events.next() else {
                Issue.record("the server's connection did not end")
                return
            }
            #expect(error == nil)
        }
        try await loops.shutdown()
    }

    @Test("a frame over the receiver's limit closes the connection; both sides say why")
    func oversizedFrame() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        var small = PeerLimits()
        small.frameBytesMax = 1024
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops, limits: small) {
            port, stream in
            var events = stream.makeAsyncIterator()
            let connector = try PeerConnector(
                identity: try pki.node(clientIdentity), verifier: pki.verifier, now: { testNow },
                eventLoopGroup: loops.client, logger: quietLogger)
            let error = await #expect(throws: PeerTransportError.self) {
                try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { connection in
                    // At the limit (the echo adds 5 bytes).
                    try await connection.send(bytes: [UInt8](repeating: 7, count: 1024 - 5))
                    var inbound = connection.inbound.makeAsyncIterator()
                    #expect(try await inbound.next()?.payloadBytes.count == 1024)
                    try await connection.send(bytes: [UInt8](repeating: 7, count: 4096))
                    while try await inbound.next() != nil {}
                }
            }
            #expect(error?.code == .closedByPeer)
            #expect(error?.message.contains("limit is 1024 bytes") == true)
            await expectServerEnd(&events, with: .frameTooLarge)
        }
        try await loops.shutdown()
    }

    /// HA appends carry whole revisions: members of the group (both sides say so) exchange frames up to
    /// `groupFrameBytesMax`; any other verified peer, a gateway, stays at `frameBytesMax`.
    @Test("members of the group exchange frames up to the group's limit; other verified peers stay at the smaller one")
    func groupMembersGetTheLargerFrameLimit() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let limits = {
            var limits = PeerLimits()
            limits.frameBytesMax = 1024
            limits.groupFrameBytesMax = 8192
            return limits
        }()
        let members: PeerGroupMembership = { $0 == clientIdentity || $0 == serverIdentity }
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops, limits: limits, isGroupMember: members) {
            port, stream in
            var events = stream.makeAsyncIterator()
            let member = try PeerConnector(
                identity: try pki.node(clientIdentity), verifier: pki.verifier, limits: limits,
                isGroupMember: members, now: { testNow }, eventLoopGroup: loops.client, logger: quietLogger)
            try await member.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { connection in
                #expect(connection.frameBytesMax == 8192)
                var inbound = connection.inbound.makeAsyncIterator()
                // Both ways at the group's limit (the echo adds 5 bytes).
                try await connection.send(bytes: [UInt8](repeating: 7, count: 8192 - 5))
                #expect(try await inbound.next()?.payloadBytes.count == 8192)
                let error = await #expect(throws: PeerTransportError.self) {
                    try await connection.send(bytes: [UInt8](repeating: 7, count: 8193))
                }
                #expect(error?.code == .frameTooLarge)
            }
            guard case .connected = await events.next(), case .inboundEnded(nil) = await events.next() else {
                Issue.record("the member's connection did not end cleanly")
                return
            }
            // A verified peer the listener does not count as a member (a gateway) is held to 1024 bytes.
            let outsider = try PeerConnector(
                identity: try pki.node(clientIdentity), verifier: pki.verifier, limits: limits,
                isGroupMember: { _ in true }, now: { testNow }, eventLoopGroup: loops.client, logger: quietLogger)
            try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops, limits: limits) { port, stream in
                var events = stream.makeAsyncIterator()
                let error = await #expect(throws: PeerTransportError.self) {
                    try await outsider.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { connection in
                        try await connection.send(bytes: [UInt8](repeating: 7, count: 2048))
                        var inbound = connection.inbound.makeAsyncIterator()
                        while try await inbound.next() != nil {}
                    }
                }
                #expect(error?.code == .closedByPeer)
                #expect(error?.message.contains("limit is 1024 bytes") == true)
                await expectServerEnd(&events, with: .frameTooLarge)
            }
        }
        try await loops.shutdown()
    }

    @Test("a sender refuses a frame over its own limit without closing the connection")
    func oversizedFrameRefusedLocally() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let small = {
            var limits = PeerLimits()
            limits.frameBytesMax = 100
            return limits
        }()
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, _ in
            let connector = try PeerConnector(
                identity: try pki.node(clientIdentity), verifier: pki.verifier, limits: small, now: { testNow },
                eventLoopGroup: loops.client, logger: quietLogger)
            try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { connection in
                let error = await #expect(throws: PeerTransportError.self) {
                    try await connection.send(bytes: [UInt8](repeating: 1, count: 101))
                }
                #expect(error?.code == .frameTooLarge)
                let wrongType = await #expect(throws: PeerTransportError.self) {
                    try await connection.send(PeerFrame(type: .enrolment, bytes: [1]))
                }
                #expect(wrongType?.code == .protocolViolation)
                try await connection.send(bytes: [1, 2, 3])
                var inbound = connection.inbound.makeAsyncIterator()
                #expect(try await inbound.next()?.payloadBytes == Array("echo:".utf8) + [1, 2, 3])
            }
        }
        try await loops.shutdown()
    }

    @Test("bytes that are not a Rampart frame close the connection with a bad-magic error")
    func badMagic() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            let connector = try PeerConnector(
                identity: try pki.node(clientIdentity), verifier: pki.verifier, now: { testNow },
                eventLoopGroup: loops.client, logger: quietLogger)
            let error = await #expect(throws: PeerTransportError.self) {
                try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { connection in
                    try await writeRaw(ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n"), on: connection)
                    for try await _ in connection.inbound {}
                }
            }
            #expect(error?.code == .closedByPeer)
            #expect(error?.message.contains("bad magic") == true)
            await expectServerEnd(&events, with: .badMagic)
        }
        try await loops.shutdown()
    }

    @Test("a client certificate from another CA is refused; the server says otherCA")
    func clientFromOtherCA() async throws {
        let pki = try TestPKI()
        let stranger = try TestPKI(name: "stranger")
        let loops = Loops()
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            // The client trusts the real ICA, but holds a certificate from another one.
            let connector = try PeerConnector(
                identity: try stranger.node(clientIdentity), verifier: pki.verifier, now: { testNow },
                eventLoopGroup: loops.client, logger: quietLogger)
            let error = await #expect(throws: PeerTransportError.self) {
                try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { _ in
                    Issue.record("the connection should not be usable")
                }
            }
            #expect(error?.code == .certificateRefusedByPeer)
            #expect(error?.message.contains("the server refused our certificate") == true)
            guard case .handshakeFailed(let serverError) = await events.next() else {
                Issue.record("the server did not report the refusal")
                return
            }
            #expect(serverError.code == .peerCertificateRefused)
            guard case .otherCA(let issuer) = serverError.trustFailure else {
                Issue.record("expected otherCA, got \(String(describing: serverError.trustFailure))")
                return
            }
            #expect(issuer.contains("stranger"))
            #expect(serverError.message.contains("another CA"))
        }
        try await loops.shutdown()
    }

    @Test("an expired client certificate is refused; the server says when it expired")
    func expiredClient() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        // Issued 40 days before the verifier's `now`, valid for 30.
        let expired = try pki.node(clientIdentity, issuedAt: testNow.addingTimeInterval(-40 * 86_400), validityDays: 30)
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            let connector = try PeerConnector(
                identity: expired, verifier: pki.verifier, now: { testNow }, eventLoopGroup: loops.client,
                logger: quietLogger)
            let error = await #expect(throws: PeerTransportError.self) {
                try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { _ in }
            }
            #expect(error?.code == .certificateRefusedByPeer)
            guard case .handshakeFailed(let serverError) = await events.next() else {
                Issue.record("the server did not report the refusal")
                return
            }
            guard case .expired(let notValidAfter) = serverError.trustFailure else {
                Issue.record("expected expired, got \(String(describing: serverError.trustFailure))")
                return
            }
            #expect(notValidAfter < testNow)
        }
        try await loops.shutdown()
    }

    @Test("a server that is not the expected node is refused by the client, which says whose it is")
    func serverWithWrongIdentity() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let impostor = NodeIdentity(uid: "0f1e2d3c-0000-4000-8000-000000000099", name: "impostor")
        try await withListener(pki: pki, identity: try pki.node(impostor), loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            let connector = try PeerConnector(
                identity: try pki.node(clientIdentity), verifier: pki.verifier, now: { testNow },
                eventLoopGroup: loops.client, logger: quietLogger)
            let error = await #expect(throws: PeerTransportError.self) {
                try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { _ in }
            }
            #expect(error?.code == .peerCertificateRefused)
            #expect(error?.trustFailure == .wrongIdentity(expected: serverIdentity, found: impostor.description))
            #expect(error?.message.contains("we refused the server's certificate") == true)
            guard case .handshakeFailed(let serverError) = await events.next() else {
                Issue.record("the server did not report the failed handshake")
                return
            }
            #expect(serverError.code == .certificateRefusedByPeer)
            #expect(serverError.message.contains("the client refused our certificate"))
        }
        try await loops.shutdown()
    }

    @Test("a node without a certificate connects for enrolment: flagged, and limited to enrolment frames")
    func enrolment() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            try await PeerConnector.connectForEnrolment(
                host: "127.0.0.1", port: port, eventLoopGroup: loops.client, logger: quietLogger
            ) { connection in
                #expect(connection.kind == .enrolment)
                #expect(connection.peerIdentity == nil)
                #expect(connection.frameType == .enrolment)
                try await connection.send(bytes: Array("csr".utf8))
                var inbound = connection.inbound.makeAsyncIterator()
                let reply = try await inbound.next()
                #expect(reply?.type == .enrolment)
                #expect(reply?.text == "echo:csr")
                let refused = await #expect(throws: PeerTransportError.self) {
                    try await connection.send(PeerFrame(type: .message, bytes: [1]))
                }
                #expect(refused?.code == .protocolViolation)
            }
            guard case .connected(let kind) = await events.next() else {
                Issue.record("the server reported no connection")
                return
            }
            #expect(kind == .enrolment)
        }
        try await loops.shutdown()
    }

    @Test("the listener closes an enrolment connection that sends a non-enrolment frame")
    func enrolmentConnectionCarriesOnlyEnrolmentFrames() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            let error = await #expect(throws: PeerTransportError.self) {
                try await PeerConnector.connectForEnrolment(
                    host: "127.0.0.1", port: port, eventLoopGroup: loops.client, logger: quietLogger
                ) { connection in
                    // Bypass the local check, as a hostile client would.
                    var bytes = ByteBuffer()
                    try PeerFrameEncoder.write(PeerFrame(type: .message, bytes: [1]), into: &bytes, frameBytesMax: 16)
                    try await writeRaw(bytes, on: connection)
                    for try await _ in connection.inbound {}
                }
            }
            #expect(error?.code == .closedByPeer)
            #expect(error?.message.contains("only enrolment frames") == true)
            guard case .connected(.enrolment) = await events.next(),
                case .inboundEnded(let serverError) = await events.next()
            else {
                Issue.record("the server did not report the enrolment connection and its end")
                return
            }
            #expect(serverError?.code == .protocolViolation)
        }
        try await loops.shutdown()
    }

    @Test("a listener that does not accept enrolment refuses a client without a certificate")
    func enrolmentNotAccepted() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        try await withListener(
            pki: pki, identity: try pki.node(serverIdentity), loops: loops, acceptsEnrolment: false
        ) { port, stream in
            var events = stream.makeAsyncIterator()
            let error = await #expect(throws: PeerTransportError.self) {
                try await PeerConnector.connectForEnrolment(
                    host: "127.0.0.1", port: port, eventLoopGroup: loops.client, logger: quietLogger
                ) { _ in }
            }
            #expect(error?.code == .certificateRefusedByPeer)
            guard case .handshakeFailed(let serverError) = await events.next() else {
                Issue.record("the server did not report the refusal")
                return
            }
            #expect(serverError.code == .peerCertificateRefused, "\(serverError)")
            #expect(serverError.trustFailure == .noCertificate)
        }
        try await loops.shutdown()
    }

    @Test("a client that connects and says nothing is dropped at the handshake timeout")
    func handshakeTimeout() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        var limits = PeerLimits()
        limits.handshakeTimeoutMilliseconds = 200
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops, limits: limits) {
            port, stream in
            var events = stream.makeAsyncIterator()
            let silent = try await ClientBootstrap(group: loops.client).connect(host: "127.0.0.1", port: port).get()
            guard case .handshakeFailed(let serverError) = await events.next() else {
                Issue.record("the server did not report the timeout")
                return
            }
            #expect(serverError.code == .handshakeTimedOut)
            // The server closed the silent connection.
            try await silent.closeFuture.get()
        }
        try await loops.shutdown()
    }

    @Test("cancelling the listener closes open connections and run returns")
    func gracefulShutdown() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let server = try pki.node(serverIdentity)
        let listener = try await PeerListener.bind(
            PeerListenerConfiguration(
                host: "127.0.0.1", port: 0, identity: server, verifier: pki.verifier, now: { testNow }),
            eventLoopGroup: loops.server, logger: quietLogger)
        let connector = try PeerConnector(
            identity: try pki.node(clientIdentity), verifier: pki.verifier, now: { testNow },
            eventLoopGroup: loops.client, logger: quietLogger)
        let (connected, connectedContinuation) = AsyncStream.makeStream(of: Void.self)
        try await withTimeout {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await listener.run(onConnection: { connection in
                        connectedContinuation.yield()
                        // Waits for frames that never come: only cancellation ends it.
                        for try await _ in connection.inbound {}
                    })
                }
                try await connector.connect(host: "127.0.0.1", port: listener.port, expecting: serverIdentity) {
                    connection in
                    var iterator = connected.makeAsyncIterator()
                    _ = await iterator.next()
                    group.cancelAll()
                    // The server's shutdown ends our inbound stream (cleanly or with a closed error).
                    do {
                        for try await _ in connection.inbound {}
                    } catch let error as PeerTransportError {
                        #expect(error.code == .connectionClosed)
                    }
                }
                try await group.waitForAll()
            }
        }
        try await loops.shutdown()
    }
}

/// Writes `bytes` straight into TLS, under the frame encoder, as a client that does not follow the
/// protocol would.
func writeRaw(_ bytes: ByteBuffer, on connection: PeerConnection) async throws {
    let channel = connection.channel
    try await channel.eventLoop.submit {
        let context = try channel.pipeline.syncOperations.context(
            handlerType: ByteToMessageHandler<PeerFrameDecoder>.self)
        context.writeAndFlush(NIOAny(bytes), promise: nil)
    }.get()
}
