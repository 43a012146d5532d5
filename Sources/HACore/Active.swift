// The active side: delta sync, full sync, sync-mode acknowledgements, switchover hand-over.
extension HAStateMachine {
    mutating func activeTimers() {
        guard var state = active else { return }
        if !state.announced {
            // (Re)started as active: tell everyone, so standbys say hello and a newer epoch fences us quickly.
            for peer in peers { send(.epochAnnouncement(head: journal.head), to: peer.id) }
            state.announced = true
            setActiveState(state)
        }
        // A hand-over never resumes by timer: that could race a take-over we did not hear about.
        // Only the standby's abort (or a forced promotion here) gives writes back. It is sent again
        // until then: a target that restarted (or timed out, its abort lost) forgot the switchover and
        // answers with an abort; one that took over answers in its higher epoch, which fences us.
        if case .handingOver(let handover) = state.writes {
            resendHandoverIfDue(handover, &state)
        }
        if state.writes == .awaitingPeers, state.unconfirmedPeers.isEmpty {
            startTakingWrites(because: peers.isEmpty ? .startedWithoutPeers : .firstStart)
        }
        expireSyncPublishes()
        for index in peers.indices { retransmit(to: index, presumingLost: false) }
    }

    mutating func resendHandoverIfDue(_ handover: HandoverRecord, _ state: inout ActiveState) {
        if let sent = state.handoverSentAtMilliseconds, nowMilliseconds - sent < limits.retransmitMilliseconds { return }
        state.handoverSentAtMilliseconds = nowMilliseconds
        setActiveState(state)
        send(.handover(switchoverID: handover.switchoverID, finalHead: handover.finalHead), to: handover.target)
    }

    /// A peer answered in no higher epoch since this active (re)started; once every peer has, no
    /// promotion can have happened behind our back (a promotion needs the promoted server's epoch,
    /// which it sends to everyone), and writes come back.
    mutating func confirmNoHigherEpoch(from peer: ServerID) {
        guard var state = active, let position = state.unconfirmedPeers.firstIndex(of: peer) else { return }
        state.unconfirmedPeers.remove(at: position)
        setActiveState(state)
        if state.unconfirmedPeers.isEmpty, state.writes == .awaitingPeers {
            startTakingWrites(because: .everyPeerAnswered(epoch: hardState.epoch))
        }
    }

    /// Takes writes again (after a start, a pause or an aborted hand-over): at once when every peer
    /// answered since our (re)start and the journal is durable; otherwise as soon as both hold.
    mutating func startTakingWrites(because why: WritesCause) {
        guard var state = active else { return }
        if !state.unconfirmedPeers.isEmpty {
            state.writes = .awaitingPeers
            setActiveState(state)
            decide(.writesEnabledOncePeersAnswer(why, epoch: hardState.epoch, unconfirmed: state.unconfirmedPeers))
            return
        }
        state.writes = durableHead == journal.head ? .enabled : .awaitingDurable
        setActiveState(state)
        if state.writes == .enabled {
            if hardState.takesWritesAtFirstStart {
                hardState.takesWritesAtFirstStart = false
                persistHardState()
            }
            effect(.enableWrites(epoch: hardState.epoch, forced: false))
            decide(.writesEnabled(why, epoch: hardState.epoch))
        } else {
            decide(.writesEnabledOnceDurable(why, epoch: hardState.epoch))
        }
    }

    mutating func linkRestored(_ peer: ServerID) {
        guard isActive, let index = peerIndex(peer) else {
            note(.linkRestored(peer))
            return
        }
        retransmit(to: index, presumingLost: true)
        note(.linkRestoredResent(peer))
    }

    mutating func expireSyncPublishes() {
        guard var state = active, !state.pendingSyncPublishes.isEmpty else { return }
        // Publishes still waiting once answers go out without a standby (async), or once no standby
        // can confirm them, are answered now.
        let timeout: UInt64 =
            if case .sync(let timeout) = publishMode, !noStandbyCanConfirm { timeout } else { 0 }
        var expired = 0
        while expired < state.pendingSyncPublishes.count,
            nowMilliseconds - state.pendingSyncPublishes[expired].committedAtMilliseconds >= timeout
        {
            effect(.publishTimedOut(revision: state.pendingSyncPublishes[expired].number))
            expired += 1
        }
        if expired > 0 {
            if hardState.haStopped {
                decide(.syncPublishesUnconfirmedHAStopped(count: expired))
            } else if peers.isEmpty {
                decide(.syncPublishesUnconfirmedNoStandby(count: expired))
            } else {
                decide(.syncPublishesTimedOut(count: expired, timeoutMilliseconds: timeout))
            }
            state.pendingSyncPublishes.removeFirst(expired)
            setActiveState(state)
        }
    }

