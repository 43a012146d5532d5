import ClusterCore
import ClusterRuntime
import Foundation
import Gateway
import Logging
import Synchronization
import Testing

@Suite("Cluster runtime: connection sync with conntrackd")
struct ConnectionSyncTests {
    /// FTFW over the sync interface, from this member's sync address to the peer's, every path in the
    /// data directory; a directory conntrackd's parser cannot carry means no sync (not a broken file).
    @Test func theConfigurationSyncsOverTheSyncInterface() throws {
        let plan = try ClusterPlan(ClusterRuntimeTests.section(local: 2))
        let text = try #require(ConnectionSync.configuration(plan: plan, directory: "/var/lib/rampart/gw"))
        #expect(text.contains("Mode FTFW {") && text.contains("DisableExternalCache Off"))
        #expect(text.contains("IPv4_address 10.9.0.3\n") && text.contains("IPv4_Destination_Address 10.9.0.2\n") && text.contains("Interface eth1\n"))
        #expect(text.contains("Path /var/lib/rampart/gw/conntrackd.sock") && text.contains("LockFile /var/lib/rampart/gw/conntrackd.lock"))
        #expect(text.contains("IPv4_address 10.1.0.3\n"), "the member's own addresses are ignored")
        #expect(ConnectionSync.configuration(plan: plan, directory: "/tmp/a b\n}") == nil)
    }

    /// Three members or more: one multicast group on the sync interface (every standby hears the active),
    /// sent from this member's sync address; no unicast destination.
    @Test func threeMembersSyncOverAMulticastGroup() throws {
        let plan = try ClusterPlan(ClusterRuntimeTests.section(members: 3))
        let text = try #require(ConnectionSync.configuration(plan: plan, directory: "/d"))
        #expect(text.contains("Multicast {\n\t\tIPv4_address 225.0.0.50\n\t\tGroup 3780\n") && text.contains("Interface eth1\n"), "\(text)")
        #expect(!text.contains("Destination_Address") && !text.contains("UDP {"))
        // NOTRACK: FTFW tracks one sequence per channel, and several senders on one group break it.
        #expect(text.contains("Mode NOTRACK {\n\t\tDisableExternalCache Off\n\t}") && !text.contains("FTFW"))
        #expect(text.contains("IPv4_address 10.9.0.2\n") && text.contains("IPv4_address 10.9.0.4\n"), "every member's traffic is ignored")
        let local = try #require(plan.interfaces.first { $0.virtualAddress == nil }?.localAddress)
        #expect(text.contains("IPv4_interface \(local)\n"))
    }

    @Test func theExternalCacheCountIsReadFromTheStatistics() {
        let statistics = """
            cache internal:
            current active connections:\t           4
            cache external:
            current active connections:\t           2
            connections created:\t\t           2\tfailed:\t           0
            """
        #expect(ConnectionSync.externalEntries(in: statistics) == 2)
        #expect(ConnectionSync.externalEntries(in: "cache internal:\ncurrent active connections: 4") == nil)
    }

    /// Becoming ACTIVE commits the synchronized table into the kernel (conntrackd -c, then -f, -R, -B as
    /// primary-backup.sh does) before the virtual address is held.
    @Test func theTableIsCommittedBeforeTheAddressIsHeld() async throws {
        let plan = try ClusterPlan(ClusterRuntimeTests.section())
        let host = RecordingHost()
        let directory = URL(fileURLWithPath: "/var/lib/rampart/gw")
        let sync = try #require(ConnectionSync(plan: plan, directory: directory, host: host, logger: Logger(label: "test")))
        let runtime = ClusterRuntime(
            plan: plan, host: host, transport: RecordingTransport(), events: ClusterRuntime.makeEvents(), incarnation: 1, port: 8116,
            logger: Logger(label: "test"), connectionSync: sync
        ) { _ in }
        let task = Task { await runtime.run() }
        defer { task.cancel() }
        let deadline = ContinuousClock.now + .seconds(120)
        while !host.recorded.contains(where: { $0.prefix(3) == ["ip", "addr", "replace"] }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let configuration = "/var/lib/rampart/gw/conntrackd.conf"
        let recorded = host.recorded.drop { $0.first != "conntrackd" }.prefix(5)
        #expect(
            Array(recorded) == [
                ["conntrackd", "-C", configuration, "-c"], ["conntrackd", "-C", configuration, "-f"], ["conntrackd", "-C", configuration, "-R"],
                ["conntrackd", "-C", configuration, "-B"], ["ip", "addr", "replace", "10.1.0.1/24", "dev", "eth0"],
            ])
        runtime.stop()
        await task.value
    }

    /// A restarted member asks for the table while its daemon is still starting: the request is
    /// repeated until the daemon takes it (once it failed, the member went STANDBY with an empty cache).
    @Test func theResyncRequestIsRepeatedUntilTheDaemonTakesIt() async throws {
        let plan = try ClusterPlan(ClusterRuntimeTests.section())
        let host = StartingDaemonHost(failuresBeforeUp: 3)
        let sync = try #require(ConnectionSync(plan: plan, directory: URL(fileURLWithPath: "/var/lib/rampart/gw"), host: host, logger: Logger(label: "test")))
        #expect(await sync.receiveFullTable() == 2)
        let requests = host.commands.withLock { $0 }.filter { $0.last == "-n" }
        #expect(requests.count == 4, "\(requests)")
    }
}

/// conntrackd whose socket answers only after some commands failed; then its external cache holds 2.
final class StartingDaemonHost: ClusterHost {
    let commands = Mutex<[[String]]>([])
    let failuresBeforeUp: Int

    init(failuresBeforeUp: Int) { self.failuresBeforeUp = failuresBeforeUp }

    func run(_ arguments: [String]) async -> CommandRunner.Result {
        let count = commands.withLock { list in
            list.append(arguments)
            return list.count
        }
        guard count > failuresBeforeUp else { return CommandRunner.Result(status: 1, output: "", errorOutput: "can't connect") }
        return CommandRunner.Result(status: 0, output: "cache external:\ncurrent active connections:        2\n", errorOutput: "")
    }

    func linkUp(_ interface: InterfaceName) -> Bool? { true }
}
