// Administrator commands: promotion (dry run, switchover, failover, force), demote, ha stop/start,
// full-sync requests, collision resolution, membership and replication mode.
extension HAStateMachine {
    mutating func handleAdmin(_ command: AdminCommand) {
        switch command {
        case .promote(let dryRun, let force): promote(dryRun: dryRun, force: force)
        case .demote: demote()
        case .haStop:
            guard !hardState.haStopped else { return refuse(.alreadyStopped, .alreadyStopped) }
            hardState.haStopped = true
            persistHardState()
            decide(.haStopped)
            expireSyncPublishes()
        case .haStart:
            guard hardState.haStopped else { return refuse(.alreadyStarted, .alreadyStarted) }
            hardState.haStopped = false
            persistHardState()
            if role == .standby, collision == nil { standby.link = .connecting }
            for index in peers.indices { peers[index].replication = .awaitingHello }
            sendHello()
            decide(.haStarted)
        case .requestFullSync(let target): requestFullSync(of: target)
        case .resolveCollision(let side): resolveCollision(keep: side)
        case .addPeer(let peer): addPeer(peer)
        case .removePeer(let peer): removePeer(peer)
        case .setReplicationMode(let mode): setReplicationMode(mode)
        }
    }

    /// Raises the epoch (persisted with this output, before anything is sent) and becomes its active.
    /// `takeover`: the switchover that makes it active, if one does.
    mutating func becomeActive(in newEpoch: Epoch, forced: Bool, takeover: TakeoverRecord? = nil) {
        precondition(newEpoch >= hardState.epoch && newEpoch.server == serverID, "a server is only active in its own, newest epoch")
        hardState.epoch = newEpoch
        hardState.writesPaused = false
        hardState.handover = nil
        hardState.takesWritesAtFirstStart = false
        hardState.takeover = takeover
        lastKnownActive = serverID
        let unconfirmed = answerSyncPublishesUnconfirmed()
        if unconfirmed > 0 { decide(.syncPublishesUnconfirmedNewEpoch(count: unconfirmed, epoch: newEpoch)) }
        let durable = durableHead == journal.head
        setActiveState(ActiveState(writes: durable ? .enabled : .awaitingDurable, forcedPromotion: forced, announced: true))
        for index in peers.indices { peers[index].replication = .awaitingHello }
        persistHardState()
        if durable { effect(.enableWrites(epoch: newEpoch, forced: forced)) }
        for peer in peers { send(.epochAnnouncement(head: journal.head), to: peer.id) }
    }

    func promotionReport() -> PromotionReport {
        let activeID = hardState.epoch.server
        let activeIndex = peerIndex(activeID)
        let activeReachable = activeIndex.map { reachable($0) && peers[$0].actsAsActive } ?? false
        let lastContact = activeIndex.flatMap { peers[$0].lastHeardAtMilliseconds }.map { nowMilliseconds - $0 }
        let known = activeIndex == nil ? nil : standbyState.activeKnownHead
        let lag = activeIndex.flatMap { lagRevisions(of: $0) }
        var report = PromotionReport(
            path: .failover, activeServer: activeID, activeReachable: activeReachable,
            lastContactMillisecondsAgo: lastContact, localHead: journal.head,
            activeKnownHead: known, replicationMode: hardState.replicationMode,
            knownLagRevisions: lag, mayLoseRevisions: false, summary: "")
        if let active {
            if active.writes != .enabled, !active.unconfirmedPeers.isEmpty {
                return restartedActiveReport(report, unconfirmed: active.unconfirmedPeers)
            }
            report.path = active.writes == .enabled ? .alreadyActive : .switchover
            report.summary =
                active.writes == .enabled
                ? "already active in epoch \(hardState.epoch)" : "active in epoch \(hardState.epoch) but \(active.writesDescription); promote resumes writes"
            return report
        }
        if hardState.haStopped || collision != nil || standbyState.promotion != nil {
            report.path = .refused
            report.summary =
                hardState.haStopped
                ? "HA is stopped here: run ha start first"
                : collision != nil
                    ? "this server is in collision: resolve it first"
                    : "a promotion is already in progress"
            return report
        }
        if activeReachable {
            report.path = .switchover
            report.summary =
                "switchover: \(activeID) is reachable; it stops writes and hands over its final head, we take over in epoch \(hardState.epoch.next(for: serverID)); nothing is lost (we are \(lag ?? 0) revision(s) behind, to be flushed first)"
            return report
        }
        let contact = lastContact.map { "last contact \($0 / 1000) s ago" } ?? "never heard from"
        let knownText = known.map { "its head was \($0) then, ours is \(journal.head): \(lag ?? 0) revision(s) behind" } ?? "its head is unknown"
        switch hardState.replicationMode {
        case .async:
            report.mayLoseRevisions = true
            report.summary =
                "failover: active \(activeID) unreachable (\(contact)); \(knownText); async mode, so anything published since then would be lost; needs force"
        case .sync:
            report.mayLoseRevisions = lag != 0
            report.summary =
                lag == 0
                ? "failover: active \(activeID) unreachable (\(contact)); sync mode and not behind; every other standby will be asked for its head before writes are enabled"
                : "failover: active \(activeID) unreachable (\(contact)); \(knownText); unacknowledged revisions would be lost; needs force"
        }
        return report
    }

