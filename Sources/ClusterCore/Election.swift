/// What this member hears of the others right now, gathered in one pass over the live peers.
struct ClusterView {
    /// The first live member claiming ACTIVE or ACTIVE(!) (by `MemberRank.precedes`), and how many claim it.
    var bestActive: Peer?
    var activeCount = 0
    /// The first-ranked live healthy member in STANDBY or READY (one that could take ACTIVE), and how many.
    var bestCandidate: Peer?
    var candidateCount = 0
    /// The first-ranked live healthy READY member (Primary Up: claims ACTIVE).
    var bestReady: Peer?
    /// The first-ranked live DOWN member whose problem is not admin down (could take ACTIVE(!)).
    var bestImpaired: Peer?
    /// A live member still starting: nobody takes ACTIVE until it has said where it stands.
    var starting: Peer?
    /// Some other member was heard since this one started.
    var anyoneHeard = false
}

extension ClusterStateMachine {
    func makeView() -> ClusterView {
        var view = ClusterView()
        func better(_ peer: Peer, than current: Peer?) -> Bool { current.map { peer.rank > $0.rank } ?? true }
        for peer in peers {
            if peer.lastHeardAtMilliseconds != nil { view.anyoneHeard = true }
            guard isLive(peer) else { continue }
            switch peer.state {
            case .active, .activeAttention:
                view.activeCount += 1
                if view.bestActive.map({ peer.rank.precedes($0.rank) }) ?? true { view.bestActive = peer }
            case .standby, .ready:
                guard peer.health == .healthy else { continue }
                view.candidateCount += 1
                if better(peer, than: view.bestCandidate) { view.bestCandidate = peer }
                if peer.state == .ready, better(peer, than: view.bestReady) { view.bestReady = peer }
            case .down:
                if peer.health == .impaired, better(peer, than: view.bestImpaired) { view.bestImpaired = peer }
            case .initializing:
                if view.starting == nil { view.starting = peer }
            }
        }
        return view
    }

    /// The state this member should be in now, and why; nil to stay.
    func decide() -> (MemberState, TransitionReason)? {
        let view = makeView()
        let health = devices.health
        let own = rank(health: health)
        switch state {
        case .active, .activeAttention: return decideAsActive(view, health: health, own: own)
        case .ready: return decideAsReady(view, health: health, own: own)
        case .standby, .down, .initializing: return decideAsWaiting(view, health: health, own: own)
        }
    }

    func decideAsActive(_ view: ClusterView, health: MemberHealth, own: MemberRank) -> (MemberState, TransitionReason)? {
        if let winner = view.bestActive, winner.rank.precedes(own) {
            return (health == .healthy ? .standby : .down, .splitBrainResolved(winner: winner.id, winnerRank: winner.rank, ownRank: own))
        }
        let takeover = view.bestCandidate?.id
        switch health {
        case .adminDown:
            return (.down, .adminDown(takeover: takeover))
        case .impaired:
            if let takeover { return (.down, .criticalDeviceProblem(devices.notOk, takeover: takeover)) }
            return state == .active ? (.activeAttention, .onlyMemberLeft(devices.notOk)) : nil
        case .healthy:
            if state == .activeAttention { return (.active, .attentionResolved) }
            if configuration.mode == .primaryUp, state == .active, let ready = view.bestReady, ready.rank.precedes(own) {
                return (.standby, .preempted(by: ready.id))
            }
            return nil
        }
    }

    func decideAsReady(_ view: ClusterView, health: MemberHealth, own: MemberRank) -> (MemberState, TransitionReason)? {
        guard health == .healthy else { return decideAsWaiting(view, health: health, own: own) }
        guard let active = view.bestActive else { return decideAsWaiting(view, health: health, own: own) }
        let waited = nowMilliseconds - stateSinceMilliseconds
        let outranked = active.rank.precedes(own) || (view.bestCandidate.map { claimsBefore($0.rank, own) } ?? false)
        if outranked || waited >= limits.readyTimeoutMilliseconds {
            return (.standby, .preemptionAbandoned(active: active.id, waitedMilliseconds: waited))
        }
        return nil
    }

