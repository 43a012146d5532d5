/// The management HA state machine of one server. Pure and deterministic: no clock, no randomness, no I/O.
///
/// The runtime (one actor per server) feeds every event to `step`, one at a time, and carries out the
/// returned `HAOutput` before the next one:
/// 1. make `persist` durable (fsync) when it is not nil: it holds the epoch, so a server never acts in
///    an epoch it could forget in a crash;
/// 2. send `messages` (best effort: the core retransmits what matters);
/// 3. carry out `effects` in order (enable or disable writes, apply revisions, export, truncate, ...),
///    reporting completions back as inputs (`persistedUpTo`, `snapshotChunkApplied`, `snapshotChunkRead`);
/// 4. log `reason`.
///
/// Time only moves with `tick(now:)` (call it every few tens of milliseconds). A crash loses this value;
/// the runtime rebuilds it with `init(configuration:hardState:journal:)` from what it persisted.
/// Nothing here decides to promote on its own: automatic failover is off, as DESIGN.md §3 requires.
public struct HAStateMachine: Sendable {
    public let configuration: HAConfiguration
    public internal(set) var hardState: HardState
    /// The journal as this server knows it, including revisions applied but not yet durable.
    public internal(set) var journal: Journal
    /// The last revision the runtime reported durable (`persistedUpTo`, or the journal loaded at start).
    public internal(set) var durableHead: RevisionHead
    public internal(set) var nowMilliseconds: UInt64 = 0

    var peers: [PeerState]
    /// The live role's state: `activeState` while active, `standbyState` while standby, as the
    /// persisted `hardState.role` says (written only by `setActiveState` and `becomeStandbyRole`, which
    /// reset the other one). Two stored values rather than an enum with the states as payloads: a step
    /// reads and writes their fields in place, where the enum copied a whole state out and back on
    /// every access (about a fifth of the simulator's time).
    var activeState = ActiveState.idle
    var standbyState = StandbyState()
    /// The last server seen taking writes (volatile). A failover poll need not wait for it: it is the
    /// one presumed gone, and every other server is asked.
    var lastKnownActive: ServerID?
    /// Makes switchover ids unique even for two requests in the same millisecond.
    var switchoverSequence: UInt64 = 0
    var nextTimersAtMilliseconds: UInt64 = 0
    var nextHeartbeatAtMilliseconds: UInt64 = 0
    var pending = PendingOutput()

    /// Appends a revision to the core's journal, forgetting the older half of what it holds once it
    /// holds more than `journalRevisionsHeldMax`.
    mutating func appendToJournal(_ revision: ReplicatedRevision) {
        journal.append(revision)
        if journal.compactIfLonger(than: limits.journalRevisionsHeldMax) {
            decide(.journalCompacted(base: journal.base, held: journal.revisionCount))
        }
    }

    /// Starts (or restarts) a server from its persisted hard state (nil on first start) and its journal.
    public init(configuration: HAConfiguration, hardState: HardState? = nil, journal: Journal = .empty) {
        self.configuration = configuration
        let records = configuration.peers.map { PeerRecord(serverID: $0) }
        var state = hardState ?? HardState(role: .standby, peers: records)
        // The configuration is the authority on membership at start; keep what was known about each peer.
        state.peers = configuration.peers.map { id in state.peers.first { $0.serverID == id } ?? PeerRecord(serverID: id) }
        self.hardState = state
        self.journal = journal
        self.journal.compactIfLonger(than: configuration.limits.journalRevisionsHeldMax)
        self.durableHead = journal.head
        self.peers = state.peers.map { PeerState(record: $0) }
        if state.role == .active {
            // Restart as the active: writes stay off until every peer has answered in no higher epoch
            // (a standby may have been promoted while we were down), unless they were off on purpose
            // (an administrator's demote, or a hand-over the target may still complete).
            let writes: ActiveState.Writes =
                if let handover = state.handover {
                    .handingOver(handover)
                } else if state.writesPaused {
                    .paused
                } else {
                    .awaitingPeers
                }
            let unconfirmed = state.takesWritesAtFirstStart ? [] : state.peers.map(\.serverID)
            self.activeState = ActiveState(writes: writes, unconfirmedPeers: unconfirmed, forcedPromotion: false)
        }
        self.summary = HASummary(
            epoch: state.epoch, role: state.role, writesEnabled: false, followsActiveVerified: false,
            head: journal.head, publishMode: state.replicationMode)
    }

