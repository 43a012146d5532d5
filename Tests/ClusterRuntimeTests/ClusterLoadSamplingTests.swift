import ClusterCore
import ClusterRuntime
import Foundation
import Gateway
import Logging
import Synchronization
import Testing

/// A host whose CPU counters advance by a set busy share per sample.
final class LoadedHost: ClusterHost {
    let inner = RecordingHost()
    let counters = Mutex(CPUTimes(totalTicks: 1_000, idleTicks: 500))
    let busyPercentPerSample: UInt64

    init(busyPercentPerSample: UInt64) { self.busyPercentPerSample = busyPercentPerSample }

    func run(_ arguments: [String]) async -> CommandRunner.Result { await inner.run(arguments) }
    func linkUp(_ interface: InterfaceName) -> Bool? { inner.linkUp(interface) }
    func cpuTimes() -> CPUTimes? {
        counters.withLock { times in
            times.totalTicks += 100
            times.idleTicks += 100 - busyPercentPerSample
            return times
        }
    }
}

@Suite("Cluster runtime: CPU load sampling from /proc/stat")
struct ClusterLoadSamplingTests {
    @Test func theAggregateCPULineIsParsed() {
        let text = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 123\n"
        #expect(CPUTimes.parse(procStat: text) == CPUTimes(totalTicks: 1_000, idleTicks: 840))
        // An old kernel with only four fields.
        #expect(CPUTimes.parse(procStat: "cpu 1 2 3 4") == CPUTimes(totalTicks: 10, idleTicks: 4))
    }

    @Test(arguments: [
        "", "\n\n", "intr 1 2 3", "cpu0 1 2 3 4 5", "cpu ", "cpu 1 2 3", "cpu -1 2 3 4", "cpu 1 2 x 4", "cpu 1.5 2 3 4",
        "cpu 18446744073709551615 1 0 0", "cpu 0 0 0 18446744073709551615 1", "cpu 99999999999999999999 1 2 3",
        "\u{0}\u{1}cpu 1 2 3 4", "cpu\t1 2 3 4",
    ])
    func hostileProcStatGivesNoFigureAndNoTrap(_ text: String) {
        #expect(CPUTimes.parse(procStat: text) == nil)
    }

    @Test func percentagesComeFromDeltasOnly() {
        var sampler = CPULoadSampler()
        #expect(sampler.percent(after: CPUTimes(totalTicks: 1_000, idleTicks: 600)) == nil, "the first sample has no interval")
        #expect(sampler.percent(after: CPUTimes(totalTicks: 1_200, idleTicks: 650)) == 75)
        #expect(sampler.percent(after: CPUTimes(totalTicks: 1_200, idleTicks: 650)) == nil, "no ticks passed")
        #expect(sampler.percent(after: CPUTimes(totalTicks: 900, idleTicks: 100)) == nil, "counters went backwards")
        #expect(sampler.percent(after: CPUTimes(totalTicks: 1_000, idleTicks: 200)) == 0)
        #expect(sampler.percent(after: CPUTimes(totalTicks: 1_100, idleTicks: 200)) == 100)
        #expect(sampler.percent(after: CPUTimes(totalTicks: UInt64.max, idleTicks: 200)) == 100, "a huge delta does not overflow")
    }

    /// The runtime samples the host's counters and steps the core with the figure: a loaded machine
    /// stretches the dead timer, and `cluster state` shows both.
    @Test func theRuntimeFeedsTheCoreAndTheStretchIsShown() async throws {
        let plan = try ClusterPlan(ClusterRuntimeTests.section())
        let host = LoadedHost(busyPercentPerSample: 90)
        let runtime = ClusterRuntime(
            plan: plan, host: host, transport: RecordingTransport(), events: ClusterRuntime.makeEvents(), incarnation: 1, port: 8116,
            logger: Logger(label: "test")
        ) { _ in }
        let task = Task { await runtime.run() }
        defer { task.cancel() }
        let deadline = ContinuousClock.now + .seconds(60)
        while await runtime.status.deadTimer.stretch == nil, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(await runtime.status.loadPercent == 90)
        #expect(await runtime.status.deadTimer.stretch?.loadPercent == 90)
        let state = await ClusterOperator.answer(["command": "state"], runtime: runtime)
        #expect(state["status"]?["load-percent"]?.intValue == 90)
        #expect(state["status"]?["dead-timer-stretched"]?.boolValue == true)
        #expect(state["status"]?["dead-timer"]?.stringValue?.contains("stretched") == true)
        runtime.stop()
        await task.value
    }
}
