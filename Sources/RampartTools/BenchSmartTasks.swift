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
    static let warmUpPublishes = 5
    static let hosts = 20
    /// Every configuration is timed in this many blocks, the configurations taking turns: a machine
    /// that drifts (another process, the disk's cache) weighs on every figure alike.
    static let rounds = 5
    /// How long the answering receiver may take to see every delivery of a block.
    static let deliveryWaitMilliseconds = 120_000.0
    /// The web-request time-out of the tasks that post to the silent receiver.
    static let silentTimeoutSeconds = 5
}

struct SmartTaskBench {
    /// One measured configuration: how many tasks post where.
    struct Configuration {
        var tasks: Int
        var port: Int
        var answering: Bool
        var label: String
        var metric: String { "smarttasks_publish_ms_\(tasks)_tasks" + (answering ? "" : "_silent_receiver") }
    }

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
        let configurations = [
            Configuration(tasks: 0, port: answering, answering: true, label: "no SmartTask"),
            Configuration(tasks: 1, port: answering, answering: true, label: "1 After Publish web-request task to a receiver that answers 200 at once"),
            Configuration(
                tasks: 10, port: answering, answering: true, label: "10 After Publish web-request tasks to a receiver that answers 200 at once"),
            Configuration(
                tasks: 10, port: silent, answering: false,
                label: "10 After Publish web-request tasks to a receiver that accepts and never answers (time-out 5 s, retries)"),
        ]
        var samplesByConfiguration = Array(repeating: [Double](), count: configurations.count)
        var deliveriesSeen = Array(repeating: 0, count: configurations.count)
        var deliveriesExpected = Array(repeating: 0, count: configurations.count)
        for round in 0..<BenchSmartTasksLimits.rounds {
            let perBlock = samples / BenchSmartTasksLimits.rounds + (round < samples % BenchSmartTasksLimits.rounds ? 1 : 0)
            for (index, configuration) in configurations.enumerated() {
                let before = receiver.count
                try await setTasks(
                    configuration.tasks, port: configuration.port, timeoutSeconds: configuration.answering ? 30 : BenchSmartTasksLimits.silentTimeoutSeconds)
                samplesByConfiguration[index] += try await timedPublishes(perBlock)
                guard configuration.answering, configuration.tasks > 0 else { continue }
                // Every delivery of the block made before the next block starts: none is skipped as the
                // tasks are deleted, and none weighs on another configuration's publishes.
                // The publish that added the tasks fires them too.
                let expected = configuration.tasks * (1 + BenchSmartTasksLimits.warmUpPublishes + perBlock)
                deliveriesExpected[index] += expected
                deliveriesSeen[index] += try await waitDeliveries(from: before, expected: expected)
            }
        }
        try await setTasks(0, port: answering, timeoutSeconds: 30)
        return figures(configurations, samplesByConfiguration, deliveriesSeen: deliveriesSeen, deliveriesExpected: deliveriesExpected)
    }

    func figures(_ configurations: [Configuration], _ samples: [[Double]], deliveriesSeen: [Int], deliveriesExpected: [Int]) -> [BenchFigure] {
        let baselineP50 = BenchFigure.percentile(samples[0], 0.5)
        return configurations.enumerated().map { index, configuration in
            var figure = BenchFigure(
                metric: configuration.metric,
                note: "publish of one changed host (set-host, then publish timed alone, until its answer: durable, async mode), \(samples[index].count) "
                    + "times in \(BenchSmartTasksLimits.rounds) blocks taking turns with the other configurations (each block after "
                    + "\(BenchSmartTasksLimits.warmUpPublishes) warm-up publishes), with \(configuration.label); one server, loopback")
            figure.samplesMilliseconds = samples[index]
            if index > 0 {
                figure.extra["p50_added_percent"] = .double(((figure.percentile(0.5) / max(baselineP50, 0.001) - 1) * 1000).rounded() / 10)
            }
            if configuration.answering, configuration.tasks > 0 {
                figure.extra["deliveries_seen"] = .int(Int64(deliveriesSeen[index]))
                figure.extra["deliveries_expected"] = .int(Int64(deliveriesExpected[index]))
            }
            return figure
        }
    }

    /// Warm-up publishes, then `count` timed ones.
    mutating func timedPublishes(_ count: Int) async throws -> [Double] {
        for _ in 0..<BenchSmartTasksLimits.warmUpPublishes { _ = try await timedPublish() }
        var samples: [Double] = []
        for _ in 0..<count { samples.append(try await timedPublish()) }
        return samples
    }

    mutating func timedPublish() async throws -> Double {
        nextSecond += 1
        let host = BenchClient.host(800_000 + nextSecond % BenchSmartTasksLimits.hosts)
        try await client.mustSucceed("set-host", ["name": host["name"]!, "comments": .string("bench \(nextSecond)")], sid: sid)
        let started = monotonicMilliseconds()
        try await client.mustSucceed("publish", [:], sid: sid)
        return monotonicMilliseconds() - started
    }

    /// `count` enabled After Publish tasks posting to 127.0.0.1:`port`, published (the previous ones deleted).
    mutating func setTasks(_ count: Int, port: Int, timeoutSeconds: Int) async throws {
        for name in tasks { try await client.mustSucceed("delete-smart-task", ["name": .string(name)], sid: sid) }
        tasks = (0..<count).map { "bench-task-\(port)-\($0)" }
        for name in tasks {
            try await client.mustSucceed(
                "add-smart-task",
                [
                    "name": .string(name), "trigger": "After Publish", "enabled": true,
                    "action": ["send-web-request": ["url": .string("http://127.0.0.1:\(port)/hook"), "time-out": .int(Int64(timeoutSeconds))]],
                ], sid: sid)
        }
        try await client.mustSucceed("publish", [:], sid: sid)
    }

    /// Waits (bounded) until the receiver saw `expected` more posts than `before`; returns how many it saw.
    func waitDeliveries(from before: Int, expected: Int) async throws -> Int {
        let started = monotonicMilliseconds()
        while receiver.count - before < expected, monotonicMilliseconds() - started < BenchSmartTasksLimits.deliveryWaitMilliseconds {
            try await Task.sleep(for: .milliseconds(50))
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
