import ClusterCore

/// What a test or the random schedule does to the cluster: members, links, devices, the network. Each
/// fault is counted where it is injected.
extension SimulatedGatewayCluster {
    /// Starts every member at once (a cold start of the whole cluster).
    public func startAll() {
        for member in members where !member.isUp { start(member) }
    }

    func start(_ member: SimulatedMember) {
        member.incarnation += 1
        member.startedAtTick = tick
        member.stateSinceTick = tick
        member.restartAtTick = nil
        member.fullSync = nil
        member.linkReports = []
        member.outbox = []
        member.holdsVirtualAddress = false  // the runtime removes a leftover address at start
        member.committedTableSinceActive = false
        member.activeSinceTick = nil
        let linksUp = setup.interfaces.enumerated().filter { member.linksUp[$0.offset] }.map(\.element)
        member.core = ClusterStateMachine(
            configuration: member.configuration,
            start: ClusterStart(
                nowMilliseconds: nowMilliseconds, incarnation: member.incarnation,
                linksUp: linksUp, policyInstalled: member.policyInstalled))
        let index = index(of: member.id)
        for lane in lanes.indices { lanes[lane].restart(index) }
        // Nothing survives a restart: the new core has heard nobody.
        newestDelivered[index] = Array(repeating: nil, count: members.count)
        traceLine { "t=\(self.nowMilliseconds)ms \(member.id) START (incarnation \(member.incarnation))" }
        if let timeout = setup.probeTimeoutMilliseconds {
            deliver(member, .registerDevice(name: Self.probeDevice, state: member.probeState, timeoutMilliseconds: timeout))
        }
        if member.loadPercent > 0 { deliver(member, .load(percent: member.loadPercent)) }
    }

    /// The machine dies (kill -9, power, panic): its address, connection table and unsent heartbeats go
    /// with it, and what is on its way to it is lost.
    public func crash(_ id: MemberID, restartAfterTicks: Int? = nil) {
        let member = member(id)
        guard member.isUp else { return }
        // Crashing while active loses ACTIVE too: the no-flapping rule holds across the restart.
        if member.core?.state.isActive == true { member.lostActiveAtMilliseconds = nowMilliseconds }
        member.core = nil
        member.holdsVirtualAddress = false
        member.activeSinceTick = nil
        member.fullSync = nil
        member.outbox = []
        member.restartAtTick = restartAfterTicks.map { tick + $0 }
        let index = index(of: id)
        for lane in lanes.indices { lanes[lane].crash(index) }
        counters.crashes += 1
        traceLine { "t=\(self.nowMilliseconds)ms \(id) CRASH" }
    }

    public func restart(_ id: MemberID) {
        let member = member(id)
        guard !member.isUp else { return }
        counters.restarts += 1
        start(member)
    }

    /// The link of `interface` on `id` goes down or up (`ip link set … down`, a cable); the runtime
    /// notices within two ticks.
    public func setLink(_ id: MemberID, _ interface: InterfaceName, up: Bool) {
        let member = member(id)
        let lane = lane(interface)
        guard member.linksUp[lane] != up else { return }
        member.linksUp[lane] = up
        if up { counters.linkUps += 1 } else { counters.linkDowns += 1 }
        member.linkReports.append((tick + random.below(3), lane, up))
        traceLine { "t=\(self.nowMilliseconds)ms \(id) LINK \(interface) \(up ? "up" : "down")" }
    }

    public func setPolicy(_ id: MemberID, installed: Bool) {
        let member = member(id)
        guard member.policyInstalled != installed else { return }
        member.policyInstalled = installed
        if !installed { counters.policyRemovals += 1 }
        traceLine { "t=\(self.nowMilliseconds)ms \(id) POLICY \(installed ? "installed" : "uninstalled")" }
        if member.isUp { deliver(member, .policyChanged(installed: installed)) }
    }

