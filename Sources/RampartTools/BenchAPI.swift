import Foundation
import Logging
import ManagementClient
import ManagementModel
import ManagementService
import Operations
import Store
import TrustCore

/// One measured figure, printed as one JSON object per line with --json.
struct BenchFigure {
    var metric: String
    var samplesMilliseconds: [Double] = []
    var rate: Double?
    var rateUnit: String?
    var extra: [String: JSONValue] = [:]
    var note: String
    /// The machine while this figure was measured: taken when the figure is made, right after its samples.
    var machine: JSONValue? = BenchMachine.sinceLastFigure()

    func percentile(_ p: Double) -> Double { Self.percentile(samplesMilliseconds, p) }

    static func percentile(_ values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int((Double(sorted.count - 1) * p).rounded()))]
    }

    var json: JSONValue {
        func ms(_ value: Double) -> JSONValue { .double((value * 1000).rounded() / 1000) }
        var fields: [String: JSONValue] = [
            "metric": .string(metric), "n": .int(Int64(samplesMilliseconds.count)),
            "p50_ms": ms(percentile(0.5)), "p99_ms": ms(percentile(0.99)),
            "mean_ms": ms(samplesMilliseconds.isEmpty ? 0 : samplesMilliseconds.reduce(0, +) / Double(samplesMilliseconds.count)),
            "max_ms": ms(samplesMilliseconds.max() ?? 0), "note": .string(note),
        ]
        if let rate, let rateUnit {
            fields["rate"] = .double((rate * 10).rounded() / 10)
            fields["rate_unit"] = .string(rateUnit)
        }
        fields.merge(extra) { _, new in new }
        if let machine { fields["machine"] = machine }
        return .object(fields)
    }

    var text: String {
        var line = "\(metric): n=\(samplesMilliseconds.count)"
        if let rate, let rateUnit { line += String(format: " rate=%.1f %@", rate, rateUnit) }
        if !samplesMilliseconds.isEmpty {
            line += String(format: " p50=%.3fms p99=%.3fms max=%.3fms", percentile(0.5), percentile(0.99), samplesMilliseconds.max() ?? 0)
        }
        for key in extra.keys.sorted() { line += " \(key)=\(extra[key]!.scalarText ?? extra[key]!.canonicalString)" }
        if let machine { line += " machine=\(machine.canonicalString)" }
        return line + "\n    (" + note + ")"
    }
}

/// Milliseconds on the monotonic clock since the benchmark started: figures are intervals between two readings.
func monotonicMilliseconds() -> Double {
    let elapsed = ContinuousClock.now - benchmarkStart
    return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
}

private let benchmarkStart = ContinuousClock.now

extension BenchFigure {
    /// One line on standard output: a JSON object (`--json`) or the text form.
    func write(json: Bool) {
        FileHandle.standardOutput.write(Data(((json ? self.json.canonicalString : text) + "\n").utf8))
    }
}

/// `rampart bench api`: Web API throughput, publish latency and server memory, against a server it starts.
public struct BenchAPIRun {
    let json: Bool
    /// Hosts created in each throughput run.
    let objects: Int
    /// One-change publishes to time.
    let publishSamples: Int
    /// Hosts in the database when memory is read (0 skips the memory figure).
    let memoryObjects: Int

    public init(json: Bool, objects: Int, publishSamples: Int, memoryObjects: Int) {
        self.json = json
        self.objects = objects
        self.publishSamples = publishSamples
        self.memoryObjects = memoryObjects
    }

    public func run() async throws {
        BenchMachine.start()
        let children = ChildProcessSupervisor(stopGrace: .milliseconds(Int64(BenchHALimits.stopTimeoutMilliseconds)))
        let server = try await BenchServer.start(children: children)
        let result: Result<Void, any Error>
        do { result = .success(try await measure(server)) } catch { result = .failure(error) }
        await children.stopAll()
        try? FileManager.default.removeItem(atPath: server.directory)
        try result.get()
    }