    /// A restarted active that has not heard from every peer: what it knows, and what forcing risks.
    func restartedActiveReport(_ base: PromotionReport, unconfirmed: [ServerID]) -> PromotionReport {
        var report = base
        let heard = unconfirmed.map { id -> String in
            let ago = peerIndex(id).flatMap { peers[$0].lastHeardAtMilliseconds }.map { "last heard \((nowMilliseconds - $0) / 1000) s ago" }
            return "\(id) (\(ago ?? "not heard from since this restart"))"
        }
        report.path = .failover
        report.mayLoseRevisions = true
        report.summary =
            "restarted as the active of epoch \(hardState.epoch) at \(journal.head); writes stay off until \(heard.joined(separator: ", ")) answer(s) with no higher epoch: one of them may have been promoted while this server was down. Forcing takes writes now in epoch \(hardState.epoch.next(for: serverID)); if another server took writes meanwhile, both sides' revisions collide (kept for export); needs force"
        return report
    }

    mutating func promote(dryRun: Bool, force: Bool) {
        let report = promotionReport()
        effect(.promotionReport(report))
        if dryRun {
            decide(.dryRun(summary: report.summary))
            return
        }
        if let state = active {
            switch state.writes {
            case .enabled:
                return refuse(.alreadyActive, .alreadyActive(epoch: hardState.epoch))
            case .paused where force && !(state.unconfirmedPeers.isEmpty && peers.indices.allSatisfy(reachable)):
                becomeActive(in: hardState.epoch.next(for: serverID), forced: true)
                return decide(.forcedPromotionOfPausedActive(epoch: hardState.epoch))
            case .paused:
                hardState.writesPaused = false
                persistHardState()
                // With writes off, a standby out of our reach may have been promoted (forced): every
                // peer answers in no higher epoch before writes come back, as after a restart.
                var resuming = state
                resuming.unconfirmedPeers = peers.map(\.id)
                setActiveState(resuming)
                return startTakingWrites(because: .promotedAgain(epoch: hardState.epoch))
            case .handingOver(let handover):
                let target = handover.target
                guard force else {
                    return refuse(.switchoverInProgress, .handoverUnderWay(target: target))
                }
                // Above the epoch the target takes over in, whatever the servers' names: the target
                // may still complete the hand-over it received, and must then be the one fenced.
                let takeover = hardState.epoch.next(for: target)
                var epoch = hardState.epoch.next(for: serverID)
                if epoch < takeover { epoch = takeover.next(for: serverID) }
                becomeActive(in: epoch, forced: true)
                return decide(.forcedPromotionDuringHandover(target: target, epoch: hardState.epoch))
            case .awaitingPeers where !state.unconfirmedPeers.isEmpty:
                guard force else { return refuse(.peersUnconfirmed, .promotionRefused(summary: report.summary)) }
                let silent = state.unconfirmedPeers
                becomeActive(in: hardState.epoch.next(for: serverID), forced: true)
                return decide(.forcedPromotionOfRestartedActive(silent: silent, epoch: hardState.epoch))
            case .awaitingPeers, .awaitingDurable:
                return refuse(.notReady, .notReady(writes: state.writesDescription))
            }
        }
        if report.path == .refused { return refuse(.promotionRefused, .promotionRefused(summary: report.summary)) }
        let activeID = hardState.epoch.server
        if force {
            let previous = hardState.epoch
            becomeActive(in: hardState.epoch.next(for: serverID), forced: true)
            return decide(.forcedPromotion(epoch: hardState.epoch, previous: previous, summary: report.summary))
        }
        if report.path == .switchover {
            switchoverSequence += 1
            let id = nowMilliseconds << 8 | (switchoverSequence & 0xff)
            standby.promotion = .switchover(switchoverID: id, startedAtMilliseconds: nowMilliseconds, finalHead: nil)
            send(.switchoverRequest(switchoverID: id), to: activeID)
            return decide(.switchoverRequested(from: activeID))
        }
        guard case .sync = hardState.replicationMode, report.knownLagRevisions == 0 else {
            return refuse(.mayLoseRevisions, .failoverRefused(summary: report.summary))
        }
        // Raise the epoch first: everyone who answers is fenced from the old epoch, so no publish can
        // still be acknowledged behind our back while we collect the heads.
        // Everyone but the last server seen taking writes must answer (after a failed candidacy the
        // epoch's owner is that candidate, not the active that is gone).
        let poll = CandidatePoll(oldActive: lastKnownActive ?? activeID, startedAtMilliseconds: nowMilliseconds)
        hardState.epoch = hardState.epoch.next(for: serverID)
        standby = StandbyState()
        standby.promotion = .poll(poll)
        persistHardState()
        if poll.required(among: peers).isEmpty {
            becomeActive(in: hardState.epoch, forced: false)
            return decide(.failoverWithoutPoll(epoch: hardState.epoch))
        }
        for peer in peers { send(.promotionPoll, to: peer.id) }
        decide(.failoverPolling(epoch: hardState.epoch))
    }

