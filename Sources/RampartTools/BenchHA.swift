import Foundation
import HARuntime
import ManagementClient
import ManagementModel
import NIOCore
import NIOPosix
import Operations
import Store
import Synchronization
import TrustCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `rampart bench ha`: Management HA measured on real processes on loopback — a primary and
/// secondaries started from this executable on temporary data directories.
///
/// Each figure is one function `(inout BenchHARun) async throws -> BenchFigure` listed in
/// `BenchHAFigures.all`; a figure asks `BenchHARun` for what it needs (a synchronized standby,
/// published hosts, a fresh secondary) and leaves the group running for the next figure.
public struct BenchHAMeasure {
    let json: Bool
    /// Hosts published on the primary before the full sync is timed.
    let objects: Int
    /// One-change publishes to time for ha_publish_visible_async.
    let samples: Int
    /// The figures to run (empty: all, in order).
    let figures: [String]
    /// Keep the servers' logs in this directory (default: logs are removed with the data).
    let logDir: String?

    public init(json: Bool, objects: Int, samples: Int, figures: [String], logDir: String?) {
        self.json = json
        self.objects = objects
        self.samples = samples
        self.figures = figures
        self.logDir = logDir
    }

    public func run() async throws {
        BenchMachine.start()
        // The client's own tasks run where its sockets are (as the server's do): its thread hops are
        // not the servers' latency.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        try await BenchHARun.withPrimary(options: .init(objects: objects, samples: samples), logDirectory: logDir) { run in
            for (name, measure) in BenchHAFigures.all where figures.isEmpty || figures.contains(name) {
                try await measure(&run).write(json: json)
            }
        }
    }
}

// MARK: - Figures

public enum BenchHAFigures {
    /// Every figure, in the order they run. Add a figure here: one name, one function.
    static var all: [(name: String, run: (inout BenchHARun) async throws -> BenchFigure)] {
        [
            ("ha_publish_visible_async", publishVisibleAsync),
            ("ha_publish_sync", publishSync),
            ("ha_switchover", switchover),
            ("ha_full_sync", fullSync),
        ]
    }

    public static var names: [String] { all.map(\.name) }

    /// Publish of one change on the active → committed (visible to readers) on the standby. The standby
    /// records when it committed each replicated revision on CLOCK_MONOTONIC, the clock every process
    /// of the machine shares; the client reads the clock just before it sends publish. The standby is
    /// then asked (show-ha-status, 1 ms apart) until it reports that revision: polling decides nothing
    /// about the figure, so it can be gentle on a 2-core machine.
    static func publishVisibleAsync(_ run: inout BenchHARun) async throws -> BenchFigure {
        let standby = try await run.standby("mgmt-b")
        let hosts = run.takeHostIndexes(run.options.samples + BenchHALimits.warmupSamples)
        let primary = run.primary!
        let result = try await BenchHARun.withClients(primary, standby, password: run.password) { active, reader in
            let activeSID = try await active.login()
            let readerSID = try await reader.login()
            var visible: [Double] = []
            var acknowledged: [Double] = []
            var visibleBeforeAck = 0
            for (sample, index) in hosts.enumerated() {
                try await active.mustSucceed("add-host", BenchClient.host(index), sid: activeSID)
                let started = HARuntime.monotonicNanoseconds()
                let reply = try await active.transport.call("publish", [:], sid: activeSID)
                let ackAt = HARuntime.monotonicNanoseconds()
                guard reply.ok, let task = reply.body["task-id"] else { throw ToolFailure("publish: \(reply.code): \(reply.message)") }
                let number = try await publishedRevision(active, task: task, sid: activeSID)
                // Nil when a later revision (a system change) overtook it before it was read: no sample.
                guard let appliedAt = try await appliedAt(reader, revision: number, sid: readerSID),
                    sample >= BenchHALimits.warmupSamples
                else { continue }
                visible.append(Double(Int64(appliedAt) - Int64(started)) / 1_000_000)
                acknowledged.append(Double(ackAt - started) / 1_000_000)
                if appliedAt <= ackAt { visibleBeforeAck += 1 }
            }
            _ = try? await active.transport.call("logout", [:], sid: activeSID)
            _ = try? await reader.transport.call("logout", [:], sid: readerSID)
            return (visible, acknowledged, visibleBeforeAck)
        }
        let (visible, acknowledged, visibleBeforeAck) = result
        return BenchFigure(
            metric: "ha_publish_visible_async", samplesMilliseconds: visible,
            extra: [
                "publish_ack_p50_ms": BenchHA.milliseconds(BenchFigure.percentile(acknowledged, 0.5)),
                "publish_ack_p99_ms": BenchHA.milliseconds(BenchFigure.percentile(acknowledged, 0.99)),
                "visible_before_publish_ack": .int(Int64(visibleBeforeAck)),
            ],
            note: "1-change publish over HTTPS on the active (async replication) until the standby committed the revision (visible to "
                + "every reader from then on): the client reads CLOCK_MONOTONIC just before it sends publish; the standby records "
                + "CLOCK_MONOTONIC when its commit of that revision returned (show-ha-status rampart-last-applied, read afterwards). "
                + "Includes the active's durable commit (fsync) and the transfer; the standby's fsync comes after visibility. "
                + "\(BenchHALimits.warmupSamples) warm-up samples dropped. publish_ack_* = when the publish reply reached the client. "
                + BenchHALimits.sharedMachineNote)
    }

