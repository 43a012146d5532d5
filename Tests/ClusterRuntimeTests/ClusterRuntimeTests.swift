import ClusterCore
import ClusterRuntime
import Foundation
import Gateway
import Logging
import ManagementModel
import Synchronization
import Testing

/// Records commands instead of running them; links are as set.
final class RecordingHost: ClusterHost {
    let commands = Mutex<[[String]]>([])
    let links = Mutex<[String: Bool]>([:])

    func run(_ arguments: [String]) async -> CommandRunner.Result {
        commands.withLock { $0.append(arguments) }
        return CommandRunner.Result(status: 0, output: "", errorOutput: "")
    }

    func linkUp(_ interface: InterfaceName) -> Bool? { links.withLock { $0[interface.name] ?? true } }
    var recorded: [[String]] { commands.withLock { $0 } }
}

/// Records heartbeats sent, in order.
final class RecordingTransport: HeartbeatTransport {
    let sent = Mutex<[(interface: String, address: String, datagram: [UInt8])]>([])
    func send(_ datagram: [UInt8], on interface: InterfaceName, to address: String) async {
        sent.withLock { $0.append((interface.name, address, datagram)) }
    }
}

@Suite("Cluster runtime: heartbeat codec, plan, effects in order")
struct ClusterRuntimeTests {
    static func section(local: Int = 1, members: Int = 2) -> CompiledCluster {
        let list = (1...members).map { id in
            CompiledClusterMember(
                memberID: id, name: "m\(id)", uid: "uid-m\(id)", priority: Int64(101 - id), address: "192.0.2.1\(id)",
                interfaces: [
                    CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.\(id + 1)", maskLength: 24),
                    CompiledClusterInterface(name: "eth1", type: "sync", address: "10.9.0.\(id + 1)", maskLength: 24),
                ])
        }
        return CompiledCluster(
            clusterName: "cl-1", clusterUID: "uid-cl", mode: "cluster-xl-ha", memberRecovery: "active-up",
            heartbeatIntervalMilliseconds: 20, deadTimerMilliseconds: 100, localMemberID: local, localMemberName: "m\(local)",
            localMemberUID: "uid-m\(local)", localPriority: Int64(101 - local), members: list,
            interfaces: [
                CompiledClusterInterface(name: "eth0", type: "cluster", address: "10.1.0.1", maskLength: 24),
                CompiledClusterInterface(name: "eth1", type: "sync", address: nil, maskLength: nil),
            ])
    }

    static let heartbeat = ClusterHeartbeat(
        member: 2, incarnation: 7, sequence: 42, interface: "eth0", state: .standby, priority: 99,
        problems: [DeviceSummary(name: "Fullsync", state: .initializing), DeviceSummary(name: "ünïcode dev", state: .problem)],
        steadiness: .steady, loadPercent: 12)

    @Test func aHeartbeatRoundTrips() throws {
        let codec = HeartbeatCodec(clusterUID: "uid-cl")
        #expect(try codec.decode(codec.encode(Self.heartbeat)) == Self.heartbeat)
    }

