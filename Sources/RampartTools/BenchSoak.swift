import Foundation
import ManagementClient
import ManagementModel

/// `rampart bench soak`: an HA pair and gateway agents under steady work — a publish every second, an
/// install every 30 s, a backup every 60 s, a switchover every 120 s — for `minutes`. Memory, file
/// descriptors and disk of every process are read every 10 s; their slopes (least squares, after a
/// warm-up) say whether anything leaks. Before it, 2,500 quick publishes fill the bounded caches.
public struct BenchSoakRun {
    let minutes: Double
    let gateways: Int
    let json: Bool
    let logDir: String?

    public init(minutes: Double, gateways: Int, json: Bool, logDir: String?) {
        self.minutes = minutes
        self.gateways = gateways
        self.json = json
        self.logDir = logDir
    }

    public func run() async throws {
        BenchMachine.start()
        let options = BenchHARun.Options(
            objects: 0, samples: 1, serverArguments: ["--task-retention-seconds", "\(SoakLimits.taskRetentionSeconds)"])
        try await BenchHARun.withPrimary(options: options, logDirectory: logDir) { run in
            let fleet = BenchInstallRun(gateways: gateways, rules: 20, samples: 0, json: json, logDir: logDir)
            let key = "soak-gw-" + UUID().uuidString
            try await fleet.populate(run, key: key)
            let standby = try await run.standby("mgmt-b")
            let agents = try await fleet.startAgents(run, key: key)
            var soak = SoakLoop(run: run, pair: (run.primary!, standby), agents: agents)
            try await soak.seedHosts()
            try await soak.fillCaches()
            try await soak.run(seconds: Int(minutes * 60))
            for figure in soak.figures() { figure.write(json: json) }
        }
    }
}

enum SoakLimits {
    /// Hosts the publishes rewrite in turn: the object count stays flat, only the journal grows.
    static let hosts = 50
    static let installEverySeconds = 30
    static let backupEverySeconds = 60
    static let switchoverEverySeconds = 120
    static let readingEverySeconds = 10
    /// Readings before this share of the run are the warm-up (caches filling), left out of the slopes.
    static let warmUpShare = 0.25
    static let taskTimeoutMilliseconds = 120_000.0
    /// The servers keep finished tasks this long (default an hour): each publish makes one, a list
    /// bounded by time that would otherwise fill for the first hour and read as a leak in the slopes.
    static let taskRetentionSeconds = 120
    /// Publishes made as fast as they go before the soak proper: SQLite keeps up to 2 MB of pages per
    /// connection, filled by about 2,000 revisions of a growing journal, which at one publish a
    /// second takes longer than the soak. Full caches first, so the slopes show what is unbounded.
    static let fillPublishes = 2_500
}

/// One reading of a process: resident memory, open descriptors, and its data directory's bytes.
/// Resident memory is split as the kernel counts it: anonymous (heap and other private memory: what
/// a leak grows) and file-backed (the binary's code and mapped files: a page touched once stays).
struct SoakReading {
    let minute: Double
    let residentKilobytes: Double
    let anonymousKilobytes: Double
    let fileBackedKilobytes: Double
    let descriptors: Double
    let diskKilobytes: Double
}

struct SoakLoop {
    let run: BenchHARun
    var pair: (active: BenchHANode, standby: BenchHANode)
    let agents: ChildProcess
    var publish: [Double] = []
    var install: [Double] = []
    var backup: [Double] = []
    var switchover: [Double] = []
    var readings: [String: [SoakReading]] = [:]
    var revisionsAtStart: Int64 = 0
    var revisionsAtEnd: Int64 = 0

    init(run: BenchHARun, pair: (BenchHANode, BenchHANode), agents: ChildProcess) {
        self.run = run
        self.pair = (pair.0, pair.1)
        self.agents = agents
    }

    mutating func seedHosts() async throws {
        try await onActive { client, sid in
            for index in 0..<SoakLimits.hosts { try await client.mustSucceed("add-host", BenchClient.host(900_000 + index), sid: sid) }
            try await client.mustSucceed("publish", [:], sid: sid)
        }
        revisionsAtStart = try await BenchHA.head(pair.active).number
    }

    mutating func fillCaches() async throws {
        for index in 0..<SoakLimits.fillPublishes {
            try await publishOne(index)
            if index % 500 == 499 {
                FileHandle.standardError.write(Data("bench soak: filling the caches: \(index + 1) of \(SoakLimits.fillPublishes) publishes\n".utf8))
            }
        }
        revisionsAtStart = try await BenchHA.head(pair.active).number
    }

