import Foundation
import HACore
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
        let objects =
            (0..<2_500).map(host) + [administrator("admin"), administrator("ops"), managementServer("primary", sicAddress: "127.0.0.1:1", primary: true)]
        let node = try NodeDirectory(scratch.path("node"), objects: objects, revisionsOf: 500, epochTerm: 3)
        let file = scratch.path("export.json")
        let export = try Migration.export(dataDirectory: node.url, to: file, serverName: "primary", settingKeys: ["sic-revocations"], nowMilliseconds: 1)
        #expect(export.objects.count == objects.count)
        #expect(export.administrators == ["admin", "ops"])
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)

        let target = scratch.path("new")
        let dry = try Migration.importExport(
            Migration.ImportOptions(file: file, dataDirectory: target, asNewPrimary: true, dryRun: true, nowMilliseconds: 2),
            raiseEpoch: raiseEpoch)
        #expect(dry.dryRun && dry.revisions == 3 && dry.export.counts["host"] == 2_500)
        #expect(!FileManager.default.fileExists(atPath: target.path), "a dry run changes nothing")

        let report = try Migration.importExport(
            Migration.ImportOptions(file: file, dataDirectory: target, asNewPrimary: true, nowMilliseconds: 2),
            raiseEpoch: raiseEpoch)
        #expect(report.serverName == "primary", "the new primary of the same group keeps the exporting server's name")
        #expect(report.epochTerm == 4)
        let imported = try ManagementStore(readOnlyPath: target.appendingPathComponent("rampart.sqlite").path)
        #expect(try imported.allObjects() == (try ManagementStore(readOnlyPath: node.databasePath).allObjects()))
        #expect(try imported.verifyJournal() == nil)
        #expect(try imported.setting("sic-revocations") == "{\"revoked\":[]}")
        #expect(try imported.setting("server-uid") == "server-primary")
        #expect(
            FileManager.default.contents(atPath: target.appendingPathComponent("pki/ica.key").path)
                == FileManager.default.contents(atPath: node.url.appendingPathComponent("pki/ica.key").path))

        // Never into a directory that holds a database.
        #expect(
            refusalCode {
                _ = try Migration.importExport(
                    Migration.ImportOptions(file: file, dataDirectory: target, asNewPrimary: true, dryRun: true, nowMilliseconds: 3),
                    raiseEpoch: raiseEpoch)
            } == "target-not-empty")
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
            #expect(
                refusalCode {
                    _ = try Migration.importExport(
                        Migration.ImportOptions(file: bad, dataDirectory: target, serverName: "p", nowMilliseconds: 1), raiseEpoch: raiseEpoch)
                } == code)
            #expect(!FileManager.default.fileExists(atPath: target.path), "a refused import leaves nothing behind")
        }
    }

    /// An export of a live HA group: its active, a standby that answers on its SIC port, an enrolled gateway.
    func groupExport(_ scratch: Scratch, standby: Listener) throws -> URL {
        var gateway = ManagedObject(uid: "gw-1", type: .simpleGateway, name: "gw-1", fields: ["ipv4-address": "192.0.2.1"], meta: meta)
        gateway.fields[ManagedObject.sicStateField] = "initialized"
        gateway.fields[ManagedObject.sicSerialField] = "0a0b"
        gateway.fields[ManagedObject.sicNameField] = "CN=gw-1,O=Rampart,URI=urn:rampart:node:gw-1"
        let objects =
            (0..<5).map(host) + [
                administrator("admin"), gateway, managementServer("primary", sicAddress: "127.0.0.1:1", primary: true),
                managementServer("mgmt-b", sicAddress: "127.0.0.1:\(standby.port)"),
            ]
        let node = try NodeDirectory(scratch.path("node"), objects: objects, epochTerm: 3)
        let file = scratch.path("export.json")
        _ = try Migration.export(dataDirectory: node.url, to: file, serverName: "primary", settingKeys: ["sic-revocations"], nowMilliseconds: 1)
        return file
    }

    /// An import of a live group's export must never join that group: it starts a new, standalone
    /// group — no management server of the old group to dial, a name and an Internal CA of its own.
    @Test func anImportStartsANewStandaloneGroupWithoutTheOldGroupsServersOrCA() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let standby = Listener()
        defer { standby.close() }
        let file = try groupExport(scratch, standby: standby)
        let target = scratch.path("copy")
        // The exported group's names are taken: the default name is refused, and nothing is left behind.
        #expect(
            refusalCode {
                _ = try Migration.importExport(Migration.ImportOptions(file: file, dataDirectory: target, nowMilliseconds: 2), raiseEpoch: raiseEpoch)
            }
                == "server-name-taken")
        #expect(!FileManager.default.fileExists(atPath: target.path))
        #expect(
            refusalCode {
                _ = try Migration.importExport(
                    Migration.ImportOptions(file: file, dataDirectory: target, serverName: "mgmt-b", nowMilliseconds: 2), raiseEpoch: raiseEpoch)
            } == "server-name-taken")

        let report = try Migration.importExport(
            Migration.ImportOptions(file: file, dataDirectory: target, serverName: "lab", nowMilliseconds: 2),
            raiseEpoch: raiseEpoch)
        #expect(report.serverName == "lab" && !report.asNewPrimary)
        #expect(report.serversLeftOut == ["mgmt-b", "primary"] && report.gatewaysToEnrol == ["gw-1"])
        let store = try ManagementStore(readOnlyPath: target.appendingPathComponent("rampart.sqlite").path)
        let objects = try store.allObjects()
        #expect(!objects.contains { $0.type == .checkpointHost }, "no server of the old group to dial")
        let gateway = try #require(objects.first { $0.name == "gw-1" })
        #expect(gateway.fields[ManagedObject.sicStateField] == "uninitialized" && gateway.fields[ManagedObject.sicSerialField] == nil)
        #expect(objects.filter { $0.type == .host }.count == 5 && objects.contains { $0.name == "admin" })
        #expect(try store.setting("server-uid") == nil, "a new SIC identity is made at the first start")
        #expect(try store.setting("sic-revocations") == nil)
        #expect(!FileManager.default.fileExists(atPath: target.appendingPathComponent("pki/ica.key").path), "the server creates a new Internal CA")
        #expect(!FileManager.default.fileExists(atPath: target.appendingPathComponent("ha.json").path))
        let state = try #require(try HardStateStore(store: try ManagementStore(path: target.appendingPathComponent("rampart.sqlite").path)).load())
        #expect(state.role == .active && state.peers.isEmpty && state.epoch.server.name == "lab" && state.epoch.term == 4)
    }

    /// --as-new-primary takes the group's place: refused while any of its servers answers, and then
    /// with the group's Internal CA and servers.
    @Test func importAsNewPrimaryIsRefusedWhileTheGroupAnswers() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let standby = Listener()
        let file = try groupExport(scratch, standby: standby)
        let target = scratch.path("new-primary")
        let options = Migration.ImportOptions(file: file, dataDirectory: target, asNewPrimary: true, nowMilliseconds: 2)
        #expect(refusalCode { _ = try Migration.importExport(options, raiseEpoch: raiseEpoch) } == "ha-group-alive")
        #expect(!FileManager.default.fileExists(atPath: target.path), "a refused import leaves nothing behind")
        var dryRun = options
        dryRun.dryRun = true
        #expect(refusalCode { _ = try Migration.importExport(dryRun, raiseEpoch: raiseEpoch) } == "ha-group-alive")
        standby.close()
        let report = try Migration.importExport(options, raiseEpoch: raiseEpoch)
        #expect(report.serverName == "primary" && report.asNewPrimary && report.epochTerm == 4)
        #expect(FileManager.default.fileExists(atPath: target.appendingPathComponent("pki/ica.key").path))
        let store = try ManagementStore(readOnlyPath: target.appendingPathComponent("rampart.sqlite").path)
        #expect(try store.setting("server-uid") == "server-primary")
        #expect(try store.allObjects().filter { $0.type == .checkpointHost }.count == 2)
    }

    /// A refused import into a directory that existed removes the lock file it made, and nothing else.
    @Test func aRefusedImportLeavesAnExistingDirectoryAsItWas() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let file = scratch.path("export.json")
        _ = try Migration.export(dataDirectory: node.url, to: file, serverName: "primary", settingKeys: [], nowMilliseconds: 1)
        let target = scratch.path("secondary")
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: target.appendingPathComponent("ha.json"))
        #expect(
            refusalCode {
                _ = try Migration.importExport(Migration.ImportOptions(file: file, dataDirectory: target, nowMilliseconds: 1), raiseEpoch: raiseEpoch)
            }
                == "target-not-empty")
        #expect(try FileManager.default.contentsOfDirectory(atPath: target.path) == ["ha.json"], "no rampart.lock left behind")
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
        // The monotonic clock moves 100 ms between the start and the end; the wall clock plays no part.
        let base = ContinuousClock.now
        var readings = 0
        let monotonicNow = { () -> ContinuousClock.Instant in
            defer { readings += 1 }
            return base + .milliseconds(100 * readings)
        }
        _ = try BackupStatus.recording(dataDirectory: node.url, scheduled: true, nowMilliseconds: 5_000, monotonicNow: monotonicNow) { try node.backup() }
        let ok = try #require(BackupStatus.load(dataDirectory: node.url))
        #expect(ok.result == "succeeded" && ok.sizeBytes ?? 0 > 0 && ok.lastScheduledMilliseconds == 5_000 && ok.durationMilliseconds == 100)
        _ = try? BackupStatus.recording(dataDirectory: node.url, scheduled: false, nowMilliseconds: 9_000) {
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
            scheduled.append(
                try Backups.create(
                    Backups.CreateOptions(
                        dataDirectory: node.url, serverName: "primary", scheduled: true,
                        nowMilliseconds: 1_700_000_000_000 + Int64(index) * 1_000)
                ).url)
        }
        let manual = try node.backup(now: 1_600_000_000_000).url
        #expect(
            Backups.pruneScheduled(
                in: node.url.appendingPathComponent("backups"), schedule: BackupSchedule(everyHours: 1, retention: 2),
                serverName: "primary"
            ).isEmpty)
        let left = Set(Backups.list(in: node.url.appendingPathComponent("backups")).map(\.url))
        #expect(left == Set([manual] + scheduled.suffix(2)), "the two newest scheduled backups and the manual one stay")
    }
}