    @Test func hostileDatagramsAreRefusedWithoutATrap() throws {
        let codec = HeartbeatCodec(clusterUID: "uid-cl")
        let good = codec.encode(Self.heartbeat)
        func rejection(_ bytes: [UInt8]) -> HeartbeatCodec.Rejection? {
            do {
                _ = try codec.decode(bytes)
                return nil
            } catch { return error }
        }
        #expect(rejection([]) == .size)
        #expect(rejection(Array(repeating: 0, count: HeartbeatCodec.datagramBytesMax + 1)) == .size)
        #expect(rejection(Array(good.dropFirst())) != nil)
        // Another cluster's key: refused before any field is read.
        #expect(rejection(HeartbeatCodec(clusterUID: "other").encode(Self.heartbeat)) == .tag)
        // Every single-bit flip and every truncation is refused (the tag covers everything).
        for index in good.indices {
            var flipped = good
            flipped[index] ^= 0x01
            #expect(rejection(flipped) != nil, "bit flip at \(index)")
            #expect(rejection(Array(good.prefix(index))) != nil, "truncated to \(index)")
        }
        // Authentic but malformed bodies (a member of the cluster with a bug): bad enums, lengths, trailing bytes.
        func signed(_ body: [UInt8]) -> [UInt8] { codec.sign(body) }
        var body = Array(good.dropLast(HeartbeatCodec.tagBytes))
        #expect(rejection(signed(body + [0])) == .malformed, "trailing byte")
        let stateOffset = 4 + 1 + 1 + 8 + 8 + 1 + 4
        body[stateOffset] = 9
        #expect(rejection(signed(body)) == .malformed, "unknown state")
        body = Array(good.dropLast(HeartbeatCodec.tagBytes))
        body[stateOffset + 3] = 101
        #expect(rejection(signed(body)) == .malformed, "load over 100")
        body = Array(good.dropLast(HeartbeatCodec.tagBytes))
        body[stateOffset + 4] = 255
        #expect(rejection(signed(body)) == .malformed, "more devices than the datagram holds")
        body = Array(good.dropLast(HeartbeatCodec.tagBytes))
        body[4 + 1 + 1 + 8 + 8] = 200
        #expect(rejection(signed(body)) == .malformed, "interface length past the end")
        body = Array(good.dropLast(HeartbeatCodec.tagBytes))
        body.replaceSubrange((stateOffset - 4)..<stateOffset, with: Array("e;rm".utf8))
        #expect(rejection(signed(body)) == .malformed, "interface name unsafe for ip")
        var random = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...300, using: &random)
            let noise = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            _ = rejection(signed(Array(good.prefix(5)) + noise))
        }
    }

    @Test func thePlanMapsTheSection() throws {
        let plan = try ClusterPlan(Self.section(local: 2))
        #expect(plan.configuration.localMember == 2 && plan.configuration.monitoredInterfaces == ["eth0", "eth1"])
        #expect(plan.interfaces[0].localAddress == "10.1.0.3" && plan.interfaces[0].peers.map(\.address) == ["10.1.0.2"])
        #expect(plan.interfaces[0].virtualAddress?.cidr == "10.1.0.1/24" && plan.interfaces[1].virtualAddress == nil)
        #expect(plan.configuration.limits.heartbeatIntervalMilliseconds == 20 && plan.configuration.limits.deadTimerMilliseconds == 100)
    }

    /// A lone member goes ACTIVE after its startup wait: the address is released at start (a killed
    /// run may have left it), then added and announced, in that order; heartbeats go to the peer on
    /// each interface; the report reaches the agent; admin down is refused with no one to take over.
    @Test func effectsRunInOrderAndTheReportIsPublished() async throws {
        let plan = try ClusterPlan(Self.section())
        let host = RecordingHost()
        let transport = RecordingTransport()
        let reports = Mutex<[ClusterMemberReport]>([])
        let runtime = ClusterRuntime(
            plan: plan, host: host, transport: transport, events: ClusterRuntime.makeEvents(), incarnation: 1, port: 8116,
            logger: Logger(label: "test")
        ) { report in reports.withLock { $0.append(report) } }
        let task = Task { await runtime.run() }
        defer { task.cancel() }
        let deadline = ContinuousClock.now + .seconds(120)
        while await runtime.status.state != .activeAttention, await runtime.status.state != .active, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(await runtime.status.state.isActive)
        // The gratuitous ARP runs beside the loop (arping waits a second): wait for it.
        while host.recorded.count < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(
            host.recorded.prefix(3) == [
                ["ip", "addr", "del", "10.1.0.1/24", "dev", "eth0"], ["ip", "addr", "replace", "10.1.0.1/24", "dev", "eth0"],
                ["arping", "-U", "-c", "1", "-I", "eth0", "10.1.0.1"],
            ])
        // The step that went ACTIVE may still be sending its heartbeats and publishing its report.
        func sentTo() -> Set<String> { Set(transport.sent.withLock { $0 }.map { "\($0.interface)->\($0.address)" }) }
        while sentTo().count < 2 || reports.withLock({ $0.last?.state.hasPrefix("ACTIVE") != true }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        let sent = transport.sent.withLock { $0 }
        #expect(sentTo() == ["eth0->10.1.0.3", "eth1->10.9.0.3"])
        let decoded = try HeartbeatCodec(clusterUID: "uid-cl").decode(try #require(sent.last?.datagram))
        #expect(decoded.member == 1 && decoded.incarnation == 1)
        #expect(reports.withLock { $0.last?.state }?.hasPrefix("ACTIVE") == true)
        #expect(reports.withLock { $0.last?.lastChange?.eventCode }?.hasPrefix("CLUS-") == true)

        let refused = await ClusterOperator.answer(["command": "admin-down"], runtime: runtime)
        #expect(refused["code"]?.stringValue == "admin-down-leaves-no-healthy-member")
        let registered = await ClusterOperator.answer(["command": "pnote-register", "name": "probe", "state": "problem"], runtime: runtime)
        #expect(registered["ok"]?.boolValue == true)
        let state = await ClusterOperator.answer(["command": "state"], runtime: runtime)
        #expect(state["status"]?["active-pnotes"]?.arrayValue?.contains(.string("probe")) == true)
        #expect(await ClusterOperator.answer(["command": "state"], runtime: nil)["code"]?.stringValue == "no-cluster")
        runtime.stop()
        await task.value
        #expect(host.recorded.last == ["ip", "addr", "del", "10.1.0.1/24", "dev", "eth0"], "a stopped runtime releases the address")
    }

    /// A forged heartbeat (right key, wrong sender address) is dropped and counted, never stepped.
    @Test func aHeartbeatFromAnotherAddressIsDropped() async throws {
        let plan = try ClusterPlan(Self.section())
        let events = ClusterRuntime.makeEvents()
        let runtime = ClusterRuntime(
            plan: plan, host: RecordingHost(), transport: RecordingTransport(), events: events, incarnation: 1, port: 8116,
            logger: Logger(label: "test")
        ) { _ in }
        let task = Task { await runtime.run() }
        defer { task.cancel() }
        let datagram = HeartbeatCodec(clusterUID: "uid-cl").encode(Self.heartbeat)
        events.continuation.yield(.datagram(datagram, interface: "eth0", from: "10.1.0.99"))
        events.continuation.yield(.datagram(Array(datagram.dropLast()), interface: "eth0", from: "10.1.0.3"))
        let deadline = ContinuousClock.now + .seconds(120)
        while await runtime.rejectedDatagrams.values.reduce(0, +) < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
        #expect(await runtime.rejectedDatagrams == ["sender": 1, "tag": 1])
        #expect(await runtime.status.members.first { $0.id == 2 }?.lastHeardMillisecondsAgo == nil)
        runtime.stop()
        await task.value
    }
}
