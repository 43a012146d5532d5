import Foundation
import Testing

/// Management HA between real processes on loopback: a primary, and a secondary that joins it with a
/// one-time key, gets a full sync, follows by delta sync, stays read-only, and catches up after a restart.
@Suite("End to end: management HA (join, sync, read-only standby)", .serialized, .endToEndSlot)
struct HAEndToEndTests {
    @Test("a secondary joins, is synchronized, follows publishes, refuses writes, and catches up after a restart", .timeLimit(.minutes(10)))
    func joinSyncReadOnlyRestart() async throws {
        let fixture = try EndToEndTests.Fixture()
        let primary = try await ServerProcess.start(dataDirectory: fixture.data, logName: "ha-primary")
        defer { primary.kill() }
        let sicPort = try #require(primary.sicPort)
        try await fixture.mgmtJSON(
            ["add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1", "one-time-password-file=\(secretFile("activate-mgmt-b-2026", in: fixture.scratch))"]
                + fixture.asRoot)
        try await fixture.mgmtJSON(["add-host", "name=before-join", "ip-address=192.0.2.10"] + fixture.asRoot)

        let keyFile = fixture.scratch.path("mgmt-b.key")
        FileManager.default.createFile(atPath: keyFile, contents: Data("activate-mgmt-b-2026\n".utf8), attributes: [.posixPermissions: 0o600])
        let secondaryData = fixture.scratch.path("secondary")
        try FileManager.default.createDirectory(atPath: secondaryData, withIntermediateDirectories: true)
        let joinArguments = ["--server-name", "mgmt-b", "--join", "127.0.0.1:\(sicPort)", "--activation-key-file", keyFile]
        var secondary = try await ServerProcess.start(
            dataDirectory: secondaryData, logName: "ha-secondary", extraArguments: joinArguments,
            createsAdminPassword: false)
        defer { secondary.kill() }
        #expect(!FileManager.default.fileExists(atPath: secondaryData + "/initial-admin-password"), "a secondary has no administrator of its own")

        // Full sync: both report synchronized; the secondary holds what was published before it joined.
        #expect(
            try await eventually { try await fixture.rampart(["ha", "status", "--data", secondaryData]).status == 0 },
            "the secondary never became synchronized; its log:\n\(secondary.logTail)")
        #expect(try await eventually { try await fixture.rampart(["ha", "status", "--data", fixture.data]).status == 0 })
        let status = try await fixture.rampart(["ha", "status", "--data", secondaryData, "--json"])
        let statusJSON = try status.json()
        #expect(
            statusJSON.string("role") == "secondary" && statusJSON.string("mode") == "standby" && statusJSON.string("active-server") == "primary", "\(status)")
        #expect(try await showHost("before-join", on: secondaryData, fixture) == true)
        let sic = try await fixture.rampart(["sic", "status", "--data", fixture.data])
        #expect(sic.status == 0 && sic.stdout.contains("communicating"), "the HA channel counts as SIC contact: \(sic)")

        // Delta sync: a publish on the primary becomes visible on the secondary.
        try await fixture.mgmtJSON(["add-host", "name=after-join", "ip-address=192.0.2.11"] + fixture.asRoot)
        #expect(
            try await eventually { try await showHost("after-join", on: secondaryData, fixture) },
            "the publish never reached the secondary; its log:\n\(secondary.logTail)")

        // Read-only standby: a login works and says so; a change is refused naming the active.
        let login = try await fixture.rampart([
            "mgmt", "login", "-u", "admin", "--password-file", fixture.passwordFile,
            "--data", secondaryData, "--format", "json",
        ])
        #expect(login.status == 0 && login.stdout.contains("\"standby\""), "\(login)")
        #expect((try? login.json())?["standby"] as? Bool == true, "\(login)")
        let refused = try await fixture.rampart(["mgmt", "add-host", "name=on-standby", "ip-address=192.0.2.12", "-r", "true", "--data", secondaryData])
        let refusal = refused.stdout + refused.stderr
        #expect(refused.status != 0 && refusal.contains("generic_err_no_permissions") && refusal.contains("active server primary at 127.0.0.1"), "\(refused)")

        // Restart: publishes made while the secondary was down arrive by delta sync.
        _ = try await secondary.stop()
        try await fixture.mgmtJSON(["add-host", "name=while-down", "ip-address=192.0.2.13"] + fixture.asRoot)
        secondary = try await ServerProcess.start(
            dataDirectory: secondaryData, logName: "ha-secondary-restart",
            extraArguments: ["--server-name", "mgmt-b"], createsAdminPassword: false)
        #expect(
            try await eventually { try await showHost("while-down", on: secondaryData, fixture) },
            "the restarted secondary did not catch up; its log:\n\(secondary.logTail)")
        #expect(!secondary.log.contains("full sync from primary"), "it caught up by delta sync, not a new full sync")
        #expect(try await eventually { try await fixture.rampart(["ha", "status", "--data", secondaryData]).status == 0 })
        _ = try await secondary.stop()
        _ = try await primary.stop()
    }

    /// Whether `name` is a published host on the server in `directory` (read over its local socket).
    func showHost(_ name: String, on directory: String, _ fixture: EndToEndTests.Fixture) async throws -> Bool {
        try await fixture.rampart(["mgmt", "show-host", "name=\(name)", "-r", "true", "--data", directory]).status == 0
    }

    /// Polls `condition` until it holds, at most `seconds` (waits for a state, not a guessed time).
    func eventually(seconds: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
        try await pollUntil(seconds: seconds, condition)
    }
}
