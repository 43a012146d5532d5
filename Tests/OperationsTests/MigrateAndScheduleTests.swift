import Foundation
import HARuntime
import ManagementModel
import Store
import Testing
@testable import Operations

@Suite("Migrate export/import and the backup schedule")
struct MigrateAndScheduleTests {
    @Test func exportThenImportOnAFreshDirectoryGivesIdenticalObjectsAndARaisedEpoch() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let objects = (0..<2_500).map(host) + [administrator("admin"), administrator("ops"), managementServer("primary", sicAddress: "127.0.0.1:1", primary: true)]
        let node = try NodeDirectory(scratch.path("node"), objects: objects, revisionsOf: 500, epochTerm: 3)
        let file = scratch.path("export.json")
        let export = try Migration.export(dataDirectory: node.url, to: file, serverName: "primary", settingKeys: ["sic-revocations"], nowMilliseconds: 1)
        #expect(export.objects.count == objects.count)
        #expect(export.administrators == ["admin", "ops"])
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let target = scratch.path("new")
        let dry = try Migration.importExport(file, into: target, serverName: "primary", dryRun: true, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
        #expect(dry.dryRun && dry.revisions == 3 && dry.export.counts["host"] == 2_500)
        #expect(!FileManager.default.fileExists(atPath: target.path), "a dry run changes nothing")

        let report = try Migration.importExport(file, into: target, serverName: "primary", dryRun: false, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
        #expect(report.epochTerm == 4)
        let imported = try ManagementStore(readOnlyPath: target.appendingPathComponent("rampart.sqlite").path)
        #expect(try imported.allObjects() == (try ManagementStore(readOnlyPath: node.databasePath).allObjects()))
        #expect(try imported.verifyJournal() == nil)
        #expect(try imported.setting("sic-revocations") == "{\"revoked\":[]}")
        #expect(try imported.setting("server-uid") == "server-primary")
        #expect(FileManager.default.contents(atPath: target.appendingPathComponent("pki/ica.key").path) == FileManager.default.contents(atPath: node.url.appendingPathComponent("pki/ica.key").path))

        // Never into a directory that holds a database.
        #expect(refusalCode { _ = try Migration.importExport(file, into: target, serverName: "primary", dryRun: true, nowMilliseconds: 3, raiseEpoch: raiseEpoch) } == "target-not-empty")
    }

    @Test func aDamagedOrNewerExportIsRefusedAndNothingIsCreated() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let file = scratch.path("export.json")
        _ = try Migration.export(dataDirectory: node.url, to: file, serverName: "primary", settingKeys: [], nowMilliseconds: 1)
        let text = try String(contentsOf: file, encoding: .utf8)
        let cases: [(String, String)] = [
            (String(text.prefix(text.count / 2)), "truncated"),
            (text.replacingOccurrences(of: "10.0.0.5", with: "10.0.0.6"), "corrupt"),
            (text.replacingOccurrences(of: "\"format-version\":1", with: "\"format-version\":9"), "incompatible"),
            ("{\"hello\":1}", "not-an-export"),
        ]
        for (content, code) in cases {
            let bad = scratch.path("bad.json")
            try Data(content.utf8).write(to: bad)
            let target = scratch.path("target-\(code)")
            #expect(refusalCode { _ = try Migration.importExport(bad, into: target, serverName: "p", dryRun: false, nowMilliseconds: 1, raiseEpoch: raiseEpoch) } == code)
            #expect(!FileManager.default.fileExists(atPath: target.appendingPathComponent("rampart.sqlite").path))
        }
    }

    @Test func scheduleTimesAndRetention() {
        let day: Int64 = 86_400_000
        let daily = BackupSchedule(dailyAt: "02:30", retention: 3)
        #expect(daily.problem == nil)
        let midnight = 20_000 * day
        #expect(daily.nextRun(after: midnight) == midnight + 150 * 60_000)
        #expect(daily.nextRun(after: midnight + 150 * 60_000) == midnight + day + 150 * 60_000, "strictly after the last run")
        #expect(daily.nextRun(after: midnight + 23 * 3_600_000) == midnight + day + 150 * 60_000)
        let hourly = BackupSchedule(everyHours: 6, retention: 2)
        #expect(hourly.nextRun(after: 1_000) == 1_000 + 6 * 3_600_000)
        #expect(hourly.expired([1, 2, 3, 4]) == [1, 2])
        #expect(hourly.expired([1]) == [])
        #expect(BackupSchedule(dailyAt: "24:00", retention: 1).problem?.contains("daily-at") == true)
        #expect(BackupSchedule(dailyAt: "2:30", retention: 1).problem != nil)
        #expect(BackupSchedule(everyHours: 0, retention: 1).problem?.contains("every-hours") == true)
        #expect(BackupSchedule(dailyAt: "01:00", everyHours: 2, retention: 1).problem != nil)
        #expect(BackupSchedule(retention: 1).problem != nil)
        #expect(BackupSchedule(everyHours: 1, retention: 0).problem?.contains("retention") == true)
    }

    @Test func theLastBackupIsRecordedWhetherItSucceedsOrFails() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        _ = try BackupStatus.recording(dataDirectory: node.url, scheduled: true, nowMilliseconds: 5_000, clock: { 5_100 }) { try node.backup() }
        let ok = try #require(BackupStatus.load(dataDirectory: node.url))
        #expect(ok.result == "succeeded" && ok.sizeBytes ?? 0 > 0 && ok.lastScheduledMilliseconds == 5_000 && ok.durationMilliseconds == 100)
        _ = try? BackupStatus.recording(dataDirectory: node.url, scheduled: false, nowMilliseconds: 9_000, clock: { 9_000 }) {
            throw OperationsError("disk-full", "no space left")
        }
        let failed = try #require(BackupStatus.load(dataDirectory: node.url))
        #expect(failed.result == "failed" && failed.message.contains("no space left"))
        #expect(failed.lastScheduledMilliseconds == 5_000, "a manual backup does not move the schedule")
    }

    @Test func passphraseFilesAreBoundedAndNeverTooShort() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let file = scratch.path("pass")
        try Data("short\n".utf8).write(to: file)
        #expect(refusalCode { _ = try PassphraseFile.read(file.path) } == "passphrase-file")
        try Data("a long enough passphrase\r\nsecond line".utf8).write(to: file)
        #expect(try PassphraseFile.read(file.path) == Array("a long enough passphrase".utf8))
        try Data(count: 5_000).write(to: file)
        #expect(refusalCode { _ = try PassphraseFile.read(file.path) } == "passphrase-file")
    }
}

@Suite("Scheduled backups: retention")
struct RetentionTests {
    @Test func onlyThisServersOldestScheduledBackupsBeyondTheRetentionAreDeleted() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        var scheduled: [URL] = []
        for index in 0..<4 {
            scheduled.append(try Backups.create(Backups.CreateOptions(dataDirectory: node.url, serverName: "primary", scheduled: true,
                                                                      nowMilliseconds: 1_700_000_000_000 + Int64(index) * 1_000)).url)
        }
        let manual = try node.backup(now: 1_600_000_000_000).url
        #expect(Backups.pruneScheduled(in: node.url.appendingPathComponent("backups"), schedule: BackupSchedule(everyHours: 1, retention: 2),
                                       serverName: "primary").isEmpty)
        let left = Set(Backups.list(in: node.url.appendingPathComponent("backups")).map(\.url))
        #expect(left == Set([manual] + scheduled.suffix(2)), "the two newest scheduled backups and the manual one stay")
    }
}