    /// Nothing can confirm a publish here: HA is stopped (acknowledgements are ignored until it
    /// starts), or the group has no other server.
    var noStandbyCanConfirm: Bool { hardState.haStopped || peers.isEmpty }

    /// Answers every publish still waiting for a standby as unconfirmed (no protection claimed), when
    /// this server leaves the active state they were waiting in. Returns how many.
    @discardableResult
    mutating func answerSyncPublishesUnconfirmed() -> Int {
        guard var state = active else { return 0 }
        for publish in state.pendingSyncPublishes { effect(.publishTimedOut(revision: publish.number)) }
        let count = state.pendingSyncPublishes.count
        state.pendingSyncPublishes = []
        setActiveState(state)
        return count
    }

    /// Sends again what `index` has not acknowledged once its retransmit time passed, or at once when
    /// it is `presumingLost` (its channel broke).
    mutating func retransmit(to index: Int, presumingLost: Bool) {
        switch peers[index].replication {
        case .delta(var progress):
            if progress.sentUpTo > progress.matched.number,
                presumingLost || nowMilliseconds - progress.lastSentAtMilliseconds >= appendRetransmitMilliseconds(progress)
            {
                progress.sentUpTo = progress.matched.number
                peers[index].replication = .delta(progress)
            }
            sendAppends(to: index)
        case .fullSync(var sender):
            guard presumingLost || nowMilliseconds - sender.lastSentAtMilliseconds >= limits.snapshotRetransmitMilliseconds else { return }
            // Nothing moved for a while, or the channel broke: what is on its way (or a read never
            // answered) is presumed lost; go back to the standby's last acknowledged chunk.
            sender.lastSentAtMilliseconds = nowMilliseconds
            sender.nextToSend = sender.acknowledgedChunks
            sender.readRequested = nil
            peers[index].replication = .fullSync(sender)
            sendSnapshotStep(to: index)
        default: break
        }
    }

    mutating func revisionCommitted(_ revision: ReplicatedRevision) {
        precondition(writesEnabled, "the runtime committed a revision while writes are disabled")
        precondition(revision.epoch == hardState.epoch, "a revision is committed in the active's epoch")
        // Not durable yet: sent first, made durable by the runtime right after (`persistedUpTo`), so the
        // standbys apply it while the active's fsync runs. If the active loses it in a crash, a standby
        // that holds it learns so on hello (`discardUnsyncedTail`).
        appendToJournal(revision)
        if case .sync = publishMode, var state = active {
            if state.pendingSyncPublishes.count >= limits.pendingSyncPublishesMax {
                effect(.publishTimedOut(revision: state.pendingSyncPublishes[0].number))
                state.pendingSyncPublishes.removeFirst()
                decide(.syncPublishesOverflowed(max: limits.pendingSyncPublishesMax))
            }
            state.pendingSyncPublishes.append(.init(number: revision.number, committedAtMilliseconds: nowMilliseconds))
            setActiveState(state)
        }
        if noStandbyCanConfirm { expireSyncPublishes() }
        for index in peers.indices { sendAppends(to: index) }
        note(.revisionCommitted)
    }

    /// Event-triggered delta sync: sends the next batch unless too much is already in flight.
    mutating func sendAppends(to index: Int) {
        guard case .delta(var progress) = peers[index].replication, !peers[index].haStopped else { return }
        let head = journal.head.number
        guard progress.sentUpTo < head, progress.sentUpTo - progress.matched.number < limits.inFlightRevisionsMax else { return }
        guard progress.sentUpTo >= journal.base.number else {
            startFullSync(to: index, because: .headOlderThanSnapshotBase)
            return
        }
        let batch = appendBatch(after: progress.sentUpTo)
        guard let last = batch.last else { return }
        let previous = journal.headAt(progress.sentUpTo)
        progress.sentUpTo = last.number
        progress.lastSentAtMilliseconds = nowMilliseconds
        progress.lastSentPayloadBytes = batch.reduce(0) { $0 + $1.payload.byteCount }
        peers[index].replication = .delta(progress)
        send(.append(previous: previous, revisions: batch, activeHead: journal.head), to: peers[index].id)
    }