    mutating func demote() {
        guard var state = active else { return refuse(.notActive, .demoteOnStandby) }
        switch state.writes {
        case .enabled:
            state.writes = .paused
            setActiveState(state)
            hardState.writesPaused = true
            persistHardState()
            effect(.disableWrites)
            decide(.demoted)
        default:
            refuse(.notTakingWrites, .demoteWritesAlreadyOff(writes: state.writesDescription))
        }
    }

    mutating func requestFullSync(of target: ServerID) {
        if target == serverID {
            guard role == .standby, collision == nil else {
                return refuse(.fullSyncRefused, .fullSyncRefusedHere)
            }
            standby.wantsFullSync = true
            standby.link = .connecting
            sendHello()
            return decide(.fullSyncRequested(from: hardState.epoch.server))
        }
        guard isActive, let index = peerIndex(target) else {
            return refuse(.fullSyncRefused, .fullSyncRefusedNotActive(target: target))
        }
        guard case .delta = peers[index].replication else {
            return refuse(.fullSyncRefused, .fullSyncRefusedNotInDelta(target: target, status: syncStatus(of: index)))
        }
        startFullSync(to: index, because: .administratorAsked)
    }

    /// Removes the revisions after `number` from the journal; the durable head follows (the runtime's
    /// truncation is durable before the next input). The caller emits the effect that drops them.
    /// `hashAtNumber`: revision `number`'s hash as the active gave it, for a `number` under our base.
    mutating func dropRevisions(after number: UInt64, hashAtNumber: String? = nil) -> [ReplicatedRevision] {
        noteJournalReplaced(from: number + 1)
        let dropped = journal.truncate(after: number, hashAtNumber: hashAtNumber)
        if durableHead.number > number { durableHead = journal.head }
        return dropped
    }

