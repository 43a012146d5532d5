import Foundation
import Testing

/// Issue 18, items 1, 5 and 7 on real processes: a restarted old active takes no write before every
/// peer answered; a paused standby says so and how far behind it is, with the same lag its promotion
/// dry run gives; show-ha-status gives each server's address and last successful sync.
@Suite("End to end: HA restart, paused standby, status fields", .serialized, .endToEndSlot)
struct HARestartEndToEndTests {
    @Test("a restarted old active takes no write while the promoted standby is unreachable", .timeLimit(.minutes(10)))
    func restartedOldActiveWaitsForItsPeer() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")

        // Item 7: the checkpoint-host object's address, and when the peer was last synchronized.
        let peer = try #require(try await group.status("primary").objects("servers").first)
        #expect(peer.string("ip-address") == "127.0.0.1", "\(peer)")
        #expect(peer.object("last-successful-sync")?.string("iso-8601") != nil, "\(peer)")

        // Item 5: a standby whose HA is stopped says so, how far behind it is, and exits 1.
        #expect(try await group.ha(["stop"], on: "mgmt-b").status == 0)
        #expect(try await group.addHost("while-stopped", on: "primary").status == 0)
        let stopped = try await group.eventually {
            let status = try await group.status("mgmt-b")
            return status.string("sync-status") == "ha-stopped" && status.int("lag-revisions") == 1
        }
        let stoppedStatus = try await group.status("mgmt-b")
        #expect(stopped, "\(stoppedStatus)")
        #expect(!(try await group.isHealthy("mgmt-b")), "ha status exits 1 on a paused standby")
        #expect((stoppedStatus["problems"] as? [String])?.contains { $0.contains("rampart ha start") } == true, "\(stoppedStatus)")
        let stoppedDryRun = try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json()
        #expect(stoppedDryRun.int("known-lag-revisions") == 1, "one lag for status and dry run: \(stoppedDryRun)")
        #expect(try await group.ha(["start"], on: "mgmt-b").status == 0)
        #expect(try await group.eventually { try await group.hasHost("while-stopped", on: "mgmt-b") })

        // Item 1: mgmt-b is promoted while the old active is down, then answers nothing (SIGSTOP)
        // while the old active restarts. The old active must not take a write in its stale epoch.
        group.server("primary").kill()
        #expect(
            try await group.eventually {
                try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json().string("path") == "failover"
            })
        let dryRun = try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json()
        let lagInStatus = try await group.status("mgmt-b").int("lag-revisions")
        #expect(dryRun.int("known-lag-revisions") == lagInStatus, "status and dry run disagree: \(String(describing: lagInStatus)) vs \(dryRun)")
        #expect(try await group.ha(["promote", "--force"], on: "mgmt-b").status == 0)
        #expect(try await group.addHost("on-new-active", on: "mgmt-b").status == 0)
        group.server("mgmt-b").pause()
        defer { group.server("mgmt-b").resume() }
        try await group.start("primary")
        for _ in 0..<5 {
            let status = try await group.status("primary")
            #expect(status["writes-enabled"] as? Bool == false, "the restarted old active takes writes: \(status)")
            #expect(status.string("writes-refusal")?.contains("waiting for mgmt-b") == true, "\(status)")
            try await Task.sleep(for: .milliseconds(300))
        }
        let refused = try await group.addHost("stale-write", on: "primary")
        #expect(refused.status != 0, "a publish on the restarted old active succeeded: \(refused)")
        #expect(!(try await group.isHealthy("primary")))
        let promote = try await group.ha(["promote"], on: "primary")
        #expect(promote.status != 0 && (promote.stdout + promote.stderr).contains("force"), "\(promote)")

        group.server("mgmt-b").resume()
        #expect(
            try await group.eventually { try await group.status("primary").string("mode") == "standby" },
            "the old active never stepped down:\n\(group.haLog("primary"))")
        #expect(try await group.eventually { try await group.hasHost("on-new-active", on: "primary") })
        #expect(try await group.writers(["primary", "mgmt-b"]) == ["mgmt-b"], "never two actives")
        #expect(!(try await group.hasHost("stale-write", on: "mgmt-b")))
    }
}