    /// A fresh group's first active: the primary at installation. Persist the returned hard state first.
    public static func bootstrapActive(configuration: HAConfiguration) -> HardState {
        HardState(
            epoch: Epoch.initial.next(for: configuration.serverID), role: .active,
            peers: configuration.peers.map { PeerRecord(serverID: $0) }, takesWritesAtFirstStart: true)
    }

    /// The facts a supervisor or simulator reads after every step, kept as one stored value so that
    /// reading them never copies the machine.
    public private(set) var summary: HASummary
    /// Counts the steps that changed `summary`: a watcher that compares it with the count before a
    /// step knows whether the summary changed without copying it.
    public private(set) var summaryChanges: UInt64 = 0

    public var serverID: ServerID { configuration.serverID }
    public var limits: HALimits { configuration.limits }
    public var role: HARole { hardState.role }
    public var epoch: Epoch { hardState.epoch }
    public var writesEnabled: Bool { isActive && activeState.writes == .enabled }
    /// An active with writes off until every peer it names answers in no higher epoch (after a restart,
    /// or promoted again after a pause).
    public var waitsForPeersToAnswer: Bool { isActive && activeState.writes == .awaitingPeers && !activeState.unconfirmedPeers.isEmpty }

    var isActive: Bool { hardState.role == .active }

    /// The active's state; nil on a standby.
    var active: ActiveState? { isActive ? activeState : nil }

    /// A standby's state, for writes. An active has none: writing it there is a programmer error, and
    /// `standbyState` there is a fresh one (reset when it became active). Reads use `standbyState`:
    /// this getter copies the whole state (a `_read` accessor misbehaved as a switch subject whose
    /// case writes the state).
    var standby: StandbyState {
        get { standbyState }
        _modify {
            precondition(!isActive, "an active has no standby state")
            yield &standbyState
        }
    }

    /// Sets the active's state; a standby becomes active with it (its standby state reset).
    mutating func setActiveState(_ state: ActiveState) {
        if !isActive {
            hardState.role = .active
            standbyState = StandbyState()
        }
        activeState = state
    }

    /// Becomes a standby with a fresh standby state (the active's state reset).
    mutating func becomeStandbyRole() {
        hardState.role = .standby
        standbyState = StandbyState()
        activeState = .idle
    }

    /// How a publish is answered now. Async answers without a standby only once no peer is known to
    /// hold sync mode: a standby that still believes in sync mode would fail over without force
    /// (nothing it knows of was answered without it) and lose what the active answered. Until then
    /// publishes wait for a standby as in sync mode, at most `HALimits.asyncUnconfirmedTimeoutMilliseconds`.
    /// A peer never heard from since this server started does not hold writes back: it waited for
    /// every peer at its start, or an operator forced it past them.
    public var publishMode: ReplicationMode {
        guard case .async = hardState.replicationMode else { return hardState.replicationMode }
        let someoneInSync = peers.contains { if case .sync = $0.reportedMode { true } else { false } }
        return someoneInSync ? .sync(timeoutMilliseconds: limits.asyncUnconfirmedTimeoutMilliseconds) : .async
    }

    /// True for a standby whose journal the active of its epoch has verified as a prefix of its own
    /// (delta sync or a completed full sync). Simulation checks the prefix invariant on these.
    public var followsActiveVerified: Bool {
        guard role == .standby, epoch.server != serverID else { return false }
        if case .delta = standbyState.link { return true }
        return false
    }

    /// Standby in collision: the revisions after the common number are divergent and kept.
    public var collision: (commonNumber: UInt64, divergentRevisions: UInt64)? {
        if case .collision(let common, let divergent) = standbyState.link, role == .standby { return (common, divergent) }
        return nil
    }

    /// Nil when this server takes writes; otherwise the error a mutating API command gets.
    public var writeRefusal: String? {
        if writesEnabled { return nil }
        if role == .active { return "this server is active in epoch \(epoch) but not taking writes (\(active?.writesDescription ?? ""))" }
        return "this server is a standby (read-only); the active server is \(epoch.server) (epoch \(epoch))"
    }

