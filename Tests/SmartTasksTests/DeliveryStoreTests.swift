import Foundation
import SmartTasks
import Testing

@Suite struct DeliveryStoreTests {
    static func planned(_ eventID: String, task: String = "t", notBefore: Int64 = 0) -> PlannedDelivery {
        PlannedDelivery(eventID: eventID, taskUID: task, taskName: "task \(task)", trigger: "After Publish", payload: "{}", notBeforeMilliseconds: notBefore)
    }

    /// A store in a temporary directory (the system's temporary directory is cleaned by the system).
    func makeStore(limits: SmartTaskLimits = SmartTaskLimits()) throws -> DeliveryStore {
        let directory = try temporaryDirectory("store")
        return try DeliveryStore(path: directory.appendingPathComponent(DeliveryStore.fileName).path, limits: limits)
    }

    @Test func theSameEventQueuedTwiceIsOneDeliveryAndTheCursorMovesWithIt() throws {
        let store = try makeStore()
        do {
            #expect(try store.enqueue([Self.planned("e1")], nowMilliseconds: 0, derivedRevision: 4) == 1)
            #expect(try store.enqueue([Self.planned("e1"), Self.planned("e2")], nowMilliseconds: 0) == 1)
            #expect(try store.pending().map(\.planned.eventID) == ["e1", "e2"])
            #expect(try store.derivedRevision() == 4)
        }
    }

    @Test func eachTasksLastPlannedStartIsItsLatestPendingOne() throws {
        let store = try makeStore()
        try store.enqueue([Self.planned("e1", task: "a", notBefore: 300), Self.planned("e2", task: "a", notBefore: 100)], nowMilliseconds: 0)
        try store.enqueue([Self.planned("e3", task: "b", notBefore: 50)], nowMilliseconds: 0)
        #expect(try store.lastStarts(tasks: ["a", "b", "c"]) == ["a": 300, "b": 50])
    }

    @Test func aFailedAttemptStaysQueuedUntilItsRetryAndASettledOneLeavesWithItsHistory() throws {
        let store = try makeStore()
        do {
            try store.enqueue([Self.planned("e1", notBefore: 100)], nowMilliseconds: 0)
            #expect(try store.due(nowMilliseconds: 99, limit: 10).isEmpty)
            let first = try #require(try store.due(nowMilliseconds: 100, limit: 10).first)
            let failed = ExecutionRecord(
                eventID: "e1", taskUID: "t", taskName: "task t", trigger: "After Publish", startedMilliseconds: 100, durationMilliseconds: 5, result: .failed,
                attempt: 1, output: "HTTP 503")
            try store.settle(first, execution: failed, retryAtMilliseconds: 500)
            #expect(try store.due(nowMilliseconds: 499, limit: 10).isEmpty)
            let second = try #require(try store.due(nowMilliseconds: 500, limit: 10).first)
            #expect(second.attempts == 1)
            var dead = failed
            (dead.result, dead.attempt) = (.deadLetter, 2)
            try store.settle(second, execution: dead, retryAtMilliseconds: nil)
            #expect(try store.pending().isEmpty)
            let history = try store.executions(ExecutionQuery())
            #expect(history.total == 2)
            #expect(history.records.map(\.result) == [.deadLetter, .failed])
        }
    }

    @Test func heldDeliveriesBeyondTheCountOrAgeBoundsExpireOldestFirst() throws {
        var limits = SmartTaskLimits()
        limits.queuedDeliveriesMax = 2
        limits.queuedAgeMaxMilliseconds = 1_000
        let store = try makeStore(limits: limits)
        do {
            try store.enqueue([Self.planned("old")], nowMilliseconds: 0)
            try store.enqueue([Self.planned("a"), Self.planned("b"), Self.planned("c")], nowMilliseconds: 1_500)
            #expect(try store.applyRetention(nowMilliseconds: 1_600) == 2)
            #expect(try store.pending().map(\.planned.eventID) == ["b", "c"])
            let expired = try store.executions(ExecutionQuery(result: .expired))
            #expect(Set(expired.records.map(\.eventID)) == ["old", "a"])
        }
    }

    @Test func historyPagesNewestFirstAndFiltersByTaskTriggerAndResult() throws {
        var limits = SmartTaskLimits()
        limits.outputBytesMax = 10
        let store = try makeStore(limits: limits)
        do {
            for index in 0..<5 {
                try store.record(
                    ExecutionRecord(
                        eventID: "e\(index)", taskUID: index % 2 == 0 ? "t-even" : "t-odd", taskName: index % 2 == 0 ? "even" : "odd",
                        trigger: index < 3 ? "After Publish" : "HA State Changed", startedMilliseconds: Int64(index), durationMilliseconds: 1,
                        result: index == 4 ? .deadLetter : .succeeded, attempt: 1, output: String(repeating: "x", count: 50)))
            }
            let page = try store.executions(ExecutionQuery(offset: 1, limit: 2))
            #expect(page.total == 5)
            #expect(page.records.map(\.eventID) == ["e3", "e2"])
            #expect(try store.executions(ExecutionQuery(task: "even")).total == 3)
            #expect(try store.executions(ExecutionQuery(task: "t-odd")).total == 2)
            #expect(try store.executions(ExecutionQuery(trigger: "HA State Changed")).total == 2)
            #expect(try store.executions(ExecutionQuery(result: .deadLetter)).records.map(\.eventID) == ["e4"])
            #expect(page.records[0].output.hasPrefix("xxxxxxxxxx\n[output truncated"))
        }
    }
}