    /// The revision a finished publish task made.
    static func publishedRevision(_ client: BenchClient, task: JSONValue, sid: String) async throws -> Int64 {
        let reply = try await client.transport.call("show-task", ["task-id": task, "details-level": "full"], sid: sid)
        guard let number = reply.body["tasks"]?.arrayValue?.first?["task-details"]?.arrayValue?.first?["revision-number"]?.intValue else {
            throw ToolFailure("show-task gave no revision-number: \(reply.body.canonicalString.prefix(300))")
        }
        return number
    }

    /// When the standby committed `revision` (CLOCK_MONOTONIC ns), once it reports it.
    static func appliedAt(_ reader: BenchClient, revision: Int64, sid: String) async throws -> UInt64? {
        let deadline = monotonicMilliseconds() + BenchHALimits.visibleTimeoutMilliseconds
        while monotonicMilliseconds() < deadline {
            let status = try await reader.transport.call("show-ha-status", [:], sid: sid)
            let applied = status.body["rampart-last-applied"]
            if let number = applied?["revision"]?.intValue, number >= revision, let at = applied?["monotonic-ns"]?.intValue {
                return number == revision ? UInt64(at) : nil
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        throw ToolFailure("revision #\(revision) not applied on the standby after \(Int(BenchHALimits.visibleTimeoutMilliseconds)) ms")
    }

    /// Sync replication mode: a one-change publish returns once a standby holds the revision durably.
    static func publishSync(_ run: inout BenchHARun) async throws -> BenchFigure {
        _ = try await run.standby("mgmt-b")
        let primary = run.primary!
        _ = try await BenchHA.operatorCall(primary, "ha-set-replication-mode", ["mode": "sync", "timeout-ms": .int(BenchHALimits.syncTimeoutMilliseconds)])
        let hosts = run.takeHostIndexes(run.options.samples + BenchHALimits.warmupSamples)
        let (samples, unconfirmed) = try await run.withPrimaryClient { client in
            let sid = try await client.login()
            var samples: [Double] = []
            var unconfirmed = 0
            for (sample, index) in hosts.enumerated() {
                try await client.mustSucceed("add-host", BenchClient.host(index), sid: sid)
                let before = monotonicMilliseconds()
                let reply = try await client.transport.call("publish", [:], sid: sid)
                let elapsed = monotonicMilliseconds() - before
                guard reply.ok, let task = reply.body["task-id"] else { throw ToolFailure("publish: \(reply.code): \(reply.message)") }
                let status = try await client.transport.call("show-task", ["task-id": task], sid: sid)
                if status.body["tasks"]?.arrayValue?.first?["status"]?.stringValue != "succeeded" { unconfirmed += 1 }
                if sample >= BenchHALimits.warmupSamples { samples.append(elapsed) }
            }
            _ = try? await client.transport.call("logout", [:], sid: sid)
            return (samples, unconfirmed)
        }
        _ = try await BenchHA.operatorCall(primary, "ha-set-replication-mode", ["mode": "async"])
        return BenchFigure(
            metric: "ha_publish_sync", samplesMilliseconds: samples, extra: ["not_confirmed_by_standby": .int(Int64(unconfirmed))],
            note: "1-change publish over HTTPS on the active in sync replication mode (timeout \(BenchHALimits.syncTimeoutMilliseconds) ms): "
                + "the call returns once the standby applied the revision and fsynced it (the active's own commit is synchronous=FULL "
                + "too); measured at the client; every task checked succeeded afterwards (not timed). \(BenchHALimits.warmupSamples) "
                + "warm-up samples dropped. " + BenchHALimits.sharedMachineNote)
    }

    /// Switchover: `ha-promote` on the standby → the first publish the new active accepts. Before each,
    /// a host is published on the old active; it must be on the new one (nothing lost).
    static func switchover(_ run: inout BenchHARun) async throws -> BenchFigure {
        let standby = try await run.standby("mgmt-b")
        var nodes = (active: run.primary!, standby: standby)
        let hosts = run.takeHostIndexes(2 * (BenchHALimits.switchovers + 1))
        var samples: [Double] = []
        var lost = 0
        for round in 0..<BenchHALimits.switchovers {
            let (marker, probe) = (BenchClient.host(hosts.lowerBound + 2 * round), BenchClient.host(hosts.lowerBound + 2 * round + 1))
            let elapsed = try await BenchHARun.withClients(nodes.active, nodes.standby, password: run.password) { old, new in
                let oldSID = try await old.login()
                try await old.mustSucceed("add-host", marker, sid: oldSID)
                try await old.mustSucceed("publish", [:], sid: oldSID)
                let newSID = try await new.login()
                let started = monotonicMilliseconds()
                try await new.mustSucceed("ha-promote", [:], sid: newSID)
                try await new.mustSucceed("add-host", probe, sid: newSID)
                try await new.mustSucceed("publish", [:], sid: newSID)
                let elapsed = monotonicMilliseconds() - started
                if !(try await new.transport.call("show-host", ["name": marker["name"]!], sid: newSID)).ok { lost += 1 }
                _ = try? await new.transport.call("logout", [:], sid: newSID)
                // Sessions are per administrator and bounded: 20 rounds must not leave 10 behind on a server.
                _ = try? await old.transport.call("logout", [:], sid: oldSID)
                return elapsed
            }
            samples.append(elapsed)
            nodes = (nodes.standby, nodes.active)
            // The next round starts from a synchronized pair.
            _ = try await BenchHARun.waitSynchronized(
                nodes.standby, head: try await BenchHA.head(nodes.active), startedAt: monotonicMilliseconds(),
                timeoutMilliseconds: BenchHALimits.synchronizedTimeoutMilliseconds)
        }
        if nodes.active.name != run.primary!.name {
            _ = try await BenchHA.operatorCall(run.primary!, "ha-promote", [:])  // leave the primary active
        }
        return BenchFigure(
            metric: "ha_switchover", samplesMilliseconds: samples, extra: ["revisions_lost": .int(Int64(lost))],
            note: "ha-promote over HTTPS on the standby (switchover: the active stops writes, flushes, hands over; the standby takes over "
                + "in a new epoch) until the new active accepted add-host + publish of one host, measured at the client; before each, a "
                + "host published on the old active, checked on the new one afterwards (revisions_lost). Alternating directions")
    }

    /// A fresh secondary joins a primary holding --objects hosts: process start → synchronized with
    /// the primary's head, observed through the secondary's local operator socket.
    static func fullSync(_ run: inout BenchHARun) async throws -> BenchFigure {
        let primary = run.primary!
        let createRate = try await run.fillPrimary(hosts: run.options.objects)
        // The existing standby must not be catching up while the new one is timed.
        _ = try await run.standby("mgmt-b")
        let keyFile = try await run.addCheckpointHost("mgmt-c")
        let cpuBefore = primary.server.cpuSeconds()
        let (secondary, joined) = try await run.launchSecondary("mgmt-c", keyFile: keyFile)
        // Read once the secondary has enrolled: enrolment itself publishes a revision on the primary.
        let target = try await run.primaryHead()
        let (elapsed, phases) = try await BenchHARun.waitSynchronized(
            secondary, head: target, startedAt: joined,
            timeoutMilliseconds: BenchHALimits.fullSyncTimeoutMilliseconds)
        let primaryCPU = primary.server.cpuSeconds() - cpuBefore
        let secondaryCPU = secondary.server.cpuSeconds()
        let (bytes, bytesSource) = run.fullSyncBytes(head: target)
        let database = primary.directory + "/" + DataDirectoryLayout.database
        let sqliteBytes = BenchHA.fileBytes(database) + BenchHA.fileBytes(database + "-wal")
        await run.stop(secondary)
        let seconds = elapsed / 1000
        var extra: [String: JSONValue] = [
            "seconds": .double((seconds * 1000).rounded() / 1000),
            "bytes": .int(Int64(bytes)),
            "primary_sqlite_bytes": .int(Int64(sqliteBytes)),
            "hosts": .int(Int64(run.hostsPublished)),
            "revisions": .int(Int64(target.number)),
            "primary_cpu_s": .double((primaryCPU * 100).rounded() / 100),
            "secondary_cpu_s": .double((secondaryCPU * 100).rounded() / 100),
            "phases_ms": .object(phases.mapValues(BenchHA.milliseconds)),
        ]
        if let createRate { extra["fill_rate_objects_per_s"] = .double(createRate.rounded()) }
        return BenchFigure(
            metric: "ha_full_sync", samplesMilliseconds: [elapsed], rate: Double(bytes) / 1_000_000 / seconds, rateUnit: "MB/s",
            extra: extra,
            note: "fresh secondary started with --join against a primary holding \(run.hostsPublished) hosts in \(target.number) revisions "
                + "(created by 4 sessions, publish every 1,000): from just before the process is spawned (enrolment included) until its "
                + "show-ha-status, polled every \(BenchHALimits.statusPollMilliseconds) ms over its local operator socket, says sync-status "
                + "synchronized at the primary's head number and hash. bytes = \(bytesSource); MB = 10^6 bytes. phases_ms = first time "
                + "each status was seen (node.json = enrolled and listening), and when the longest status poll started and ended "
                + "(show-ha-status waits for the HA runtime's lock: on the secondary, the snapshot install)")
    }
}

// MARK: - The HA group under test

enum BenchHALimits {
    static let warmupSamples = 5
    static let sharedMachineNote = "2 servers and the client share the machine; the client runs its tasks on NIO's event loops"
    static let visibleTimeoutMilliseconds = 10_000.0
    static let startTimeoutMilliseconds = 120_000.0
    static let synchronizedTimeoutMilliseconds = 600_000.0
    static let fullSyncTimeoutMilliseconds = 3_600_000.0
    static let statusPollMilliseconds = 5
    static let stopTimeoutMilliseconds = 15_000.0
    static let progressReportMilliseconds = 30_000.0
    static let syncTimeoutMilliseconds: Int64 = 2_000
    static let switchovers = 20
}

enum BenchHA {
    static func milliseconds(_ value: Double) -> JSONValue { .double((value * 1000).rounded() / 1000) }

    /// A command as root over a node's local operator socket.
    static func operatorCall(_ node: BenchHANode, _ command: String, _ body: [String: JSONValue]) async throws -> JSONValue {
        try await LocalOperator.withRootSession(dataDirectory: node.directory) { transport, sid in
            try await LocalOperator.call(transport, command, body, sid: sid)
        }
    }

    static func head(_ node: BenchHANode) async throws -> BenchHAHead {
        guard let head = BenchHAHead(try await operatorCall(node, "show-ha-status", [:])) else {
            throw ToolFailure("no head in show-ha-status of \(node.name)")
        }
        return head
    }

    static func fileBytes(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }
}

/// One `rampart server` of the group.
struct BenchHANode: Sendable {
    let name: String
    let server: BenchServer
    let sicPort: Int
    /// The CA that signed this node's HTTPS certificate: the ICA on the primary, a node-local CA on a secondary.
    let caFile: String
    var directory: String { server.directory }
    var endpoint: MgmtEndpoint {
        MgmtEndpoint(target: .https(host: "127.0.0.1", port: server.port), caFile: caFile, unsafe: false, apiVersion: nil)
    }
}

struct BenchHAHead: Equatable {
    var number: Int64
    var hash: String
    init?(_ status: JSONValue) {
        guard let number = status["head"]?["number"]?.intValue, let hash = status["head"]?["hash"]?.stringValue else { return nil }
        self.number = number
        self.hash = hash
    }
}

/// The state figures share: the running servers, the admin password, how many hosts are published.
struct BenchHARun {
    struct Options {
        var objects: Int
        var samples: Int
        /// Given to every server this run starts.
        var serverArguments: [String] = []
    }

    let children: ChildProcessSupervisor
    let options: Options
    /// Holds every data directory, key file and (unless --log-dir) log of this run.
    let root: String
    let logDirectory: String
    let password: String
    private(set) var primary: BenchHANode?
    private(set) var secondaries: [String: BenchHANode] = [:]
    /// Hosts bench-host-0 ..< nextHost exist, published, on the primary.
    private(set) var nextHost = 0
    var hostsPublished: Int { nextHost }

    init(children: ChildProcessSupervisor, options: Options, logDirectory: String?) throws {
        self.children = children
        self.options = options
        root = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-bench-ha-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.logDirectory = logDirectory ?? root + "/logs"
        try FileManager.default.createDirectory(atPath: self.logDirectory, withIntermediateDirectories: true)
        password = "bench-" + UUID().uuidString
    }

    /// Starts a primary, runs `body`, then stops every child and removes the files, also on error
    /// and on SIGINT/SIGTERM.
    static func withPrimary(options: Options, logDirectory: String?, _ body: (inout BenchHARun) async throws -> Void) async throws {
        let children = ChildProcessSupervisor(stopGrace: .milliseconds(Int64(BenchHALimits.stopTimeoutMilliseconds)))
        var run = try BenchHARun(children: children, options: options, logDirectory: logDirectory)
        let cleanup = BenchCleanup(children: children, directory: run.root)
        let signals = cleanup.onSignals()
        defer { _ = signals }
        let result: Result<Void, any Error>
        do {
            try await run.startPrimary()
            try await body(&run)
            result = .success(())
        } catch {
            result = .failure(error)
        }
        await cleanup.run()
        try result.get()
    }

    mutating func takeHostIndexes(_ count: Int) -> Range<Int> {
        defer { nextHost += count }
        return nextHost..<(nextHost + count)
    }

    // MARK: servers

    mutating func startPrimary() async throws {
        let passwordFile = root + "/admin-password"
        _ = FileManager.default.createFile(atPath: passwordFile, contents: Data(password.utf8), attributes: [.posixPermissions: 0o600])
        let directory = root + "/mgmt-a"
        let node = try await launch(
            "mgmt-a", directory: directory, caFile: directory + "/" + DataDirectoryLayout.icaCertificate,
            arguments: ["--admin-password-file", passwordFile])
        try? FileManager.default.removeItem(atPath: passwordFile)
        primary = node
    }

    /// The secondary `name`, started (and joined) on first use, synchronized with the primary's head.
    mutating func standby(_ name: String) async throws -> BenchHANode {
        if secondaries[name] == nil { _ = try await startSecondary(name) }
        let node = secondaries[name]!
        _ = try await Self.waitSynchronized(
            node, head: try await primaryHead(), startedAt: monotonicMilliseconds(),
            timeoutMilliseconds: BenchHALimits.synchronizedTimeoutMilliseconds)
        return node
    }

    /// Creates the checkpoint-host object with a one-time key on the primary, publishes it, and starts
    /// a secondary that joins with that key. Returns when node.json exists (enrolled, listening), with
    /// the monotonic time just before the process was spawned.
    mutating func startSecondary(_ name: String) async throws -> (BenchHANode, startedAt: Double) {
        try await launchSecondary(name, keyFile: try await addCheckpointHost(name))
    }

    /// On the primary: the checkpoint-host object `name` with a new one-time key, published. Returns
    /// the key's file (0600).
    func addCheckpointHost(_ name: String) async throws -> String {
        let key = "otp-" + UUID().uuidString
        try await withPrimaryClient { client in
            let sid = try await client.login()
            try await client.mustSucceed(
                "add-checkpoint-host", ["name": .string(name), "ip-address": "127.0.0.1", "one-time-password": .string(key)], sid: sid)
            try await client.mustSucceed("publish", [:], sid: sid)
            _ = try? await client.transport.call("logout", [:], sid: sid)
        }
        let keyFile = root + "/\(name).key"
        _ = FileManager.default.createFile(atPath: keyFile, contents: Data(key.utf8), attributes: [.posixPermissions: 0o600])
        return keyFile
    }

    /// Starts the secondary `name` with --join and the key in `keyFile`.
    mutating func launchSecondary(_ name: String, keyFile: String) async throws -> (BenchHANode, startedAt: Double) {
        let directory = root + "/" + name
        let startedAt = monotonicMilliseconds()
        let node = try await launch(
            name, directory: directory, caFile: directory + "/" + DataDirectoryLayout.icaCertificate,
            arguments: ["--join", "127.0.0.1:\(primary!.sicPort)", "--activation-key-file", keyFile])
        secondaries[name] = node
        return (node, startedAt)
    }

    mutating func stop(_ node: BenchHANode) async {
        await children.stop(node.server.child)
        secondaries[node.name] = nil
    }

    private func launch(_ name: String, directory: String, caFile: String, arguments: [String]) async throws -> BenchHANode {
        let logFile = logDirectory + "/\(name).log"
        let child = try children.start(
            name: name,
            arguments: [
                "server", "--data", directory, "--server-name", name, "--api-port", "0",
                "--sic-port", "0",
            ] + options.serverArguments + arguments,
            output: .newLog(path: logFile))
        let started = monotonicMilliseconds()
        while monotonicMilliseconds() - started < BenchHALimits.startTimeoutMilliseconds {
            if let settings = try? NodeSettings.load(dataDirectory: directory), let sicPort = settings.sicPort {
                return BenchHANode(
                    name: name, server: BenchServer(child: child, directory: directory, port: settings.apiPort, password: password),
                    sicPort: sicPort, caFile: caFile)
            }
            guard child.isRunning else { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        throw ToolFailure("the server \(name) did not start; its log: \(logFile)\n" + Self.tail(logFile))
    }

    static func tail(_ path: String, lines: Int = 20) -> String {
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    // MARK: API helpers

    func withPrimaryClient<T: Sendable>(_ body: (BenchClient) async throws -> T) async throws -> T {
        try await MgmtTransport.with(primary!.endpoint) { try await body(BenchClient(transport: $0, password: password)) }
    }

    /// Two clients, each with its own HTTP client (own connections): one for each server.
    static func withClients<T: Sendable>(
        _ first: BenchHANode, _ second: BenchHANode, password: String,
        _ body: (BenchClient, BenchClient) async throws -> T
    ) async throws -> T {
        try await MgmtTransport.with(first.endpoint) { one in
            try await MgmtTransport.with(second.endpoint) { two in
                try await body(BenchClient(transport: one, password: password), BenchClient(transport: two, password: password))
            }
        }
    }

    func primaryHead() async throws -> BenchHAHead {
        try await withPrimaryClient { client in
            let sid = try await client.login()
            let reply = try await client.transport.call("show-ha-status", [:], sid: sid)
            _ = try? await client.transport.call("logout", [:], sid: sid)
            guard reply.ok, let head = BenchHAHead(reply.body) else { throw ToolFailure("show-ha-status on the primary: \(reply.code): \(reply.message)") }
            return head
        }
    }

    /// Publishes hosts on the primary until `hosts` exist (4 sessions, publish every 1,000). Returns
    /// the creation rate, or nil when there was nothing to create.
    mutating func fillPrimary(hosts: Int) async throws -> Double? {
        guard hosts > nextHost else { return nil }
        let indexes = takeHostIndexes(hosts - nextHost)
        let figure = try await withPrimaryClient { client in
            try await client.createObjects(total: indexes.count, sessions: 4, firstIndex: indexes.lowerBound)
        }
        return figure.rate
    }

    /// Polls `node`'s show-ha-status through its local operator socket (root session) every
    /// `statusPollMilliseconds` until it is a standby with sync-status synchronized at `head`.
    /// Returns the time since `startedAt` and when each sync-status (and node.json) was first seen.
    static func waitSynchronized(
        _ node: BenchHANode, head: BenchHAHead, startedAt: Double,
        timeoutMilliseconds: Double
    ) async throws -> (Double, [String: Double]) {
        var phases: [String: Double] = [DataDirectoryLayout.nodeSettings: monotonicMilliseconds() - startedAt]
        let done = try await LocalOperator.withRootSession(dataDirectory: node.directory) { transport, sid -> (Double, [String: Double]) in
            var phases: [String: Double] = [:]
            var last: JSONValue = .null
            var lastReport = monotonicMilliseconds()
            var stall = (at: 0.0, milliseconds: 0.0)
            while true {
                let before = monotonicMilliseconds()
                let reply = try await transport.call("show-ha-status", [:], sid: sid)
                let now = monotonicMilliseconds()
                // show-ha-status reads the HA runtime under its lock: a long poll is the runtime busy
                // (on a standby, installing the full-sync snapshot).
                if now - before > stall.milliseconds { stall = (before - startedAt, now - before) }
                guard reply.ok else { throw ToolFailure("show-ha-status on \(node.name): \(reply.code): \(reply.message)") }
                last = reply.body
                let status = reply.body["sync-status"]?.stringValue ?? "?"
                if phases[status] == nil { phases[status] = now - startedAt }
                // At the head, or past it: the group publishes system changes of its own (addresses).
                if status == "synchronized", let current = BenchHAHead(reply.body),
                    current == head || current.number > head.number
                {
                    phases["longest-status-poll-start"] = stall.at
                    phases["longest-status-poll-end"] = stall.at + stall.milliseconds
                    return (now - startedAt, phases)
                }
                if now - lastReport > BenchHALimits.progressReportMilliseconds {
                    lastReport = now
                    FileHandle.standardError.write(
                        Data(
                            "bench ha: waiting for \(node.name) to be synchronized at #\(head.number) (\(Int((now - startedAt) / 1000)) s): sync-status \(status), head #\(last["head"]?["number"]?.scalarText ?? "?")\n"
                                .utf8))
                }
                if now - startedAt > timeoutMilliseconds {
                    throw ToolFailure(
                        "\(node.name) not synchronized at #\(head.number) after \(Int(timeoutMilliseconds / 1000)) s; last status: \(last.canonicalString)")
                }
                try await Task.sleep(for: .milliseconds(BenchHALimits.statusPollMilliseconds))
            }
        }
        phases.merge(done.1) { old, _ in old }
        return (done.0, phases)
    }

    /// What a full sync carried: the snapshot file the primary streamed (its database's pages, without
    /// its own tables), else the primary's SQLite files.
    func fullSyncBytes(head: BenchHAHead) -> (Int, String) {
        // The primary keeps its newest snapshot files; the full sync timed used the newest.
        let outgoing = primary!.directory + "/" + DataDirectoryLayout.haSnapshots + "/outgoing"
        let sizes = ((try? FileManager.default.contentsOfDirectory(atPath: outgoing)) ?? []).filter { $0.hasSuffix(".sqlite") }
            .map { (name: $0, modified: (try? FileManager.default.attributesOfItem(atPath: outgoing + "/" + $0))?[.modificationDate] as? Date ?? .distantPast) }
        if let newest = sizes.max(by: { $0.modified < $1.modified }), case let size = BenchHA.fileBytes(outgoing + "/" + newest.name), size > 0 {
            return (
                size,
                "size of the snapshot the primary streamed in 1 MiB chunks (ha-snapshots/outgoing/<head>.sqlite: a page copy of its database at that head, without its node-local tables; TLS and framing not counted)"
            )
        }
        let database = primary!.directory + "/" + DataDirectoryLayout.database
        let sqlite = BenchHA.fileBytes(database) + BenchHA.fileBytes(database + "-wal")
        return (sqlite, "size of the primary's rampart.sqlite + -wal (its snapshot file was not found)")
    }
}

// MARK: - Cleanup

/// The end of a run, whoever gets there first (its own end, an error, SIGINT or SIGTERM): every child
/// stopped, then the run's files removed, once.
final class BenchCleanup: Sendable {
    let children: ChildProcessSupervisor
    /// The run's files; nil once removed.
    private let directory: Mutex<String?>

    init(children: ChildProcessSupervisor, directory: String) {
        self.children = children
        self.directory = Mutex(directory)
    }

    func run() async {
        await children.stopAll()
        // Under the lock: a signal during the run's own cleanup asks at the same moment, and two removals
        // of one tree make each other fail halfway (a killed run left a server's whole directory behind).
        directory.withLock { directory in
            if let path = directory { try? FileManager.default.removeItem(atPath: path) }
            directory = nil
        }
    }

    /// SIGINT/SIGTERM to the benchmark stops the children and removes the files, then exits (the data
    /// directories are in the system's temporary directory). Keep the returned sources alive for the run.
    func onSignals() -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                Task {
                    await run()
                    exit(128 + number)
                }
            }
            source.resume()
            return source
        }
    }
}