    public mutating func step(_ input: HAInput) -> HAOutput {
        if case .tick(let now) = input, moveClockIfNoTimerDue(to: now) { return HAOutput(reason: .routine(.clockMoved)) }
        // Every step ends by taking its output, which leaves `pending` empty: no reset needed here.
        assert(pending.isEmpty, "a step starts with no output pending")
        switch input {
        case .tick(let now):
            precondition(now >= nowMilliseconds, "time never goes backwards")
            nowMilliseconds = now
            runTimers()
        case .receive(let sender, let message):
            receive(from: sender, message)
        case .admin(let command):
            handleAdmin(command)
        case .revisionCommitted(let revision):
            revisionCommitted(revision)
        case .persistedUpTo(let head):
            persistedUpTo(head)
        case .snapshotChunkRead(let read):
            snapshotChunkRead(read)
        case .snapshotUnavailable(let standby, let snapshotHead):
            snapshotUnavailable(standby: standby, snapshotHead: snapshotHead)
        case .snapshotChunkApplied(let snapshotHead, let index):
            snapshotChunkApplied(snapshotHead: snapshotHead, index: index)
        case .linkRestored(let peer):
            linkRestored(peer)
        }
        let next = HASummary(
            epoch: hardState.epoch, role: hardState.role, writesEnabled: writesEnabled,
            followsActiveVerified: followsActiveVerified, head: journal.head, publishMode: publishMode)
        if next != summary {
            summary = next
            summaryChanges &+= 1
        }
        // Taken first, then given the hard state only when it persists: passing the hard state to a
        // method of `pending` copied it (a quarter kilobyte) on every step.
        let taken = pending.take()
        return taken.output(persisting: taken.persist ? HardStateBox(hardState) : nil)
    }

    /// Most ticks only move the clock: when no timer is due by `now`, moves it there and returns true,
    /// exactly what stepping `.tick(now)` does (its output is empty). False, and nothing changed, when
    /// a timer is due: step the tick. A driver that ticks often (the simulator, every 10 ms of three
    /// servers) skips the rest of a step this way.
    public mutating func moveClockIfNoTimerDue(to now: UInt64) -> Bool {
        guard now < nextTimersAtMilliseconds else { return false }
        precondition(now >= nowMilliseconds, "time never goes backwards")
        nowMilliseconds = now
        return true
    }

    // MARK: - Output helpers

    mutating func send(_ body: HAMessage.Body, to peer: ServerID) {
        pending.messages.append(Envelope(to: peer, message: HAMessage(epoch: hardState.epoch, body: body)))
    }

    mutating func effect(_ effect: HAEffect) { pending.effects.append(effect) }

    /// A decision worth a log line.
    mutating func decide(_ decision: HADecision) { pending.decisions.append(decision) }

    /// Routine bookkeeping: only used when nothing was decided (this runs on every step).
    mutating func note(_ routine: HARoutine) { pending.routine = routine }

    mutating func persistHardState() {
        for index in peers.indices {
            hardState.peers[index].lastKnownHead = peers[index].knownHead
            hardState.peers[index].everSynchronized = peers[index].everSynchronized
        }
        pending.persist = true
    }

    mutating func refuse(_ code: HARefusal, _ decision: HADecision) {
        effect(.commandRefused(code))
        decide(decision)
    }

    // Inlined, as `reachable`, `syncStatus` and the helpers they call: a non-mutating method called
    // from a mutating one is handed a copy of the whole machine (a kilobyte), which was a measurable
    // share of every step.
    @inline(__always)
    func peerIndex(_ id: ServerID) -> Int? { peers.firstIndex { $0.id == id } }

    // MARK: - Receiving