    /// How long an unacknowledged append waits before it is sent again: longer for a large one, which the
    /// standby needs time to apply (payload bytes are bounded by the frame limit, so no overflow).
    func appendRetransmitMilliseconds(_ progress: DeltaProgress) -> UInt64 {
        limits.retransmitMilliseconds + UInt64(max(progress.lastSentPayloadBytes, 0)) / max(limits.retransmitAllowanceBytesPerMillisecond, 1)
    }

    /// The next `append` batch after revision `number`: bounded by count and by payload bytes.
    func appendBatch(after number: UInt64) -> [ReplicatedRevision] {
        journal.revisions(after: number, limit: limits.appendBatchRevisionsMax, payloadBytesMax: limits.appendBatchPayloadBytesMax)
    }

    mutating func activeReceiveHello(_ hello: HAMessage.Hello, from index: Int) {
        guard isActive else {
            note(.helloIgnoredNotActive)
            return
        }
        let peer = peers[index].id
        peers[index].knownHead = hello.head
        guard hello.schemaVersion == configuration.schemaVersion else {
            peers[index].replication = .incompatible
            decide(
                .schemaMismatch(
                    peer: peer, schemaVersion: hello.schemaVersion, softwareVersion: hello.softwareVersion,
                    ourSchemaVersion: configuration.schemaVersion))
            return
        }
        var probe = forkBounds(of: hello)
        if case .fullSync(let sender) = peers[index].replication { probe.fullSyncUnderWay = sender }
        guard probe.isExact else {
            let numbers = probe.numbersToAsk(limit: HALimits.forkProbeNumbersMax)
            peers[index].replication = .probingFork(probe)
            send(.forkProbe(numbers: numbers), to: peer)
            decide(.probingFork(peer: peer, shared: probe.shared, firstDiffering: probe.firstDiffering))
            return
        }
        answerHello(probe, from: index)
    }

    /// The probe has narrowed the fork to one revision (or cannot narrow it further).
    mutating func activeReceiveForkProbeReply(head: RevisionHead, heads: [RevisionHead], from index: Int) {
        guard case .probingFork(var probe) = peers[index].replication else {
            note(.forkProbeReplyNotNeeded)
            return
        }
        let peer = peers[index].id
        guard head == probe.hello.head else {
            peers[index].replication = .awaitingHello
            decide(.journalChangedDuringProbe(peer: peer))
            return
        }
        var narrowed = false
        // By the hash chain, every revision up to a shared one is shared: the bounds only move inward.
        for answered in heads.sorted(by: { $0.number < $1.number })
        where answered.number > probe.shared && answered.number < probe.firstDiffering {
            narrowed = true
            if journal.contains(answered) == false { probe.firstDiffering = answered.number } else { probe.shared = answered.number }
        }
        guard narrowed, !probe.isExact else {
            answerHello(probe, from: index)
            return
        }
        peers[index].replication = .probingFork(probe)
        send(.forkProbe(numbers: probe.numbersToAsk(limit: HALimits.forkProbeNumbersMax)), to: peer)
        note(.forkProbeNarrowed)
    }