    /// Lowers `journalReplacedFrom` to `number`, durably before the journal changes (the effect that
    /// changes it comes later in the same output).
    mutating func noteJournalReplaced(from number: UInt64) {
        guard hardState.journalReplacedFrom.map({ number < $0 }) ?? true else { return }
        hardState.journalReplacedFrom = number
        persistHardState()
    }

    mutating func resolveCollision(keep side: CollisionSide) {
        guard let found = collision else {
            return refuse(.noCollision, .noCollision)
        }
        switch side {
        case .peer:
            let base = journal.base
            let reachesIntoSnapshot = found.commonNumber < base.number
            let divergent = dropRevisions(after: found.commonNumber, hashAtNumber: standby.collisionCommonHash)
            // Export before drop: both effects run in order, so the revisions are out before they go.
            effect(.exportDivergent(after: found.commonNumber, revisions: divergent, snapshotBase: reachesIntoSnapshot ? base : nil))
            effect(.truncateJournal(after: found.commonNumber))
            standby.link = .connecting
            sendHello()
            decide(
                .collisionResolvedKeepingPeer(
                    active: hardState.epoch.server, divergent: found.divergentRevisions,
                    after: found.commonNumber, snapshotBase: reachesIntoSnapshot ? base : nil))
        case .local:
            let previous = hardState.epoch.server
            becomeActive(in: hardState.epoch.next(for: serverID), forced: true)
            decide(.collisionResolvedKeepingLocal(epoch: hardState.epoch, previous: previous))
        }
    }

    mutating func addPeer(_ peer: ServerID) {
        guard peer != serverID, peerIndex(peer) == nil else { return refuse(.peerExists, .peerExists(peer)) }
        guard peers.count + 2 <= limits.serversMax else { return refuse(.tooManyServers, .tooManyServers(peer, max: limits.serversMax)) }
        let position = peers.firstIndex { $0.id > peer } ?? peers.count
        let record = PeerRecord(serverID: peer)
        peers.insert(PeerState(record: record), at: position)
        hardState.peers.insert(record, at: position)
        persistHardState()
        decide(.peerAdded(peer))
    }

    mutating func removePeer(_ peer: ServerID) {
        guard let index = peerIndex(peer) else { return refuse(.noSuchPeer, .noSuchPeer(peer)) }
        guard peer != hardState.epoch.server else { return refuse(.peerIsActive, .peerIsActive(peer)) }
        peers.remove(at: index)
        hardState.peers.remove(at: index)
        persistHardState()
        // A removed peer is no longer waited for: its word no longer counts.
        confirmNoHigherEpoch(from: peer)
        if case .poll(let poll) = standbyState.promotion, poll.required(among: peers).allSatisfy(poll.answered.contains), role == .standby {
            becomeActive(in: hardState.epoch, forced: false)
        }
        decide(.peerRemoved(peer))
    }

    mutating func setReplicationMode(_ mode: ReplicationMode) {
        guard isActive else {
            return refuse(.notActive, .replicationModeOnStandby(active: hardState.epoch.server))
        }
        if case .sync(let timeout) = mode { precondition(timeout > 0, "a sync timeout is positive") }
        if case .sync(let timeout) = hardState.replicationMode, case .async = mode {
            // Any peer may have learned sync mode from us since it last reported (its report is on the
            // way, or lost): it counts as in sync mode until it reports the new mode.
            for index in peers.indices { peers[index].reportedMode = .sync(timeoutMilliseconds: timeout) }
        }
        hardState.replicationMode = mode
        persistHardState()
        expireSyncPublishes()
        let pending = publishMode == mode ? nil : limits.asyncUnconfirmedTimeoutMilliseconds
        decide(.replicationModeSet(mode, standbysPendingMilliseconds: pending))
    }
}