    public func setLoad(_ id: MemberID, percent: Int) {
        let member = member(id)
        if percent >= Int(limits.loadThresholdPercent), member.loadPercent < Int(limits.loadThresholdPercent) { counters.loadSpikes += 1 }
        member.loadPercent = percent
        traceLine { "t=\(self.nowMilliseconds)ms \(id) LOAD \(percent)%" }
        if member.isUp { deliver(member, .load(percent: percent)) }
    }

    /// The `probe` device's script reports `state` from now on (`reporting` false: it stops reporting).
    public func setProbe(_ id: MemberID, _ state: DeviceState, reporting: Bool = true) {
        let member = member(id)
        if state == .problem, member.probeState != .problem { counters.pnoteProblems += 1 }
        if !reporting, member.probeReporting { counters.pnoteSilences += 1 }
        member.probeState = state
        member.probeReporting = reporting
        traceLine { "t=\(self.nowMilliseconds)ms \(id) PROBE \(state)\(reporting ? "" : ", not reporting")" }
        if member.isUp, reporting, setup.probeTimeoutMilliseconds != nil {
            deliver(member, .reportDevice(name: Self.probeDevice, state: state))
        }
    }

    /// Feeds an input as an operator or script would; returns the core's reason.
    @discardableResult
    public func command(_ input: ClusterInput, on id: MemberID) -> String {
        let member = member(id)
        guard member.isUp else { return "\(id) is down" }
        switch input {
        case .adminDown(let force): if force { counters.forcedAdminDowns += 1 } else { counters.adminDowns += 1 }
        case .adminUp: counters.adminUps += 1
        case .unregisterDevice: counters.pnoteUnregistrations += 1
        case .resetFailoverCounter: counters.counterResets += 1
        default: break
        }
        return deliver(member, input)
    }

    // MARK: - Network faults

    /// Cuts every interface both ways between two members.
    public func partition(_ a: MemberID, _ b: MemberID) {
        for lane in lanes.indices { lanes[lane].partition(index(of: a), index(of: b)) }
        counters.partitions += 1
        traceLine { "t=\(self.nowMilliseconds)ms NET partition \(a) | \(b)" }
    }

    /// Cuts one interface (the sync link, say) both ways between two members; the others still carry heartbeats.
    public func partition(_ a: MemberID, _ b: MemberID, on interface: InterfaceName) {
        lanes[lane(interface)].partition(index(of: a), index(of: b))
        counters.interfacePartitions += 1
        traceLine { "t=\(self.nowMilliseconds)ms NET partition \(a) | \(b) on \(interface)" }
    }

    public func isolate(_ id: MemberID) {
        for lane in lanes.indices { lanes[lane].isolate(index(of: id)) }
        counters.isolations += 1
        traceLine { "t=\(self.nowMilliseconds)ms NET isolate \(id)" }
    }

    /// Heartbeats from `from` to `to` on one interface are lost (a switch port, a VLAN), links stay up.
    public func cut(from: MemberID, to: MemberID, on interface: InterfaceName) {
        lanes[lane(interface)].cut(from: index(of: from), to: index(of: to))
        counters.oneWayCuts += 1
        traceLine { "t=\(self.nowMilliseconds)ms NET cut \(from) -> \(to) on \(interface)" }
    }

    /// Heartbeats from `from` to `to` on one interface are held until the heal, then arrive in a burst.
    public func clog(from: MemberID, to: MemberID, on interface: InterfaceName) {
        lanes[lane(interface)].clog(from: index(of: from), to: index(of: to))
        counters.clogs += 1
        traceLine { "t=\(self.nowMilliseconds)ms NET clog \(from) -> \(to) on \(interface)" }
    }

    public func healNetwork() {
        for lane in lanes.indices { _ = lanes[lane].heal(at: tick, random: &random) }
        counters.heals += 1
        traceLine { "t=\(self.nowMilliseconds)ms NET heal" }
    }

    /// Loss, duplication and delay from now on (a heal sets `.perfect`).
    public func setNetworkProfile(_ profile: NetworkProfile) {
        for lane in lanes.indices { lanes[lane].profile = profile }
    }

    public var networkProfile: NetworkProfile { lanes.first?.profile ?? .perfect }
}
