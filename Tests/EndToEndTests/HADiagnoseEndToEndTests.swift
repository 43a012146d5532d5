import Foundation
import Testing

/// `rampart ha diagnose` on a real pair: healthy (exit 0), then HA stopped, a stopped standby and a
/// collision, each named with its cause and its fix command (exit 1).
@Suite("End to end: ha diagnose", .serialized)
struct HADiagnoseEndToEndTests {
    /// `ha diagnose --json` on `name`: its exit status and findings by code.
    static func diagnose(_ group: HAGroup, on name: String) async throws -> (status: Int32, findings: [String: [String: Any]], result: CLIResult) {
        let result = try await group.ha(["diagnose", "--json"], on: name)
        let findings = (try? result.json())?.objects("findings") ?? []
        var byCode: [String: [String: Any]] = [:]
        for finding in findings { byCode[finding.string("code") ?? "?"] = finding }
        return (result.status, byCode, result)
    }

    @Test("healthy exits 0; failed backup, HA stopped, standby down, collision, revoked peer: each named with its fix", .timeLimit(.minutes(10)))
    func diagnosePair() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")

        // Healthy: both servers say so (clock and version facts arrive with the first messages).
        for name in ["primary", "mgmt-b"] {
            let healthy = try await group.eventually { try await group.ha(["diagnose"], on: name).status == 0 }
            let text = try await group.ha(["diagnose"], on: name)
            #expect(healthy && text.stdout.hasPrefix("no problems found"), "\(text)")
            #expect(text.stdout.contains("TCP connect ok") && text.stdout.contains("disk:"), "\(text)")
        }

        // A backup that failed (its destination is a file): named with its cause, until one succeeds.
        let notADirectory = group.fixture.scratch.path("not-a-directory")
        FileManager.default.createFile(atPath: notADirectory, contents: Data("x".utf8))
        #expect(try await group.fixture.rampart(["backup", "create", "--to", notADirectory, "--data", group.data("primary")]).status != 0)
        let failedBackup = try await Self.diagnose(group, on: "primary")
        #expect(failedBackup.status == 1 && Set(failedBackup.findings.keys) == ["backup-failed"], "\(failedBackup.result)")
        #expect(failedBackup.findings["backup-failed"]?.string("fix-command")?.hasPrefix("rampart backup create --data") == true)
        #expect(try await group.fixture.rampart(["backup", "create", "--data", group.data("primary")]).status == 0)
        #expect(try await group.ha(["diagnose"], on: "primary").status == 0)

        // HA stopped on the standby: the standby and the active both name it and `ha start`.
        #expect(try await group.ha(["stop"], on: "mgmt-b").status == 0)
        let here = try await Self.diagnose(group, on: "mgmt-b")
        #expect(here.status == 1, "\(here.result)")
        #expect(here.findings["ha-stopped"]?.string("fix-command") == "rampart ha start --data \(group.data("mgmt-b"))", "\(here.result)")
        #expect(Set(here.findings.keys) == ["ha-stopped"], "one problem, one finding: \(here.result)")
        var there: CLIResult?
        #expect(
            try await group.eventually {
                let diagnosis = try await Self.diagnose(group, on: "primary")
                there = diagnosis.result
                return diagnosis.findings["ha-stopped"]?.string("summary")?.contains("mgmt-b") == true && diagnosis.findings.count == 1
            }, "\(there.map(String.init(describing:)) ?? "")")
        #expect(try await group.ha(["start"], on: "mgmt-b").status == 0)
        #expect(try await group.eventually { try await group.ha(["diagnose"], on: "primary").status == 0 })

        // The standby stops: the active names its SIC address, the refused connect, and starting it.
        let standbySIC = try #require(group.server("mgmt-b").sicPort)
        _ = try await group.server("mgmt-b").stop()
        var unreachable: [String: Any]?
        #expect(
            try await group.eventually {
                let diagnosis = try await Self.diagnose(group, on: "primary")
                there = diagnosis.result
                unreachable = diagnosis.findings["peer-unreachable"]
                return unreachable?.string("evidence")?.contains("TCP connect: refused") == true
            }, "\(there.map(String.init(describing:)) ?? "")")
        #expect(unreachable?.string("summary") == "mgmt-b is unreachable")
        #expect(unreachable?.string("evidence")?.contains("127.0.0.1:\(standbySIC)") == true, "\(unreachable ?? [:])")
        #expect(unreachable?.string("fix")?.contains("nothing listens") == true)
        #expect(unreachable?.string("fix-command")?.contains("rampart server --data DIR --server-name mgmt-b") == true)
        let text = try await group.ha(["diagnose"], on: "primary")
        #expect(text.status == 1 && text.stdout.contains("problem peer-unreachable: mgmt-b is unreachable"), "\(text)")
        print("ha diagnose on the active, its standby stopped:\n\(text.stdout)")

        // A collision (as in HAPromotionEndToEndTests): the old active names the divergent count and the resolve command.
        try await group.start("mgmt-b")
        #expect(try await group.eventually { try await group.isHealthy("mgmt-b") })
        #expect(try await group.ha(["stop"], on: "mgmt-b").status == 0)
        #expect(try await group.addHost("only-on-old-active", on: "primary").status == 0)
        group.server("primary").kill()
        #expect(try await group.ha(["start"], on: "mgmt-b").status == 0)
        #expect(try await group.ha(["promote", "--force"], on: "mgmt-b").status == 0)
        try await group.start("primary")
        var collision: [String: Any]?
        #expect(
            try await group.eventually {
                let diagnosis = try await Self.diagnose(group, on: "primary")
                there = diagnosis.result
                collision = diagnosis.findings["collision"]
                return collision != nil
            }, "\(there.map(String.init(describing:)) ?? "")")
        #expect(collision?.string("summary")?.contains("1 revision(s)") == true, "\(collision ?? [:])")
        #expect(collision?.string("fix-command")?.contains("rampart ha resolve-collision --keep peer --data \(group.data("primary"))") == true)
        let collisionText = try await group.ha(["diagnose"], on: "primary")
        print("ha diagnose on the old active in collision:\n\(collisionText.stdout)")
        let active = try await Self.diagnose(group, on: "mgmt-b")
        #expect(active.findings["collision"]?.string("summary")?.contains("primary holds") == true, "\(active.result)")

        // SIC broken: the active revokes the old active's certificate; it names the cause and the reset steps.
        let reset = try await group.fixture.rampart(["sic", "reset", "primary", "--data", group.data("mgmt-b")])
        #expect(reset.status == 0, "\(reset)")
        var sic: [String: Any]?
        #expect(
            try await group.eventually {
                let diagnosis = try await Self.diagnose(group, on: "mgmt-b")
                there = diagnosis.result
                sic = diagnosis.findings["sic-broken"]
                return sic != nil
            }, "\(there.map(String.init(describing:)) ?? "")")
        #expect(sic?.string("summary")?.contains("primary's certificate was revoked") == true, "\(sic ?? [:])")
        #expect(sic?.string("fix-command")?.hasPrefix("rampart sic reset primary --data \(group.data("mgmt-b"))") == true, "\(sic ?? [:])")
        #expect(sic?.string("fix-command")?.contains("--join 127.0.0.1:") == true, "\(sic ?? [:])")
        print("ha diagnose on the active after `sic reset primary`:\n\(try await group.ha(["diagnose"], on: "mgmt-b").stdout)")
    }
}
