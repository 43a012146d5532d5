import Foundation
import Testing

/// Clients follow a failover: every server's Web API certificate is issued by the group's Internal CA,
/// so an HTTPS client that trusts only the primary's pki/ica.pem (curl --cacert, Ansible's CA path)
/// verifies the secondary, before and after its promotion.
@Suite("End to end: one CA for every server's Web API", .serialized, .endToEndSlot)
struct APICertificateEndToEndTests {
    @Test(
        "a client trusting only the primary's ica.pem, hostname check on, verifies the secondary's API before and after promotion",
        .timeLimit(.minutes(10)))
    func clientFollowsAFailover() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        let fixture = group.fixture
        let groupCA = group.data("primary") + "/pki/ica.pem"
        let password = try String(contentsOfFile: fixture.passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(try await group.addHost("before-promotion", on: "primary").status == 0)
        #expect(try await group.eventually { try await group.hasHost("before-promotion", on: "mgmt-b") })

        // Before the promotion: the standby serves reads to the same client.
        let secondaryPort = group.server("mgmt-b").port
        let before = try await APIClient.with(caFile: groupCA, port: secondaryPort) { client -> Int in
            let sid = try await client.login(user: "admin", password: password)
            return try await client.call("show-host", ["name": "before-promotion"], sid: sid).status
        }
        #expect(before == 200)
        #expect(FileManager.default.fileExists(atPath: group.data("mgmt-b") + "/pki/ica.key"), "the secondary received the CA's key when it joined")
        #expect(!FileManager.default.fileExists(atPath: group.data("mgmt-b") + "/api-tls"), "no node-local CA")

        // After the promotion: the same client, unchanged, publishes on the new active.
        #expect(try await group.ha(["promote"], on: "mgmt-b").status == 0)
        let after = try await APIClient.with(caFile: groupCA, port: secondaryPort) { client -> (Int, Int) in
            let sid = try await client.login(user: "admin", password: password)
            let added = try await client.call("add-host", ["name": "after-promotion", "ip-address": "192.0.2.44"], sid: sid)
            return (added.status, try await client.call("publish", [:], sid: sid).status)
        }
        #expect(after == (200, 200))
        // And it still verifies the old active, now a standby.
        let oldActive = try await APIClient.with(caFile: groupCA, port: group.server("primary").port) { client -> Int in
            try await client.call("show-api-versions").status
        }
        #expect(oldActive == 200)
        // A restarted secondary keeps a certificate of the group's CA (loaded, or reissued from the key it holds).
        _ = try await group.server("mgmt-b").stop()
        try await group.start("mgmt-b")
        let restarted = try await APIClient.with(caFile: groupCA, port: group.server("mgmt-b").port) { client -> Int in
            try await client.call("show-api-versions").status
        }
        #expect(restarted == 200)
    }
}
