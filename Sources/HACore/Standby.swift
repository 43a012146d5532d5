// The standby side: hello, applying deltas, receiving full syncs, collisions, switchover and failover.
extension HAStateMachine {
    var followedActive: ServerID? {
        let owner = hardState.epoch.server
        return owner == serverID || owner == .nobody ? nil : owner
    }

    mutating func standbyTimers() {
        guard let activeID = followedActive, let activeIndex = peerIndex(activeID) else {
            candidateTimers()
            return
        }
        // During a full sync the chunks on their way hold the active's later messages back (one stream):
        // on a slow link a chunk alone can outlast the peer timeout. The stall limit below judges it.
        if !reachable(activeIndex), standbyState.link == .delta {
            standby.link = .connecting
            decide(.activeSilent(activeID, milliseconds: limits.peerTimeoutMilliseconds))
        }
        if case .fullSync(let receiver) = standbyState.link,
            nowMilliseconds - receiver.lastProgressAtMilliseconds > limits.fullSyncStallMilliseconds
        {
            // The active may have lost track of this full sync (restart, or it moved on): start over
            // with a hello; applied chunks are resumed if it offers the same snapshot again.
            reconnect(because: .fullSyncStalled(milliseconds: limits.fullSyncStallMilliseconds))
        }
        if standbyState.link == .connecting { sendHelloIfDue() }
        switchoverTimers(activeID: activeID)
    }

    mutating func sendHelloIfDue() {
        if let last = standbyState.lastHelloAtMilliseconds, nowMilliseconds - last < limits.helloRetryMilliseconds { return }
        sendHello()
    }

    mutating func sendHello() {
        guard let activeID = followedActive, !hardState.haStopped else { return }
        standby.lastHelloAtMilliseconds = nowMilliseconds
        let hello = HAMessage.Hello(
            serverID: serverID, head: journal.head, durableHead: durableHead, spans: journal.spans,
            softwareVersion: configuration.softwareVersion,
            schemaVersion: configuration.schemaVersion, wantsFullSync: standbyState.wantsFullSync,
            checkpoints: journal.checkpoints)
        send(.hello(hello), to: activeID)
    }

    mutating func standbyReceiveActiveHeartbeat(_ heartbeat: HAMessage.Heartbeat, from sender: ServerID) {
        standby.activeKnownHead = heartbeat.head
        standby.activeLastHeardAtMilliseconds = nowMilliseconds
        adoptReplicationMode(heartbeat.replicationMode, from: sender)
        if heartbeat.expectingHello {
            if case .collision = standby.link {} else { standby.link = .connecting }
            sendHelloIfDue()
        }
        note(.heartbeatFromActive)
    }

    /// A standby follows the active's replication mode (persisted: its heartbeats tell the active it
    /// holds it, and a failover judges by it), even while its HA is stopped.
    mutating func adoptReplicationMode(_ mode: ReplicationMode, from sender: ServerID) {
        guard mode != hardState.replicationMode else { return }
        hardState.replicationMode = mode
        persistHardState()
        decide(.replicationModeAdopted(mode, from: sender))
    }

    mutating func standbyReceiveAnnouncement(head: RevisionHead, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server else {
            note(.epochAnnouncement)
            return
        }
        // The active (re)started: it has forgotten our link, so say hello again.
        standby.activeKnownHead = head
        standby.activeLastHeardAtMilliseconds = nowMilliseconds
        if case .collision = standby.link {} else { standby.link = .connecting }
        if standbyState.lastHelloAtMilliseconds != nowMilliseconds { sendHello() }
        note(.activeAnnounced)
    }

    mutating func ack(gap: Bool) {
        guard let activeID = followedActive else { return }
        send(.ack(durableHead: durableHead, head: journal.head, gap: gap), to: activeID)
    }

