import Foundation
import ManagementModel
import Operations
import Synchronization

/// `rampart bench backup`: backup and restore throughput, and publish latency during a running
/// backup, against a primary it starts.
public struct BenchBackupRun {
    let json: Bool
    /// Hosts in the database.
    let objects: Int
    /// Publishes to time, idle and during backups.
    let samples: Int
    /// Backups and restores to time, at least.
    let rounds: Int
    /// Keep the server's log in this directory.
    let logDir: String?

    public init(json: Bool, objects: Int, samples: Int, rounds: Int, logDir: String?) {
        self.json = json
        self.objects = objects
        self.samples = samples
        self.rounds = rounds
        self.logDir = logDir
    }

    public func run() async throws {
        BenchMachine.start()
        try await BenchHARun.withPrimary(options: .init(objects: objects, samples: samples), logDirectory: logDir) { run in
            FileHandle.standardError.write(Data("publishing \(objects) hosts…\n".utf8))
            _ = try await run.fillPrimary(hosts: objects)
            var bench = BackupBench(run: run, samples: samples, rounds: rounds)
            for figure in try await bench.figures() {
                figure.write(json: json)
            }
        }
    }
}

/// The measurements of `rampart bench backup`, on a filled primary.
struct BackupBench {
    let run: BenchHARun
    let samples: Int
    let rounds: Int
    var nextHost = 10_000_000

    var directory: String { run.primary!.directory }

    mutating func figures() async throws -> [BenchFigure] {
        let idle = try await publishes(count: samples)
        var windows: [(start: Double, end: Double)] = []
        var backupSeconds: [Double] = []
        var lastBackup = ""
        var databaseBytes: UInt64 = 0
        let during = Mutex<[(start: Double, end: Double)]>([])
        let stop = Atomic<Bool>(false)
        let firstHost = nextHost
        nextHost += 1_000_000
        let client = run
        async let publisher: Void = client.withPrimaryClient { client in
            let sid = try await client.login()
            var index = firstHost
            while !stop.load(ordering: .relaxed) {
                let timed = try await Self.timedPublish(client, sid: sid, host: index)
                during.withLock { $0.append(timed) }
                index += 1
            }
        }
        func inside(_ sample: (start: Double, end: Double)) -> Bool { windows.contains { sample.start >= $0.start && sample.end <= $0.end } }
        while windows.count < rounds || during.withLock({ $0.filter(inside).count }) < samples, windows.count < 50 {
            if !lastBackup.isEmpty { try? FileManager.default.removeItem(atPath: lastBackup) }
            let start = monotonicMilliseconds()
            let reply = try childJSON(["backup", "create", "--data", directory, "--json"])
            windows.append((start, monotonicMilliseconds()))
            lastBackup = reply["file"]?.stringValue ?? ""
            databaseBytes = UInt64(reply["manifest"]?["parts"]?.arrayValue?.first?["size"]?.intValue ?? 0)
            backupSeconds.append(Double(BackupStatus.load(dataDirectory: URL(fileURLWithPath: directory))?.durationMilliseconds ?? 0) / 1000)
        }
        stop.store(true, ordering: .relaxed)
        try await publisher
        let duringSamples = during.withLock { $0.filter(inside).map { $0.end - $0.start } }
        let megabytes = Double(databaseBytes) / 1_000_000
        let objectCount = Int64(run.hostsPublished)

        var figures = [
            BenchFigure(
                metric: "publish_idle", samplesMilliseconds: idle,
                note: "add-host then a timed 1-change publish over HTTPS on a primary holding \(objectCount) hosts, nothing else running"),
            BenchFigure(
                metric: "backup_create", samplesMilliseconds: backupSeconds.map { $0 * 1000 }, rate: megabytes / mean(backupSeconds), rateUnit: "MB/s",
                extra: [
                    "database_bytes": .int(Int64(databaseBytes)), "objects": .int(objectCount),
                    "process_wall_p50_ms": BenchHA.milliseconds(percentile(windows.map { $0.end - $0.start }, 0.5)),
                ],
                note:
                    "`rampart backup create` (a separate process, as an operator runs it) while the server runs and takes publishes: SQLite online backup on its own connection, archived with SHA-256 and flushed every 8 MiB; rate = database bytes / the tool's backup time (last-backup.json), process start excluded"
            ),
            BenchFigure(
                metric: "publish_during_backup", samplesMilliseconds: duringSamples,
                extra: [
                    "idle_p50_ms": BenchHA.milliseconds(percentile(idle, 0.5)),
                    "ratio_p50": .double((percentile(duringSamples, 0.5) / max(percentile(idle, 0.5), 0.001) * 100).rounded() / 100),
                ],
                note:
                    "the same publishes while backups ran back to back; only publishes that started and ended inside a backup count. ratio_p50 = p50 during / p50 idle (target ≤ 2)"
            ),
        ]
        figures.append(try encryptedBackup(megabytes: megabytes))
        figures.append(try restores(lastBackup, megabytes: megabytes))
        return figures
    }

