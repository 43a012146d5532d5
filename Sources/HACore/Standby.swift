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
        if !reachable(activeIndex), standby.link == .delta {
            standby.link = .connecting
            decide("no word from the active \(activeID) for \(limits.peerTimeoutMilliseconds) ms: reconnecting")
        }
        if case .fullSync(let receiver) = standby.link,
           nowMilliseconds - receiver.lastProgressAtMilliseconds > limits.fullSyncStallMilliseconds {
            // The active may have lost track of this full sync (restart, or it moved on): start over
            // with a hello; applied chunks are resumed if it offers the same snapshot again.
            reconnect(because: "full sync made no progress for \(limits.fullSyncStallMilliseconds) ms")
        }
        if standby.link == .connecting { sendHelloIfDue() }
        switchoverTimers(activeID: activeID)
    }

    mutating func sendHelloIfDue() {
        if let last = standby.lastHelloAtMilliseconds, nowMilliseconds - last < limits.helloRetryMilliseconds { return }
        sendHello()
    }

    mutating func sendHello() {
        guard let activeID = followedActive, !hardState.haStopped else { return }
        standby.lastHelloAtMilliseconds = nowMilliseconds
        let hello = HAMessage.Hello(serverID: serverID, head: journal.head, durableHead: durableHead, spans: journal.spans,
                                    softwareVersion: configuration.softwareVersion,
                                    schemaVersion: configuration.schemaVersion, wantsFullSync: standby.wantsFullSync,
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
        note("heartbeat from the active")
    }

    /// A standby follows the active's replication mode (persisted: its heartbeats tell the active it
    /// holds it, and a failover judges by it), even while its HA is stopped.
    mutating func adoptReplicationMode(_ mode: ReplicationMode, from sender: ServerID) {
        guard mode != hardState.replicationMode else { return }
        hardState.replicationMode = mode
        persistHardState()
        decide("replication mode is now \(mode), as on the active \(sender)")
    }

    mutating func standbyReceiveAnnouncement(head: RevisionHead, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server else {
            note("epoch announcement")
            return
        }
        // The active (re)started: it has forgotten our link, so say hello again.
        standby.activeKnownHead = head
        standby.activeLastHeardAtMilliseconds = nowMilliseconds
        if case .collision = standby.link {} else { standby.link = .connecting }
        if standby.lastHelloAtMilliseconds != nowMilliseconds { sendHello() }
        note("the active announced its epoch: hello")
    }

    mutating func ack(gap: Bool) {
        guard let activeID = followedActive else { return }
        send(.ack(durableHead: durableHead, head: journal.head, gap: gap), to: activeID)
    }

    mutating func standbyReceiveAppend(previous: RevisionHead, revisions: [ReplicatedRevision], activeHead: RevisionHead, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server else { return }
        standby.activeKnownHead = activeHead
        standby.activeLastHeardAtMilliseconds = nowMilliseconds
        switch standby.link {
        case .collision, .fullSync:
            note("append ignored: not in delta sync")
            return
        case .connecting:
            if standby.wantsFullSync { return }
            // An append answers our hello: the active found our journal to be a prefix of its own.
            standby.link = .delta
            decide("delta sync with \(sender) established at \(journal.head)")
        case .delta:
            break
        }
        guard previous.number <= journal.head.number else {
            ack(gap: true)
            note("gap before an append: asked the active to resend")
            return
        }
        if let hash = journal.hash(at: previous.number), hash != previous.hash {
            reconnect(because: "append does not link to our journal at #\(previous.number)")
            return
        }
        var applied: [ReplicatedRevision] = []
        for revision in revisions {
            if revision.number <= journal.head.number {
                if let hash = journal.hash(at: revision.number), hash != revision.hash {
                    reconnect(because: "revision #\(revision.number) from the active differs from ours")
                    break
                }
                continue
            }
            let head = journal.head
            guard revision.number == head.number + 1, revision.previousHash == head.hash,
                  revision.epoch <= hardState.epoch, revision.epoch >= (journal.lastEpoch ?? .initial) else {
                reconnect(because: "revision #\(revision.number) breaks the hash chain; delta sync stopped")
                break
            }
            journal.append(revision)
            applied.append(revision)
        }
        if applied.isEmpty {
            ack(gap: false)
        } else {
            effect(.applyRevisions(applied))
        }
        note("append applied")
    }

    mutating func reconnect(because why: String) {
        standby.link = .connecting
        sendHello()
        decide("\(why): saying hello again")
    }

    mutating func persistedUpTo(_ head: RevisionHead) {
        guard head.number >= durableHead.number || journal.base.number > durableHead.number,
              journal.contains(head) == true else {
            note("stale persistence report ignored")
            return
        }
        durableHead = head
        if var state = active {
            if state.writes == .awaitingDurable, durableHead == journal.head {
                state.writes = .enabled
                active = state
                effect(.enableWrites(epoch: hardState.epoch, forced: state.forcedPromotion))
                decide("applied revisions are durable: writes enabled in epoch \(hardState.epoch)")
                return
            }
            acknowledgeSyncPublishes()
            note("published revisions durable up to \(head)")
            return
        }
        if standby.link == .delta {
            ack(gap: false)
            if let known = standby.activeKnownHead, known.number <= durableHead.number { standby.synchronizedAtMilliseconds = nowMilliseconds }
        }
        completeSwitchoverIfReady()
        note("persisted: acknowledged to the active")
    }

    // MARK: - Full sync (standby side)

    mutating func standbyReceiveOffer(snapshotHead: RevisionHead, chunkCount: Int, spans: [EpochSpan], from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server else { return }
        switch standby.link {
        case .collision:
            note("snapshot offer ignored: in collision")
            return
        case .fullSync(let receiver) where receiver.snapshotHead == snapshotHead:
            // Still receiving it: the chunks on their way are still coming.
            send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: receiver.nextIndex, resend: false), to: sender)
            note("snapshot offer repeated")
            return
        case .delta where journal.base == snapshotHead:
            // We installed exactly this snapshot already: every chunk is applied.
            send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: chunkCount, resend: false), to: sender)
            note("snapshot offer for the snapshot we already hold")
            return
        default:
            break
        }
        guard (1...limits.snapshotChunkCountMax).contains(chunkCount), snapshotHead.number == (spans.last?.lastNumber ?? 0),
              Journal.commonPrefixNumber(journal.spans, spans) >= journal.head.number else {
            reconnect(because: "snapshot offer at \(snapshotHead) does not cover our journal")
            return
        }
        var resume = 0
        if let progress = hardState.fullSyncProgress, progress.snapshotHead == snapshotHead, progress.chunkCount == chunkCount {
            resume = progress.chunksApplied
        }
        standby.link = .fullSync(FullSyncReceiver(snapshotHead: snapshotHead, chunkCount: chunkCount, spans: spans,
                                                   nextIndex: resume, lastProgressAtMilliseconds: nowMilliseconds))
        hardState.fullSyncProgress = FullSyncProgress(snapshotHead: snapshotHead, chunkCount: chunkCount, chunksApplied: resume)
        persistHardState()
        send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: resume, resend: true), to: sender)
        decide("full sync from \(sender) at \(snapshotHead): \(chunkCount) chunk(s), starting at chunk \(resume)")
    }

    mutating func standbyReceiveChunk(snapshotHead: RevisionHead, index: Int, bytes: [UInt8], checksum: UInt64, from sender: ServerID) {
        guard case .fullSync(var receiver) = standby.link, receiver.snapshotHead == snapshotHead else {
            // The active thinks we are receiving a snapshot we are not: a hello makes it offer again.
            if role == .standby, sender == hardState.epoch.server { sendHelloIfDue() }
            note("snapshot chunk for a full sync we are not in: said hello")
            return
        }
        guard receiver.applying == nil else {
            // Kept one at a time (applying writes to disk); the ack after this apply asks for it again
            // rather than leaving it to the active's retransmit timer.
            if index >= receiver.nextIndex {
                receiver.droppedWhileApplying = true
                standby.link = .fullSync(receiver)
            }
            note("snapshot chunk dropped while another is applied")
            return
        }
        guard index == receiver.nextIndex else {
            // Chunks travel several at a time: after a lost or bad one, those behind it arrive early, and
            // after a resend, some arrive twice. Answering each would have the active send its window once
            // per chunk; the ack that asked for the resend (or the active's timer) covers them.
            note("snapshot chunk out of order dropped")
            return
        }
        guard snapshotChunkChecksum(bytes) == checksum else {
            send(.snapshotAck(snapshotHead: snapshotHead, nextIndex: receiver.nextIndex, resend: true), to: sender)
            decide("snapshot chunk \(index) failed its checksum: asked for it again")
            return
        }
        receiver.applying = index
        standby.link = .fullSync(receiver)
        effect(.applySnapshotChunk(snapshotHead: snapshotHead, index: index, bytes: bytes))
        note("snapshot chunk verified: applying")
    }

    mutating func snapshotChunkApplied(snapshotHead: RevisionHead, index: Int) {
        guard case .fullSync(var receiver) = standby.link, receiver.snapshotHead == snapshotHead, receiver.applying == index else {
            note("stale snapshot chunk report ignored")
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
        note("snapshot chunk applied durably")
    }

    mutating func standbyReceiveSnapshotDone(snapshotHead: RevisionHead, from sender: ServerID) {
        if standby.link == .delta, journal.base == snapshotHead {
            ack(gap: false)
            return
        }
        guard case .fullSync(let receiver) = standby.link, receiver.snapshotHead == snapshotHead,
              receiver.nextIndex == receiver.chunkCount, receiver.applying == nil else { return }
        effect(.completeFullSync(snapshotHead: snapshotHead, spans: receiver.spans))
        journal.installSnapshot(at: snapshotHead, spans: receiver.spans)
        standby.link = .delta
        standby.wantsFullSync = false
        hardState.fullSyncProgress = nil
        persistHardState()
        decide("full sync from \(sender) complete at \(snapshotHead): switching to delta sync")
    }

    // MARK: - Collision

    mutating func standbyReceiveCollision(commonNumber: UInt64, divergentCount: UInt64, activeHead: RevisionHead, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server else { return }
        guard commonNumber <= journal.head.number else {
            reconnect(because: "collision report from \(sender) does not match our journal")
            return
        }
        let divergent = journal.head.number - commonNumber
        if case .collision(commonNumber, divergent) = standby.link { return }
        standby.link = .collision(common: commonNumber, divergent: divergent)
        standby.activeKnownHead = activeHead
        decide("collision with the active \(sender): our \(divergent) revision(s) after #\(commonNumber) are not in its journal; they are kept for export. Resolve with resolve-collision keep=peer (export, then take \(sender)'s data) or keep=local")
    }

    /// The active lost our revisions after `number` in a crash before its fsync (`activeReceiveHello`).
    /// Checked here again: only revisions of the sender's own epoch, only while our hello awaits its
    /// answer, never into a snapshot base.
    mutating func standbyReceiveDiscard(after number: UInt64, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server, standby.link == .connecting,
              number < journal.head.number, number >= journal.base.number,
              journal.spans.allSatisfy({ $0.lastNumber <= number || $0.epoch == hardState.epoch }) else {
            note("discard of an unsynced tail ignored: it does not match our journal or link")
            return
        }
        let dropped = dropRevisions(after: number)
        effect(.discardUnsyncedRevisions(after: number))
        sendHello()
        decide("dropped our \(dropped.count) revision(s) after #\(number): \(sender) wrote them in epoch \(hardState.epoch) and lost them before its fsync, so they were never answered; saying hello again")
    }

    /// The active compares our journal with its own, number by number (`forkProbe`): our hashes.
    mutating func standbyReceiveForkProbe(_ numbers: [UInt64], from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server, numbers.count <= HALimits.forkProbeNumbersMax else {
            note("fork probe ignored: not from our active, or too long")
            return
        }
        let heads = numbers.compactMap { number in journal.hash(at: number).map { RevisionHead(number: number, hash: $0) } }
        send(.forkProbeReply(head: journal.head, heads: heads), to: sender)
        note("answered a fork probe with our hashes")
    }

    // MARK: - Switchover (standby side)

    mutating func standbyReceiveHandover(_ id: UInt64, finalHead: RevisionHead, from sender: ServerID) {
        guard role == .standby, sender == hardState.epoch.server, case .switchover(id, let startedAt, _) = standby.promotion else {
            // Not (or no longer) waiting for this hand-over: tell the active to take writes back.
            send(.switchoverAbort(switchoverID: id, reasonCode: "no-switchover-pending"), to: sender)
            note("unexpected handover: aborted it")
            return
        }
        standby.promotion = .switchover(switchoverID: id, startedAtMilliseconds: startedAt, finalHead: finalHead)
        decide("\(sender) stopped writes and handed over at \(finalHead); taking over once we hold it durably")
        completeSwitchoverIfReady()
    }

    mutating func completeSwitchoverIfReady() {
        guard case .switchover(_, _, let finalHead?) = standby.promotion else { return }
        guard durableHead == finalHead, journal.head == finalHead else { return }
        let previous = hardState.epoch.server
        becomeActive(in: hardState.epoch.next(for: serverID), forced: false)
        decide("switchover complete: we hold every revision of \(previous) up to \(finalHead); active in epoch \(hardState.epoch), nothing lost")
    }

    mutating func switchoverTimers(activeID: ServerID) {
        guard case .switchover(let id, let startedAt, _) = standby.promotion,
              nowMilliseconds - startedAt > limits.switchoverTimeoutMilliseconds else { return }
        standby.promotion = nil
        send(.switchoverAbort(switchoverID: id, reasonCode: "switchover-timed-out"), to: activeID)
        decide("switchover timed out after \(limits.switchoverTimeoutMilliseconds) ms: told \(activeID) to resume writes")
    }

    // MARK: - Failover candidate

    mutating func candidateTimers() {
        guard case .poll(let poll) = standby.promotion,
              nowMilliseconds - poll.startedAtMilliseconds > limits.promotionPollTimeoutMilliseconds else { return }
        standby.promotion = nil
        let missing = poll.required(among: peers).filter { !poll.answered.contains($0) }
        refuse("promotion-unconfirmed", "failover refused: no answer from \(missing.map(\.name).joined(separator: ", ")) within \(limits.promotionPollTimeoutMilliseconds) ms, so they may hold acknowledged revisions we lack; use force to promote anyway")
    }

    mutating func candidateReceivePollReply(durableHead peerHead: RevisionHead, spans: [EpochSpan], from index: Int) {
        guard case .poll(var poll) = standby.promotion else { return }
        let peer = peers[index].id
        let common = Journal.commonPrefixNumber(journal.spans, spans)
        if common < peerHead.number || journal.contains(peerHead) == false {
            standby.promotion = nil
            let lacking = common < peerHead.number ? "\(peerHead.number - common) revision(s) we lack" : "another revision #\(peerHead.number) than ours"
            refuse("standby-ahead", "failover refused: \(peer) holds \(lacking) (its head \(peerHead), ours \(journal.head)); promote \(peer) or use force")
            return
        }
        if !poll.answered.contains(peer) { poll.answered.append(peer) }
        standby.promotion = .poll(poll)
        if poll.required(among: peers).allSatisfy(poll.answered.contains) {
            becomeActive(in: hardState.epoch, forced: false)
            decide("failover: every other standby answered and none holds revisions we lack; active in epoch \(hardState.epoch)")
        }
    }
}
