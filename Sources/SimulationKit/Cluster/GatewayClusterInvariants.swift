import ClusterCore

/// The invariants, checked after every step and judged from the simulation's truth (who is up, which
/// links carry heartbeats, what each core's state is), never from a member's own view of the others:
/// a bug in that view cannot excuse itself.
extension SimulatedGatewayCluster {
    /// How long two active members that hear each other (after a heal) may take to settle who keeps
    /// ACTIVE: the dead timer (a correcting heartbeat may be lost; within it the stale one still counts),
    /// two heartbeat intervals (one to be sent, one to be answered), and the longest ordinary delay plus
    /// a loaded sender's lateness.
    public var settleMilliseconds: UInt64 {
        let delayTicks = UInt64(networkProfile.delayTicksMax + Self.loadedSendDelayTicksMax)
        return limits.deadTimerMilliseconds + 2 * limits.heartbeatIntervalMilliseconds + delayTicks * setup.tickMilliseconds
    }

    var settleTicks: Int { Int(settleMilliseconds / setup.tickMilliseconds) }

    /// Two members hear each other when both are up and some interface carries heartbeats both ways.
    func connected(_ a: Int, _ b: Int) -> Bool {
        guard members[a].isUp, members[b].isUp else { return false }
        for lane in lanes.indices where members[a].linksUp[lane] && members[b].linksUp[lane] {
            let network = lanes[lane]
            if !network.isCut(from: a, to: b), !network.isCut(from: b, to: a),
                !network.isClogged(from: a, to: b), !network.isClogged(from: b, to: a)
            {
                return true
            }
        }
        return false
    }

    func pair(_ a: Int, _ b: Int) -> Int { min(a, b) * members.count + max(a, b) }

    /// What `to` heard last from `from`, if it is still fresh: delivered within the dead timer, so the
    /// receiver's core must count the sender live and in the state it announced.
    func freshlyHeard(_ to: Int, from: Int) -> DeliveredHeartbeat? {
        guard let heard = newestDelivered[to][from],
            UInt64(tick - heard.deliveredAtTick) * setup.tickMilliseconds <= limits.deadTimerMilliseconds
        else { return nil }
        return heard
    }

    /// At most one member holds the virtual address once a heal has settled: two holders that each hear
    /// the other announce ACTIVE must have resolved it within the settle time (the lower-ranked one
    /// yields on the heartbeat that tells it; the settle time covers a correcting heartbeat that was lost).
    func checkPairs() {
        for a in members.indices {
            for b in members.indices where a < b {
                let pair = pair(a, b)
                connectedSinceTick[pair] = connected(a, b) ? (connectedSinceTick[pair] ?? tick) : nil
                let bothHeard =
                    members[a].holdsVirtualAddress && members[b].holdsVirtualAddress
                    && freshlyHeard(a, from: b)?.state.isActive == true && freshlyHeard(b, from: a)?.state.isActive == true
                bothActiveSinceTick[pair] = bothHeard ? (bothActiveSinceTick[pair] ?? tick) : nil
                guard let since = bothActiveSinceTick[pair], tick - since > settleTicks else { continue }
                fail(
                    "at most one member holds the virtual address once a heal has settled (\(settleMilliseconds) ms)",
                    "\(members[a].id) and \(members[b].id) both hold it and hear each other announce ACTIVE for \(UInt64(tick - since) * setup.tickMilliseconds) ms"
                )
            }
        }
    }

    func checkStep(_ member: SimulatedMember, input: ClusterInput, before: MemberState, awaitedFullSync: Bool, output: ClusterOutput) {
        guard let core = member.core else { return }
        let after = core.state
        checkReason(member, before: before, after: after, output: output)
        if member.holdsVirtualAddress != after.isActive {
            fail(
                "a member holds the virtual address exactly while it is active",
                "\(member.id) is \(after), holds the address: \(member.holdsVirtualAddress)")
        }
        if before != after { member.stateSinceTick = tick }
        if after.isActive, !before.isActive {
            checkNoTakeoverFromLiveActive(member)
            checkNoFlap(member, core: core)
            member.activeSinceTick = tick
        }
        if before.isActive, !after.isActive {
            member.lostActiveAtMilliseconds = nowMilliseconds
            member.activeSinceTick = nil
        }
        if awaitedFullSync, !core.awaitsFullSync, !isFullSyncCompleted(input) { checkFullSyncSkip(member) }
    }

    /// No state change without exactly one reason with a documented event code; Active Up never preempts.
    func checkReason(_ member: SimulatedMember, before: MemberState, after: MemberState, output: ClusterOutput) {
        let changes = output.effects.compactMap { effect -> StateChange? in
            if case .stateChanged(let change) = effect { change } else { nil }
        }
        guard before != after else {
            if !changes.isEmpty { fail("no state change without a reason", "\(member.id) reported \(changes) but stayed \(after)") }
            return
        }
        guard changes.count == 1, let change = changes.first, change.from == before, change.to == after else {
            return fail("no state change without a reason", "\(member.id) went \(before) -> \(after) with changes \(changes)")
        }
        if change.reason.description.isEmpty || !EventCode.table.contains(where: { $0.code == change.eventCode }) {
            fail("every state change has a reason and a documented event code", "\(member.id): \(change)")
        }
        if setup.mode == .activeUp, [EventCode.preempting, .preempted, .preemptionCompleted].contains(change.eventCode) {
            fail("Active Up: a recovered member stays STANDBY (no preemption)", "\(member.id): \(change)")
        }
    }

    func isFullSyncCompleted(_ input: ClusterInput) -> Bool {
        if case .fullSyncCompleted = input { true } else { false }
    }

