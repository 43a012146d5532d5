import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import TrustCore

@testable import PeerTransport

/// The SIC port's door for nodes without a certificate (enrolment) must not let anyone hold memory or
/// the connection slots enrolled peers need: small frames, a short deadline, a bounded share of slots.
@Suite("SIC listener before authentication")
struct UnauthenticatedConnectionTests {
    @Test("an enrolment connection cannot make the listener read a frame larger than an enrolment request")
    func frameLimitBeforeAuthentication() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let limit = PeerLimits.default.unauthenticatedFrameBytesMax
        // What the limit is made of: the largest request TrustCore decodes, a few KiB, far below a peer's.
        #expect(limit == TrustLimits.enrolmentRequestBytesMax)
        #expect(limit < 16 * 1024 && limit < PeerLimits.default.frameBytesMax)
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, stream in
            var events = stream.makeAsyncIterator()
            // A request at the limit is read.
            try await PeerConnector.connectForEnrolment(
                host: "127.0.0.1", port: port, eventLoopGroup: loops.client, logger: quietLogger
            ) { connection in
                try await connection.send(bytes: [UInt8](repeating: 1, count: limit))
                var inbound = connection.inbound.makeAsyncIterator()
                #expect(try await inbound.next()?.payloadBytes.count == limit + 5)
            }
            guard case .connected(.enrolment) = await events.next(), case .inboundEnded = await events.next() else {
                Issue.record("the server did not report the first enrolment connection")
                return
            }
            // A header announcing 16 MiB is refused as soon as it arrives, before any payload.
            let error = await #expect(throws: PeerTransportError.self) {
                try await PeerConnector.connectForEnrolment(
                    host: "127.0.0.1", port: port, eventLoopGroup: loops.client, logger: quietLogger
                ) { connection in
                    var header = ByteBuffer()
                    header.writeBytes(PeerFrame.magic)
                    header.writeInteger(PeerFrame.version)
                    header.writeInteger(PeerFrameType.enrolment.rawValue)
                    header.writeInteger(UInt32(16 * 1024 * 1024), endianness: .big)
                    try await writeRaw(header, on: connection)
                    for try await _ in connection.inbound {}
                }
            }
            #expect(error?.code == .closedByPeer)
            #expect(error?.message.contains("the limit is \(limit) bytes") == true)
            await expectServerEnd(&events, with: .frameTooLarge)
        }
        try await loops.shutdown()
    }

    @Test("a verified peer's frames may be larger than an enrolment request")
    func verifiedPeerKeepsTheFullFrameLimit() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let size = PeerLimits.default.unauthenticatedFrameBytesMax * 8
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops) { port, _ in
            let connector = try PeerConnector(
                identity: try pki.node(clientIdentity), verifier: pki.verifier, now: { testNow },
                eventLoopGroup: loops.client, logger: quietLogger)
            try await connector.connect(host: "127.0.0.1", port: port, expecting: serverIdentity) { connection in
                try await connection.send(bytes: [UInt8](repeating: 2, count: size))
                var inbound = connection.inbound.makeAsyncIterator()
                #expect(try await inbound.next()?.payloadBytes.count == size + 5)
            }
        }
        try await loops.shutdown()
    }

    @Test("the listener closes an enrolment connection that sends nothing, or only part of its request, in time")
    func idleAndSlowEnrolmentConnectionsAreClosed() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        var limits = PeerLimits()
        limits.unauthenticatedTimeoutMilliseconds = 5_000  // beyond a TLS handshake on a loaded machine
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops, limits: limits) {
            port, stream in
            var events = stream.makeAsyncIterator()
            for partial in [false, true] {
                try await PeerConnector.connectForEnrolment(
                    host: "127.0.0.1", port: port, eventLoopGroup: loops.client, logger: quietLogger
                ) { connection in
                    if partial {
                        var bytes = ByteBuffer()
                        try PeerFrameEncoder.write(
                            PeerFrame(type: .enrolment, bytes: [UInt8](repeating: 3, count: 100)), into: &bytes,
                            frameBytesMax: 1024)
                        // On a very loaded machine the deadline may already have closed the connection:
                        // the server's report below is what this test checks.
                        try? await writeRaw(bytes.getSlice(at: 0, length: 50)!, on: connection)
                    }
                    // The server ends the connection; this side only waits.
                    do {
                        for try await _ in connection.inbound {}
                    } catch let error as PeerTransportError {
                        #expect(error.code == .connectionClosed)
                    }
                }
                await expectServerEnd(&events, with: .unauthenticatedTimedOut)
            }
            // A TCP connection that never starts TLS is closed at the same deadline.
            let silent = try await ClientBootstrap(group: loops.client).connect(host: "127.0.0.1", port: port).get()
            guard case .handshakeFailed(let serverError) = await events.next() else {
                Issue.record("the server did not report the silent connection")
                return
            }
            #expect(serverError.code == .unauthenticatedTimedOut)
            try await silent.closeFuture.get()
        }
        try await loops.shutdown()
    }

    @Test("an enrolment connection carries one request: a second frame closes it")
    func oneRequestPerEnrolmentConnection() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let (received, receivedContinuation) = AsyncStream.makeStream(of: Void.self)
        // Reads without answering, as a server busy with the first request.
        let serve: @Sendable (PeerConnection) async throws -> Void = { connection in
            for try await _ in connection.inbound { receivedContinuation.yield() }
        }
        try await withListener(pki: pki, identity: try pki.node(serverIdentity), loops: loops, serve: serve) { port, stream in
            var events = stream.makeAsyncIterator()
            let error = await #expect(throws: PeerTransportError.self) {
                try await PeerConnector.connectForEnrolment(
                    host: "127.0.0.1", port: port, eventLoopGroup: loops.client, logger: quietLogger
                ) { connection in
                    try await connection.send(bytes: [1])
                    var receipts = received.makeAsyncIterator()
                    _ = await receipts.next()
                    try await connection.send(bytes: [2])
                    for try await _ in connection.inbound {}
                }
            }
            #expect(error?.code == .closedByPeer)
            #expect(error?.message.contains("carries one request") == true)
            await expectServerEnd(&events, with: .protocolViolation)
        }
        try await loops.shutdown()
    }

    @Test("idle connections fill only the unauthenticated share: an enrolled peer still connects, and they are closed after the timeout")
    func enrolledPeerConnectsWhileTheUnauthenticatedShareIsFull() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        var limits = PeerLimits()
        limits.connectionsMax = 8
        limits.unauthenticatedConnectionsMax = 4
        limits.unauthenticatedTimeoutMilliseconds = 10_000  // the idle connections must outlive their own setup on a loaded machine
        let (listener, connector) = try await listenerAndConnector(pki, loops, limits)
        try await withTimeout(seconds: 180) { [limits] in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listener.run(onConnection: echo) }
                // As many idle connections as the whole listener takes (before this fix they locked it):
                // enrolment connections that send no request, and TCP connections that never start TLS.
                var idle: [any Channel] = []
                for index in 0..<limits.connectionsMax {
                    idle.append(
                        index.isMultiple(of: 2)
                            ? try await idleEnrolmentConnection(port: listener.port, group: loops.client)
                            : try await ClientBootstrap(group: loops.client).connect(
                                host: "127.0.0.1", port: listener.port
                            ).get())
                    #expect(listener.slots.counts.unauthenticated <= limits.unauthenticatedConnectionsMax)
                }
                try await eventually {
                    closedCount(idle) >= limits.connectionsMax - limits.unauthenticatedConnectionsMax
                }
                // The enrolled peer finds a slot (the oldest idle connection makes room) and works.
                try await connector.connect(host: "127.0.0.1", port: listener.port, expecting: serverIdentity) {
                    connection in
                    try await connection.send(bytes: Array("hello".utf8))
                    var inbound = connection.inbound.makeAsyncIterator()
                    #expect(try await inbound.next()?.text == "echo:hello")
                    #expect(listener.slots.counts.unauthenticated < limits.unauthenticatedConnectionsMax)
                }
                // The rest are closed at the deadline.
                try await eventually { closedCount(idle) == limits.connectionsMax }
                try await eventually { listener.slots.counts.open == 0 }
                group.cancelAll()
                try await group.waitForAll()
            }
        }
        try await loops.shutdown()
    }

    @Test("a verified peer's connection is never closed to make room for unauthenticated ones")
    func verifiedPeersAreNotEvicted() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        var limits = PeerLimits()
        limits.connectionsMax = 4
        limits.unauthenticatedConnectionsMax = 2
        limits.unauthenticatedTimeoutMilliseconds = 60_000
        let (listener, connector) = try await listenerAndConnector(pki, loops, limits)
        try await withTimeout(seconds: 180) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await listener.run(onConnection: echo) }
                try await connector.connect(host: "127.0.0.1", port: listener.port, expecting: serverIdentity) {
                    connection in
                    var idle: [any Channel] = []
                    for _ in 0..<6 {
                        idle.append(
                            try await ClientBootstrap(group: loops.client).connect(
                                host: "127.0.0.1", port: listener.port
                            ).get())
                    }
                    try await eventually { closedCount(idle) == 4 }
                    try await connection.send(bytes: Array("still here".utf8))
                    var inbound = connection.inbound.makeAsyncIterator()
                    #expect(try await inbound.next()?.text == "echo:still here")
                    #expect(listener.slots.counts.open == 3)
                    #expect(listener.slots.counts.unauthenticated == 2)
                }
                group.cancelAll()
                try await group.waitForAll()
            }
        }
        try await loops.shutdown()
    }
    @Test("a verified peer holds a verified slot by the time it reads `ready`, however late the listener's tasks run")
    func verifiedBeforeReady() async throws {
        let pki = try TestPKI()
        let loops = Loops()
        let (listener, _) = try await listenerAndConnector(pki, loops, PeerLimits())
        let context = try PeerTLS.clientContext(identity: try pki.node(clientIdentity))
        let seen = Mutex<(open: Int, unauthenticated: Int)?>(nil)
        // Every thread of Swift concurrency is held while the peer connects (this one included), so the
        // listener's accept loop and serving tasks cannot run: whatever the peer sees at `ready` was done
        // on the event loops. (Admitted and marked from those tasks, the slot was unauthenticated then.)
        let holders = (1..<max(ProcessInfo.processInfo.activeProcessorCount, 2)).map { _ in
            Task.detached { usleep(1_500_000) }
        }
        let connected = ClientBootstrap(group: loops.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try NIOSSLClientHandler(
                            context: context, serverHostname: nil, customVerificationCallback: { _, promise in promise.succeed(.certificateVerified) }),
                        FirstReadSignal(channel.eventLoop) { seen.withLock { $0 = listener.slots.counts } },
                    ])
                }
            }
            .connect(host: "127.0.0.1", port: listener.port)
        usleep(1_500_000)
        for holder in holders { await holder.value }
        let channel = try await connected.get()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await listener.run(onConnection: { _ in }) }
            try await withTimeout(seconds: 60) {
                try await channel.pipeline.handler(type: FirstReadSignal.self).flatMap { $0.promise.futureResult }.get()
            }
            group.cancelAll()
        }
        let counts = try #require(seen.withLock { $0 }, "the peer read `ready`")
        #expect(counts.open == 1 && counts.unauthenticated == 0, "slots when the peer read ready: \(counts)")
        try? await channel.close()  // the stopped listener may have closed it already
        try await loops.shutdown()
    }
}

