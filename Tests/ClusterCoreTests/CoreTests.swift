import ClusterCore
import SimulationKit
import Testing

/// A member of a two-member cluster (1 with priority 100, 2 with priority 90), interfaces eth1 and sync.
func twoMemberCore(
    local: MemberID = 1, mode: HighAvailabilityMode = .activeUp, policyInstalled: Bool = true,
    linksUp: [InterfaceName] = ["eth1", "sync"]
) -> ClusterStateMachine {
    let members = [
        ClusterMember(id: 1, name: "gw1", address: "192.0.2.1", priority: 100),
        ClusterMember(id: 2, name: "gw2", address: "192.0.2.2", priority: 90),
    ]
    guard let configuration = try? ClusterConfiguration(localMember: local, members: members, mode: mode, monitoredInterfaces: ["eth1", "sync"]) else {
        preconditionFailure("valid test configuration")
    }
    return ClusterStateMachine(
        configuration: configuration,
        start: ClusterStart(
            nowMilliseconds: 0, incarnation: 1, linksUp: linksUp,
            policyInstalled: policyInstalled))
}

func heartbeat(
    from member: MemberID, sequence: UInt64, incarnation: UInt64 = 1, on interface: InterfaceName = "eth1", state: MemberState = .active,
    priority: UInt8 = 90, problems: [DeviceSummary] = [], loadPercent: UInt8 = 0
) -> ClusterHeartbeat {
    ClusterHeartbeat(
        member: member, incarnation: incarnation, sequence: sequence, interface: interface, state: state, priority: priority,
        problems: problems, steadiness: .steady, loadPercent: loadPercent)
}

