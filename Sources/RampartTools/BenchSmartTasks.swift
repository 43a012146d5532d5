import Foundation
import ManagementModel
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// `rampart bench smarttasks`: what After Publish web-request tasks cost a publish. Publish latency on a
/// server it starts, with 0, 1 and 10 enabled tasks posting to a receiver in this process that answers
/// at once, and with 10 tasks posting to one that accepts and never answers.
public struct BenchSmartTasksRun {
    let samples: Int
    let json: Bool
    let logDir: String?

    public init(samples: Int, json: Bool, logDir: String?) {
        self.samples = samples
        self.json = json
        self.logDir = logDir
    }

    public func run() async throws {
        BenchMachine.start()
        let receiver = try await BenchReceiver.start()
        let silent = try SilentListener()
        defer { silent.close() }
        do {
            try await BenchHARun.withPrimary(options: .init(objects: 0, samples: samples), logDirectory: logDir) { run in
                try await run.withPrimaryClient { client in
                    let sid = try await client.login()
                    var bench = SmartTaskBench(client: client, sid: sid, samples: samples, receiver: receiver)
                    for figure in try await bench.measureAll(answering: receiver.port, silent: silent.port) { figure.write(json: json) }
                    _ = try? await client.transport.call("logout", [:], sid: sid)
                }
            }
        } catch {
            try? await receiver.close()
            throw error
        }
        try await receiver.close()
    }
}

enum BenchSmartTasksLimits {
    static let warmUpPublishes = 20
    static let hosts = 20
    /// How long the answering receiver may take to see every delivery after the publishes.
    static let deliveryWaitMilliseconds = 300_000.0
    /// The web-request time-out of the tasks that post to the silent receiver.
    static let silentTimeoutSeconds = 5
}

struct SmartTaskBench {
    let client: BenchClient
    let sid: String
    let samples: Int
    let receiver: BenchReceiver
    var nextSecond = 0
    var tasks: [String] = []

    init(client: BenchClient, sid: String, samples: Int, receiver: BenchReceiver) {
        self.client = client
        self.sid = sid
        self.samples = samples
        self.receiver = receiver
    }

    mutating func measureAll(answering: Int, silent: Int) async throws -> [BenchFigure] {
        for index in 0..<BenchSmartTasksLimits.hosts { try await client.mustSucceed("add-host", BenchClient.host(800_000 + index), sid: sid) }
        try await client.mustSucceed("publish", [:], sid: sid)
        var figures: [BenchFigure] = []
        let baseline = try await measure(tasks: 0, port: answering, label: "no SmartTask")
        figures.append(baseline)
        for (count, port, label) in [
            (1, answering, "1 After Publish web-request task to a receiver that answers 200 at once"),
            (10, answering, "10 After Publish web-request tasks to a receiver that answers 200 at once"),
            (10, silent, "10 After Publish web-request tasks to a receiver that accepts and never answers (time-out 5 s, retries)"),
        ] {
            let before = receiver.count
            var figure = try await measure(tasks: count, port: port, label: label)
            let baselineP50 = baseline.percentile(0.5)
            figure.extra["p50_added_percent"] = .double(((figure.percentile(0.5) / max(baselineP50, 0.001) - 1) * 1000).rounded() / 10)
            if port == answering { figure.extra["deliveries_seen"] = .int(Int64(try await waitDeliveries(from: before, expected: count * samples))) }
            figures.append(figure)
        }
        try await setTasks(0, port: answering)
        return figures
    }

    /// `count` enabled After Publish tasks posting to 127.0.0.1:`port`, published; then the publishes timed.
    mutating func measure(tasks count: Int, port: Int, label: String) async throws -> BenchFigure {
        try await setTasks(count, port: port)
        for _ in 0..<BenchSmartTasksLimits.warmUpPublishes { _ = try await timedPublish() }
        var figure = BenchFigure(
            metric: "smarttasks_publish_ms_\(count)_tasks" + (port == receiver.port || count == 0 ? "" : "_silent_receiver"),
            note: "publish of one changed host (set-host, then publish timed alone, until its answer: durable, async mode), "
                + "\(samples) times after \(BenchSmartTasksLimits.warmUpPublishes) warm-up publishes, with \(label); one server, loopback")
        for _ in 0..<samples { figure.samplesMilliseconds.append(try await timedPublish()) }
        return figure
    }

    mutating func timedPublish() async throws -> Double {
        nextSecond += 1
        let host = BenchClient.host(800_000 + nextSecond % BenchSmartTasksLimits.hosts)
        try await client.mustSucceed("set-host", ["name": host["name"]!, "comments": .string("bench \(nextSecond)")], sid: sid)
        let started = monotonicMilliseconds()
        try await client.mustSucceed("publish", [:], sid: sid)
        return monotonicMilliseconds() - started
    }

    mutating func setTasks(_ count: Int, port: Int) async throws {
        for name in tasks { try await client.mustSucceed("delete-smart-task", ["name": .string(name)], sid: sid) }
        tasks = (0..<count).map { "bench-task-\(port)-\($0)" }
        let timeout = port == receiver.port ? 30 : BenchSmartTasksLimits.silentTimeoutSeconds
        for name in tasks {
            try await client.mustSucceed(
                "add-smart-task",
                [
                    "name": .string(name), "trigger": "After Publish", "enabled": true,
                    "action": ["send-web-request": ["url": .string("http://127.0.0.1:\(port)/hook"), "time-out": .int(Int64(timeout))]],
                ], sid: sid)
        }
        try await client.mustSucceed("publish", [:], sid: sid)
    }

    /// Waits (bounded) until the receiver saw `expected` more posts than `before`; returns how many it saw.
    func waitDeliveries(from before: Int, expected: Int) async throws -> Int {
        let started = monotonicMilliseconds()
        while receiver.count - before < expected, monotonicMilliseconds() - started < BenchSmartTasksLimits.deliveryWaitMilliseconds {
            try await Task.sleep(for: .milliseconds(100))
        }
        return receiver.count - before
    }
}

/// An HTTP receiver on 127.0.0.1 that answers every request 200 with an empty body and counts them.
final class BenchReceiver: Sendable {
    let channel: any Channel
    let port: Int
    private let received = Mutex(0)

    var count: Int { received.withLock { $0 } }

    private init(channel: any Channel, port: Int) {
        self.channel = channel
        self.port = port
    }

    static func start() async throws -> BenchReceiver {
        let counter = ReceiverCounter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(AnswerAtOnce(counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        guard let port = channel.localAddress?.port else { throw ToolFailure("the bench receiver has no port") }
        let receiver = BenchReceiver(channel: channel, port: port)
        counter.receiver.withLock { $0 = receiver }
        return receiver
    }

    func record() { received.withLock { $0 += 1 } }

    func close() async throws { try await channel.close() }
}

/// Lets the handlers reach the receiver made after the bootstrap.
final class ReceiverCounter: Sendable {
    let receiver = Mutex<BenchReceiver?>(nil)
    func record() { receiver.withLock { $0 }?.record() }
}

final class AnswerAtOnce: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let counter: ReceiverCounter

    init(counter: ReceiverCounter) { self.counter = counter }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        counter.record()
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: "0")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// A TCP listener on 127.0.0.1 that never accepts: connections complete in the kernel's backlog and
/// every request waits for an answer that never comes.
struct SilentListener {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ToolFailure("socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(descriptor, 4_096) == 0 else {
            Foundation.close(descriptor)
            throw ToolFailure("the silent listener could not bind or listen: errno \(errno)")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Foundation.close(descriptor) }
}