    /// Answers a standby's hello once the last revision its journal shares with ours is known
    /// (`fork.shared`): delta sync, a full sync, a collision, or dropping what we lost before our fsync.
    mutating func answerHello(_ fork: ForkProbe, from index: Int) {
        let hello = fork.hello
        let shared = fork.shared
        let peer = peers[index].id
        let isPrefix = shared >= hello.head.number
        if !isPrefix, let lost = lostUnsyncedEpoch(of: fork) {
            peers[index].replication = .awaitingHello
            send(
                .discardUnsyncedTail(
                    after: shared, epoch: lost == hardState.epoch ? nil : lost, afterHash: journal.hash(at: shared), standbyHead: hello.head),
                to: peer)
            decide(.toldToDiscardUnsyncedTail(peer: peer, epoch: lost, after: shared, author: lost.server))
            return
        }
        guard isPrefix else {
            let divergent = hello.head.number - shared
            peers[index].replication = .collision(common: shared, divergent: divergent)
            send(
                .collision(commonNumber: shared, divergentCount: divergent, activeHead: journal.head, commonHash: journal.hash(at: shared)),
                to: peer)
            decide(.collisionFound(peer: peer, divergent: divergent, after: shared))
            return
        }
        if let sender = fork.fullSyncUnderWay, Self.snapshot(sender, covers: hello) {
            peers[index].replication = .fullSync(sender)
            // Already sending it a snapshot: offer it again rather than start over. Its answer says
            // whether it resumes from its own progress (a restart) or is still receiving.
            if let chunkCount = sender.chunkCount {
                send(.snapshotOffer(snapshotHead: sender.snapshotHead, chunkCount: chunkCount, spans: sender.spans), to: peer)
            }
            note(.snapshotOfferedAgain)
            return
        }
        let isNewStandby = hello.head.number == 0 && journal.head.number > 0
        if hello.wantsFullSync || isNewStandby || hello.head.number < journal.base.number || fork.fullSyncUnderWay != nil {
            let why: FullSyncCause =
                hello.wantsFullSync
                ? .standbyAsked
                : isNewStandby
                    ? .newStandby
                    : hello.head.number < journal.base.number ? .headOlderThanSnapshotBase : .offeredSnapshotDoesNotCover
            // A standby that asked for a full sync gets a snapshot of its own, never one it may have failed to install.
            startFullSync(to: index, because: why, sharingWith: hello.wantsFullSync ? nil : hello)
            return
        }
        let matched = journal.contains(hello.durableHead) == true ? hello.durableHead : journal.base
        peers[index].replication = .delta(DeltaProgress(matched: matched, sentUpTo: hello.head.number, lastSentAtMilliseconds: nowMilliseconds))
        // Always answer, even with nothing to send: an append tells the standby its journal was verified.
        let batch = appendBatch(after: hello.head.number)
        if let last = batch.last {
            peers[index].replication = .delta(
                DeltaProgress(
                    matched: matched, sentUpTo: last.number, lastSentAtMilliseconds: nowMilliseconds,
                    lastSentPayloadBytes: batch.reduce(0) { $0 + $1.payload.byteCount }))
        }
        send(.append(previous: hello.head, revisions: batch, activeHead: journal.head), to: peer)
        markSynchronizedIfCaughtUp(index)
        decide(.deltaSyncStarted(peer: peer, from: hello.head, ourHead: journal.head))
    }

    /// The epoch whose author lost, in a crash before its fsync, every revision a standby holds after
    /// `shared` (so no publish of them was answered): nil when that is not certain (a collision).
    /// - Our own epoch: we wrote them and lost them (an active never drops revisions of its own epoch
    ///   otherwise: a restore always starts a new one).
    /// - The epoch handed over to us by switchover: its author held durably no revision of it that we
    ///   lack (we took over once we held its whole journal, to its final head, durably), and wrote none
    ///   after stopping writes for the hand-over (only an abort from us gives writes back, and we sent
    ///   none once we took over).
    /// - An older epoch of our own in which we hold revision `shared + 1` ourselves, with a journal
    ///   never dropped or replaced from there on (`journalReplacedFrom`): ours is the one we kept, so
    ///   the standby's, another revision we wrote under that number in that epoch, is one we lost.
    ///   Only when the fork is exact: where the standby could not show its hashes (under its snapshot
    ///   base) its revision `shared + 1` may be ours, and what it holds beyond may be revisions we
    ///   dropped on purpose later on (a collision resolved keeping the peer's data, after an export),
    ///   whose publishes were answered: a collision, so that it exports them too.
    func lostUnsyncedEpoch(of fork: ForkProbe) -> Epoch? {
        let shared = fork.shared
        guard let tail = fork.hello.spans.last, shared >= tail.firstNumber - 1 else { return nil }
        if tail.epoch == hardState.epoch { return tail.epoch }
        if tail.epoch.server == serverID, fork.isExact, shared >= journal.base.number, journal.epoch(at: shared + 1) == tail.epoch,
            hardState.journalReplacedFrom.map({ $0 > shared + 1 }) ?? true
        {
            return tail.epoch
        }
        guard let takeover = hardState.takeover, takeover.takenInEpoch == hardState.epoch, takeover.epoch == tail.epoch else { return nil }
        return tail.epoch
    }

