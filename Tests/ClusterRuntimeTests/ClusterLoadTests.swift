import ClusterCore
import ClusterRuntime
import Foundation
import Gateway
import Logging
import Synchronization
import Testing

@Suite("Cluster runtime: the load figure is how late the member's own loop runs")
struct ClusterLoadTests {
    @Test func theFigureIsTheLargestLatenessAsAShareOfTheHeartbeatInterval() {
        var delay = SchedulingDelay()
        #expect(delay.percent(ofIntervalMilliseconds: 100) == nil, "no tick handled: no figure")
        delay.record(dueMilliseconds: 1_000, nowMilliseconds: 1_010)
        delay.record(dueMilliseconds: 1_025, nowMilliseconds: 1_110)
        delay.record(dueMilliseconds: 1_050, nowMilliseconds: 1_060)
        #expect(delay.percent(ofIntervalMilliseconds: 100) == 85)
        #expect(delay.percent(ofIntervalMilliseconds: 100) == nil, "each figure covers its own window")
        delay.record(dueMilliseconds: 2_000, nowMilliseconds: 1_990)
        #expect(delay.percent(ofIntervalMilliseconds: 100) == 0, "early is on time")
        delay.record(dueMilliseconds: 0, nowMilliseconds: UInt64.max)
        #expect(delay.percent(ofIntervalMilliseconds: 100) == 100, "a huge lateness is clamped, without overflow")
        delay.record(dueMilliseconds: 5, nowMilliseconds: 6)
        #expect(delay.percent(ofIntervalMilliseconds: 0) == 100)
    }

    /// A tick handled a whole heartbeat late (the member starved of CPU) is fed to the core: the dead
    /// timer stretches, and `cluster state` shows the figure and the stretch. Ticks on time never do
    /// (the other tests' runtimes, on a loaded test machine, rarely run late by 80 ms).
    @Test func aLateLoopStretchesTheDeadTimerAndTheStretchIsShown() async throws {
        let plan = try ClusterPlan(ClusterRuntimeTests.section())
        let events = ClusterRuntime.makeEvents()
        let runtime = ClusterRuntime(
            plan: plan, host: RecordingHost(), transport: RecordingTransport(), events: events, incarnation: 1, port: 8116,
            logger: Logger(label: "test")
        ) { _ in }
        let task = Task { await runtime.run() }
        defer { task.cancel() }
        let deadline = ContinuousClock.now + .seconds(120)
        while await runtime.status.deadTimer.stretch == nil, ContinuousClock.now < deadline {
            // Due at the clock's origin: handled far more than a heartbeat interval late.
            events.continuation.yield(.tick(dueMilliseconds: 0))
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(await runtime.status.loadPercent == 100)
        #expect(await runtime.status.deadTimer.stretch?.loadPercent == 100)
        let state = await ClusterOperator.answer(["command": "state"], runtime: runtime)
        #expect(state["status"]?["load-percent"]?.intValue == 100)
        #expect(state["status"]?["dead-timer-stretched"]?.boolValue == true)
        #expect(state["status"]?["dead-timer"]?.stringValue?.contains("stretched") == true)
        runtime.stop()
        await task.value
    }
}
