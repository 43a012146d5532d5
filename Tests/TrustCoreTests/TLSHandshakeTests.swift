import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@testable import TrustCore

/// Live TLS on loopback: the Web API's server configuration from `PKIDirectory`, and clients that trust
/// only `ica.pem`. BoringSSL checks validity against the real clock, so these tests use `Date()`.
@Suite("TLS handshake on loopback")
struct TLSHandshakeTests {
    /// Server side: sends back whatever it reads.
    final class EchoHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
    }

    /// Client side: writes "ping" (NIOSSL holds it until the handshake completes) and succeeds when the
    /// echo comes back, i.e. when the handshake worked both ways; fails with the first error.
    final class PingHandler: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let promise: EventLoopPromise<Void>
        var done = false

        init(promise: EventLoopPromise<Void>) { self.promise = promise }

        func channelActive(context: ChannelHandlerContext) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "ping")), promise: nil)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if unwrapInboundIn(data).readableBytesView.elementsEqual("ping".utf8), !done {
                done = true
                promise.succeed()
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !done {
                done = true
                promise.fail(error)
            }
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !done {
                done = true
                promise.fail(ChannelError.eof)
            }
            context.fireChannelInactive()
        }
    }

    /// Runs `body` with a fresh one-thread event loop group, then shuts the group down.
    func withEventLoopGroup(_ body: (MultiThreadedEventLoopGroup) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            try await body(group)
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try await group.shutdownGracefully()
    }

    /// Starts a TLS echo server on 127.0.0.1 with an ephemeral port, runs `body` with the port, then stops it.
    func withServer(
        _ configuration: TLSConfiguration, group: EventLoopGroup, _ body: (Int) async throws -> Void
    ) async throws {
        let context = try NIOSSLContext(configuration: configuration)
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body(try #require(server.localAddress?.port))
        } catch {
            try? await server.close()
            throw error
        }
        try await server.close()
    }

    /// Connects with `configuration`, exchanges one message, and returns the negotiated TLS version;
    /// throws the handshake's error.
    @discardableResult
    func exchange(
        port: Int, group: EventLoopGroup, configuration: TLSConfiguration, serverHostname: String?
    ) async throws -> TLSVersion? {
        let context = try NIOSSLContext(configuration: configuration)
        let promise = group.next().makePromise(of: Void.self)
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                    try channel.pipeline.syncOperations.addHandler(PingHandler(promise: promise))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        do {
            try await promise.futureResult.get()
            let version = try await channel.nioSSL_tlsVersion().get()
            try? await channel.close()
            return version
        } catch {
            try? await channel.close()
            throw error
        }
    }

    @Test("a client trusting only ica.pem connects by name and by IP address, with TLS 1.3 or 1.2")
    func handshakeSucceeds() async throws {
        try await withEventLoopGroup { group in
            try await withTemporaryDirectoryAsync { data in
                let pki = try PKIDirectory.loadOrCreate(
                    dataDirectory: data, serverName: "mgmt1", listenAddresses: ["127.0.0.1"], now: Date())
                let icaPEM = try String(contentsOfFile: pki.icaCertificatePath, encoding: .utf8)
                let client = try PKIDirectory.makeClientTLSConfiguration(icaCertificatePEM: icaPEM)
                try await withServer(try pki.makeServerTLSConfiguration(), group: group) { port in
                    let byName = try await exchange(
                        port: port, group: group, configuration: client, serverHostname: "localhost")
                    #expect(byName == .tlsv13)
                    // No SNI: NIOSSL checks the certificate against the peer's IP address, 127.0.0.1.
                    let byAddress = try await exchange(
                        port: port, group: group, configuration: client, serverHostname: nil)
                    #expect(byAddress == .tlsv13)
                    // A TLS 1.2-only client (an older Python) is still served.
                    var legacy = client
                    legacy.maximumTLSVersion = .tlsv12
                    let legacyVersion = try await exchange(
                        port: port, group: group, configuration: legacy, serverHostname: "mgmt1")
                    #expect(legacyVersion == .tlsv12)
                    // TLS 1.1 is refused.
                    var ancient = client
                    ancient.minimumTLSVersion = .tlsv1
                    ancient.maximumTLSVersion = .tlsv11
                    await #expect(throws: NIOSSLError.self) {
                        try await exchange(
                            port: port, group: group, configuration: ancient, serverHostname: "localhost")
                    }
                }
            }
        }
    }

    @Test("a client trusting another ICA (even of the same name) or the system roots fails the handshake")
    func otherTrustFails() async throws {
        try await withEventLoopGroup { group in
            try await withTemporaryDirectoryAsync { data in
                let pki = try PKIDirectory.loadOrCreate(
                    dataDirectory: data, serverName: "mgmt1", listenAddresses: ["127.0.0.1"], now: Date())
                let impostor = try InternalCA.create(name: "mgmt1", now: Date())
                let impostorTrust = try PKIDirectory.makeClientTLSConfiguration(
                    icaCertificatePEM: impostor.certificatePEM)
                try await withServer(try pki.makeServerTLSConfiguration(), group: group) { port in
                    await #expect(throws: NIOSSLError.self) {
                        try await exchange(
                            port: port, group: group, configuration: impostorTrust, serverHostname: "localhost")
                    }
                    await #expect(throws: NIOSSLError.self) {
                        try await exchange(
                            port: port, group: group, configuration: .makeClientConfiguration(),
                            serverHostname: "localhost")
                    }
                }
            }
        }
    }

    /// NIOSSL accepts a certificate whose IP SAN matches the connected address whatever name the client
    /// asked for, so the name check is shown with a certificate that has DNS names only.
    @Test("a client expecting another name fails the handshake")
    func otherNameFails() async throws {
        try await withEventLoopGroup { group in
            let ica = try InternalCA.create(name: "mgmt1", now: Date())
            let identity = try ica.issueTLSServerCertificate(
                commonName: "mgmt1", dnsNames: ["mgmt1.example"], ipAddresses: [], now: Date())
            let client = try PKIDirectory.makeClientTLSConfiguration(icaCertificatePEM: ica.certificatePEM)
            try await withServer(try identity.makeServerTLSConfiguration(), group: group) { port in
                try await exchange(port: port, group: group, configuration: client, serverHostname: "mgmt1.example")
                await #expect(throws: (any Error).self) {
                    try await exchange(port: port, group: group, configuration: client, serverHostname: "other.example")
                }
                await #expect(throws: (any Error).self) {
                    try await exchange(port: port, group: group, configuration: client, serverHostname: nil)
                }
            }
        }
    }
}
