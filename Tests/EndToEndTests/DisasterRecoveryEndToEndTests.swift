import Foundation
import Testing

/// The README runbook "Both servers fail", with real processes: a backup of an HA pair's active,
/// both servers lost, the backup restored as the new primary in a raised epoch, a new secondary added.
@Suite("End to end: both servers fail", .serialized, .endToEndSlot)
struct DisasterRecoveryEndToEndTests {
    typealias Fixture = EndToEndTests.Fixture

    func eventually(seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Bool {
        try await pollUntil(seconds: seconds, condition)
    }

    func showHost(_ name: String, on directory: String, _ fixture: Fixture) async throws -> Bool {
        try await fixture.rampart(["mgmt", "show-host", "name=\(name)", "-r", "true", "--data", directory]).status == 0
    }

    func join(_ fixture: Fixture, directory: String, key: String, sicPort: Int, logName: String) async throws -> ServerProcess {
        let keyFile = fixture.scratch.path("\(logName).key")
        FileManager.default.createFile(atPath: keyFile, contents: Data((key + "\n").utf8), attributes: [.posixPermissions: 0o600])
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return try await ServerProcess.start(
            dataDirectory: directory, logName: logName,
            extraArguments: ["--server-name", "mgmt-b", "--join", "127.0.0.1:\(sicPort)", "--activation-key-file", keyFile],
            createsAdminPassword: false)
    }

    @Test(
        "restore as the new primary: refused while the group works, then a primary in a raised epoch that takes a new secondary",
        .timeLimit(.minutes(15)))
    func bothServersFail() async throws {
        let fixture = try Fixture()
        let primary = try await ServerProcess.start(dataDirectory: fixture.data, logName: "old-primary")
        defer { primary.kill() }
        try await fixture.mgmtJSON(
            ["add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1", "one-time-password-file=\(secretFile("first-key-mgmt-b", in: fixture.scratch))"]
                + fixture.asRoot)
        let secondaryData = fixture.scratch.path("old-secondary")
        let secondary = try await join(
            fixture, directory: secondaryData, key: "first-key-mgmt-b", sicPort: try #require(primary.sicPort), logName: "old-secondary")
        defer { secondary.kill() }
        #expect(try await eventually { try await fixture.rampart(["ha", "status", "--data", secondaryData]).status == 0 }, "\(secondary.logTail)")
        try await fixture.mgmtJSON(["add-host", "name=in-backup", "ip-address=192.0.2.20"] + fixture.asRoot)
        // The active records mgmt-b's SIC address; the backup carries it, so a restore can probe it.
        #expect(
            try await eventually {
                let shown = try await fixture.rampart(["mgmt", "show-checkpoint-host", "name=mgmt-b", "-r", "true", "--data", fixture.data, "--format", "json"])
                return shown.status == 0 && ((try? shown.json())?["rampart-sic-address"] as? String ?? "").contains(":")
            })
        let oldStatus = try await fixture.rampart(["ha", "status", "--data", fixture.data, "--json"]).json()
        let oldTerm = try #require(oldStatus.object("epoch")?.int("term"))

        let backup = try await fixture.rampart(["backup", "create", "--data", fixture.data, "--json"])
        try #require(backup.status == 0, "\(backup)")
        let file = try #require(backup.json().string("file"))
        #expect(try backup.json().object("manifest")?["group-peers"] as? [String] == ["mgmt-b"])

        let newData = fixture.scratch.path("new-primary")
        // A plain restore of a group member is refused: a lost member is rebuilt as a standby.
        let plain = try await fixture.rampart(["backup", "restore", file, "--data", newData, "--json"])
        #expect(try plain.status == 1 && plain.json().string("code") == "ha-member", "\(plain)")
        // While mgmt-b still works, even --as-new-primary is refused: it would split the group.
        let alive = try await fixture.rampart(["backup", "restore", file, "--data", newData, "--as-new-primary", "--json"])
        #expect(try alive.status == 1 && alive.json().string("code") == "ha-group-alive", "\(alive)")
        #expect(!FileManager.default.fileExists(atPath: newData + "/rampart.sqlite"))

        // Both servers fail.
        primary.kill()
        secondary.kill()
        _ = try await primary.record.wait(seconds: 30)
        _ = try await secondary.record.wait(seconds: 30)

        let restored = try await fixture.rampart(["backup", "restore", file, "--data", newData, "--as-new-primary", "--json"])
        try #require(restored.status == 0, "\(restored)")
        let newTerm = try #require(restored.json().int("epoch-term"))
        #expect(newTerm > oldTerm)
        let newPrimary = try await ServerProcess.start(
            dataDirectory: newData, logName: "new-primary", extraArguments: ["--server-name", "primary"],
            createsAdminPassword: false)
        defer { newPrimary.kill() }
        #expect(
            try await eventually {
                let status = try await fixture.rampart(["ha", "status", "--data", newData, "--json"]).json()
                return status.string("mode") == "active" && status["writes-enabled"] as? Bool == true && status.object("epoch")?.int("term") == newTerm
            }, "\(newPrimary.logTail)")
        #expect(try await showHost("in-backup", on: newData, fixture))
        try await fixture.mgmtJSON(["add-host", "name=after-disaster", "ip-address=192.0.2.21"] + ["-r", "true", "--data", newData])

        // Then a new secondary: a new one-time key for mgmt-b, and a fresh machine joins with it.
        let reset = try await fixture.rampart(["sic", "reset", "mgmt-b", "--data", newData])
        try #require(reset.status == 0, "\(reset)")
        let key = try #require(reset.stdout.components(separatedBy: "(shown once): ").last?.trimmingCharacters(in: .whitespacesAndNewlines))
        let newSecondaryData = fixture.scratch.path("new-secondary")
        let newSecondary = try await join(fixture, directory: newSecondaryData, key: key, sicPort: try #require(newPrimary.sicPort), logName: "new-secondary")
        defer { newSecondary.kill() }
        #expect(try await eventually { try await showHost("after-disaster", on: newSecondaryData, fixture) }, "\(newSecondary.logTail)")
        #expect(try await eventually { try await fixture.rampart(["ha", "status", "--data", newData]).status == 0 })
        _ = try await newSecondary.stop()
        _ = try await newPrimary.stop()
    }
}