    /// STANDBY, DOWN, INIT (once its startup wait is over), and READY whose active member is gone.
    func decideAsWaiting(_ view: ClusterView, health: MemberHealth, own: MemberRank) -> (MemberState, TransitionReason)? {
        switch health {
        case .adminDown:
            return (.down, .adminDown(takeover: nil))
        case .impaired:
            let ranksFirst = view.bestImpaired.map { $0.rank < own } ?? true
            if view.bestActive == nil, view.bestCandidate == nil, view.starting == nil, ranksFirst {
                return (.activeAttention, .allMembersHaveProblems(devices.notOk))
            }
            return (.down, .criticalDeviceProblem(devices.notOk, takeover: nil))
        case .healthy:
            if let active = view.bestActive {
                if shouldPreempt(view, active: active, own: own) { return (.ready, .preempting(active: active.id)) }
                return (.standby, standbyReason(.standingBy(for: active.id, because: .isActive)))
            }
            if let starting = view.starting {
                return (.standby, standbyReason(.standingBy(for: starting.id, because: .isStarting)))
            }
            if let candidate = view.bestCandidate, candidate.rank > own {
                return (.standby, standbyReason(.standingBy(for: candidate.id, because: .ranksHigher)))
            }
            return (.active, takeoverReason(view))
        }
    }

    /// A member that comes back from DOWN says why it could (its devices, or the administrator).
    func standbyReason(_ waiting: TransitionReason) -> TransitionReason {
        guard state == .down else { return waiting }
        if case .adminDown = lastStateChange?.reason { return .adminUp }
        return .devicesRecovered
    }

    /// Primary Up: a steady, healthy standby that comes before the one active member, and before every
    /// other steady candidate, claims ACTIVE once it has been standing by for the hold time. Steady: it
    /// did not lose ACTIVE, nor start, within the hysteresis (a member that keeps failing or crashing
    /// never takes ACTIVE back).
    func shouldPreempt(_ view: ClusterView, active: Peer, own: MemberRank) -> Bool {
        guard configuration.mode == .primaryUp, state == .standby, view.activeCount == 1, active.state == .active else { return false }
        guard own.steadiness == .steady, own.precedes(active.rank) else { return false }
        guard !(view.bestCandidate.map { claimsBefore($0.rank, own) } ?? false) else { return false }
        return nowMilliseconds - stateSinceMilliseconds >= limits.preemptHoldMilliseconds
    }

    /// A candidate that may claim ACTIVE from the active member (a steady one) before us.
    func claimsBefore(_ candidate: MemberRank, _ own: MemberRank) -> Bool {
        candidate.steadiness == .steady && candidate.precedes(own)
    }

    /// Why this member takes ACTIVE now that no member holds it: what happened to the last active one.
    func takeoverReason(_ view: ClusterView) -> TransitionReason {
        if state == .initializing, !view.anyoneHeard {
            return .aloneAtStart(waitedMilliseconds: nowMilliseconds - startedAtMilliseconds)
        }
        if let last = lastKnownActive, last != localMember, let index = peerIndex(last) {
            let peer = peers[index]
            if state == .ready, preemptTarget == last, isLive(peer) { return .preemptionCompleted(previous: last) }
            if !isLive(peer), let heard = peer.lastHeardAtMilliseconds {
                return .activeMemberDead(last, silentMilliseconds: nowMilliseconds - heard, deadTimerMilliseconds: deadTimerMilliseconds)
            }
            if !peer.state.isActive { return .activeMemberLeft(last, nowIn: peer.state, problems: peer.problems) }
        }
        return .noActiveMember(candidates: view.candidateCount)
    }
}
