import Foundation
import Testing

/// A restore from a backup older than the group's last promotions: the gateways have seen a higher
/// epoch than the backup can know of. The refused install says the exact fix, and the fix works.
@Suite("End to end: restore below the gateways' epoch", .serialized, .endToEndSlot)
struct RestoreEpochEndToEndTests {
    @Test(
        "an old backup restored as the new primary: the gateway's refusal names --epoch-term N; restored again with it, installs succeed",
        .timeLimit(.minutes(15)))
    func oldBackupBelowTheGatewaysEpoch() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        let keyFile = try await group.addGateway("gw-1")
        let agent = try group.startAgent("gw-1", keyFile: keyFile)
        defer { agent.kill() }
        #expect(try await group.eventually { try await group.gatewayState("gw-1", on: "primary") == "ok" }, "\(agent.logTail)")
        let fixture = group.fixture
        let backup = try await fixture.rampart(["backup", "create", "--data", group.data("primary"), "--json"])
        try #require(backup.status == 0, "\(backup)")
        let file = try #require(try backup.json().string("file"))

        // After the backup: a switchover to mgmt-b and back (epochs 2 and 3); the gateway installs in epoch 3.
        #expect(try await group.ha(["promote"], on: "mgmt-b").status == 0)
        #expect(try await group.eventually { try await group.isHealthy("primary") }, "\(group.haLog("primary"))")
        #expect(try await group.ha(["promote"], on: "primary").status == 0)
        #expect(try await group.eventually { try await group.gatewayState("gw-1", on: "primary") == "ok" }, "\(agent.logTail)")
        let installed = try await group.install(["gw-1"], on: "primary")
        #expect(installed.task?.string("status") == "succeeded", "\(installed.result)")
        let term = try #require(try await group.status("primary").object("epoch")?.int("term"))
        #expect(term == 3)

        // Both servers are lost; the backup (epoch 1) is restored as the new primary, on the old primary's SIC port.
        let sicPort = try #require(group.server("primary").sicPort)
        group.server("primary").kill()
        group.server("mgmt-b").kill()
        _ = try await group.server("primary").record.wait(seconds: 30)
        _ = try await group.server("mgmt-b").record.wait(seconds: 30)
        let restoredData = fixture.scratch.path("restored")
        let restored = try await fixture.rampart(["backup", "restore", file, "--data", restoredData, "--as-new-primary", "--json"])
        try #require(restored.status == 0, "\(restored)")
        #expect(try restored.json().int("epoch-term") == 2, "the backup knows of epoch 1 only")
        var server = try await ServerProcess.start(
            dataDirectory: restoredData, logName: "restored",
            extraArguments: ["--server-name", "primary", "--sic-port", String(sicPort)], createsAdminPassword: false)
        defer { server.kill() }
        let asRoot = ["-r", "true", "--data", restoredData]
        #expect(
            try await group.eventually {
                let shown = try await fixture.rampart(["mgmt", "show-simple-gateway", "name=gw-1", "--format", "json"] + asRoot)
                return (try? shown.json())?.object("gateway-status")?.string("state") == "ok"
            }, "\(agent.logTail)")
        let refused = try await fixture.rampart(["mgmt", "install-policy", "policy-package=Standard", "targets.1=gw-1", "--format", "json"] + asRoot)
        let description = taskDetail((try? refused.json())?.objects("tasks").first, gateway: "gw-1")?.string("statusDescription") ?? ""
        #expect(description.contains("refused: gateway has seen epoch 3/primary") && description.contains("--epoch-term 3"), "\(refused)")

        // The fix it names: restore again above the gateway's term.
        _ = try await server.stop()
        let again = try await fixture.rampart([
            "backup", "restore", file, "--data", restoredData, "--as-new-primary", "--replace", "--epoch-term", "3", "--json",
        ])
        try #require(again.status == 0, "\(again)")
        #expect(try again.json().int("epoch-term") == 4)
        server = try await ServerProcess.start(
            dataDirectory: restoredData, preferredPort: server.port, logName: "restored-again",
            extraArguments: ["--server-name", "primary", "--sic-port", String(sicPort)], createsAdminPassword: false)
        #expect(
            try await group.eventually {
                let shown = try await fixture.rampart(["mgmt", "show-simple-gateway", "name=gw-1", "--format", "json"] + asRoot)
                return (try? shown.json())?.object("gateway-status")?.string("state") == "ok"
            }, "\(agent.logTail)")
        let accepted = try await fixture.rampart(["mgmt", "install-policy", "policy-package=Standard", "targets.1=gw-1", "--format", "json"] + asRoot)
        #expect((try? accepted.json())?.objects("tasks").first?.string("status") == "succeeded", "\(accepted)\n\(agent.logTail)")
        _ = try await server.stop()
    }
}