    func measure(_ server: BenchServer) async throws {
        let endpoint = MgmtEndpoint(target: .https(host: "127.0.0.1", port: server.port), caFile: server.caFile, unsafe: false, apiVersion: nil)
        let figures = try await MgmtTransport.with(endpoint) { transport in
            let client = BenchClient(transport: transport, password: server.password)
            var figures: [BenchFigure] = []
            var next = 0
            for sessions in [1, 4] {
                let cpuBefore = server.cpuSeconds()
                var figure = try await client.createObjects(total: objects, sessions: sessions, firstIndex: next)
                figure.extra["server_cpu_ms_per_object"] = .double(((server.cpuSeconds() - cpuBefore) * 1000 / Double(objects) * 1000).rounded() / 1000)
                figures.append(figure)
                next += objects
                report(figures.last!)
            }
            figures.append(try await client.publishLatency(samples: publishSamples, firstIndex: next))
            next += publishSamples
            report(figures.last!)
            if memoryObjects > next {
                _ = try await client.createObjects(total: memoryObjects - next, sessions: 4, firstIndex: next)
                figures.append(
                    BenchFigure(
                        metric: "server_resident_memory",
                        extra: [
                            "objects": .int(Int64(memoryObjects)), "rss_mb": .double(server.residentMegabytes().rounded()),
                        ], note: "VmRSS of the server process after \(memoryObjects) hosts were created and published through the API"))
                report(figures.last!)
            }
            return figures
        }
        _ = figures
    }

    func report(_ figure: BenchFigure) { figure.write(json: json) }
}

/// A `rampart server` child process on a temporary directory.
struct BenchServer: Sendable {
    let child: ChildProcess
    let directory: String
    let port: Int
    let password: String

    var process: Process { child.process }
    /// The CA of its API certificate (a primary's: the Internal CA).
    var caFile: String { directory + "/" + DataDirectoryLayout.icaCertificate }

    static func start(children: ChildProcessSupervisor) async throws -> BenchServer {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let password = "bench-" + UUID().uuidString
        let passwordFile = directory + "-admin-password"
        _ = FileManager.default.createFile(atPath: passwordFile, contents: Data(password.utf8), attributes: [.posixPermissions: 0o600])
        let child = try children.start(
            name: "server",
            arguments: [
                "server", "--data", directory, "--api-port", "0", "--sic-port", "0",
                "--admin-password-file", passwordFile, "--log-level", "warning",
            ],
            output: .inherit)
        for _ in 0..<3_000 {
            if let settings = try? NodeSettings.load(dataDirectory: directory) {
                try? FileManager.default.removeItem(atPath: passwordFile)
                return BenchServer(child: child, directory: directory, port: settings.apiPort, password: password)
            }
            guard child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        await children.stop(child)
        throw ToolFailure("the benchmark server did not start; see its output above", isUsage: true)
    }

    func residentMegabytes() -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return -1 }
        return kilobytes / 1024
    }

    /// CPU time (user + system) the server process has used so far.
    func cpuSeconds() -> Double { Double(Self.cpuMilliseconds(process.processIdentifier)) / 1000 }

    /// User and system CPU time process `pid` has used so far (/proc/PID/stat), in milliseconds.
    static func cpuMilliseconds(_ pid: Int32) -> Int64 {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let afterName = stat.range(of: ") ", options: .backwards)
        else { return 0 }
        let fields = stat[afterName.upperBound...].split(separator: " ")
        guard fields.count > 12, let user = Int64(fields[11]), let system = Int64(fields[12]) else { return 0 }
        return (user + system) * 1000 / Int64(sysconf(Int32(_SC_CLK_TCK)))
    }

}

struct BenchClient: Sendable {
    let transport: MgmtTransport
    let password: String

    func login() async throws -> String {
        let reply = try await transport.call("login", ["user": "admin", "password": .string(password)], sid: nil)
        guard reply.ok, let sid = reply.body["sid"]?.stringValue else { throw ToolFailure("login failed: \(reply.message)", isUsage: true) }
        return sid
    }

    func mustSucceed(_ command: String, _ body: [String: JSONValue], sid: String) async throws {
        let reply = try await transport.call(command, body, sid: sid)
        guard reply.ok else { throw ToolFailure("\(command) failed: \(reply.code): \(reply.message)", isUsage: true) }
    }

    static func host(_ index: Int) -> [String: JSONValue] {
        ["name": .string("bench-host-\(index)"), "ip-address": .string("10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)")]
    }

