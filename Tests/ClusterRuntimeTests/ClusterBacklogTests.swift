import ClusterCore
import Foundation
import Logging
import ManagementModel
import Synchronization
import Testing

@testable import ClusterRuntime

/// A member whose loop ran behind steps its backlog in queue order, each input at its own time: the
/// heartbeats of a live active still queued behind late ticks keep it alive (CI's CLUS-110300 then
/// CLUS-110900 split brain). The inputs are handed to the loop's `process` directly, so the core's
/// clock is only what the inputs say; the real time that passes meanwhile must not enter it.
@Suite("Cluster runtime: a backlog is stepped at its inputs' times")
struct ClusterBacklogTests {
    /// m1 (priority 100) is active; this runtime is m2 (priority 99).
    static func heartbeat(sequence: UInt64, interface: InterfaceName) -> ClusterHeartbeat {
        ClusterHeartbeat(
            member: 1, incarnation: 7, sequence: sequence, interface: interface, state: .active, priority: 100, problems: [],
            steadiness: .steady, loadPercent: 0)
    }

    /// m1's heartbeat on both interfaces, from its configured addresses.
    static func heartbeats(_ sequence: UInt64) -> [ClusterRuntime.Event] {
        let codec = HeartbeatCodec(clusterUID: "uid-cl")
        return [
            .datagram(codec.encode(heartbeat(sequence: sequence, interface: "eth0")), interface: "eth0", from: "10.1.0.2"),
            .datagram(codec.encode(heartbeat(sequence: sequence, interface: "eth1")), interface: "eth1", from: "10.9.0.2"),
        ]
    }

    @Test func heartbeatsQueuedBehindLateTicksKeepALiveActiveAlive() async throws {
        let plan = try ClusterPlan(ClusterRuntimeTests.section(local: 2))
        let host = RecordingHost()
        let states = Mutex<[String]>([])
        let runtime = ClusterRuntime(
            plan: plan, host: host, transport: RecordingTransport(), events: ClusterRuntime.makeEvents(), incarnation: 1, port: 8116,
            logger: Logger(label: "test")
        ) { report in states.withLock { $0.append(report.state) } }
        // m1 heartbeats every 20 ms (its interval), ticks every 5 ms: m2 settles as the standby.
        var due: UInt64 = 0
        var sequence: UInt64 = 0
        // One heartbeat interval of the queue: four ticks, then m1's heartbeat.
        func heartbeatInterval() async {
            for _ in 0..<4 {
                due += 5
                await runtime.process(.tick(dueMilliseconds: due))
            }
            sequence += 1
            for event in Self.heartbeats(sequence) { await runtime.process(event) }
        }
        let deadline = ContinuousClock.now + .seconds(120)
        while await runtime.status.state != .standby, ContinuousClock.now < deadline {
            await heartbeatInterval()
            try await Task.sleep(for: .milliseconds(1))
        }
        let settled = await runtime.status
        try #require(settled.state == .standby, "\(settled)")

        // The loop stalls (the machine was starved) for longer than even the stretched dead timer;
        // meanwhile the ticks and m1's heartbeats queued, each at its time. Stepping the backlog (a
        // tick first) must not find m1 silent.
        let stalled = plan.configuration.limits.deadTimerUnderLoadMilliseconds + 500
        try await Task.sleep(for: .milliseconds(stalled))
        let settledStates = states.withLock { $0.count }
        for _ in 0..<25 { await heartbeatInterval() }
        let status = await runtime.status
        let backlogStates = states.withLock { Array($0.dropFirst(settledStates)) }
        #expect(backlogStates.allSatisfy { !$0.hasPrefix("ACTIVE") }, "m2 never went active: \(backlogStates)")
        #expect(status.state == .standby, "m1 is alive: its heartbeats were queued all along (\(status))")
        #expect(!host.recorded.contains { $0.starts(with: ["ip", "addr", "add"]) }, "m2 never took the virtual address: \(host.recorded)")
    }
}