    mutating func standbyReceiveAppend(previous: RevisionHead, revisions: [ReplicatedRevision], activeHead: RevisionHead, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server else { return }
        standby.activeKnownHead = activeHead
        standby.activeLastHeardAtMilliseconds = nowMilliseconds
        switch standbyState.link {
        case .collision, .fullSync:
            note(.appendIgnored)
            return
        case .connecting:
            if standbyState.wantsFullSync { return }
            // An append answers our hello: the active found our journal to be a prefix of its own.
            standby.link = .delta
            decide(.deltaSyncEstablished(with: sender, at: journal.head))
        case .delta:
            break
        }
        guard previous.number <= journal.head.number else {
            ack(gap: true)
            note(.gapBeforeAppend)
            return
        }
        if let hash = journal.hash(at: previous.number), hash != previous.hash {
            reconnect(because: .appendDoesNotLink(atNumber: previous.number))
            return
        }
        var applied: [ReplicatedRevision] = []
        for revision in revisions {
            if revision.number <= journal.head.number {
                if let hash = journal.hash(at: revision.number), hash != revision.hash {
                    reconnect(because: .revisionDiffers(number: revision.number))
                    break
                }
                continue
            }
            let head = journal.head
            guard revision.number == head.number + 1, revision.previousHash == head.hash,
                revision.epoch <= hardState.epoch, revision.epoch >= (journal.lastEpoch ?? .initial)
            else {
                reconnect(because: .hashChainBroken(number: revision.number))
                break
            }
            appendToJournal(revision)
            applied.append(revision)
        }
        if applied.isEmpty {
            ack(gap: false)
        } else {
            effect(.applyRevisions(applied))
        }
        note(.appendApplied)
    }

    mutating func reconnect(because why: ReconnectCause) {
        standby.link = .connecting
        sendHello()
        decide(.reconnecting(why))
    }

    mutating func persistedUpTo(_ head: RevisionHead) {
        guard head.number >= durableHead.number || journal.base.number > durableHead.number,
            journal.contains(head) == true
        else {
            note(.stalePersistenceReport)
            return
        }
        durableHead = head
        if var state = active {
            if state.writes == .awaitingDurable, durableHead == journal.head {
                state.writes = .enabled
                setActiveState(state)
                effect(.enableWrites(epoch: hardState.epoch, forced: state.forcedPromotion))
                decide(.appliedRevisionsDurable(epoch: hardState.epoch))
                return
            }
            acknowledgeSyncPublishes()
            note(.publishedDurable(upTo: head))
            return
        }
        if standbyState.link == .delta {
            ack(gap: false)
            if let known = standby.activeKnownHead, known.number <= durableHead.number { standby.synchronizedAtMilliseconds = nowMilliseconds }
        }
        completeSwitchoverIfReady()
        note(.persistedAndAcknowledged)
    }

    // MARK: - Full sync (standby side)

