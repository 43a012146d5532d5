import ClusterCore

/// Time, the runtimes' duties, and carrying out each core's output.
extension SimulatedGatewayCluster {
    /// One tick: restarts, what the runtimes noticed (links, full syncs, device reports, load samples),
    /// timers, late heartbeats of loaded members, then the heartbeats due on every interface.
    public func runTick() {
        clock.advance()
        for member in members where !member.isUp {
            if let restartAt = member.restartAtTick, restartAt <= tick { restart(member.id) }
        }
        // Time first, so that every input of this tick finds the core at this tick's time.
        let now = nowMilliseconds
        for member in members where member.isUp { deliver(member, .tick(now: now)) }
        for member in members where member.isUp { runtimeDuties(member) }
        for member in members where member.isUp { flushOutbox(member) }
        for lane in lanes.indices {
            for datagram in lanes[lane].takeDue(at: tick) {
                let receiver = members[datagram.to]
                // A link that is down receives nothing, whatever was on its way.
                guard receiver.isUp, receiver.linksUp[lane] else { continue }
                noteDelivery(datagram.message, from: datagram.from, to: datagram.to)
                deliver(receiver, .receive(datagram.message.heartbeat, on: setup.interfaces[lane]))
            }
        }
        checkPairs()
    }

    public func run(ticks: Int) {
        for _ in 0..<ticks where violation == nil { runTick() }
    }

    func noteDelivery(_ datagram: ClusterDatagram, from: Int, to: Int) {
        let heartbeat = datagram.heartbeat
        guard newestDelivered[to][from].map({ $0.isOlder(than: heartbeat) }) ?? true else { return }
        newestDelivered[to][from] = DeliveredHeartbeat(
            incarnation: heartbeat.incarnation, sequence: heartbeat.sequence,
            state: heartbeat.state, madeAtTick: datagram.madeAtTick, deliveredAtTick: tick)
    }

    func runtimeDuties(_ member: SimulatedMember) {
        while let report = member.linkReports.first, report.dueTick <= tick, member.isUp {
            member.linkReports.removeFirst()
            deliver(member, .linkChanged(setup.interfaces[report.lane], up: report.up))
        }
        if let sync = member.fullSync, sync.dueTick <= tick { finishFullSync(member, from: sync.source) }
        if setup.probeTimeoutMilliseconds != nil, member.probeReporting, (tick - member.startedAtTick) % Self.probeReportTicks == 0 {
            deliver(member, .reportDevice(name: Self.probeDevice, state: member.probeState))
        }
        if member.loadPercent > 0, (tick - member.startedAtTick) % Self.loadSampleTicks == 0 {
            deliver(member, .load(percent: member.loadPercent))
        }
    }

    /// The table comes over TCP from a member that still forwards and can be reached; otherwise the
    /// request fails and the core asks again.
    func finishFullSync(_ member: SimulatedMember, from sourceIndex: Int) {
        member.fullSync = nil
        let source = members[sourceIndex]
        if source.isUp, source.core?.state.isActive == true, connected(sourceIndex, index(of: member.id)) {
            counters.fullSyncs += 1
            deliver(member, .fullSyncCompleted(from: source.id))
        } else {
            traceLine { "t=\(self.nowMilliseconds)ms \(member.id) full sync from \(source.id) failed" }
        }
    }

    /// Feeds one input to a member's core, carries out its output, and checks every invariant.
    @discardableResult
    func deliver(_ member: SimulatedMember, _ input: ClusterInput) -> String {
        guard var core = member.core else { return "\(member.id) is down" }
        let before = core.state
        let awaitedFullSync = core.awaitsFullSync
        let output = core.step(input)
        member.core = core
        steps += 1
        if keepsLog, output.reason != "tick", output.reason != "heartbeat" { log.append((tick, member.id, output.reason)) }
        if output.reason != "tick", output.reason.contains("missed its report deadline") { counters.deviceDeadlinesMissed += 1 }
        traceStep(member, input, output)
        for effect in output.effects { carryOut(effect, on: member) }
        send(output.messages, from: member)
        checkStep(member, input: input, before: before, awaitedFullSync: awaitedFullSync, output: output)
        return output.reason
    }