    mutating func receive(from sender: ServerID, _ message: HAMessage) {
        guard let index = peerIndex(sender) else {
            decide(.ignoredNonMember(messageKind: message.kindName, from: sender))
            return
        }
        guard message.epoch.term <= Epoch.termMax else {
            decide(.ignoredTermBeyondMax(messageKind: message.kindName, from: sender, term: message.epoch.term))
            return
        }
        peers[index].lastHeardAtMilliseconds = nowMilliseconds
        if message.epoch > hardState.epoch {
            adoptEpoch(message.epoch, learnedFrom: sender)
        } else {
            // A message sent since our (re)start, in no higher epoch: this peer has not seen one.
            confirmNoHigherEpoch(from: sender)
        }
        if message.epoch < hardState.epoch {
            // The sender is behind: tell it, so a stale active fences itself.
            if !hardState.haStopped { send(.epochAnnouncement(head: journal.head), to: sender) }
            note(.lowerEpochAnnounced)
            return
        }
        if hardState.haStopped {
            // Nothing is synchronized, but the heads peers report still tell how far behind we are.
            if case .heartbeat(let heartbeat) = message.body {
                peers[index].knownHead = heartbeat.head
                peers[index].reportedMode = heartbeat.replicationMode
                if sender == hardState.epoch.server, role == .standby {
                    standby.activeKnownHead = heartbeat.head
                    adoptReplicationMode(heartbeat.replicationMode, from: sender)
                }
            }
            note(.messageIgnoredHAStopped)
            return
        }
        switch message.body {
        case .heartbeat(let heartbeat): receiveHeartbeat(heartbeat, from: index)
        case .hello(let hello): activeReceiveHello(hello, from: index)
        case .append(let previous, let revisions, let activeHead):
            standbyReceiveAppend(previous: previous, revisions: revisions, activeHead: activeHead, from: sender)
        case .ack(let durableHead, let head, let gap): activeReceiveAck(durableHead: durableHead, head: head, gap: gap, from: index)
        case .snapshotOffer(let snapshotHead, let chunkCount, let spans):
            standbyReceiveOffer(snapshotHead: snapshotHead, chunkCount: chunkCount, spans: spans, from: sender)
        case .snapshotChunk(let snapshotHead, let chunkIndex, let bytes, let checksum):
            standbyReceiveChunk(snapshotHead: snapshotHead, index: chunkIndex, bytes: bytes, checksum: checksum, from: sender)
        case .snapshotAck(let snapshotHead, let nextIndex, let resend):
            activeReceiveSnapshotAck(snapshotHead: snapshotHead, nextIndex: nextIndex, resend: resend, from: index)
        case .snapshotDone(let snapshotHead): standbyReceiveSnapshotDone(snapshotHead: snapshotHead, from: sender)
        case .switchoverRequest(let id): activeReceiveSwitchoverRequest(id, from: index)
        case .handover(let id, let finalHead): standbyReceiveHandover(id, finalHead: finalHead, from: sender)
        case .switchoverAbort(let id, let reason): receiveSwitchoverAbort(id, reason: reason, from: index)
        case .epochAnnouncement(let head):
            // The announcer is active now, even before its next heartbeat says so.
            if message.epoch.server == sender { peers[index].actsAsActive = true }
            standbyReceiveAnnouncement(head: head, from: sender)
        case .promotionPoll:
            send(.pollReply(durableHead: durableHead, spans: journal.spans), to: sender)
            note(.pollAnswered)
        case .pollReply(let head, let spans): candidateReceivePollReply(durableHead: head, spans: spans, from: index)
        case .collision(let common, let divergent, let activeHead, let commonHash):
            standbyReceiveCollision(
                commonNumber: common, divergentCount: divergent, activeHead: activeHead, commonHash: commonHash, from: sender)
        case .discardUnsyncedTail(let number, let epoch, let afterHash, let standbyHead):
            standbyReceiveDiscard(after: number, epoch: epoch, afterHash: afterHash, standbyHead: standbyHead, from: sender)
        case .forkProbe(let numbers): standbyReceiveForkProbe(numbers, from: sender)
        case .forkProbeReply(let head, let heads): activeReceiveForkProbeReply(head: head, heads: heads, from: index)
        }
    }

    /// A higher epoch exists: persist it, and if this server was active in a lower one, stop at once.
    mutating func adoptEpoch(_ newEpoch: Epoch, learnedFrom sender: ServerID) {
        let previous = hardState.epoch
        hardState.epoch = newEpoch
        if role == .active {
            stepDown()
            decide(.fenced(by: sender, epoch: newEpoch, previous: previous))
        } else {
            if case .poll = standbyState.promotion { decide(.promotionAbandoned(by: sender, epoch: newEpoch)) }
            if case .switchover = standbyState.promotion { decide(.switchoverAbandoned(by: sender, epoch: newEpoch)) }
            decide(.adoptedEpoch(newEpoch, from: sender))
        }
        // Start over with the new active: it checks our journal again on hello (a collision found in
        // the old epoch is found again if it still holds; the divergent revisions stay in the journal).
        standby = StandbyState()
        for index in peers.indices { peers[index].replication = .awaitingHello }
        persistHardState()
        if newEpoch.server != serverID { sendHello() }
    }

    /// Leaves the active role (without deciding on the epoch).
    mutating func stepDown() {
        guard let state = active else { return }
        if state.writes == .enabled { effect(.disableWrites) }
        answerSyncPublishesUnconfirmed()
        becomeStandbyRole()
        hardState.writesPaused = false
        hardState.handover = nil
    }