/// An enrolment connection (TLS without a client certificate, the server's `ready` received) that
/// never sends its request.
func idleEnrolmentConnection(port: Int, group: any EventLoopGroup) async throws -> any Channel {
    let context = try PeerTLS.clientContext(identity: nil)
    let channel = try await ClientBootstrap(group: group)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandlers([
                    try NIOSSLClientHandler(context: context, serverHostname: nil), FirstReadSignal(channel.eventLoop),
                ])
            }
        }
        .connect(host: "127.0.0.1", port: port).get()
    try await channel.pipeline.handler(type: FirstReadSignal.self).flatMap { $0.promise.futureResult }.get()
    return channel
}

/// Succeeds its promise when the first bytes arrive (the server's `ready`), after running `onFirstRead`
/// on the event loop.
final class FirstReadSignal: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Void>
    let onFirstRead: @Sendable () -> Void

    init(_ eventLoop: any EventLoop, onFirstRead: @escaping @Sendable () -> Void = {}) {
        promise = eventLoop.makePromise()
        self.onFirstRead = onFirstRead
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        onFirstRead()
        promise.succeed()
    }
    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}

/// How many of `channels` the other side has closed.
func closedCount(_ channels: [any Channel]) -> Int {
    channels.filter { !$0.isActive }.count
}

/// Polls `condition` every 20 ms until it holds; the caller's `withTimeout` bounds the wait.
func eventually(_ condition: () -> Bool) async throws {
    while !condition() { try await Task.sleep(for: .milliseconds(20)) }
}

/// A listener with `limits` on the server loops, and a connector of the enrolled client identity.
func listenerAndConnector(_ pki: TestPKI, _ loops: Loops, _ limits: PeerLimits) async throws -> (PeerListener, PeerConnector) {
    let listener = try await PeerListener.bind(
        PeerListenerConfiguration(
            host: "127.0.0.1", port: 0, identity: try pki.node(serverIdentity), verifier: pki.verifier,
            limits: limits, now: { testNow }),
        eventLoopGroup: loops.server, logger: quietLogger)
    let connector = try PeerConnector(
        identity: try pki.node(clientIdentity), verifier: pki.verifier, now: { testNow },
        eventLoopGroup: loops.client, logger: quietLogger)
    return (listener, connector)
}
