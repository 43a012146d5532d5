import Foundation
import ManagementModel
import NIOCore
import NIOPosix

/// The member's operator socket, DIR/cluster.sock (0600 in the agent's 0700 directory: the file's
/// permissions are the authority, as for the server's socket). One request per connection: a JSON
/// object of at most `requestBytesMax` bytes ended by a newline (or the end of input); one JSON answer.
public enum OperatorSocket {
    public static let fileName = "cluster.sock"
    public static let requestBytesMax = 16 * 1024
    public static let answerBytesMax = 4 * 1024 * 1024

    public static func path(in directory: URL) -> String { directory.appendingPathComponent(fileName).path }

    /// Listens until the returned channel is closed.
    public static func listen(directory: URL, answer: @escaping @Sendable (JSONValue) async -> JSONValue) async throws -> any Channel {
        let path = path(in: directory)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RequestHandler(answer: answer))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        chmod(path, 0o600)
        return channel
    }

    /// Sends one request to the member whose data directory is `directory`.
    public static func request(directory: URL, _ request: JSONValue) async throws -> JSONValue {
        let path = path(in: directory)
        guard FileManager.default.fileExists(atPath: path) else {
            throw OperatorSocketError("no cluster socket at \(path): is the gateway agent running with --data \(directory.path)?")
        }
        let (stream, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(AnswerCollector(continuation: continuation)) }
            }
            .connect(unixDomainSocketPath: path).get()
        var bytes = request.canonicalBytes
        bytes.append(0x0A)
        try await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
        var answer: [UInt8] = []
        for await chunk in stream {
            answer += chunk
            guard answer.count <= answerBytesMax else {
                try? await channel.close()
                throw OperatorSocketError("the answer is larger than \(answerBytesMax) bytes")
            }
        }
        return try JSONValue.parse(answer)
    }
}

public struct OperatorSocketError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let answer: @Sendable (JSONValue) async -> JSONValue
    var received: [UInt8] = []
    var answered = false

    init(answer: @escaping @Sendable (JSONValue) async -> JSONValue) { self.answer = answer }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        received += unwrapInboundIn(data).readableBytesView
        if let end = received.firstIndex(of: 0x0A) {
            respond(context, Array(received[..<end]))
        } else if received.count > OperatorSocket.requestBytesMax {
            respond(context, nil)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, !answered { respond(context, received) }
    }

    func channelInactive(context: ChannelHandlerContext) { answered = true }

    func respond(_ context: ChannelHandlerContext, _ request: [UInt8]?) {
        answered = true
        let channel = context.channel
        let answer = self.answer
        Task {
            let reply: JSONValue
            if let request, request.count <= OperatorSocket.requestBytesMax, let parsed = try? JSONValue.parse(request) {
                reply = await answer(parsed)
            } else {
                reply = ClusterOperator.failure("bad-request", "expected one JSON object of at most \(OperatorSocket.requestBytesMax) bytes")
            }
            var bytes = reply.canonicalBytes
            bytes.append(0x0A)
            try? await channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
            try? await channel.close()
        }
    }
}

final class AnswerCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncStream<[UInt8]>.Continuation

    init(continuation: AsyncStream<[UInt8]>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        continuation.yield(Array(unwrapInboundIn(data).readableBytesView))
    }

    func channelInactive(context: ChannelHandlerContext) { continuation.finish() }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish()
        context.close(promise: nil)
    }
}