    mutating func receiveHeartbeat(_ heartbeat: HAMessage.Heartbeat, from index: Int) {
        peers[index].knownHead = heartbeat.head
        peers[index].reportedMode = heartbeat.replicationMode
        peers[index].haStopped = heartbeat.haStopped
        peers[index].actsAsActive = heartbeat.role == .active
        if heartbeat.writesEnabled, peers[index].id == hardState.epoch.server { lastKnownActive = peers[index].id }
        if role == .standby, peers[index].id == hardState.epoch.server {
            standbyReceiveActiveHeartbeat(heartbeat, from: peers[index].id)
        } else {
            note(.heartbeat)
        }
    }

    // MARK: - Timers

    mutating func runTimers() {
        nextTimersAtMilliseconds = nowMilliseconds + limits.timerResolutionMilliseconds
        if nowMilliseconds >= nextHeartbeatAtMilliseconds {
            nextHeartbeatAtMilliseconds = nowMilliseconds + limits.heartbeatIntervalMilliseconds
            sendHeartbeats()
        }
        if hardState.haStopped {
            expireSyncPublishes()
            note(.haStoppedHere)
            return
        }
        if isActive { activeTimers() } else { standbyTimers() }
        reportStatusChanges()
        if pending.decisions.isEmpty { note(.timersChecked) }
    }

    mutating func sendHeartbeats() {
        pending.messages.reserveCapacity(pending.messages.count + peers.count)
        for index in peers.indices {
            let expectingHello = isActive && peers[index].replication == .awaitingHello
            let heartbeat = HAMessage.Heartbeat(
                head: journal.head, durableHead: durableHead, role: role, writesEnabled: writesEnabled,
                haStopped: hardState.haStopped, replicationMode: hardState.replicationMode,
                expectingHello: expectingHello)
            send(.heartbeat(heartbeat), to: peers[index].id)
        }
    }

    @inline(__always)
    func reachable(_ index: Int) -> Bool {
        guard let heard = peers[index].lastHeardAtMilliseconds else { return false }
        return nowMilliseconds - heard <= limits.peerTimeoutMilliseconds
    }

    // MARK: - Status

    @inline(__always)
    func syncStatus(of index: Int) -> PeerSyncStatus {
        if peers[index].haStopped && reachable(index) { return .haStopped }
        if isActive {
            switch peers[index].replication {
            case .collision(_, let divergent): return .collision(divergentRevisions: divergent)
            case .fullSync(let sender):
                return .fullSync(chunksApplied: sender.acknowledgedChunks, chunkCount: sender.chunkCount ?? 0)
            case .incompatible: return .communicationError
            case .awaitingHello, .probingFork:
                if !reachable(index) { return peers[index].everSynchronized ? .communicationError : .neverSynchronized }
                return peers[index].everSynchronized ? lagging(index, since: peers[index].synchronizedAtMilliseconds) : .neverSynchronized
            case .delta(let progress):
                if !reachable(index) { return .communicationError }
                if progress.matched == journal.head { return .synchronized }
                return lagging(index, since: peers[index].synchronizedAtMilliseconds)
            }
        }
        // Our own synchronization with the active is what a standby reports for it: stopped here too.
        // During a full sync, chunks on their way hold the active's other messages back (one stream):
        // its silence is judged by the stall limit, not the peer timeout.
        if peers[index].id == hardState.epoch.server {
            if hardState.haStopped { return .haStopped }
            if case .fullSync(let receiver) = standbyState.link { return .fullSync(chunksApplied: receiver.nextIndex, chunkCount: receiver.chunkCount) }
        }
        if !reachable(index) { return peers[index].everSynchronized || peers[index].lastHeardAtMilliseconds != nil ? .communicationError : .neverSynchronized }
        guard peers[index].id == hardState.epoch.server else {
            // Another standby: compare it with what we know of the active.
            return lagRevisions(of: index) == 0 ? .synchronized : lagging(index, since: nil)
        }
        switch standbyState.link {
        case .collision(_, let divergent): return .collision(divergentRevisions: divergent)
        case .fullSync(let receiver): return .fullSync(chunksApplied: receiver.nextIndex, chunkCount: receiver.chunkCount)  // (above)
        case .connecting: return hardState.peers[index].everSynchronized ? lagging(index, since: nil) : .neverSynchronized
        case .delta: return lagRevisions(of: index) == 0 ? .synchronized : lagging(index, since: standbyState.synchronizedAtMilliseconds)
        }
    }

