import Foundation
import Testing

/// `rampart sic reset` between real processes: the reset server is cut off at once — its channel
/// closes, no revision reaches it after, its status says revoked — and after a promotion the new
/// active resets the old one.
@Suite("End to end: SIC reset cuts a server off", .serialized, .endToEndSlot)
struct SICResetEndToEndTests {
    @Test(
        "reset a standby: its channel closes, nothing more reaches it, its status says revoked; after a promotion the new active resets the old one",
        .timeLimit(.minutes(10)))
    func resetCutsOffAndWorksFromEveryActive() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        try await group.join("mgmt-c")
        let fixture = group.fixture

        // Reset mgmt-c on the active: within a bound its channels are gone and it hears nothing more.
        let reset = try await fixture.rampart(["sic", "reset", "mgmt-c", "--data", group.data("primary")])
        try #require(reset.status == 0, "\(reset)")
        #expect(
            try await group.eventually(seconds: 10) {
                let peers = try await group.status("mgmt-c").objects("servers")
                return !peers.isEmpty && peers.allSatisfy { $0["connected"] as? Bool == false }
            }, "mgmt-c still has an HA channel: \(group.haLog("mgmt-c"))")
        #expect(try await group.addHost("after-reset", on: "primary").status == 0)
        #expect(try await group.eventually { try await group.hasHost("after-reset", on: "mgmt-b") })
        let headB = try #require(try await group.head("mgmt-b"))
        // mgmt-b holds the revision; give mgmt-c every chance to redial and be refused, then it must not hold it.
        #expect(
            try await group.eventually {
                group.server("primary").log.contains("SIC connection refused") || group.server("mgmt-c").log.contains("revoked")
            }, "\(group.haLog("mgmt-c"))")
        #expect(!(try await group.hasHost("after-reset", on: "mgmt-c")), "a revision published after the reset reached the revoked server")
        #expect(try await group.head("mgmt-c") ?? 0 < headB)
        // Its status says revoked: sic status and test-sic-status on the active.
        let sic = try await fixture.rampart(["sic", "status", "--data", group.data("primary")])
        #expect(sic.status == 1 && sic.stdout.contains("mgmt-c  127.0.0.1  uninitialized (revoked)") && sic.stdout.contains("Revoked:"), "\(sic)")
        let tested = try await fixture.rampart(["sic", "test", "mgmt-c", "--data", group.data("primary")])
        #expect(tested.status == 1 && tested.stdout.contains("Revoked:"), "\(tested)")

        // Promote mgmt-b; from there, reset the old active. Its serial is known to the new active.
        #expect(try await group.ha(["promote"], on: "mgmt-b").status == 0)
        #expect(try await group.eventually { try await group.hasHost("after-reset", on: "mgmt-b") })
        let resetOld = try await fixture.rampart(["sic", "reset", "primary", "--data", group.data("mgmt-b")])
        #expect(resetOld.status == 0, "\(resetOld)")
        #expect(
            try await group.eventually(seconds: 10) {
                try await group.status("primary").objects("servers").allSatisfy { $0["connected"] as? Bool == false }
            }, "\(group.haLog("primary"))")
        #expect(try await group.addHost("after-second-reset", on: "mgmt-b").status == 0)
        let status = try await fixture.rampart(["mgmt", "test-sic-status", "name=primary", "--format", "json"] + group.asRoot("mgmt-b"))
        #expect(((try? status.json())?.string("sic-message") ?? "").hasPrefix("Revoked"), "\(status)")
        #expect(!(try await group.hasHost("after-second-reset", on: "primary")))
    }
}
