import Synchronization

/// One bus for the typed management events: services publish, subscribers (the log, tests, later
/// metrics and SmartTasks) read at their own pace. Publishing never waits: each subscriber has a
/// bounded buffer, and one that falls behind loses its oldest events and is told how many (every
/// event carries the bus's sequence number, and the subscription reports a gap as `.lost`).
public final class EventBus<Event: Sendable>: Sendable {
    /// What a subscriber reads.
    public enum Delivery: Sendable {
        case event(Event, sequence: UInt64)
        /// This many events were published while this subscriber's buffer was full; they are gone.
        case lost(UInt64)
    }

    struct Subscriber {
        let continuation: AsyncStream<Delivery>.Continuation
        /// Events dropped since the last one this subscriber was given.
        var dropped: UInt64 = 0
    }

    struct State {
        var nextSequence: UInt64 = 1
        var nextID = 0
        var subscribers: [Int: Subscriber] = [:]
    }

    private let state = Mutex(State())
    /// Subscriptions open at once at most: each holds a buffer, so their number is bounded too.
    public let subscribersMax: Int

    public init(subscribersMax: Int = 64) {
        self.subscribersMax = subscribersMax
    }

    /// A subscription refused: `subscribersMax` are open.
    public struct Full: Error, CustomStringConvertible {
        public let subscribersMax: Int
        public var description: String { "the event bus has \(subscribersMax) subscribers already" }
    }

    /// A new subscription; it ends when the returned stream is no longer iterated (or `finish`).
    /// At most `bufferedEventsMax` events (at least 1) wait for the subscriber; beyond, the oldest are dropped.
    public func subscribe(bufferedEventsMax: Int) throws(Full) -> AsyncStream<Delivery> {
        let (stream, continuation) = AsyncStream.makeStream(of: Delivery.self, bufferingPolicy: .bufferingNewest(max(bufferedEventsMax, 1)))
        let id = state.withLock { state -> Int? in
            guard state.subscribers.count < subscribersMax else { return nil }
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = Subscriber(continuation: continuation)
            return state.nextID
        }
        guard let id else {
            continuation.finish()
            throw Full(subscribersMax: subscribersMax)
        }
        continuation.onTermination = { [weak self] _ in
            _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Hands `event` to every subscriber without waiting for any of them.
    public func publish(_ event: Event) {
        state.withLock { state in
            let sequence = state.nextSequence
            state.nextSequence += 1
            for id in state.subscribers.keys {
                guard var subscriber = state.subscribers[id] else { continue }
                if subscriber.dropped > 0 {
                    let lost = subscriber.dropped
                    subscriber.dropped = Self.droppedEvents(subscriber.continuation.yield(.lost(lost)))
                }
                let (dropped, overflow) = subscriber.dropped.addingReportingOverflow(
                    Self.droppedEvents(subscriber.continuation.yield(.event(event, sequence: sequence))))
                subscriber.dropped = overflow ? .max : dropped
                state.subscribers[id] = subscriber
            }
        }
    }

    /// How many events a full buffer dropped to make room (a dropped `.lost` marker carries its count).
    static func droppedEvents(_ result: AsyncStream<Delivery>.Continuation.YieldResult) -> UInt64 {
        switch result {
        case .dropped(.event): 1
        case .dropped(.lost(let count)): count
        default: 0
        }
    }

    /// Ends every subscription (at shutdown).
    public func finish() {
        let subscribers = state.withLock { state in
            defer { state.subscribers = [:] }
            return Array(state.subscribers.values)
        }
        for subscriber in subscribers { subscriber.continuation.finish() }
    }

    /// Subscriptions open now.
    public var subscriberCount: Int { state.withLock { $0.subscribers.count } }
}
