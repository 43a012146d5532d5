import Foundation
import Testing

/// `migrate import` of a live HA group's export, run as an operator would: the import is a new,
/// standalone group and never touches the group it came from; taking the group's place
/// (--as-new-primary) is refused while the group runs.
@Suite("End to end: migrate import beside a live HA group", .serialized, .endToEndSlot)
struct MigrateImportEndToEndTests {
    @Test(
        "an import of the active's export starts a standalone active and leaves the pair untouched; --as-new-primary is refused while the pair runs",
        .timeLimit(.minutes(10)))
    func importBesideALivePair() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        let fixture = group.fixture
        let exportFile = fixture.scratch.path("group-export.json")
        let exported = try await fixture.rampart(["migrate", "export", exportFile, "--data", group.data("primary"), "--json"])
        try #require(exported.status == 0, "\(exported)")

        // Taking the group's place while it runs is refused, and creates nothing.
        let takeover = fixture.scratch.path("takeover")
        let refused = try await fixture.rampart(["migrate", "import", exportFile, "--data", takeover, "--as-new-primary", "--json"])
        #expect(try refused.status == 1 && refused.json().string("code") == "ha-group-alive", "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: takeover))

        // The plain import: the exporting server's name is the group's, so the operator is told to pick one.
        let copy = fixture.scratch.path("copy")
        var imported = try await fixture.rampart(["migrate", "import", exportFile, "--data", copy])
        #expect(imported.status == 1 && imported.stderr.contains("server-name-taken") && imported.stderr.contains("--server-name"), "\(imported)")
        if imported.status != 0 {
            imported = try await fixture.rampart(["migrate", "import", exportFile, "--data", copy, "--server-name", "lab"])
        }
        try #require(imported.status == 0, "\(imported)")
        // Started with the command it prints.
        let printed = try #require(imported.stdout.split(separator: "\n").first { $0.hasPrefix("start it with: rampart server ") }, "\(imported)")
        let words = printed.dropFirst("start it with: rampart server ".count).split(separator: " ").map(String.init)
        try #require(words.count >= 2 && words[0] == "--data" && words[1] == copy, "\(printed)")
        let name = try #require(words.firstIndex(of: "--server-name").map { words[$0 + 1] })
        let importedServer = try await ServerProcess.start(
            dataDirectory: copy, logName: "imported", extraArguments: Array(words.dropFirst(2)),
            createsAdminPassword: false)
        defer { importedServer.kill() }

        // A standalone active: writes on, no peers, its own Internal CA; it has registered and recorded itself.
        #expect(
            try await group.eventually {
                let status = try await fixture.rampart(["ha", "status", "--data", copy, "--json"]).json()
                return status.string("mode") == "active" && status["writes-enabled"] as? Bool == true && status.objects("servers").isEmpty
            }, "\(importedServer.logTail)")
        #expect(
            try await group.eventually {
                let own = try await fixture.rampart(["mgmt", "show-checkpoint-host", "name=\(name)", "-r", "true", "--data", copy, "--format", "json"])
                return ((try? own.json())?.string("rampart-sic-address") ?? "").contains(":")
            }, "\(importedServer.logTail)")
        #expect(try await fixture.rampart(["mgmt", "add-host", "name=in-the-copy", "ip-address=192.0.2.77", "-r", "true", "--data", copy]).status == 0)
        let groupCA = try String(contentsOfFile: group.data("primary") + "/pki/ica.pem", encoding: .utf8)
        #expect(try String(contentsOfFile: copy + "/pki/ica.pem", encoding: .utf8) != groupCA, "a new Internal CA")

        // The pair is untouched: the active still takes writes, the standby follows, neither is in collision.
        #expect(try await group.addHost("after-import", on: "primary").status == 0)
        #expect(try await group.eventually { try await group.hasHost("after-import", on: "mgmt-b") }, "\(group.haLog("mgmt-b"))")
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["primary"])
        #expect(try await group.eventually { try await group.isHealthy("primary") }, "\(group.haLog("primary"))")
        #expect(try await group.eventually { try await group.isHealthy("mgmt-b") }, "\(group.haLog("mgmt-b"))")
        #expect(try await group.status("primary").object("epoch")?.int("term") == 1, "no epoch was raised in the pair")
        #expect(!(try await group.hasHost("in-the-copy", on: "primary")))
        #expect(!importedServer.log.contains("HA channel up"), "\(importedServer.logTail)")
        _ = try await importedServer.stop()
    }
}