    mutating func run(seconds: Int) async throws {
        let started = monotonicMilliseconds()
        for second in 0..<max(1, seconds) {
            let due = started + Double(second) * 1000
            let wait = due - monotonicMilliseconds()
            if wait > 0 { try await Task.sleep(for: .milliseconds(Int64(wait))) }
            try await oneSecond(second, minute: (monotonicMilliseconds() - started) / 60_000)
        }
        revisionsAtEnd = try await BenchHA.head(pair.active).number
    }

    mutating func oneSecond(_ second: Int, minute: Double) async throws {
        publish.append(try await timed { try await publishOne(second) })
        if second % SoakLimits.installEverySeconds == SoakLimits.installEverySeconds - 1 { install.append(try await timed { try await installPolicy() }) }
        if second % SoakLimits.backupEverySeconds == SoakLimits.backupEverySeconds - 1 { backup.append(try await timed { try await takeBackup() }) }
        if second % SoakLimits.switchoverEverySeconds == SoakLimits.switchoverEverySeconds - 1 {
            switchover.append(try await timed { try await switchOver() })
        }
        if second % SoakLimits.readingEverySeconds == 0 { read(minute: minute) }
        if second % 60 == 59 {
            FileHandle.standardError.write(Data("bench soak: minute \(second / 60 + 1): \(publish.count) publishes, \(switchover.count) switchovers\n".utf8))
        }
    }

    func timed(_ body: () async throws -> Void) async throws -> Double {
        let started = monotonicMilliseconds()
        try await body()
        return monotonicMilliseconds() - started
    }

    func onActive(_ body: (BenchClient, String) async throws -> Void) async throws {
        try await BenchHARun.withClients(pair.active, pair.standby, password: run.password) { active, _ in
            let sid = try await active.login()
            try await body(active, sid)
            _ = try? await active.transport.call("logout", [:], sid: sid)
        }
    }

    func publishOne(_ second: Int) async throws {
        try await onActive { client, sid in
            let host = BenchClient.host(900_000 + second % SoakLimits.hosts)
            try await client.mustSucceed("set-host", ["name": host["name"]!, "comments": .string("soak second \(second)")], sid: sid)
            try await client.mustSucceed("publish", [:], sid: sid)
        }
    }

    func installPolicy() async throws {
        try await onActive { client, sid in
            let reply = try await client.transport.call("install-policy", ["policy-package": "Standard"], sid: sid)
            guard let id = reply.body["task-id"]?.stringValue else { throw ToolFailure("install-policy: \(reply.body.canonicalString)") }
            try await Self.waitTask(client, id: id, sid: sid)
        }
    }

    static func waitTask(_ client: BenchClient, id: String, sid: String) async throws {
        let started = monotonicMilliseconds()
        while monotonicMilliseconds() - started < SoakLimits.taskTimeoutMilliseconds {
            let task = try await client.transport.call("show-task", ["task-id": .string(id)], sid: sid)
            let status = task.body["tasks"]?.arrayValue?.first?["status"]?.stringValue ?? "?"
            if status == "succeeded" { return }
            guard status == "in progress" else { throw ToolFailure("task \(id) ended \(status): \(task.body.canonicalString.prefix(300))") }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ToolFailure("task \(id) did not finish in \(Int(SoakLimits.taskTimeoutMilliseconds / 1000)) s")
    }

    /// `rampart backup create` on the active into the run's directory; the previous backup is removed,
    /// as a retention of one would (the figure is the server's disk, not the backups').
    func takeBackup() async throws {
        let directory = run.root + "/soak-backups"
        try? FileManager.default.removeItem(atPath: directory)
        let child = try run.children.start(
            name: "backup", arguments: ["backup", "create", "--data", pair.active.directory, "--to", directory],
            output: .appendedLog(path: run.logDirectory + "/backups.log", header: "backup"))
        await child.waitForExit()
        guard child.succeeded else { throw ToolFailure("backup create failed; log: \(run.logDirectory)/backups.log") }
    }

    mutating func switchOver() async throws {
        _ = try await BenchHA.operatorCall(pair.standby, "ha-promote", [:])
        pair = (pair.standby, pair.active)
        _ = try await BenchHARun.waitSynchronized(
            pair.standby, head: try await BenchHA.head(pair.active), startedAt: monotonicMilliseconds(),
            timeoutMilliseconds: BenchHALimits.synchronizedTimeoutMilliseconds)
    }

    mutating func read(minute: Double) {
        for node in [pair.active, pair.standby] {
            readings[node.name, default: []].append(Self.reading(pid: node.server.child.pid, directory: node.directory, minute: minute))
        }
        readings["agents", default: []].append(Self.reading(pid: agents.pid, directory: run.root + "/agents", minute: minute))
    }

    static func reading(pid: Int32, directory: String, minute: Double) -> SoakReading {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let kilobytes = statusKilobytes(status)
        let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? 0
        return SoakReading(
            minute: minute, residentKilobytes: kilobytes["VmRSS"] ?? 0, anonymousKilobytes: kilobytes["RssAnon"] ?? 0,
            fileBackedKilobytes: (kilobytes["RssFile"] ?? 0) + (kilobytes["RssShmem"] ?? 0),
            descriptors: Double(descriptors), diskKilobytes: Double(directoryBytes(directory)) / 1024)
    }

    /// The "Name:   123 kB" lines of /proc/PID/status, by name.
    static func statusKilobytes(_ status: String) -> [String: Double] {
        var values: [String: Double] = [:]
        for line in status.split(separator: "\n") where line.hasSuffix(" kB") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count == 3, let name = parts.first?.dropLast(), let value = Double(parts[1]) else { continue }
            values[String(name)] = value
        }
        return values
    }

