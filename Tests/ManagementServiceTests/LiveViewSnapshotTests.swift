import Foundation
import HACore
import ManagementModel
import Testing

@testable import ManagementService

/// `show-live-view`, the one answer `rampart view` draws from: the recent events ring (bounded), the
/// time this server has held its mode, and a snapshot that reads back as it was sent.
@Suite("show-live-view: the snapshot of rampart view")
struct LiveViewSnapshotTests {
    static func stateChanged(_ server: String, _ role: HARole, term: UInt64) -> ManagementEvent {
        .haStateChanged(
            HAStateChanged(
                server: ServerID(server), role: role, epoch: Epoch(term: term, server: ServerID(server)), activeServer: ServerID(server),
                writesEnabled: role == .active, reason: "test"))
    }

    @Test("the ring keeps the last events only, oldest first")
    func ringIsBounded() {
        let recent = RecentEvents(entriesMax: 3)
        for number in 1...5 { recent.record(Self.stateChanged("mgmt-a", .active, term: 1), sequence: UInt64(number), atMilliseconds: 0, localServer: "mgmt-a") }
        #expect(recent.entries.map(\.sequence) == [3, 4, 5])
        #expect(recent.entries.first?.kind == "ha-state-changed")
    }

    @Test("the mode is held since its last change of role or epoch on this server; a peer's change or a repeat does not reset it")
    func modeSince() {
        let recent = RecentEvents()
        #expect(recent.modeSinceMilliseconds == nil)
        recent.record(Self.stateChanged("mgmt-a", .standby, term: 1), sequence: 1, atMilliseconds: 1_000, localServer: "mgmt-a")
        recent.record(Self.stateChanged("mgmt-a", .standby, term: 1), sequence: 2, atMilliseconds: 2_000, localServer: "mgmt-a")
        recent.record(Self.stateChanged("mgmt-b", .active, term: 2), sequence: 3, atMilliseconds: 3_000, localServer: "mgmt-a")
        #expect(recent.modeSinceMilliseconds == 1_000)
        recent.record(Self.stateChanged("mgmt-a", .standby, term: 2), sequence: 4, atMilliseconds: 4_000, localServer: "mgmt-a")
        #expect(recent.modeSinceMilliseconds == 4_000, "a new epoch")
        recent.record(Self.stateChanged("mgmt-a", .active, term: 2), sequence: 5, atMilliseconds: 5_000, localServer: "mgmt-a")
        #expect(recent.modeSinceMilliseconds == 5_000, "a new role")
    }

    @Test("show-live-view answers sessions, publishes and events, and reads back as sent")
    func snapshotOverTheAPI() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        h.service.recentEvents.record(Self.stateChanged("mgmt-a", .active, term: 1), sequence: 1, atMilliseconds: 7, localServer: "mgmt-a")
        _ = try await h.ok("add-host", ["name": "h1", "ip-address": "192.0.2.1"], sid: sid)
        _ = try await h.ok("publish", sid: sid)
        let json = try await h.ok("show-live-view", sid: sid)
        let snapshot = try LiveViewSnapshot(json: json)
        #expect(snapshot.ha.rampartHA == "not-configured")
        #expect(snapshot.sessions == 1)
        #expect(snapshot.publishesTotal == 1 && snapshot.publishNanosecondsTotal > 0)
        #expect(snapshot.events.map(\.kind) == ["ha-state-changed"])
        #expect(snapshot.modeSinceMilliseconds == 7)
        #expect(try LiveViewSnapshot(json: JSONValueEncoder.encode(snapshot)) == snapshot)
    }
}
