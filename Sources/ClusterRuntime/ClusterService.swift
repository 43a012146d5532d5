import ClusterCore
import Foundation
import Gateway
import Logging
import ManagementModel
import NIOCore
import ServiceLifecycle
import Synchronization
import TrustCore

/// The agent's cluster side: follows the installed policy's cluster section (checked every
/// `policyCheckMilliseconds`), runs a `ClusterRuntime` while there is one (a new one when it changes,
/// none when it goes), and serves `rampart cluster …` on DIR/cluster.sock.
public struct ClusterService: Service {
    /// CCP's port; the heartbeat port of every member of a cluster must be the same.
    public static let defaultHeartbeatPort = NftablesRenderer.clusterHeartbeatPortDefault
    public static let policyCheckMilliseconds = 250

    let agent: GatewayAgent
    let directory: URL
    let heartbeatPort: Int
    let host: any ClusterHost
    let logger: Logger
    let current = RuntimeSlot()

    public init(agent: GatewayAgent, directory: URL, heartbeatPort: Int = defaultHeartbeatPort, host: any ClusterHost = SystemClusterHost(), logger: Logger) {
        self.agent = agent
        self.directory = directory
        self.heartbeatPort = heartbeatPort
        self.host = host
        self.logger = logger
    }

    public func run() async throws {
        let current = self.current
        let socket = try await OperatorSocket.listen(directory: directory) { request in
            await ClusterOperator.answer(request, runtime: current.value.withLock { $0 })
        }
        await cancelWhenGracefulShutdown { await follow() }
        try? await socket.close()
    }

    struct Running {
        var section: CompiledCluster
        var runtime: ClusterRuntime
        var transport: UDPHeartbeats
        var connectionSync: ConnectionSync?
        var task: Task<Void, Never>
    }

    func follow() async {
        var running: Running?
        var refusedSection: CompiledCluster?
        while !Task.isCancelled {
            let section = await agent.cluster
            if section != running?.section, section != refusedSection {
                if let old = running { await stop(old) }
                running = nil
                if let section {
                    do {
                        running = try await start(section)
                        refusedSection = nil
                    } catch {
                        refusedSection = section
                        logger.error("cluster runtime not started: the policy's cluster section is unusable", metadata: ["error": "\(error)"])
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(Self.policyCheckMilliseconds))
        }
        if let running { await stop(running) }
    }

    func start(_ section: CompiledCluster) async throws -> Running {
        let plan = try ClusterPlan(section)
        if plan.heartbeatKeyBytes == nil {
            logger.warning(
                "cluster policy has no heartbeat key (a cluster made before keys existed): heartbeats use a key derived from the cluster uid, which is no secret; change the cluster (set-simple-cluster) and install again"
            )
        }
        let incarnation = try nextIncarnation()
        let events = ClusterRuntime.makeEvents()
        let transport = UDPHeartbeats(plan: plan, port: heartbeatPort) { events.continuation.yield($0) }
        await transport.bindAll()
        let agent = self.agent
        let connectionSync = ConnectionSync(plan: plan, directory: directory, host: host, logger: logger)
        try await connectionSync?.start()
        let runtime = ClusterRuntime(
            plan: plan, host: host, transport: transport, events: events, incarnation: incarnation, port: heartbeatPort, logger: logger,
            connectionSync: connectionSync
        ) { report in await agent.setClusterReport(report) }
        let task = Task { await runtime.run() }
        current.value.withLock { $0 = runtime }
        return Running(section: section, runtime: runtime, transport: transport, connectionSync: connectionSync, task: task)
    }

    func stop(_ running: Running) async {
        current.value.withLock { $0 = nil }
        running.runtime.stop()
        await running.task.value
        await running.transport.closeAll()
        await running.connectionSync?.stop()
        await agent.setClusterReport(nil)
    }

    /// Grows with every start, across restarts (DIR/cluster-incarnation), so the other members tell a
    /// restarted member's heartbeats from old ones.
    func nextIncarnation() throws -> UInt64 {
        let file = directory.appendingPathComponent("cluster-incarnation")
        let previous =
            (try? Data(contentsOf: file)).flatMap { UInt64(String(decoding: $0.prefix(32), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
            ?? 0
        let next = previous &+ 1
        try DurableFile.write(Data("\(next)\n".utf8), to: file, mode: 0o600)
        return next
    }
}

/// The running runtime, for the operator socket's handler.
final class RuntimeSlot: Sendable {
    let value = Mutex<ClusterRuntime?>(nil)
}