    /// A member never takes ACTIVE while it hears a healthy ACTIVE member (fresh, within the dead timer):
    /// in Active Up a recovered member stays STANDBY; in Primary Up the active releases first.
    func checkNoTakeoverFromLiveActive(_ member: SimulatedMember) {
        let index = index(of: member.id)
        for (other, holder) in members.enumerated() where other != index {
            guard holder.core?.state == .active, let heard = freshlyHeard(index, from: other), heard.state == .active else { continue }
            return fail(
                "a member never takes ACTIVE from a healthy active member it hears (Active Up: a recovered member stays STANDBY)",
                "\(member.id) took ACTIVE while it heard \(holder.id) announce ACTIVE \(UInt64(tick - heard.deliveredAtTick) * setup.tickMilliseconds) ms ago")
        }
    }

    /// Truth: how steady a member was at `milliseconds`, from when it lost ACTIVE and when it started.
    func steadiness(of member: SimulatedMember, at milliseconds: UInt64) -> Steadiness {
        let hysteresis = limits.flapHysteresisMilliseconds
        let started = UInt64(member.startedAtTick) * setup.tickMilliseconds
        // Nothing this incarnation sent was made before it started.
        let at = max(milliseconds, started)
        if let lost = member.lostActiveAtMilliseconds, lost <= at, at - lost < hysteresis { return .lostActiveRecently }
        return at - started < hysteresis ? .startedRecently : .steady
    }

    /// No flapping: a member that lost ACTIVE (a crash while active included) takes it back within the
    /// hysteresis only when no steadier healthy member stood by that it has heard for the settle time. It
    /// also knows its own trouble: it announces that it lost ACTIVE, or started, recently.
    func checkNoFlap(_ member: SimulatedMember, core: ClusterStateMachine) {
        guard let lost = member.lostActiveAtMilliseconds, nowMilliseconds - lost < limits.flapHysteresisMilliseconds else { return }
        let startedAt = UInt64(member.startedAtTick) * setup.tickMilliseconds
        let known: Steadiness = lost >= startedAt ? .lostActiveRecently : .startedRecently
        if core.steadiness > known {
            return fail(
                "no flapping: a member knows it lost ACTIVE or started recently",
                "\(member.id) lost ACTIVE at \(lost) ms, started at \(startedAt) ms, but announces itself \(core.steadiness)")
        }
        let index = index(of: member.id)
        for (other, peer) in members.enumerated() where other != index {
            guard let heard = freshlyHeard(index, from: other), heard.state == .standby else { continue }
            // Its steadiness when its core made that heartbeat: what it announced.
            guard steadiness(of: peer, at: UInt64(heard.madeAtTick) * setup.tickMilliseconds) > known else { continue }
            return fail(
                "no flapping: a member that lost ACTIVE does not regain it within the hysteresis unless it is the only one",
                "\(member.id) (\(known)) lost ACTIVE at \(lost) ms and took it back at \(nowMilliseconds) ms while it heard \(peer.id), a steadier healthy standby"
            )
        }
    }

    /// A joining member skips the full sync only when no member can give it: none was active and
    /// reachable during the whole startup wait.
    func checkFullSyncSkip(_ member: SimulatedMember) {
        let window = Int(limits.startupWaitMilliseconds / setup.tickMilliseconds)
        let index = index(of: member.id)
        for (other, candidate) in members.enumerated() where other != index {
            guard let activeSince = candidate.activeSinceTick, candidate.core?.state.isActive == true,
                let connectedSince = connectedSinceTick[pair(index, other)]
            else { continue }
            if tick - max(activeSince, connectedSince) > window, tick - member.startedAtTick > window {
                fail(
                    "a joining member stays DOWN until it has the connection table",
                    "\(member.id) skipped the full sync although \(candidate.id) was active and reachable for \(tick - max(activeSince, connectedSince)) ticks")
            }
        }
    }

    // MARK: - Convergence

    /// Some member is ACTIVE with every device ok (liveness).
    public var healthyActive: MemberID? { members.first { $0.core?.state == .active }?.id }

    public var isConverged: Bool { convergenceProblem == nil }

    /// Nil when one member is ACTIVE holding the address and every other one is a STANDBY that sees the
    /// cluster as it is (from heartbeats heard since `viewsFreshSinceMilliseconds`); in Primary Up the
    /// active one is the first in priority. Otherwise what is still wrong.
    public var convergenceProblem: String? {
        var actives: [SimulatedMember] = []
        for member in members {
            guard let core = member.core else { return "\(member.id) is down" }
            switch core.state {
            case .active: actives.append(member)
            case .standby: break
            default: return "\(member.id) is \(core.state)"
            }
            if core.awaitsFullSync { return "\(member.id) awaits a full sync" }
            if member.holdsVirtualAddress != (core.state == .active) { return "\(member.id) address held: \(member.holdsVirtualAddress)" }
        }
        guard actives.count == 1, let active = actives.first else { return "\(actives.count) members are active" }
        if let stale = staleView() { return stale }
        if setup.mode == .primaryUp {
            let first = members.max { ($0.configuration.local.priority, $1.id) < ($1.configuration.local.priority, $0.id) }
            if first?.id != active.id { return "Primary Up: \(active.id) is active, \(first.map { "\($0.id)" } ?? "") ranks first" }
        }
        return nil
    }

    func staleView() -> String? {
        for member in members {
            guard let status = member.core?.status else { continue }
            for view in status.members where !view.isLocal {
                guard let ago = view.lastHeardMillisecondsAgo, status.nowMilliseconds - ago >= viewsFreshSinceMilliseconds else {
                    return "\(member.id) has not heard \(view.id) since the heal"
                }
                let truth = self.member(view.id).core?.state
                if view.state != truth { return "\(member.id) sees \(view.id) as \(view.stateText), it is \(truth.map { "\($0)" } ?? "down")" }
            }
        }
        return nil
    }
}
