import Foundation
import HACore
import ManagementModel
import Synchronization
import Testing

@testable import ManagementService

/// The management event stream: one bounded bus, typed events, subscribers that read at their own pace.
@Suite("ManagementService: the event bus and the events the service publishes")
struct EventTests {
    /// Everything `stream` delivers until `count` deliveries were read.
    static func read(_ count: Int, from iterator: inout AsyncStream<EventBus<Int>.Delivery>.AsyncIterator) async -> [EventBus<Int>.Delivery] {
        var deliveries: [EventBus<Int>.Delivery] = []
        while deliveries.count < count, let next = await iterator.next() { deliveries.append(next) }
        return deliveries
    }

    @Test("every subscriber sees every event in order, numbered by the bus")
    func orderedAndNumbered() async throws {
        let bus = EventBus<Int>()
        var first = try bus.subscribe(bufferedEventsMax: 16).makeAsyncIterator()
        var second = try bus.subscribe(bufferedEventsMax: 16).makeAsyncIterator()
        for value in 1...10 { bus.publish(value) }
        for deliveries in [await Self.read(10, from: &first), await Self.read(10, from: &second)] {
            let pairs = deliveries.compactMap { delivery -> (Int, UInt64)? in
                if case .event(let value, let sequence) = delivery { return (value, sequence) }
                return nil
            }
            #expect(pairs.map(\.0) == Array(1...10))
            #expect(pairs.map(\.1) == Array(1...10))
        }
    }

    @Test("a subscriber that does not read never blocks a publish: it loses the oldest events and is told how many")
    func slowSubscriberLosesAndIsTold() async throws {
        let bus = EventBus<Int>()
        var slow = try bus.subscribe(bufferedEventsMax: 4).makeAsyncIterator()
        var fast = try bus.subscribe(bufferedEventsMax: 200).makeAsyncIterator()
        for value in 1...100 { bus.publish(value) }  // returns at once: nobody reads yet
        let buffered = await Self.read(4, from: &slow)
        bus.publish(101)  // room again: the count still owed is delivered first
        let after = await Self.read(2, from: &slow)
        var events: [Int] = []
        var lost: UInt64 = 0
        for delivery in buffered + after {
            switch delivery {
            case .event(let value, _): events.append(value)
            case .lost(let count): lost += count
            }
        }
        #expect(UInt64(events.count) + lost == 101, "every event is either delivered or counted as lost: \(buffered + after)")
        #expect(events.last == 101 && events == events.sorted(), "the newest survive, in order: \(events)")
        #expect(lost >= 95)
        let all = await Self.read(101, from: &fast)
        #expect(all.count == 101 && all.allSatisfy { if case .event = $0 { true } else { false } }, "another subscriber lost nothing")
    }

    @Test("a subscription that ends is removed; subscribers are bounded")
    func endedAndBounded() async throws {
        let bus = EventBus<Int>(subscribersMax: 2)
        var kept = try bus.subscribe(bufferedEventsMax: 4).makeAsyncIterator()
        do {
            let dropped = try bus.subscribe(bufferedEventsMax: 4)
            #expect(bus.subscriberCount == 2)
            #expect(throws: EventBus<Int>.Full.self) { _ = try bus.subscribe(bufferedEventsMax: 4) }
            _ = dropped
        }
        // The dropped stream's termination runs when it is deallocated.
        for _ in 0..<100 where bus.subscriberCount > 1 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(bus.subscriberCount == 1)
        bus.publish(7)
        let delivered = await Self.read(1, from: &kept)
        if case .event(let value, _)? = delivered.first { #expect(value == 7) } else { Issue.record("\(delivered)") }
        bus.finish()
        #expect(await kept.next() == nil)
    }

    @Test("a publish and an install are events, with what an operator needs")
    func serviceEvents() async throws {
        let h = try await Harness()
        var events = try h.service.events.subscribe(bufferedEventsMax: 64).makeAsyncIterator()
        let sid = try await h.login()
        try await h.ok("add-simple-gateway", ["name": "gw-a", "ip-address": "192.0.2.1"], sid: sid)
        try await h.ok("set-package", ["name": "Standard", "installation-targets": ["gw-a"]], sid: sid)
        _ = try await h.publish(sid: sid)
        _ = try await h.ok("install-policy", ["policy-package": "Standard"], sid: sid)
        var seen: [ManagementEvent] = []
        while seen.count < 2, let next = await events.next() {
            if case .event(let event, _) = next { seen.append(event) }
        }
        guard case .revisionPublished(let revision) = seen.first, case .policyInstalled(let install) = seen.last else {
            Issue.record("expected a publish then an install: \(seen)")
            return
        }
        #expect(revision.author == "admin" && revision.changes == 2 && revision.number >= 2 && revision.bytes > 0, "\(revision)")
        #expect(install.target == "gw-a" && !install.succeeded && install.policyPackage == "Standard" && install.revision == revision.number)
        #expect(seen.last?.needsAttention == true && seen.last?.kind == "policy-installed")
    }
}