    func encryptedBackup(megabytes: Double) throws -> BenchFigure {
        let passphraseFile = run.root + "/bench-passphrase"
        _ = FileManager.default.createFile(
            atPath: passphraseFile, contents: Data("bench passphrase \(UUID().uuidString)\n".utf8), attributes: [.posixPermissions: 0o600])
        let reply = try childJSON(["backup", "create", "--data", directory, "--json", "--passphrase-file", passphraseFile])
        let seconds = Double(BackupStatus.load(dataDirectory: URL(fileURLWithPath: directory))?.durationMilliseconds ?? 0) / 1000
        try? FileManager.default.removeItem(atPath: reply["file"]?.stringValue ?? "")
        return BenchFigure(
            metric: "backup_create_encrypted", samplesMilliseconds: [seconds * 1000], rate: megabytes / seconds, rateUnit: "MB/s",
            note: "one `rampart backup create --passphrase-file`: the same copy, then scrypt (N=2^15, r=8) and AES-256-GCM in 1 MiB chunks")
    }

    func restores(_ file: String, megabytes: Double) throws -> BenchFigure {
        var times: [Double] = []
        for round in 0..<rounds {
            let target = run.root + "/restored-\(round)"
            let start = monotonicMilliseconds()
            _ = try childJSON(["backup", "restore", file, "--data", target, "--json"])
            times.append(monotonicMilliseconds() - start)
            try? FileManager.default.removeItem(atPath: target)
        }
        return BenchFigure(
            metric: "backup_restore", samplesMilliseconds: times, rate: megabytes / (mean(times) / 1000), rateUnit: "MB/s",
            note:
                "`rampart backup restore` into a fresh directory, timed as a process (start included): manifest and SHA-256 of every part, extraction, SQLite integrity check, the journal's links and head against the manifest, durable rename into place"
        )
    }

    mutating func publishes(count: Int) async throws -> [Double] {
        let first = nextHost
        nextHost += count
        return try await run.withPrimaryClient { try await $0.publishLatency(samples: count, firstIndex: first) }.samplesMilliseconds
    }

    static func timedPublish(_ client: BenchClient, sid: String, host index: Int) async throws -> (start: Double, end: Double) {
        try await client.mustSucceed("add-host", BenchClient.host(index), sid: sid)
        let start = monotonicMilliseconds()
        try await client.mustSucceed("publish", [:], sid: sid)
        return (start, monotonicMilliseconds())
    }

    /// Runs this executable with `arguments` and returns its JSON output; throws when it fails.
    func childJSON(_ arguments: [String]) throws -> JSONValue {
        let output = Pipe()
        let process = try run.children.start(
            name: "rampart \(arguments.prefix(2).joined(separator: " "))", arguments: arguments,
            output: .capture(output)
        ).process
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let reply = try? JSONValue.parse(data) else {
            throw ToolFailure("rampart \(arguments.joined(separator: " ")) failed: \(String(decoding: data, as: UTF8.self))")
        }
        return reply
    }

    func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
    func percentile(_ values: [Double], _ p: Double) -> Double { BenchFigure.percentile(values, p) }
}