    /// Where a standby's journal parts from ours, as far as its hello tells: the newest of its head
    /// and checkpoints whose hash we hold at that number (shared), and the oldest that differs (or
    /// where the epoch spans part). Spans alone are not enough: an active that lost revisions in a
    /// crash before their fsync writes others under the same numbers in the same epoch. Under our
    /// snapshot base hashes cannot be compared, and the spans decide.
    func forkBounds(of hello: HAMessage.Hello) -> ForkProbe {
        let spansShared = Journal.commonPrefixNumber(journal.spans, hello.spans)
        // The spans part after `spansShared` (it never exceeds our head, so + 1 cannot overflow).
        var firstDiffering = spansShared + 1
        for candidate in [hello.head] + hello.checkpoints where candidate.number <= spansShared {
            if journal.contains(candidate) == false {
                firstDiffering = min(firstDiffering, candidate.number)
                continue
            }
            let exact = candidate.number == hello.head.number ? candidate.number + 1 : firstDiffering
            return ForkProbe(hello: hello, shared: candidate.number, firstDiffering: exact)
        }
        return ForkProbe(hello: hello, shared: 0, firstDiffering: firstDiffering)
    }

    /// Starts sending `index` a snapshot: at our head, or the one already going to another standby when
    /// `standby` (its hello) says that one covers its journal: one snapshot is built, not one per standby,
    /// and delta sync brings each past it.
    mutating func startFullSync(to index: Int, because why: FullSyncCause, sharingWith standby: HAMessage.Hello? = nil) {
        var sender = FullSyncSender(snapshotHead: journal.head, spans: journal.spans, chunkCount: nil, lastSentAtMilliseconds: nowMilliseconds)
        var shared: ServerID?
        if let standby, let found = sharableSnapshot(covering: standby, except: index) {
            sender = FullSyncSender(
                snapshotHead: found.sender.snapshotHead, spans: found.sender.spans, chunkCount: found.sender.chunkCount,
                lastSentAtMilliseconds: nowMilliseconds)
            shared = peers[found.peer].id
        }
        peers[index].replication = .fullSync(sender)
        sendSnapshotStep(to: index)
        decide(.fullSyncStarted(peer: peers[index].id, at: sender.snapshotHead, sharedWith: shared, cause: why))
    }

    /// A snapshot being sent to another peer than `index`, built and covering the journal in `hello`.
    func sharableSnapshot(covering hello: HAMessage.Hello, except index: Int) -> (peer: Int, sender: FullSyncSender)? {
        for other in peers.indices where other != index {
            if case .fullSync(let sender) = peers[other].replication, sender.chunkCount != nil, Self.snapshot(sender, covers: hello) {
                return (other, sender)
            }
        }
        return nil
    }

    /// Whether a standby holding `hello`'s journal can install `sender`'s snapshot (its own check on an offer).
    static func snapshot(_ sender: FullSyncSender, covers hello: HAMessage.Hello) -> Bool {
        Journal.commonPrefixNumber(sender.spans, hello.spans) >= hello.head.number
    }

    mutating func snapshotChunkRead(_ read: SnapshotChunkRead) {
        guard let index = peerIndex(read.standby), case .fullSync(var sender) = peers[index].replication,
            sender.snapshotHead == read.snapshotHead, sender.readRequested == read.index
        else {
            note(.snapshotChunkReadNotNeeded)
            return
        }
        precondition(read.chunkCount >= 1 && read.index < read.chunkCount, "a snapshot has at least one chunk")
        precondition(read.bytes.count <= limits.snapshotChunkBytesMax, "snapshot chunk larger than HALimits.snapshotChunkBytesMax")
        sender.chunkCount = read.chunkCount
        sender.readRequested = nil
        // The first read only tells the size (for the offer); later ones are the chunks to send next.
        if sender.offerAcknowledged, read.index == sender.nextToSend, read.index < sender.acknowledgedChunks + limits.snapshotChunksInFlightMax {
            send(
                .snapshotChunk(
                    snapshotHead: sender.snapshotHead, index: read.index, bytes: read.bytes,
                    checksum: snapshotChunkChecksum(read.bytes)), to: peers[index].id)
            sender.nextToSend += 1
            sender.lastSentAtMilliseconds = nowMilliseconds
        }
        peers[index].replication = .fullSync(sender)
        sendSnapshotStep(to: index)
        note(.snapshotChunkRead)
    }