    /// Revisions between `index` and the reference as this server knows them, the one computation
    /// behind every lag it reports (status, sync status, promotion dry run). On the active: what the
    /// peer lacks of our journal. On a standby: for the active, what we lack of the last head it
    /// reported (nil if it never did); for another standby, what it lacks of that head.
    @inline(__always)
    func lagRevisions(of index: Int) -> UInt64? {
        if isActive {
            let held = if case .delta(let progress) = peers[index].replication { progress.matched.number } else { peers[index].knownHead.number }
            return journal.head.number > held ? journal.head.number - held : 0
        }
        if peers[index].id == hardState.epoch.server {
            guard let known = standbyState.activeKnownHead else { return nil }
            return known.number > journal.head.number ? known.number - journal.head.number : 0
        }
        let reference = (standbyState.activeKnownHead ?? journal.head).number
        return reference > peers[index].knownHead.number ? reference - peers[index].knownHead.number : 0
    }

    @inline(__always)
    func lagging(_ index: Int, since: UInt64?) -> PeerSyncStatus {
        let milliseconds = since.map { nowMilliseconds - $0 } ?? 0
        return .lagging(revisions: lagRevisions(of: index) ?? 0, milliseconds: milliseconds)
    }

    mutating func reportStatusChanges() {
        for (index, status) in statusesChanged() {
            peers[index].reportedStatusKind = status.kind
            effect(.statusChanged(peer: peers[index].id, status: status))
        }
    }

    /// The peers whose sync status differs in kind from the one last reported (usually none), read in
    /// one pass: called per peer from the mutating loop, `syncStatus` had the state machine copied.
    @inline(__always)
    func statusesChanged() -> [(index: Int, status: PeerSyncStatus)] {
        var changed: [(index: Int, status: PeerSyncStatus)] = []
        for index in peers.indices {
            let status = syncStatus(of: index)
            if peers[index].reportedStatusKind != status.kind { changed.append((index, status)) }
        }
        return changed
    }

    public var status: HAStatus {
        var views: [PeerView] = []
        for index in peers.indices {
            let heard = peers[index].lastHeardAtMilliseconds.map { nowMilliseconds - $0 }
            let synchronized = synchronizedAt(index).map { nowMilliseconds - $0 }
            views.append(
                PeerView(
                    serverID: peers[index].id, status: syncStatus(of: index),
                    knownHead: peers[index].knownHead, lastContactMillisecondsAgo: heard,
                    lagRevisions: lagRevisions(of: index), synchronizedMillisecondsAgo: synchronized))
        }
        return HAStatus(
            serverID: serverID, role: role, epoch: epoch, writesEnabled: writesEnabled,
            activeServer: epoch.server, head: journal.head, durableHead: durableHead,
            replicationMode: hardState.replicationMode, haStopped: hardState.haStopped,
            link: role == .standby ? standbyState.link.state : nil,
            divergentRevisions: collision?.divergentRevisions ?? 0, peers: views,
            promotionInProgress: role == .standby && standbyState.promotion != nil,
            writesRefusal: writeRefusal)
    }

    /// When the peer (on the active) or we (on a standby, for the active) last held every revision.
    func synchronizedAt(_ index: Int) -> UInt64? {
        if isActive { return peers[index].synchronizedAtMilliseconds }
        return peers[index].id == hardState.epoch.server ? standbyState.synchronizedAtMilliseconds : nil
    }
}

/// What a step left behind, for whoever watches the machine (see `HAStateMachine.summary`).
public struct HASummary: Hashable, Sendable {
    public var epoch: Epoch
    public var role: HARole
    public var writesEnabled: Bool
    public var followsActiveVerified: Bool
    public var head: RevisionHead
    /// How a publish is answered now (`HAStateMachine.publishMode`).
    public var publishMode: ReplicationMode
}

/// Collects one step's output.
struct PendingOutput: Sendable {
    var persist = false
    var messages: [Envelope] = []
    var effects: [HAEffect] = []
    var decisions: [HADecision] = []
    var routine = HARoutine.nothingToDo

    var isEmpty: Bool { !persist && messages.isEmpty && effects.isEmpty && decisions.isEmpty }

    /// What the step collected, its arrays moved out (not copied): the next step starts from an empty one.
    mutating func take() -> PendingOutput {
        var taken = PendingOutput()
        swap(&taken, &self)
        return taken
    }

    /// The step's output, `persistBox` holding the hard state when `persist` is set.
    func output(persisting persistBox: HardStateBox?) -> HAOutput {
        HAOutput(
            persistBox: persistBox, messages: messages, effects: effects,
            reason: decisions.isEmpty ? .routine(routine) : .decided(decisions))
    }
}