    mutating func standbyReceiveOffer(snapshotHead: RevisionHead, chunkCount: Int, spans: [EpochSpan], from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server else { return }
        switch standbyState.link {
        case .collision:
            note(.offerIgnoredInCollision)
            return
        case .fullSync(let receiver) where receiver.snapshotHead == snapshotHead:
            // Still receiving it: the chunks on their way are still coming.
            send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: receiver.nextIndex, resend: false), to: sender)
            note(.offerRepeated)
            return
        case .delta where journal.base == snapshotHead:
            // We installed exactly this snapshot already: every chunk is applied.
            send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: chunkCount, resend: false), to: sender)
            note(.offerForHeldSnapshot)
            return
        default:
            break
        }
        guard (1...limits.snapshotChunkCountMax).contains(chunkCount), snapshotHead.number == (spans.last?.lastNumber ?? 0),
            Journal.commonPrefixNumber(journal.spans, spans) >= journal.head.number
        else {
            reconnect(because: .offerDoesNotCover(snapshotHead: snapshotHead))
            return
        }
        var resume = 0
        if let progress = hardState.fullSyncProgress, progress.snapshotHead == snapshotHead, progress.chunkCount == chunkCount {
            resume = progress.chunksApplied
        }
        standby.link = .fullSync(
            FullSyncReceiver(
                snapshotHead: snapshotHead, chunkCount: chunkCount, spans: spans,
                nextIndex: resume, lastProgressAtMilliseconds: nowMilliseconds))
        hardState.fullSyncProgress = FullSyncProgress(snapshotHead: snapshotHead, chunkCount: chunkCount, chunksApplied: resume)
        persistHardState()
        send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: resume, resend: true), to: sender)
        decide(.fullSyncReceiving(from: sender, at: snapshotHead, chunkCount: chunkCount, startingAt: resume))
    }

    mutating func standbyReceiveChunk(snapshotHead: RevisionHead, index: Int, bytes: [UInt8], checksum: UInt64, from sender: ServerID) {
        guard case .fullSync(var receiver) = standbyState.link, receiver.snapshotHead == snapshotHead else {
            // The active thinks we are receiving a snapshot we are not: a hello makes it offer again.
            if role == .standby, sender == hardState.epoch.server { sendHelloIfDue() }
            note(.chunkOutsideFullSync)
            return
        }
        guard receiver.applying == nil else {
            // Kept one at a time (applying writes to disk); the ack after this apply asks for it again
            // rather than leaving it to the active's retransmit timer.
            if index >= receiver.nextIndex {
                receiver.droppedWhileApplying = true
                standby.link = .fullSync(receiver)
            }
            note(.chunkDroppedWhileApplying)
            return
        }
        guard index == receiver.nextIndex else {
            // Chunks travel several at a time: after a lost or bad one, those behind it arrive early, and
            // after a resend, some arrive twice. Answering each would have the active send its window once
            // per chunk; the ack that asked for the resend (or the active's timer) covers them.
            note(.chunkOutOfOrder)
            return
        }
        guard snapshotChunkChecksum(bytes) == checksum else {
            send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: receiver.nextIndex, resend: true), to: sender)
            decide(.chunkChecksumFailed(index: index))
            return
        }
        receiver.applying = index
        standby.link = .fullSync(receiver)
        effect(.applySnapshotChunk(snapshotHead: snapshotHead, index: index, bytes: bytes))
        note(.chunkVerified)
    }

    mutating func snapshotChunkApplied(snapshotHead: RevisionHead, index: Int) {
        guard case .fullSync(var receiver) = standbyState.link, receiver.snapshotHead == snapshotHead, receiver.applying == index else {
            note(.staleChunkReport)
            return
        }
        receiver.applying = nil
        receiver.nextIndex = index + 1
        receiver.lastProgressAtMilliseconds = nowMilliseconds
        let resend = receiver.droppedWhileApplying
        receiver.droppedWhileApplying = false
        standby.link = .fullSync(receiver)
        hardState.fullSyncProgress = FullSyncProgress(snapshotHead: snapshotHead, chunkCount: receiver.chunkCount, chunksApplied: receiver.nextIndex)
        persistHardState()
        if let activeID = followedActive { send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: receiver.nextIndex, resend: resend), to: activeID) }
        note(.chunkApplied)
    }

    mutating func standbyReceiveSnapshotDone(snapshotHead: RevisionHead, from sender: ServerID) {
        if standbyState.link == .delta, journal.base == snapshotHead {
            ack(gap: false)
            return
        }
        guard case .fullSync(let receiver) = standbyState.link, receiver.snapshotHead == snapshotHead,
            receiver.nextIndex == receiver.chunkCount, receiver.applying == nil
        else { return }
        noteJournalReplaced(from: 1)
        effect(.completeFullSync(snapshotHead: snapshotHead, spans: receiver.spans))
        journal.installSnapshot(at: snapshotHead, spans: receiver.spans)
        standby.link = .delta
        standby.wantsFullSync = false
        hardState.fullSyncProgress = nil
        persistHardState()
        decide(.fullSyncInstalled(from: sender, at: snapshotHead))
    }

    // MARK: - Collision

    mutating func standbyReceiveCollision(
        commonNumber: UInt64, divergentCount: UInt64, activeHead: RevisionHead, commonHash: String?, from sender: ServerID
    ) {
        guard role == .standby, sender == hardState.epoch.server else { return }
        // The report answers one hello: it must describe our journal as it is. One that does not is
        // stale (a hello sent before we dropped revisions, delayed or duplicated on the way): say hello again.
        guard commonNumber < journal.head.number, journal.head.number - commonNumber == divergentCount else {
            reconnect(because: .collisionReportMismatch(from: sender))
            return
        }
        let divergent = divergentCount
        if case .collision(commonNumber, divergent) = standbyState.link { return }
        standby.link = .collision(common: commonNumber, divergent: divergent)
        standby.collisionCommonHash = commonHash
        standby.activeKnownHead = activeHead
        decide(.collisionWithActive(sender, divergent: divergent, after: commonNumber))
    }

    /// The active lost our revisions after `number` in a crash before its fsync (`activeReceiveHello`).
    /// Checked here again: only revisions of the sender's own epoch, only while our hello awaits its
    /// answer, never into a snapshot base: under our base only with the active's hash of revision
    /// `number` (`afterHash`), the base being one our core compacted to, not a snapshot's.
    /// `epoch`: the epoch whose revisions to drop, our active's own or one it took over by switchover
    /// (nil from a sender that does not say: its own).
    /// `standbyHead`: our head in the hello it answers; it must still be our head (a hello delayed or
    /// duplicated on the way, answered after we received other revisions, must not drop those).
    mutating func standbyReceiveDiscard(after number: UInt64, epoch: Epoch?, afterHash: String?, standbyHead: RevisionHead?, from sender: ServerID) {
        let lostEpoch = epoch ?? hardState.epoch
        guard role == .standby, sender == hardState.epoch.server, standbyState.link == .connecting, lostEpoch <= hardState.epoch,
            standbyHead.map({ $0 == journal.head }) ?? true,
            number < journal.head.number, number >= journal.base.number || afterHash != nil,
            journal.spans.allSatisfy({ $0.lastNumber <= number || $0.epoch == lostEpoch })
        else {
            note(.discardIgnored)
            return
        }
        let dropped = dropRevisions(after: number, hashAtNumber: afterHash)
        effect(.discardUnsyncedRevisions(after: number))
        sendHello()
        decide(.droppedUnsyncedTail(count: dropped.count, after: number, active: sender, epoch: lostEpoch))
    }

    /// The active compares our journal with its own, number by number (`forkProbe`): our hashes.
    mutating func standbyReceiveForkProbe(_ numbers: [UInt64], from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server, numbers.count <= HALimits.forkProbeNumbersMax else {
            note(.forkProbeIgnored)
            return
        }
        let heads = numbers.compactMap { number in journal.hash(at: number).map { RevisionHead(number: number, hash: $0) } }
        send(.forkProbeReply(head: journal.head, heads: heads), to: sender)
        note(.forkProbeAnswered)
    }

    // MARK: - Switchover (standby side)

    mutating func standbyReceiveHandover(_ id: UInt64, finalHead: RevisionHead, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server, case .switchover(id, let startedAt, _) = standbyState.promotion else {
            // Not (or no longer) waiting for this hand-over: tell the active to take writes back.
            send(.switchoverAbort(switchoverID: id, reason: .noSwitchoverPending), to: sender)
            note(.unexpectedHandover)
            return
        }
        standby.promotion = .switchover(switchoverID: id, startedAtMilliseconds: startedAt, finalHead: finalHead)
        decide(.handedOver(by: sender, at: finalHead))
        completeSwitchoverIfReady()
    }

    mutating func completeSwitchoverIfReady() {
        guard case .switchover(_, _, let finalHead?) = standbyState.promotion else { return }
        guard durableHead == finalHead, journal.head == finalHead else { return }
        let previous = hardState.epoch.server
        let next = hardState.epoch.next(for: serverID)
        becomeActive(in: next, forced: false, takeover: TakeoverRecord(epoch: hardState.epoch, finalHead: finalHead, takenInEpoch: next))
        decide(.switchoverCompleted(previous: previous, finalHead: finalHead, epoch: hardState.epoch))
    }

    mutating func switchoverTimers(activeID: ServerID) {
        guard case .switchover(let id, let startedAt, _) = standbyState.promotion,
            nowMilliseconds - startedAt > limits.switchoverTimeoutMilliseconds
        else { return }
        standby.promotion = nil
        send(.switchoverAbort(switchoverID: id, reason: .switchoverTimedOut), to: activeID)
        decide(.switchoverTimedOut(milliseconds: limits.switchoverTimeoutMilliseconds, active: activeID))
    }

    // MARK: - Failover candidate

    mutating func candidateTimers() {
        guard case .poll(let poll) = standbyState.promotion,
            nowMilliseconds - poll.startedAtMilliseconds > limits.promotionPollTimeoutMilliseconds
        else { return }
        standby.promotion = nil
        let missing = poll.required(among: peers).filter { !poll.answered.contains($0) }
        refuse(.promotionUnconfirmed, .failoverUnconfirmed(missing: missing, milliseconds: limits.promotionPollTimeoutMilliseconds))
    }

    mutating func candidateReceivePollReply(durableHead peerHead: RevisionHead, spans: [EpochSpan], from index: Int) {
        guard case .poll(var poll) = standbyState.promotion else { return }
        let peer = peers[index].id
        let common = Journal.commonPrefixNumber(journal.spans, spans)
        if common < peerHead.number || journal.contains(peerHead) == false {
            standby.promotion = nil
            let lacking = common < peerHead.number ? peerHead.number - common : nil
            refuse(.standbyAhead, .standbyAhead(peer: peer, lacking: lacking, peerHead: peerHead, ourHead: journal.head))
            return
        }
        if !poll.answered.contains(peer) { poll.answered.append(peer) }
        standby.promotion = .poll(poll)
        if poll.required(among: peers).allSatisfy(poll.answered.contains) {
            becomeActive(in: hardState.epoch, forced: false)
            decide(.failoverCompleted(epoch: hardState.epoch))
        }
    }
}
