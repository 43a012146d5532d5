import Foundation
import ManagementModel
import Store
import TrustCore

/// A backup schedule in the node's settings (node.json, node-local, never synchronized): daily at
/// a UTC time, or every N hours, keeping the newest `retention` scheduled backups.
public struct BackupSchedule: Codable, Sendable, Equatable {
    /// "HH:MM" in UTC.
    public var dailyAt: String?
    public var everyHours: Int?
    public var retention: Int
    /// Where the backups go (default DIR/backups).
    public var destination: String?
    public var includeLogs: Bool?
    /// Encrypts every scheduled backup with the passphrase in this file.
    public var passphraseFile: String?

    enum CodingKeys: String, CodingKey {
        case dailyAt = "daily-at"
        case everyHours = "every-hours"
        case retention
        case destination = "to"
        case includeLogs = "include-logs"
        case
            passphraseFile = "passphrase-file"
    }

    public init(
        dailyAt: String? = nil, everyHours: Int? = nil, retention: Int, destination: String? = nil, includeLogs: Bool? = nil,
        passphraseFile: String? = nil
    ) {
        self.dailyAt = dailyAt
        self.everyHours = everyHours
        self.retention = retention
        self.destination = destination
        self.includeLogs = includeLogs
        self.passphraseFile = passphraseFile
    }

    /// Nil when usable; otherwise which field is wrong and why.
    public var problem: String? {
        switch (dailyAt, everyHours) {
        case (nil, nil), (.some, .some): return "give exactly one of daily-at (HH:MM, UTC) and every-hours"
        case (let time?, nil): if Self.minuteOfDay(time) == nil { return "daily-at: '\(time)' is not HH:MM (00:00 to 23:59, UTC)" }
        case (nil, let hours?): if !(1...(24 * 7)).contains(hours) { return "every-hours: \(hours) is not 1 to 168" }
        }
        guard (1...OperationsLimits.retentionCountMax).contains(retention) else {
            return "retention: \(retention) is not 1 to \(OperationsLimits.retentionCountMax)"
        }
        return nil
    }

    static func minuteOfDay(_ text: String) -> Int? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parts.allSatisfy({ $0.count == 2 }), let hour = Int(parts[0]), let minute = Int(parts[1]),
            (0..<24).contains(hour), (0..<60).contains(minute)
        else { return nil }
        return hour * 60 + minute
    }

    /// The first run strictly after `reference` (the last scheduled run, or when scheduling began).
    public func nextRun(after reference: Int64) -> Int64 {
        if let hours = everyHours { return reference + Int64(hours) * 3_600_000 }
        let day: Int64 = 86_400_000
        let offset = Int64(Self.minuteOfDay(dailyAt ?? "") ?? 0) * 60_000
        let candidate = (reference / day) * day + offset
        return candidate > reference ? candidate : candidate + day
    }

    /// Of the scheduled backups (oldest first), those to delete so `retention` remain.
    public func expired<T>(_ scheduledOldestFirst: [T]) -> [T] {
        Array(scheduledOldestFirst.dropLast(retention))
    }

    /// A short description for status output.
    public var summary: String {
        (dailyAt.map { "daily at \($0) UTC" } ?? "every \(everyHours ?? 0) h") + ", keep \(retention)"
    }
}

/// The last backup of this node (DIR/last-backup.json, node-local): what `rampart ha status`
/// shows. Written after every backup, manual or scheduled, successful or not.
public struct BackupStatus: Codable, Sendable, Equatable {
    public var timeMilliseconds: Int64
    public var result: String
    public var file: String?
    public var sizeBytes: UInt64?
    public var durationMilliseconds: Int64
    public var message: String
    public var scheduled: Bool
    /// When the last scheduled backup ran (kept across manual ones): the scheduler's reference.
    public var lastScheduledMilliseconds: Int64?

    enum CodingKeys: String, CodingKey {
        case timeMilliseconds = "time-ms"
        case result, file
        case sizeBytes = "size-bytes"
        case durationMilliseconds = "duration-ms"
        case message, scheduled
        case
            lastScheduledMilliseconds = "last-scheduled-ms"
    }

    public init(
        timeMilliseconds: Int64, result: String, file: String?, sizeBytes: UInt64?, durationMilliseconds: Int64, message: String,
        scheduled: Bool, lastScheduledMilliseconds: Int64?
    ) {
        self.timeMilliseconds = timeMilliseconds
        self.result = result
        self.file = file
        self.sizeBytes = sizeBytes
        self.durationMilliseconds = durationMilliseconds
        self.message = message
        self.scheduled = scheduled
        self.lastScheduledMilliseconds = lastScheduledMilliseconds
    }

    public static func file(_ dataDirectory: URL) -> URL { dataDirectory.appendingPathComponent(DataDirectoryLayout.lastBackupStatus) }

    public static func load(dataDirectory: URL) -> BackupStatus? {
        guard let handle = FileHandle(forReadingAtPath: file(dataDirectory).path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: OperationsLimits.statusFileBytesMax) else { return nil }
        return try? JSONDecoder().decode(BackupStatus.self, from: data)
    }

    public func save(dataDirectory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(self), to: Self.file(dataDirectory), mode: 0o600)
    }

    /// Runs `backup` and records its outcome (the scheduler's reference kept or moved on). `nowMilliseconds`
    /// is the wall-clock time recorded; the duration is measured on the monotonic clock `monotonicNow`
    /// (a wall clock set back or forward meanwhile does not change it).
    public static func recording(
        dataDirectory: URL, scheduled: Bool, nowMilliseconds: Int64,
        monotonicNow: () -> ContinuousClock.Instant = { ContinuousClock.now },
        _ backup: () throws -> (url: URL, manifest: ArchiveManifest)
    ) throws -> (url: URL, manifest: ArchiveManifest) {
        let started = monotonicNow()
        func durationMilliseconds() -> Int64 {
            let elapsed = monotonicNow() - started
            return elapsed.components.seconds * 1_000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        }
        let previous = load(dataDirectory: dataDirectory)?.lastScheduledMilliseconds
        let lastScheduled = scheduled ? nowMilliseconds : previous
        do {
            let made = try backup()
            let size = (try? ArchiveFile.fileSize(made.url)) ?? 0
            try BackupStatus(
                timeMilliseconds: nowMilliseconds, result: "succeeded", file: made.url.path, sizeBytes: size,
                durationMilliseconds: durationMilliseconds(),
                message: "revision #\(made.manifest.head?.number ?? 0), \(made.manifest.objectCount) objects",
                scheduled: scheduled, lastScheduledMilliseconds: lastScheduled
            ).save(dataDirectory: dataDirectory)
            return made
        } catch {
            try? BackupStatus(
                timeMilliseconds: nowMilliseconds, result: "failed", file: nil, sizeBytes: nil,
                durationMilliseconds: durationMilliseconds(), message: "\(error)", scheduled: scheduled,
                lastScheduledMilliseconds: lastScheduled
            ).save(dataDirectory: dataDirectory)
            throw error
        }
    }

    /// The status as the Web API shows it in `show-ha-status` (`last-backup`).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "time": .string(ArchiveManifest.iso8601(timeMilliseconds)), "result": .string(result), "message": .string(message),
            "duration-ms": .int(durationMilliseconds), "trigger": .string(scheduled ? "scheduled" : "manual"),
        ]
        if let file { fields["file"] = .string(file) }
        if let sizeBytes { fields["size-bytes"] = .int(Int64(sizeBytes)) }
        return .object(fields)
    }
}
