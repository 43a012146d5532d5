import Foundation
import Logging
import ManagementModel
import ManagementService
import ServiceLifecycle
import Store
import Synchronization

/// What the Web API asks of the operations tools on this server.
public struct NodeOperations: NodeOperationsProvider {
    public typealias Job = @Sendable () async -> Void
    let directory: URL
    let serverName: String
    let jobs: AsyncStream<Job>.Continuation

    public func exportManagement(filePath: String) async throws -> JSONValue {
        let url = URL(fileURLWithPath: filePath).standardizedFileURL
        let (directory, serverName) = (directory, serverName)
        let export = try await offloaded { () -> Migration.Export in
            guard !FileManager.default.fileExists(atPath: url.path) else { throw OperationsError("file-exists", "\(url.path) exists: choose a new file") }
            return try Migration.export(
                dataDirectory: directory, to: url, serverName: serverName, settingKeys: MigrationSettings.keys,
                nowMilliseconds: WallClock.nowMilliseconds())
        }
        return ["summary": .string("\(export.objects.count) objects exported to \(url.path)")]
    }

    public func enqueue(_ job: @escaping Job) -> Bool {
        if case .enqueued = jobs.yield(job) { return true }
        return false
    }

    /// Status commands ask on every call: the two files are read again only when one was replaced.
    let lastBackupRead = FileStampedCache<JSONValue?>()

    public func lastBackup() -> JSONValue? {
        let files = [BackupStatus.file(directory).path, directory.appendingPathComponent(DataDirectoryLayout.nodeSettings).path]
        return lastBackupRead.value(stampedBy: files) { readLastBackup() }
    }

    func readLastBackup() -> JSONValue? {
        let status = BackupStatus.load(dataDirectory: directory)
        let schedule = (try? NodeSettings.read(dataDirectory: directory.path))?.backupSchedule
        guard status != nil || schedule != nil else { return nil }
        guard case .object(var fields) = status?.json ?? .object(["result": "none yet"]) else { return nil }
        fields["schedule"] = .string(schedule?.summary ?? "none")
        return .object(fields)
    }
}

/// The server's operations worker: runs queued jobs (export-management) one at a time, and the
/// backup schedule of node.json (re-read every check, so `rampart backup schedule` needs no restart).
public struct OperationsService: Service {
    /// How often the schedule is checked; a backup starts at most this late.
    static let scheduleCheckInterval = Duration.seconds(5)
    /// Jobs waiting for the worker; one more is refused (its task fails at once) rather than queued.
    static let queuedJobsMax = 64

    public let provider: NodeOperations
    let jobs: AsyncStream<NodeOperations.Job>
    let logger: Logger
    /// Where scheduled backups' results go (`backupFinished`).
    let events: EventBus<ManagementEvent>

    public init(directory: URL, serverName: String, events: EventBus<ManagementEvent> = EventBus(), logger: Logger) {
        let (stream, continuation) = AsyncStream.makeStream(of: NodeOperations.Job.self, bufferingPolicy: .bufferingOldest(OperationsService.queuedJobsMax))
        provider = NodeOperations(directory: directory, serverName: serverName, jobs: continuation)
        jobs = stream
        self.events = events
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { for await job in jobs { await job() } }
                group.addTask { await runSchedule() }
            }
        }
        provider.jobs.finish()
    }

    func runSchedule() async {
        var startedAt: Int64?
        while !Task.isCancelled {
            if let schedule = (try? NodeSettings.read(dataDirectory: provider.directory.path))?.backupSchedule, schedule.problem == nil {
                let now = WallClock.nowMilliseconds()
                let reference = BackupStatus.load(dataDirectory: provider.directory)?.lastScheduledMilliseconds ?? startedAt ?? now
                startedAt = reference
                if now >= schedule.nextRun(after: reference) { await scheduledBackup(schedule) }
            } else {
                startedAt = nil
            }
            try? await Task.sleep(for: Self.scheduleCheckInterval)
        }
    }

    func scheduledBackup(_ schedule: BackupSchedule) async {
        let (directory, serverName, logger) = (provider.directory, provider.serverName, logger)
        do {
            let made = try await offloaded { () -> (url: URL, manifest: ArchiveManifest) in
                let now = WallClock.nowMilliseconds()
                return try BackupStatus.recording(dataDirectory: directory, scheduled: true, nowMilliseconds: now) {
                    let options = Backups.CreateOptions(
                        dataDirectory: directory, destination: schedule.destination.map { URL(fileURLWithPath: $0) },
                        includeLogs: schedule.includeLogs ?? false,
                        passphrase: try schedule.passphraseFile.map { try PassphraseFile.read($0) },
                        serverName: serverName, scheduled: true, nowMilliseconds: now)
                    let made = try Backups.create(options)
                    for (file, error) in Backups.pruneScheduled(in: options.destinationDirectory, schedule: schedule, serverName: serverName) {
                        logger.warning("could not delete an expired scheduled backup", metadata: ["file": "\(file.path)", "error": "\(error)"])
                    }
                    return made
                }
            }
            events.publish(
                .backupFinished(
                    BackupFinished(
                        scheduled: true, succeeded: true, file: made.url.path, headRevision: made.manifest.head?.number,
                        error: nil)))
        } catch {
            events.publish(.backupFinished(BackupFinished(scheduled: true, succeeded: false, file: nil, headRevision: nil, error: "\(error)")))
        }
    }
}

/// A value computed from files, kept until one of them changes: same inode, size and modification time
/// (the files are replaced by rename, so a new version is a new inode), or still missing.
final class FileStampedCache<Value: Sendable>: Sendable {
    private struct Stamp: Equatable {
        var inode: UInt64
        var bytes: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int
    }

    private let kept = Mutex<(stamps: [Stamp?], value: Value)?>(nil)

    func value(stampedBy paths: [String], compute: () -> Value) -> Value {
        let stamps = paths.map(Self.stamp)
        if let cached = kept.withLock({ $0 }), cached.stamps == stamps { return cached.value }
        let value = compute()
        kept.withLock { $0 = (stamps, value) }
        return value
    }

    private static func stamp(_ path: String) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return Stamp(
            inode: UInt64(info.st_ino), bytes: Int64(info.st_size),
            modifiedSeconds: info.st_mtim.tv_sec, modifiedNanoseconds: info.st_mtim.tv_nsec)
    }
}
