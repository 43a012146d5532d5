import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The Web API's port is open to anyone who reaches it: connections that send nothing, or stop after
/// TLS, must not be held forever, and one address must not take every connection.
@Suite("End to end: Web API connection limits", .serialized, .endToEndSlot)
struct WebAPIConnectionEndToEndTests {
    @Test(
        "idle and silent connections are closed in time, one address is limited, a normal client works throughout",
        .timeLimit(.minutes(10)))
    func connectionsAreBounded() async throws {
        let scratch = try TemporaryDirectory()
        let data = scratch.path("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let server = try await ServerProcess.start(dataDirectory: data, logName: "server")
        defer { server.kill() }
        let limit = 64  // WebAPIConnectionLimits.default.connectionsPerAddressMax
        let handshakeSeconds = 10.0  // tlsHandshakeTimeoutMilliseconds, and the head timeout after TLS

        try await APIClient.with(caFile: "\(data)/pki/ica.pem", port: server.port) { client in
            let password = try String(contentsOfFile: "\(data)/initial-admin-password", encoding: .utf8)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let sid = try await client.login(user: "admin", password: password)
            // On its pooled connection, and on a new one (the server still accepts).
            func clientWorks() async throws {
                let reply = try await client.call("show-hosts", ["limit": 1], sid: sid)
                #expect(reply.status == 200, "\(reply.body)")
                try await APIClient.with(caFile: "\(data)/pki/ica.pem", port: server.port) { fresh in
                    let versions = try await fresh.call("show-api-versions", sid: sid)
                    #expect(versions.status == 200, "\(versions.body)")
                }
            }

            // One address (127.0.0.2) opens as many connections as it may, sending nothing.
            let opened = ContinuousClock.now
            var idle: [Int32] = []
            defer { for socket in idle { _ = close(socket) } }
            for _ in 0..<limit { idle.append(try RawTCP.connect(from: "127.0.0.2", port: server.port)) }
            try await clientWorks()
            // The next one from that address is closed at once; the server says why, once.
            let refused = try RawTCP.connect(from: "127.0.0.2", port: server.port)
            defer { close(refused) }
            #expect(try await pollUntil(seconds: 60) { RawTCP.isClosedByPeer(refused) })
            #expect(
                try await pollUntil(seconds: 60) {
                    server.log.contains("connections from one address refused: \(limit) are open")
                })
            try await clientWorks()

            // A client that completes TLS and then sends no request.
            let quiet = try await TLSOnlyClient.connect(port: server.port)
            try await clientWorks()

            // All of them are closed within the timeouts (with a generous margin for a slow machine).
            #expect(try await pollUntil(seconds: 120) { idle.allSatisfy(RawTCP.isClosedByPeer) })
            #expect(ContinuousClock.now - opened >= .seconds(handshakeSeconds * 0.9))
            #expect(try await pollUntil(seconds: 120) { !quiet.isActive })
            try await clientWorks()

            // Their slots are free again: that address connects and is not refused at once.
            let again = try RawTCP.connect(from: "127.0.0.2", port: server.port)
            defer { close(again) }
            try await clientWorks()
            #expect(!RawTCP.isClosedByPeer(again))
        }
        #expect(try await server.stop().status == 0)
    }
}

/// Plain TCP sockets from a chosen loopback source address (Linux routes all of 127/8 to lo).
enum RawTCP {
    static func connect(from source: String, port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(Network.streamSocketType), 0)
        guard fd >= 0 else { throw E2EFailure("socket() failed: \(errno)") }
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, source, &local.sin_addr) == 1 else { throw E2EFailure("bad address \(source)") }
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var remote = Network.loopback(port: port)
        let connected = withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, connected == 0 else {
            close(fd)
            throw E2EFailure("connect from \(source) to port \(port) failed: \(errno)")
        }
        return fd
    }

    /// Whether the server closed this connection (end of stream or reset); never blocks.
    static func isClosedByPeer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let count = recv(fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
        if count == 0 { return true }
        return count < 0 && errno != EAGAIN && errno != EWOULDBLOCK
    }
}

/// A TLS connection to the Web API that completes its handshake and then sends nothing.
enum TLSOnlyClient {
    static func connect(port: Int) async throws -> any Channel {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        try NIOSSLClientHandler(context: context, serverHostname: nil), HandshakeSignal(channel.eventLoop),
                    ])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.pipeline.handler(type: HandshakeSignal.self).flatMap { $0.done.futureResult }.get()
        return channel
    }
}

/// Succeeds when the TLS handshake completes.
final class HandshakeSignal: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let done: EventLoopPromise<Void>

    init(_ eventLoop: any EventLoop) { done = eventLoop.makePromise() }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted = event { done.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        done.fail(ChannelError.eof)
        context.fireChannelInactive()
    }
}