    func carryOut(_ effect: ClusterEffect, on member: SimulatedMember) {
        if keepsLog { effectLog.append((tick, member.id, effect)) }
        switch effect {
        case .commitConnectionTable:
            member.committedTableSinceActive = true
        case .holdVirtualAddress:
            if !member.committedTableSinceActive {
                fail("a member commits the connection table before it holds the virtual address", "\(member.id) took the address first")
            }
            member.holdsVirtualAddress = true
        case .releaseVirtualAddress:
            member.holdsVirtualAddress = false
            member.committedTableSinceActive = false
        case .requestFullSync(let source):
            member.fullSync = (index(of: source), tick + random.int(in: setup.fullSyncTicks))
        case .stateChanged(let change):
            transitions.append((tick, member.id, change))
            countPaths(of: change, on: member)
        case .deadTimerChanged(_, let code, _):
            if code == .deadTimerStretched { counters.deadTimerStretches += 1 } else { counters.deadTimerRestores += 1 }
        case .commandRefused(let code):
            counters.refusals += 1
            if code == "admin-down-leaves-no-healthy-member" { counters.adminDownsRefused += 1 }
        }
    }

    /// Heartbeats go on their interface to every other member; a loaded member's leave late (its sender
    /// is starved), and nothing leaves through a link that is down, whatever the core believes.
    func send(_ heartbeats: [ClusterHeartbeat], from member: SimulatedMember) {
        let loaded = member.loadPercent >= Int(limits.loadThresholdPercent)
        for heartbeat in heartbeats {
            let late = loaded ? random.below(Self.loadedSendDelayTicksMax + 1) : 0
            if late > 0 {
                member.outbox.append((tick + late, heartbeat, tick))
            } else {
                transmit(heartbeat, madeAtTick: tick, from: member)
            }
        }
    }

    func flushOutbox(_ member: SimulatedMember) {
        guard !member.outbox.isEmpty else { return }
        let due = member.outbox.filter { $0.dueTick <= tick }
        member.outbox.removeAll { $0.dueTick <= tick }
        for entry in due { transmit(entry.heartbeat, madeAtTick: entry.madeAtTick, from: member) }
    }

    func transmit(_ heartbeat: ClusterHeartbeat, madeAtTick: Int, from member: SimulatedMember) {
        let lane = lane(heartbeat.interface)
        counters.heartbeats += 1
        guard member.linksUp[lane] else { return }
        let from = index(of: member.id)
        for to in members.indices where to != from {
            lanes[lane].send(ClusterDatagram(heartbeat: heartbeat, madeAtTick: madeAtTick), from: from, to: to, at: tick, random: &random)
        }
    }
}

// MARK: - Trace

extension SimulatedGatewayCluster {
    func traceStep(_ member: SimulatedMember, _ input: ClusterInput, _ output: ClusterOutput) {
        guard let trace else { return }
        let interesting =
            !output.effects.isEmpty
            || (output.reason != "tick" && output.reason != "heartbeat"
                && output.reason != "device report" && !output.reason.hasPrefix("load "))
        guard interesting else { return }
        var line = "t=\(nowMilliseconds)ms \(member.id) \(Self.describe(input)): \(output.reason)"
        for effect in output.effects { line += Self.describe(effect) }
        trace(line)
    }

    static func describe(_ input: ClusterInput) -> String {
        switch input {
        case .tick: "timers"
        case .receive(let heartbeat, let interface): "<- \(heartbeat.member) \(heartbeat.state) on \(interface)"
        case .linkChanged(let interface, let up): "link \(interface) \(up ? "up" : "down")"
        case .policyChanged(let installed): installed ? "policy installed" : "policy removed"
        case .fullSyncCompleted(let source): "full sync from \(source) done"
        case .load(let percent): "load \(percent)%"
        case .registerDevice(let name, _, _): "register \(name)"
        case .reportDevice(let name, let state): "report \(name) \(state)"
        case .unregisterDevice(let name): "unregister \(name)"
        case .adminDown(let force): "ADMIN down\(force ? " --force" : "")"
        case .adminUp: "ADMIN up"
        case .resetFailoverCounter: "reset failover counter"
        }
    }

    static func describe(_ effect: ClusterEffect) -> String {
        switch effect {
        case .commitConnectionTable: " | commit-table"
        case .holdVirtualAddress: " | hold-vip"
        case .releaseVirtualAddress: " | release-vip"
        case .requestFullSync(let source): " | full-sync<-\(source)"
        case .stateChanged: ""
        case .deadTimerChanged(let status, _, _): " | dead-timer \(status.effectiveMilliseconds)ms"
        case .commandRefused(let code): " | refused \(code)"
        }
    }
}
