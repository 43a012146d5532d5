import Foundation
import HACore
import Logging
import ManagementModel
import ManagementService
import Store
import Testing

@testable import HARuntime

/// The HA runtime's typed events: state changes and peers' clocks, as the node's event bus carries them.
@Suite("HARuntime: events")
struct HAEventTests {
    static func events(_ bus: EventBus<ManagementEvent>, _ body: () throws -> Void) async throws -> [ManagementEvent] {
        var iterator = try bus.subscribe(bufferedEventsMax: 64).makeAsyncIterator()
        try body()
        bus.finish()
        var events: [ManagementEvent] = []
        while let next = await iterator.next() {
            if case .event(let event, _) = next { events.append(event) }
        }
        return events
    }

    @Test("the state a server starts in, and a demotion (writes off until a standby takes over), are haStateChanged events with the core's reason")
    func stateChanges() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        try publishHost(store, name: "seed")
        let bus = EventBus<ManagementEvent>()
        let events = try await Self.events(bus) {
            let runtime = try HARuntime(
                configuration: HAConfiguration(serverID: "primary", peers: ["mgmt-b"]), store: store, bootstrapActive: true,
                snapshotDirectory: directory.appendingPathComponent("snapshots"),
                exportDirectory: directory.appendingPathComponent("exports"), logger: Logger(label: "test"),
                events: bus, send: { _ in })
            _ = runtime.admin(.demote)
            _ = runtime.admin(.demote)  // refused: no change, no event
        }
        let states = events.compactMap { event -> HAStateChanged? in
            if case .haStateChanged(let state) = event { return state }
            return nil
        }
        #expect(states.count == 2, "\(events)")
        #expect(states.first?.role == .active && states.first?.writesEnabled == true && states.first?.reason.hasPrefix("HA started") == true)
        #expect(states.last?.role == .active && states.last?.writesEnabled == false && states.last?.reason.contains("demoted") == true, "\(states)")
    }

    @Test("a peer's clock leaving the ok range, and coming back, are clockSkew events; samples within a level are not")
    func clockSkewEvents() async throws {
        let bus = EventBus<ManagementEvent>()
        let events = try await Self.events(bus) {
            let facts = PeerFacts(events: bus)
            func sample(_ offset: Int64) { facts.recordClock("mgmt-a", sentAtMilliseconds: 9_000_000 + offset, receivedAtMilliseconds: 9_000_000) }
            sample(40)  // ok from the start: not news
            for _ in 0..<9 { sample(8_000) }  // the median moves to a warning once
            for _ in 0..<9 { sample(400_000) }  // then a problem
            for _ in 0..<9 { sample(10) }  // then back to ok
        }
        let levels = events.compactMap { event -> ClockSkew.Level? in
            if case .clockSkew(let skew) = event { return skew.level }
            return nil
        }
        #expect(levels == [.warning, .problem, .ok], "\(events)")
    }
}