    /// Creates hosts from `sessions` concurrent sessions, each publishing every 1,000 changes.
    func createObjects(total: Int, sessions: Int, firstIndex: Int) async throws -> BenchFigure {
        let started = monotonicMilliseconds()
        let samples = try await withThrowingTaskGroup(of: [Double].self) { group in
            for worker in 0..<sessions {
                group.addTask {
                    let sid = try await login()
                    var samples: [Double] = []
                    var pending = 0
                    for index in stride(from: firstIndex + worker, to: firstIndex + total, by: sessions) {
                        let before = monotonicMilliseconds()
                        try await mustSucceed("add-host", BenchClient.host(index), sid: sid)
                        samples.append(monotonicMilliseconds() - before)
                        pending += 1
                        if pending == 1_000 {
                            try await mustSucceed("publish", [:], sid: sid)
                            pending = 0
                        }
                    }
                    try await mustSucceed("publish", [:], sid: sid)
                    try await mustSucceed("logout", [:], sid: sid)
                    return samples
                }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        let seconds = (monotonicMilliseconds() - started) / 1000
        return BenchFigure(
            metric: "api_objects_created_\(sessions)_session\(sessions == 1 ? "" : "s")", samplesMilliseconds: samples,
            rate: Double(total) / seconds, rateUnit: "objects/s",
            note:
                "add-host over HTTPS (one connection pool, TLS to loopback) from \(sessions) session(s), publish every 1,000; latency per add-host; rate includes the publishes"
        )
    }

    /// Times publish of a one-change session: the call returns once the revision is durable.
    func publishLatency(samples count: Int, firstIndex: Int) async throws -> BenchFigure {
        let sid = try await login()
        var samples: [Double] = []
        for index in firstIndex..<(firstIndex + count) {
            try await mustSucceed("add-host", BenchClient.host(index), sid: sid)
            let before = monotonicMilliseconds()
            try await mustSucceed("publish", [:], sid: sid)
            samples.append(monotonicMilliseconds() - before)
        }
        try await mustSucceed("logout", [:], sid: sid)
        return BenchFigure(
            metric: "publish_latency_1_change", samplesMilliseconds: samples,
            note: "HTTPS publish call for a 1-change session, measured at the client; acknowledged after the revision is committed with synchronous=FULL")
    }
}

/// `rampart bench service`: the management service alone, in process: what a request costs without HTTP and TLS.
public struct BenchServiceRun {
    let json: Bool
    /// Hosts to create.
    let objects: Int

    public init(json: Bool, objects: Int) {
        self.json = json
        self.objects = objects
    }

    public func run() async throws {
        BenchMachine.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        let store = try ManagementStore(path: directory.appendingPathComponent(DataDirectoryLayout.database).path)
        let service = try ManagementService(store: store, identity: ServerIdentity(name: "bench", ipAddress: "127.0.0.1", apiPort: 0), logger: logger)
        _ = try await service.initializeIfEmpty(adminPassword: "bench-password")
        let client = ClientInfo(address: "127.0.0.1", isLocalSocket: false)
        let sid = await service.handle(command: "login", body: ["user": "admin", "password": "bench-password"], sid: nil, client: client).body["sid"]?
            .stringValue
        var samples: [Double] = []
        let started = monotonicMilliseconds()
        for index in 0..<objects {
            let before = monotonicMilliseconds()
            let reply = await service.handle(command: "add-host", body: .object(BenchClient.host(index)), sid: sid, client: client)
            samples.append(monotonicMilliseconds() - before)
            guard reply.status == 200 else { throw ToolFailure("add-host failed: \(reply.body.canonicalString)", isUsage: true) }
            if index % 1_000 == 999 { _ = await service.handle(command: "publish", body: [:], sid: sid, client: client) }
        }
        let seconds = (monotonicMilliseconds() - started) / 1000
        let figure = BenchFigure(
            metric: "service_objects_created_1_session", samplesMilliseconds: samples, rate: Double(objects) / seconds,
            rateUnit: "objects/s", note: "ManagementService.handle(add-host) called in process, publish every 1,000")
        figure.write(json: json)
    }
}