    static func directoryBytes(_ path: String) -> Int {
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        var total = 0
        while let item = walker.nextObject() as? String {
            let attributes = try? FileManager.default.attributesOfItem(atPath: path + "/" + item)
            if attributes?[.type] as? FileAttributeType == .typeRegular { total += (attributes?[.size] as? Int) ?? 0 }
        }
        return total
    }
}

extension SoakLoop {
    func figures() -> [BenchFigure] {
        let revisions = max(1, revisionsAtEnd - revisionsAtStart)
        var figures = [
            BenchFigure(
                metric: "soak_publish_ms", samplesMilliseconds: publish,
                note: "set-host + publish on the active (one changed object), once a second, login to logout, during the soak"),
            BenchFigure(
                metric: "soak_install_policy_ms", samplesMilliseconds: install,
                note: "install-policy of the 20-rule Standard package to every gateway agent, until show-task succeeded, every 30 s"),
            BenchFigure(metric: "soak_backup_ms", samplesMilliseconds: backup, note: "rampart backup create on the active (online), every 60 s"),
            BenchFigure(
                metric: "soak_switchover_ms", samplesMilliseconds: switchover,
                note: "ha-promote on the standby over its local socket until the old active is synchronized again, every 120 s"),
        ]
        for (process, series) in readings.sorted(by: { $0.key < $1.key }) {
            let steady = Array(series.dropFirst(Int(Double(series.count) * SoakLimits.warmUpShare)))
            for (name, unit, value) in [
                ("resident_memory", "KiB/min", \SoakReading.residentKilobytes),
                ("anonymous_memory", "KiB/min", \SoakReading.anonymousKilobytes),
                ("file_backed_memory", "KiB/min", \SoakReading.fileBackedKilobytes),
                ("file_descriptors", "descriptors/min", \SoakReading.descriptors), ("disk", "KiB/min", \SoakReading.diskKilobytes),
            ] {
                var figure = BenchFigure(
                    metric: "soak_\(name)_slope_\(process)",
                    note:
                        "least-squares slope of \(process)'s \(name.replacingOccurrences(of: "_", with: " ")) over \(steady.count) readings (every 10 s, the first quarter left out as warm-up)"
                        + (name == "disk" ? "; the journal keeps every revision: \(revisions) revisions were published" : "")
                        + (name == "resident_memory" && process != "agents"
                            ? "; servers keep finished tasks \(SoakLimits.taskRetentionSeconds) s (--task-retention-seconds)" : ""))
                figure.rate = Self.slope(steady.map { ($0.minute, $0[keyPath: value]) })
                figure.rateUnit = unit
                figure.extra["n"] = .int(Int64(steady.count))
                figure.extra["first"] = .double(steady.first?[keyPath: value] ?? 0)
                figure.extra["last"] = .double(steady.last?[keyPath: value] ?? 0)
                figures.append(figure)
            }
        }
        return figures
    }

    /// The least-squares slope of y over x; 0 with fewer than two points.
    static func slope(_ points: [(Double, Double)]) -> Double {
        guard points.count >= 2 else { return 0 }
        let count = Double(points.count)
        let meanX = points.map(\.0).reduce(0, +) / count
        let meanY = points.map(\.1).reduce(0, +) / count
        let covariance = points.reduce(0) { $0 + ($1.0 - meanX) * ($1.1 - meanY) }
        let variance = points.reduce(0) { $0 + ($1.0 - meanX) * ($1.0 - meanX) }
        return variance > 0 ? covariance / variance : 0
    }
}