    /// On the active: the runtime cannot read the snapshot at `snapshotHead` (it is gone, or was never
    /// built because the journal had moved on). Start over at our head; when that is the same head,
    /// let the retransmit timer ask again (a snapshot that failed to build is not rebuilt in a loop).
    mutating func snapshotUnavailable(standby: ServerID, snapshotHead: RevisionHead) {
        guard let index = peerIndex(standby), case .fullSync(var sender) = peers[index].replication, sender.snapshotHead == snapshotHead else {
            note(.unavailableSnapshotNotNeeded)
            return
        }
        guard snapshotHead != journal.head else {
            sender.readRequested = nil
            peers[index].replication = .fullSync(sender)
            decide(.snapshotUnreadable(standby: standby, at: snapshotHead, retryMilliseconds: limits.snapshotRetransmitMilliseconds))
            return
        }
        startFullSync(to: index, because: .snapshotNoLongerAvailable(snapshotHead))
    }

    /// Sends whatever the standby needs next: the offer, the next chunks (up to the in-flight limit), or done.
    mutating func sendSnapshotStep(to index: Int) {
        guard case .fullSync(var sender) = peers[index].replication else { return }
        let peer = peers[index].id
        defer { peers[index].replication = .fullSync(sender) }
        guard let chunkCount = sender.chunkCount else {
            if sender.readRequested == nil { requestRead(&sender, index: 0, for: peer) }
            return
        }
        if !sender.offerAcknowledged {
            sender.lastSentAtMilliseconds = nowMilliseconds
            send(.snapshotOffer(snapshotHead: sender.snapshotHead, chunkCount: chunkCount, spans: sender.spans), to: peer)
        } else if sender.acknowledgedChunks >= chunkCount {
            sender.lastSentAtMilliseconds = nowMilliseconds
            send(.snapshotDone(snapshotHead: sender.snapshotHead), to: peer)
        } else if sender.readRequested == nil, sender.nextToSend < min(chunkCount, sender.acknowledgedChunks + limits.snapshotChunksInFlightMax) {
            // Reads are answered one at a time; each answer sends its chunk and asks for the next.
            requestRead(&sender, index: sender.nextToSend, for: peer)
        }
    }

    mutating func requestRead(_ sender: inout FullSyncSender, index: Int, for peer: ServerID) {
        sender.readRequested = index
        effect(.readSnapshotChunk(standby: peer, snapshotHead: sender.snapshotHead, index: index))
    }

    mutating func activeReceiveSnapshotAck(snapshotHead: RevisionHead, nextIndex: Int, resend: Bool, from index: Int) {
        guard case .fullSync(var sender) = peers[index].replication, sender.snapshotHead == snapshotHead else {
            note(.staleSnapshotAck)
            return
        }
        // The standby's word is final (it may have restarted from an earlier chunk). With `resend`, what
        // was on its way after `nextIndex` is sent again; otherwise the acks trail the chunks in flight.
        // No further than the snapshot's end (a peer's number is never trusted into arithmetic).
        let next = min(nextIndex, sender.chunkCount ?? 0)
        sender.nextToSend = resend ? next : max(sender.nextToSend, next)
        sender.offerAcknowledged = true
        sender.acknowledgedChunks = next
        peers[index].replication = .fullSync(sender)
        sendSnapshotStep(to: index)
        note(.snapshotAcked)
    }

    mutating func activeReceiveAck(durableHead ackedDurable: RevisionHead, head: RevisionHead, gap: Bool, from index: Int) {
        guard isActive else { return }
        peers[index].knownHead = head
        switch peers[index].replication {
        case .fullSync(let sender):
            // Only a standby that received every chunk and `done` holds the snapshot: an ack sent
            // before the offer arrived may name the same head by coincidence. One that held this
            // snapshot already (a stale hello restarted its full sync) acks a later head of our journal.
            let holdsSnapshot =
                ackedDurable == sender.snapshotHead
                || (ackedDurable.number > sender.snapshotHead.number && journal.contains(ackedDurable) == true)
            guard holdsSnapshot, let chunkCount = sender.chunkCount,
                sender.offerAcknowledged, sender.acknowledgedChunks >= chunkCount
            else { return }
            peers[index].replication = .delta(DeltaProgress(matched: ackedDurable, sentUpTo: ackedDurable.number, lastSentAtMilliseconds: nowMilliseconds))
            decide(.fullSyncCompleted(peer: peers[index].id, at: ackedDurable))
        case .delta(var progress):
            guard journal.contains(head) != false else {
                // It applied revisions we do not hold (sent before we lost them in a crash, delivered
                // late): its journal is no longer a prefix of ours. Our heartbeats ask for a hello.
                peers[index].replication = .awaitingHello
                decide(.ackOfUnknownHead(peer: peers[index].id, head: head))
                return
            }
            if ackedDurable.number > progress.matched.number, journal.contains(ackedDurable) == true {
                progress.matched = ackedDurable
            }
            if gap, journal.contains(head) == true { progress.sentUpTo = head.number }
            progress.sentUpTo = max(progress.sentUpTo, progress.matched.number)
            peers[index].replication = .delta(progress)
            note(.ack)
        default:
            return
        }
        markSynchronizedIfCaughtUp(index)
        acknowledgeSyncPublishes()
        sendAppends(to: index)
    }