@Suite("ClusterCore values and hostile input")
struct ClusterCoreTests {
    @Test("a configuration from the management server is validated, with stable codes")
    func configurationValidation() {
        let member = ClusterMember(id: 1, name: "gw1", address: "192.0.2.1", priority: 1)
        func code(_ make: () throws -> ClusterConfiguration) -> String? {
            do {
                _ = try make()
                return nil
            } catch let error as ClusterConfigurationError {
                return error.code
            } catch {
                return "\(error)"
            }
        }
        #expect(code { try ClusterConfiguration(localMember: 1, members: [member], monitoredInterfaces: ["eth1"]) } == nil)
        #expect(code { try ClusterConfiguration(localMember: 2, members: [member], monitoredInterfaces: ["eth1"]) } == "cluster-local-member")
        #expect(code { try ClusterConfiguration(localMember: 1, members: [member, member], monitoredInterfaces: ["eth1"]) } == "cluster-member-duplicate")
        #expect(code { try ClusterConfiguration(localMember: 1, members: [member], monitoredInterfaces: []) } == "cluster-interfaces-count")
        #expect(code { try ClusterConfiguration(localMember: 1, members: [member], monitoredInterfaces: ["eth1", "eth1"]) } == "cluster-interface-duplicate")
        var named = member
        named.name = "gw\u{1b}[31m"
        #expect(code { try ClusterConfiguration(localMember: 1, members: [named], monitoredInterfaces: ["eth1"]) } == "cluster-member-name")
        let six = (1...6).map { ClusterMember(id: MemberID(UInt8($0)), name: "gw\($0)", address: "x", priority: 1) }
        #expect(code { try ClusterConfiguration(localMember: 1, members: six, monitoredInterfaces: ["eth1"]) } == "cluster-members-count")
        var limits = ClusterLimits()
        limits.deadTimerMilliseconds = 150
        #expect(code { try ClusterConfiguration(localMember: 1, members: [member], monitoredInterfaces: ["eth1"], limits: limits) } == "cluster-limits-invalid")
        #expect(
            InterfaceName(validating: "eth1.100") != nil && InterfaceName(validating: "eth 1") == nil
                && InterfaceName(validating: "a-very-long-interface") == nil
                && InterfaceName(validating: "") == nil && InterfaceName(validating: "eth1;reboot") == nil)
    }

    @Test("every event code is unique and documented, and every transition reason has one")
    func eventCodes() {
        let codes = EventCode.table.map(\.code.rawValue)
        #expect(Set(codes).count == codes.count)
        #expect(codes.allSatisfy { $0.hasPrefix("CLUS-") && $0.count == 11 })
        let reasons: [TransitionReason] = [
            .aloneAtStart(waitedMilliseconds: 500), .noActiveMember(candidates: 1),
            .activeMemberDead(1, silentMilliseconds: 510, deadTimerMilliseconds: 500),
            .activeMemberLeft(1, nowIn: .down, problems: [DeviceSummary(name: "Policy", state: .problem)]),
            .preempting(active: 2), .preemptionCompleted(previous: 2), .preempted(by: 1),
            .preemptionAbandoned(active: 2, waitedMilliseconds: 1_000),
            .splitBrainResolved(
                winner: 1, winnerRank: MemberRank(health: .healthy, steadiness: .steady, priority: 100, member: 1),
                ownRank: MemberRank(health: .healthy, steadiness: .steady, priority: 90, member: 2)),
            .standingBy(for: 1, because: .isActive), .criticalDeviceProblem([DeviceSummary(name: "probe", state: .problem)], takeover: 2),
            .adminDown(takeover: 2), .devicesRecovered, .adminUp, .onlyMemberLeft([DeviceSummary(name: "probe", state: .problem)]),
            .allMembersHaveProblems([DeviceSummary(name: "Policy", state: .problem)]), .attentionResolved,
        ]
        for reason in reasons {
            #expect(codes.contains(reason.eventCode.rawValue), "\(reason)")
            #expect(!reason.description.isEmpty)
        }
        #expect(Set(reasons.map(\.eventCode)).count == reasons.count, "one code per kind of transition")
        let change = StateChange(
            from: .standby, to: .active, reason: .activeMemberDead(1, silentMilliseconds: 510, deadTimerMilliseconds: 500),
            atMilliseconds: 7_000)
        #expect(change.description == "CLUS-110300 STANDBY -> ACTIVE: member 1, the active member, is dead: no heartbeat for 510 ms (dead timer 500 ms)")
    }

    @Test("taking ACTIVE ranks health, then steadiness, then priority, then the lower ID; holding it ignores steadiness")
    func ranks() {
        let steadyLow = MemberRank(health: .healthy, steadiness: .steady, priority: 10, member: 3)
        let newHigh = MemberRank(health: .healthy, steadiness: .startedRecently, priority: 200, member: 1)
        let lostHigh = MemberRank(health: .healthy, steadiness: .lostActiveRecently, priority: 250, member: 2)
        let impaired = MemberRank(health: .impaired, steadiness: .steady, priority: 255, member: 4)
        #expect(impaired < lostHigh && lostHigh < newHigh && newHigh < steadyLow)
        #expect(newHigh.precedes(steadyLow) && lostHigh.precedes(newHigh) && !impaired.precedes(steadyLow))
        let tie = MemberRank(health: .healthy, steadiness: .steady, priority: 10, member: 2)
        #expect(tie.precedes(steadyLow) && steadyLow < tie)
    }

    @Test("heartbeats from strangers, from ourselves, on the wrong interface or with malformed devices are ignored")
    func hostileHeartbeats() {
        var core = twoMemberCore()
        let stranger = core.step(.receive(heartbeat(from: 9, sequence: 1), on: "eth1"))
        #expect(stranger.reason.contains("not another member"))
        let ourselves = core.step(.receive(heartbeat(from: 1, sequence: 1), on: "eth1"))
        #expect(ourselves.reason.contains("not another member"))
        let crossWired = core.step(.receive(heartbeat(from: 2, sequence: 1, on: "sync"), on: "eth1"))
        #expect(crossWired.reason.contains("cross-wired"))
        let unmonitored = core.step(.receive(heartbeat(from: 2, sequence: 1, on: "eth9"), on: "eth9"))
        #expect(unmonitored.reason.contains("not a monitored interface"))
        let flood = (0...40).map { DeviceSummary(name: "d\($0)", state: .problem) }
        #expect(core.step(.receive(heartbeat(from: 2, sequence: 1, problems: flood), on: "eth1")).reason.contains("malformed"))
        let control = [DeviceSummary(name: "probe\n", state: .problem)]
        #expect(core.step(.receive(heartbeat(from: 2, sequence: 1, problems: control), on: "eth1")).reason.contains("malformed"))
        #expect(core.status.members.first { $0.id == 2 }?.lastHeardMillisecondsAgo == nil, "none of them counted as hearing member 2")
    }

    @Test("any value in any heartbeat field, extreme or absurd, is handled without a trap, and what is kept stays bounded")
    func heartbeatFieldValues() {
        var random = SplitMix64(seed: 20)
        var core = twoMemberCore()
        let limits = ClusterLimits()
        let longName = String(repeating: "d", count: limits.nameBytesMax)
        let names = ["probe", longName, longName + "x", "", "probe\u{7}", "\u{202e}rtl", "admin_down", "Fullsync"]
        let extremes: [UInt64] = [0, 1, UInt64.max - 1, UInt64.max]
        var now: UInt64 = 0
        for _ in 0..<5_000 {
            let problems = (0..<random.int(in: 0...(limits.heartbeatProblemsMax + 2))).map { _ in
                DeviceSummary(name: names[random.below(names.count)], state: DeviceState.allCases[random.below(3)])
            }
            let heartbeat = ClusterHeartbeat(
                member: MemberID(UInt8(random.int(in: 0...255))), incarnation: extremes[random.below(4)],
                sequence: random.below(2) == 0 ? extremes[random.below(4)] : UInt64(random.below(1_000)),
                interface: random.below(2) == 0 ? "eth1" : "sync", state: MemberState.allCases[random.below(MemberState.allCases.count)],
                priority: UInt8(random.int(in: 0...255)), problems: problems,
                steadiness: [Steadiness.lostActiveRecently, .startedRecently, .steady][random.below(3)],
                loadPercent: UInt8(random.int(in: 0...255)))
            now += UInt64(random.int(in: 0...50))
            _ = core.step(.tick(now: now))
            _ = core.step(.receive(heartbeat, on: random.below(8) == 0 ? "sync" : heartbeat.interface))
            let peer = core.status.members.first { !$0.isLocal }
            #expect(peer.map { $0.loadPercent <= 100 && $0.problems.count <= limits.heartbeatProblemsMax } ?? false)
            #expect(core.holdsVirtualAddress == core.state.isActive)
        }
    }

    @Test("an older or repeated heartbeat never overrides a newer one; a restarted member's counts again")
    func heartbeatOrder() {
        var core = twoMemberCore()
        _ = core.step(.receive(heartbeat(from: 2, sequence: 5, state: .active, loadPercent: 200), on: "eth1"))
        #expect(core.status.members.first { $0.id == 2 }?.state == .active)
        #expect(core.status.members.first { $0.id == 2 }?.loadPercent == 100, "load is clamped to 100 %")
        _ = core.step(.receive(heartbeat(from: 2, sequence: 4, state: .down), on: "eth1"))
        _ = core.step(.receive(heartbeat(from: 2, sequence: 5, state: .down), on: "sync"))
        #expect(core.status.members.first { $0.id == 2 }?.state == .active)
        _ = core.step(.receive(heartbeat(from: 2, sequence: 1, incarnation: 2, state: .initializing), on: "eth1"))
        #expect(core.status.members.first { $0.id == 2 }?.state == .initializing)
    }

    @Test("registered devices: names and timeouts validated, built-ins protected, refusals with stable codes")
    func deviceRegistration() {
        var core = twoMemberCore()
        func refusal(_ input: ClusterInput) -> String? {
            for effect in core.step(input).effects { if case .commandRefused(let code) = effect { return code } }
            return nil
        }
        #expect(refusal(.registerDevice(name: "bgp", state: .ok, timeoutMilliseconds: 3_000)) == nil)
        #expect(refusal(.registerDevice(name: "bgp", state: .ok, timeoutMilliseconds: nil)) == "device-exists")
        #expect(refusal(.registerDevice(name: "fullsync", state: .ok, timeoutMilliseconds: nil)) == "device-name-reserved")
        #expect(refusal(.registerDevice(name: "bad\u{7}name", state: .ok, timeoutMilliseconds: nil)) == "device-name-invalid")
        #expect(refusal(.registerDevice(name: String(repeating: "x", count: 65), state: .ok, timeoutMilliseconds: nil)) == "device-name-invalid")
        #expect(refusal(.registerDevice(name: "zero", state: .ok, timeoutMilliseconds: 0)) == "device-timeout-invalid")
        #expect(refusal(.reportDevice(name: "Policy", state: .problem)) == "device-built-in")
        #expect(refusal(.unregisterDevice(name: "Interface Active Check")) == "device-built-in")
        let unknown = core.step(.unregisterDevice(name: "nope\u{1b}[2J"))
        #expect(unknown.effects == [.commandRefused(code: "device-unknown")])
        #expect(!unknown.reason.contains("\u{1b}"), "control characters never reach the log")
        for index in 1..<16 { #expect(refusal(.registerDevice(name: "d\(index)", state: .ok, timeoutMilliseconds: nil)) == nil) }
        #expect(refusal(.registerDevice(name: "one-too-many", state: .ok, timeoutMilliseconds: nil)) == "devices-full")
        #expect(core.status.devices.prefix(3).map(\.name) == ["Interface Active Check", "Policy", "Fullsync"])
    }

    @Test("a member alone says so: INIT -> ACTIVE because no other member answered during the startup wait")
    func aloneAtStart() {
        var core = twoMemberCore()
        var change: StateChange?
        for now in stride(from: UInt64(10), through: 600, by: 10) where change == nil {
            change = core.step(.tick(now: now)).stateChange
        }
        #expect(change?.eventCode == .aloneAtStart)
        #expect(change?.description == "CLUS-110100 INIT -> ACTIVE: no other member answered within 500 ms of starting: all other members are dead (timeout)")
        #expect(core.holdsVirtualAddress)
    }

    @Test("heartbeats go on every monitored interface whose link is up, carrying what the others need")
    func heartbeatContent() {
        var core = twoMemberCore(policyInstalled: false, linksUp: ["sync"])
        let output = core.step(.tick(now: 0))
        #expect(output.messages.map(\.interface) == ["sync"])
        let sent = output.messages.first
        #expect(sent?.member == 1 && sent?.priority == 100 && sent?.state == .initializing && sent?.incarnation == 1 && sent?.sequence == 1)
        #expect(sent?.problems.map(\.description) == ["Interface Active Check (problem)", "Policy (problem)", "Fullsync (init)"])
        #expect(core.step(.tick(now: 50)).messages.isEmpty, "the next round waits for the interval")
        #expect(core.step(.tick(now: 100)).messages.first?.sequence == 2)
        let linkUp = core.step(.linkChanged("eth1", up: true))
        #expect(linkUp.messages.map(\.interface) == ["eth1", "sync"], "a change is told at once")
    }

    @Test("the cphaprob state content: mode, members, active pnotes, last change, failover counter, interfaces, dead timer")
    func statusContent() {
        var core = twoMemberCore(local: 2)
        _ = core.step(.tick(now: 10))
        let joined = core.step(.receive(heartbeat(from: 1, sequence: 1, state: .active, priority: 100), on: "eth1"))
        #expect(joined.effects.first == .requestFullSync(from: 1))
        #expect(joined.stateChange?.description == "CLUS-111100 INIT -> DOWN: critical device Fullsync (init)")
        #expect(core.status.activeDevices.map(\.detail) == ["waiting for the connection table from member 1"])
        _ = core.step(.fullSyncCompleted(from: 1))
        _ = core.step(.tick(now: 20))
        _ = core.step(.receive(heartbeat(from: 1, sequence: 2, on: "sync", state: .active, priority: 100), on: "sync"))
        var status = core.status
        #expect(status.mode.description == "High Availability (Active Up)")
        #expect(status.state == .standby && status.activeMember == 1)
        #expect(status.members.map(\.stateText) == ["ACTIVE", "STANDBY"])
        #expect(status.members.map(\.assignedLoadPercent) == [100, 0])
        #expect(status.members.map(\.name) == ["gw1", "gw2"] && status.members.map(\.address) == ["192.0.2.1", "192.0.2.2"])
        #expect(status.lastStateChange?.description == "CLUS-111300 DOWN -> STANDBY: every critical device reports ok")
        #expect(status.activeDevices.isEmpty)
        #expect(status.failoverCount == 0 && status.failoverCountResetCause == "start")
        #expect(status.interfaces.map(\.name) == ["eth1", "sync"] && status.requiredInterfaces == 2 && status.interfacesUp == 2)
        #expect(status.interfaces.map { $0.heartbeatAges.first?.ageMilliseconds } == [10, 0])
        #expect(status.deadTimer.description == "dead timer 500 ms" && status.heartbeatIntervalMilliseconds == 100)
        _ = core.step(.tick(now: 600))
        status = core.status
        #expect(status.state == .active && status.failoverCount == 1)
        #expect(status.members.first?.stateText == "DOWN (no heartbeat)")
        _ = core.step(.resetFailoverCounter)
        #expect(
            core.status.failoverCount == 0 && core.status.failoverCountResetAtMilliseconds == 600
                && core.status.failoverCountResetCause == "reset by an administrator")
    }
}
