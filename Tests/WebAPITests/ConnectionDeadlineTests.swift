import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOEmbedded
import NIOTLS
import Testing

@testable import WebAPI

/// The Web API connection's deadlines, phase by phase, with time moved by the test.
@Suite("Web API connection deadlines")
struct ConnectionDeadlineTests {
    /// A channel with the two watches around a sink that stands for the HTTP codec.
    struct Connection {
        let channel = EmbeddedChannel()
        let loop: EmbeddedEventLoop

        init(limits: WebAPIConnectionLimits = .default, encrypted: Bool = true) throws {
            loop = channel.embeddedEventLoop
            let deadline = ConnectionDeadline(limits: limits, encrypted: encrypted)
            try channel.pipeline.syncOperations.addHandlers([
                ConnectionByteWatch(deadline), CodecStandIn(), ConnectionRequestWatch(deadline),
            ])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        var isOpen: Bool { channel.isActive }
        func advance(seconds: Double) { loop.advanceTime(by: .milliseconds(Int64(seconds * 1000))) }
        func tlsDone() { channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil)) }
        func bytes() throws { try channel.writeInbound(ByteBuffer(string: "P")) }
        func part(_ part: HTTPConnectionStateHandler.InboundIn) throws {
            try channel.pipeline.syncOperations.context(handlerType: CodecStandIn.self).fireChannelRead(NIOAny(part))
        }
        func head() throws { try part(.head(HTTPRequest(method: .post, scheme: nil, authority: nil, path: "/web_api/login"))) }
        func requestEnd() throws { try part(.end(nil)) }
        func responseEnd() throws {
            try channel.writeOutbound(HTTPConnectionStateHandler.OutboundIn.end(nil))
        }
    }

    @Test("no TLS handshake within its timeout closes the connection")
    func handshakeTimeout() throws {
        let connection = try Connection()
        connection.advance(seconds: 9.9)
        #expect(connection.isOpen)
        connection.advance(seconds: 0.2)
        #expect(!connection.isOpen)
    }

    @Test("plain HTTP (--metrics-listen): the first head is due within the head timeout from the connection's start; idle connections close")
    func plainConnection() throws {
        var limits = WebAPIConnectionLimits()
        limits.tlsHandshakeTimeoutMilliseconds = 2_000
        let silent = try Connection(limits: limits, encrypted: false)
        silent.advance(seconds: 9.9)
        #expect(silent.isOpen, "no handshake to wait for, so not its timeout")
        silent.advance(seconds: 0.2)
        #expect(!silent.isOpen, "the head timeout (10 s) runs from the connection's start")

        let idle = try Connection(encrypted: false)
        try idle.bytes()
        try idle.head()
        try idle.requestEnd()
        try idle.responseEnd()
        idle.advance(seconds: 74.9)
        #expect(idle.isOpen)
        idle.advance(seconds: 0.2)
        #expect(!idle.isOpen)
    }

    @Test("after TLS, the first request's head is due within the head timeout, however its bytes trickle in")
    func firstHeadTimeout() throws {
        let connection = try Connection()
        connection.advance(seconds: 5)
        connection.tlsDone()
        connection.advance(seconds: 6)
        try connection.bytes()  // one byte at a time does not extend it
        connection.advance(seconds: 3.9)
        try connection.bytes()
        #expect(connection.isOpen)
        connection.advance(seconds: 0.2)
        #expect(!connection.isOpen)
    }

    @Test("a request's body is due within its timeout; while the server answers there is no deadline")
    func bodyAndResponse() throws {
        let slowBody = try Connection()
        slowBody.tlsDone()
        try slowBody.head()
        slowBody.advance(seconds: 29.9)
        #expect(slowBody.isOpen)
        slowBody.advance(seconds: 0.2)
        #expect(!slowBody.isOpen)

        let working = try Connection()
        working.tlsDone()
        try working.head()
        try working.requestEnd()
        working.advance(seconds: 3600)
        #expect(working.isOpen)
    }

    @Test("a kept-alive connection closes after its idle timeout; the next request's head runs from its first byte")
    func keepAlive() throws {
        let connection = try Connection()
        connection.tlsDone()
        try connection.head()
        try connection.requestEnd()
        try connection.responseEnd()
        connection.advance(seconds: 74.9)
        #expect(connection.isOpen)
        try connection.bytes()
        connection.advance(seconds: 9.9)
        #expect(connection.isOpen)
        try connection.head()
        try connection.requestEnd()
        try connection.responseEnd()
        connection.advance(seconds: 75.1)
        #expect(!connection.isOpen)
    }

    @Test("a response sent before the request's body ended (413, say) leads to idle once the body has ended")
    func earlyResponse() throws {
        let connection = try Connection()
        connection.tlsDone()
        try connection.head()
        try connection.responseEnd()
        try connection.requestEnd()
        connection.advance(seconds: 75.1)
        #expect(!connection.isOpen)
    }

    @Test("a pipelined request keeps the connection out of idle until its own response ends")
    func pipelining() throws {
        let connection = try Connection()
        connection.tlsDone()
        try connection.head()
        try connection.requestEnd()
        try connection.head()
        try connection.requestEnd()
        try connection.responseEnd()
        connection.advance(seconds: 600)
        #expect(connection.isOpen)
        try connection.responseEnd()
        connection.advance(seconds: 75.1)
        #expect(!connection.isOpen)
    }
}

/// Takes the place of the HTTP codec: bytes stop here; the test injects request parts above it.
final class CodecStandIn: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
}