    mutating func markSynchronizedIfCaughtUp(_ index: Int) {
        guard case .delta(let progress) = peers[index].replication, progress.matched == journal.head else { return }
        peers[index].synchronizedAtMilliseconds = nowMilliseconds
        if !peers[index].everSynchronized {
            peers[index].everSynchronized = true
            persistHardState()
        }
    }

    /// Sync mode: a publish is acknowledged once some standby and this server hold it durably.
    mutating func acknowledgeSyncPublishes() {
        guard var state = active, !state.pendingSyncPublishes.isEmpty else { return }
        var highest: UInt64 = 0
        for peer in peers { if case .delta(let progress) = peer.replication { highest = max(highest, progress.matched.number) } }
        // And this server holds it durably too: a standby's copy alone is not an answered publish.
        highest = min(highest, durableHead.number)
        var acknowledged = 0
        while acknowledged < state.pendingSyncPublishes.count, state.pendingSyncPublishes[acknowledged].number <= highest {
            effect(.publishAcknowledged(revision: state.pendingSyncPublishes[acknowledged].number))
            acknowledged += 1
        }
        if acknowledged > 0 {
            state.pendingSyncPublishes.removeFirst(acknowledged)
            setActiveState(state)
        }
    }

    mutating func activeReceiveSwitchoverRequest(_ id: UInt64, from index: Int) {
        let peer = peers[index].id
        guard var state = active else {
            send(.switchoverAbort(switchoverID: id, reason: .notActive), to: peer)
            decide(.switchoverRequestRefusedNotActive(from: peer))
            return
        }
        if case .handingOver(let handover) = state.writes {
            if handover.target == peer, handover.switchoverID == id {
                send(.handover(switchoverID: id, finalHead: handover.finalHead), to: peer)
                note(.handoverRepeated)
            } else {
                send(.switchoverAbort(switchoverID: id, reason: .switchoverInProgress), to: peer)
                decide(.switchoverRequestRefusedHandingOver(from: peer, target: handover.target))
            }
            return
        }
        guard case .delta = peers[index].replication else {
            send(.switchoverAbort(switchoverID: id, reason: .standbyNotSynchronized), to: peer)
            decide(.switchoverRequestRefusedNotInDelta(from: peer, status: syncStatus(of: index)))
            return
        }
        if state.writes == .enabled { effect(.disableWrites) }
        let handover = HandoverRecord(target: peer, switchoverID: id, finalHead: journal.head)
        state.writes = .handingOver(handover)
        state.handoverSentAtMilliseconds = nowMilliseconds
        setActiveState(state)
        // Persisted before the hand-over is sent: a restart must not bring writes back behind its back.
        hardState.handover = handover
        hardState.writesPaused = false
        persistHardState()
        send(.handover(switchoverID: id, finalHead: journal.head), to: peer)
        sendAppends(to: index)
        decide(.handingOver(to: peer, at: journal.head))
    }

    mutating func receiveSwitchoverAbort(_ id: UInt64, reason: SwitchoverAbortReason, from index: Int) {
        let peer = peers[index].id
        if let state = active, case .handingOver(let handover) = state.writes, handover.target == peer, handover.switchoverID == id {
            hardState.handover = nil
            persistHardState()
            startTakingWrites(because: .switchoverAborted(target: peer, reason: reason))
            return
        }
        if case .switchover(id, _, _) = standbyState.promotion, role == .standby, peer == hardState.epoch.server {
            standby.promotion = nil
            refuse(.switchoverRefused, .switchoverRefusedByActive(peer, reason: reason))
            return
        }
        note(.staleSwitchoverAbort)
    }
}
