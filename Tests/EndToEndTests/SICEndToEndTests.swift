import Foundation
import Testing

/// SIC between real processes: a server, and a node enrolled with `rampart sic enroll`.
@Suite("End to end: SIC enrolment and mutual TLS", .serialized, .endToEndSlot)
struct SICEndToEndTests {
    @Test("a node enrols with a one-time key, talks mutual TLS, and is refused after a reset", .timeLimit(.minutes(10)))
    func enrolTalkReset() async throws {
        let fixture = try EndToEndTests.Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server-sic")
        defer { server.kill() }
        let sicPort = try #require(server.sicPort)
        let node = fixture.scratch.path("node")
        let rightKey = fixture.scratch.path("right.key")
        let wrongKey = fixture.scratch.path("wrong.key")
        FileManager.default.createFile(atPath: rightKey, contents: Data("activate-mgmt-b-2026\n".utf8), attributes: [.posixPermissions: 0o600])
        FileManager.default.createFile(atPath: wrongKey, contents: Data("not-the-right-key\n".utf8), attributes: [.posixPermissions: 0o600])
        try await fixture.mgmtJSON(["add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.2", "one-time-password-file=\(rightKey)"] + fixture.asRoot)

        let status = try await fixture.rampart(["sic", "status", "--data", fixture.data])
        #expect(status.status == 1, "a peer that has not enrolled is reported as a problem: \(status)")
        #expect(status.stdout.contains("uninitialized"))

        func enrol(_ keyFile: String, into directory: String) async throws -> CLIResult {
            try await fixture.rampart([
                "sic", "enroll", "--data", directory, "--server", "127.0.0.1:\(sicPort)", "--name", "mgmt-b",
                "--activation-key-file", keyFile,
            ])
        }
        let wrong = try await enrol(wrongKey, into: node)
        #expect(wrong.status == 1 && wrong.stderr.contains("activation key is wrong"), "\(wrong)")
        #expect(!FileManager.default.fileExists(atPath: node + "/pki/node.pem"))

        let enrolled = try await enrol(rightKey, into: node)
        #expect(enrolled.status == 0 && enrolled.stdout.contains("Enrolled as mgmt-b"), "\(enrolled)")
        let keyMode = try FileManager.default.attributesOfItem(atPath: node + "/pki/node.key")[.posixPermissions] as? NSNumber
        #expect(keyMode?.intValue == 0o600)

        let reused = try await enrol(rightKey, into: fixture.scratch.path("node-copy"))
        #expect(reused.status == 1 && reused.stderr.contains("already used"), "\(reused)")

        let test = try await fixture.rampart(["sic", "test", "--data", node, "--server", "127.0.0.1:\(sicPort)"])
        #expect(test.status == 0 && test.stdout.contains("communicating: mutual TLS with primary"), "\(test)")
        let after = try await fixture.rampart(["sic", "status", "--data", fixture.data, "--json"])
        #expect(after.status == 0 && after.stdout.contains("\"sic-status\":\"communicating\""), "\(after)")

        let peerView = try await fixture.rampart(["sic", "test", "mgmt-b", "--data", fixture.data])
        #expect(peerView.status == 0 && peerView.stdout.contains("mgmt-b: communicating"), "\(peerView)")

        // Renewal over the trusted channel: a new key and serial; the old certificate is superseded.
        let oldCertificate = try String(contentsOfFile: node + "/pki/node.pem", encoding: .utf8)
        let renew = try await fixture.rampart(["sic", "renew", "--data", node, "--server", "127.0.0.1:\(sicPort)"])
        #expect(renew.status == 0 && renew.stdout.contains("renewed: serial"), "\(renew)")
        #expect(try String(contentsOfFile: node + "/pki/node.pem", encoding: .utf8) != oldCertificate)
        let afterRenewal = try await fixture.rampart(["sic", "test", "--data", node, "--server", "127.0.0.1:\(sicPort)"])
        #expect(afterRenewal.status == 0, "\(afterRenewal)")

        let reset = try await fixture.rampart(["sic", "reset", "mgmt-b", "--data", fixture.data])
        #expect(reset.status == 0 && reset.stdout.contains("New one-time activation key"), "\(reset)")
        let refused = try await fixture.rampart(["sic", "test", "--data", node, "--server", "127.0.0.1:\(sicPort)"])
        #expect(refused.status == 1 && refused.stdout.contains("refused our certificate"), "\(refused)")
        #expect(server.log.contains("has been revoked"), "the server's log names the cause")
    }
}
