// Why a step did what it did, as values: the runtime logs them, the simulator counts the paths they
// name, tests assert on them. Each prints as the prose an operator reads in the log (Patroni's habit:
// every decision has a human-readable reason).

/// Why one `step` produced its output: the decisions taken, in order, or the routine bookkeeping it did
/// when it decided nothing.
public enum HAReason: Hashable, Sendable, CustomStringConvertible {
    /// Decisions worth a log line, in the order they were taken (never empty).
    case decided([HADecision])
    case routine(HARoutine)

    /// The decisions taken (empty for routine steps).
    public var decisions: [HADecision] {
        if case .decided(let decisions) = self { return decisions }
        return []
    }

    /// Whether `decision` was taken in this step.
    public func contains(_ decision: HADecision) -> Bool { decisions.contains(decision) }

    /// Time only moved (a tick before any timer was due): the hot path, never worth a log line.
    public var isClockOnly: Bool { self == .routine(.clockMoved) }

    /// A tick that moved the clock or checked timers without deciding anything.
    public var isTimersOnly: Bool { self == .routine(.clockMoved) || self == .routine(.timersChecked) }

    public var description: String {
        switch self {
        case .decided(let decisions):
            if decisions.count == 1 { return decisions[0].description }
            return decisions.map(\.description).joined(separator: "; ")
        case .routine(let routine): return routine.description
        }
    }
}

/// Why an administrator command was refused: a stable code, as the Web API and `rampart ha` show it.
/// The decision that comes with it (`HAOutput.reason`) says why in words.
public enum HARefusal: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case alreadyActive = "already-active"
    case alreadyStarted = "already-started"
    case alreadyStopped = "already-stopped"
    case fullSyncRefused = "full-sync-refused"
    case mayLoseRevisions = "may-lose-revisions"
    case noCollision = "no-collision"
    case noSuchPeer = "no-such-peer"
    case notActive = "not-active"
    case notReady = "not-ready"
    case notTakingWrites = "not-taking-writes"
    case peerExists = "peer-exists"
    case peerIsActive = "peer-is-active"
    case peersUnconfirmed = "peers-unconfirmed"
    case promotionRefused = "promotion-refused"
    case promotionUnconfirmed = "promotion-unconfirmed"
    case standbyAhead = "standby-ahead"
    case switchoverInProgress = "switchover-in-progress"
    case switchoverRefused = "switchover-refused"
    case tooManyServers = "too-many-servers"
    /// Never from the core: the runtime stopped acting after its hard state or journal could not be
    /// made durable, and refuses every command until it restarts.
    case halted

    public var description: String { rawValue }
}

/// Why a switchover will not happen (`HAMessage.Body.switchoverAbort`). Travels as its raw value.
public enum SwitchoverAbortReason: String, Hashable, Sendable, CaseIterable, CustomStringConvertible {
    case notActive = "not-active"
    case switchoverInProgress = "switchover-in-progress"
    case standbyNotSynchronized = "standby-not-synchronized"
    case noSwitchoverPending = "no-switchover-pending"
    case switchoverTimedOut = "switchover-timed-out"
    /// A code this version does not know (a newer peer's): the abort still counts.
    case unknown

    /// The reason a peer's code names; `unknown` for any other text (never logged as the peer sent it).
    public init(code: String) { self = SwitchoverAbortReason(rawValue: code) ?? .unknown }

    public var description: String { rawValue }
}

/// Why an active takes writes (again).
public enum WritesCause: Hashable, Sendable, CustomStringConvertible {
    case startedWithoutPeers
    /// A new group's first start, or a restore's as the new primary.
    case firstStart
    case everyPeerAnswered(epoch: Epoch)
    case switchoverAborted(target: ServerID, reason: SwitchoverAbortReason)
    case promotedAgain(epoch: Epoch)

    public var description: String {
        switch self {
        case .startedWithoutPeers: "started as the active with no peer to hear from"
        case .firstStart: "first start of a new group or of a restore as new primary (no peer to wait for)"
        case .everyPeerAnswered(let epoch): "restarted as the active of epoch \(epoch) and every peer answered in no higher epoch"
        case .switchoverAborted(let target, let reason): "switchover to \(target) aborted (\(reason))"
        case .promotedAgain(let epoch): "promoted again in epoch \(epoch)"
        }
    }
}

/// Why the active sends a standby a whole snapshot.
public enum FullSyncCause: Hashable, Sendable, CustomStringConvertible {
    case headOlderThanSnapshotBase
    case standbyAsked
    case newStandby
    case offeredSnapshotDoesNotCover
    case snapshotNoLongerAvailable(RevisionHead)
    case administratorAsked

    public var description: String {
        switch self {
        case .headOlderThanSnapshotBase: "its head is older than our snapshot base"
        case .standbyAsked: "it asked for one"
        case .newStandby: "it is a new standby"
        case .offeredSnapshotDoesNotCover: "the snapshot offered does not cover its journal"
        case .snapshotNoLongerAvailable(let head): "the snapshot at \(head) is no longer available"
        case .administratorAsked: "an administrator asked"
        }
    }
}

/// Why a standby stops what it receives and says hello again.
public enum ReconnectCause: Hashable, Sendable, CustomStringConvertible {
    case fullSyncStalled(milliseconds: UInt64)
    case appendDoesNotLink(atNumber: UInt64)
    case revisionDiffers(number: UInt64)
    case hashChainBroken(number: UInt64)
    case offerDoesNotCover(snapshotHead: RevisionHead)
    case collisionReportMismatch(from: ServerID)

    public var description: String {
        switch self {
        case .fullSyncStalled(let milliseconds): "full sync made no progress for \(milliseconds) ms"
        case .appendDoesNotLink(let number): "append does not link to our journal at #\(number)"
        case .revisionDiffers(let number): "revision #\(number) from the active differs from ours"
        case .hashChainBroken(let number): "revision #\(number) breaks the hash chain; delta sync stopped"
        case .offerDoesNotCover(let head): "snapshot offer at \(head) does not cover our journal"
        case .collisionReportMismatch(let sender): "collision report from \(sender) does not match our journal"
        }
    }
}

/// A decision of the core, worth a log line. The values are what the prose names.
public enum HADecision: Hashable, Sendable, CustomStringConvertible {
    // MARK: epochs and messages
    case ignoredNonMember(messageKind: String, from: ServerID)
    case ignoredTermBeyondMax(messageKind: String, from: ServerID, term: UInt64)
    /// An active saw a higher epoch: it stopped at once.
    case fenced(by: ServerID, epoch: Epoch, previous: Epoch)
    case promotionAbandoned(by: ServerID, epoch: Epoch)
    case switchoverAbandoned(by: ServerID, epoch: Epoch)
    case adoptedEpoch(Epoch, from: ServerID)

    // MARK: writes on the active
    case writesEnabled(WritesCause, epoch: Epoch)
    case writesEnabledOncePeersAnswer(WritesCause, epoch: Epoch, unconfirmed: [ServerID])
    case writesEnabledOnceDurable(WritesCause, epoch: Epoch)
    /// A promotion's applied revisions became durable: writes are on.
    case appliedRevisionsDurable(epoch: Epoch)
    case syncPublishesTimedOut(count: Int, timeoutMilliseconds: UInt64)
    case syncPublishesOverflowed(max: Int)
    /// HA is stopped here: nothing can confirm a publish, so none waits for a standby.
    case syncPublishesUnconfirmedHAStopped(count: Int)
    /// The HA group has no other server: nothing can confirm a publish, so none waits for a standby.
    case syncPublishesUnconfirmedNoStandby(count: Int)
    /// A forced promotion of this active into a new epoch: the publishes of the old one still waiting
    /// are answered unconfirmed.
    case syncPublishesUnconfirmedNewEpoch(count: Int, epoch: Epoch)

    // MARK: synchronization, active side
    case schemaMismatch(peer: ServerID, schemaVersion: UInt32, softwareVersion: String, ourSchemaVersion: UInt32)
    case probingFork(peer: ServerID, shared: UInt64, firstDiffering: UInt64)
    case journalChangedDuringProbe(peer: ServerID)
    case toldToDiscardUnsyncedTail(peer: ServerID, epoch: Epoch, after: UInt64, author: ServerID)
    case collisionFound(peer: ServerID, divergent: UInt64, after: UInt64)
    case deltaSyncStarted(peer: ServerID, from: RevisionHead, ourHead: RevisionHead)
    case fullSyncStarted(peer: ServerID, at: RevisionHead, sharedWith: ServerID?, cause: FullSyncCause)
    case snapshotUnreadable(standby: ServerID, at: RevisionHead, retryMilliseconds: UInt64)
    case fullSyncCompleted(peer: ServerID, at: RevisionHead)
    /// The core forgot the older half of the revisions it held (`HALimits.journalRevisionsHeldMax`).
    case journalCompacted(base: RevisionHead, held: Int)
    case ackOfUnknownHead(peer: ServerID, head: RevisionHead)

    // MARK: switchover
    case switchoverRequestRefusedNotActive(from: ServerID)
    case switchoverRequestRefusedHandingOver(from: ServerID, target: ServerID)
    case switchoverRequestRefusedNotInDelta(from: ServerID, status: PeerSyncStatus)
    case handingOver(to: ServerID, at: RevisionHead)
    case switchoverRefusedByActive(ServerID, reason: SwitchoverAbortReason)
    case switchoverRequested(from: ServerID)
    case handedOver(by: ServerID, at: RevisionHead)
    case switchoverCompleted(previous: ServerID, finalHead: RevisionHead, epoch: Epoch)
    case switchoverTimedOut(milliseconds: UInt64, active: ServerID)

    // MARK: synchronization, standby side
    case activeSilent(ServerID, milliseconds: UInt64)
    case reconnecting(ReconnectCause)
    case replicationModeAdopted(ReplicationMode, from: ServerID)
    case deltaSyncEstablished(with: ServerID, at: RevisionHead)
    case fullSyncReceiving(from: ServerID, at: RevisionHead, chunkCount: Int, startingAt: Int)
    case chunkChecksumFailed(index: Int)
    case fullSyncInstalled(from: ServerID, at: RevisionHead)
    case collisionWithActive(ServerID, divergent: UInt64, after: UInt64)
    case droppedUnsyncedTail(count: Int, after: UInt64, active: ServerID, epoch: Epoch)

    // MARK: administrator commands
    case haStopped
    case haStarted
    case alreadyStopped
    case alreadyStarted
    case dryRun(summary: String)
    case alreadyActive(epoch: Epoch)
    case forcedPromotionOfPausedActive(epoch: Epoch)
    case handoverUnderWay(target: ServerID)
    case forcedPromotionDuringHandover(target: ServerID, epoch: Epoch)
    case promotionRefused(summary: String)
    case forcedPromotionOfRestartedActive(silent: [ServerID], epoch: Epoch)
    case notReady(writes: String)
    case forcedPromotion(epoch: Epoch, previous: Epoch, summary: String)
    case failoverRefused(summary: String)
    case failoverWithoutPoll(epoch: Epoch)
    case failoverPolling(epoch: Epoch)
    case failoverUnconfirmed(missing: [ServerID], milliseconds: UInt64)
    case standbyAhead(peer: ServerID, lacking: UInt64?, peerHead: RevisionHead, ourHead: RevisionHead)
    case failoverCompleted(epoch: Epoch)
    case demoteOnStandby
    case demoted
    case demoteWritesAlreadyOff(writes: String)
    case fullSyncRefusedHere
    case fullSyncRequested(from: ServerID)
    case fullSyncRefusedNotActive(target: ServerID)
    case fullSyncRefusedNotInDelta(target: ServerID, status: PeerSyncStatus)
    case noCollision
    case collisionResolvedKeepingPeer(active: ServerID, divergent: UInt64, after: UInt64, snapshotBase: RevisionHead?)
    case collisionResolvedKeepingLocal(epoch: Epoch, previous: ServerID)
    case peerExists(ServerID)
    case tooManyServers(ServerID, max: Int)
    case peerAdded(ServerID)
    case noSuchPeer(ServerID)
    case peerIsActive(ServerID)
    case peerRemoved(ServerID)
    case replicationModeOnStandby(active: ServerID)
    case replicationModeSet(ReplicationMode, standbysPendingMilliseconds: UInt64?)

    public var description: String {
        switch self {
        case .ignoredNonMember(let kind, let sender): "ignored \(kind) from \(sender): not a member of this HA group"
        case .ignoredTermBeyondMax(let kind, let sender, let term):
            "ignored \(kind) from \(sender): its epoch term \(term) is beyond any real promotion"
        case .fenced(let sender, let epoch, let previous):
            "saw epoch \(epoch) from \(sender), higher than our \(previous): demoted to standby at once (fenced)"
        case .promotionAbandoned(let sender, let epoch): "promotion abandoned: \(sender) is in higher epoch \(epoch)"
        case .switchoverAbandoned(let sender, let epoch): "switchover abandoned: \(sender) is in higher epoch \(epoch)"
        case .adoptedEpoch(let epoch, let sender): "adopted epoch \(epoch) from \(sender); following \(epoch.server)"

        case .writesEnabled(let cause, let epoch): "\(cause): writes enabled in epoch \(epoch)"
        case .writesEnabledOncePeersAnswer(let cause, let epoch, let unconfirmed):
            "\(cause): writes enabled in epoch \(epoch) once \(Self.names(unconfirmed)) answer with no higher epoch"
        case .writesEnabledOnceDurable(let cause, let epoch): "\(cause): writes enabled in epoch \(epoch) once applied revisions are durable"
        case .appliedRevisionsDurable(let epoch): "applied revisions are durable: writes enabled in epoch \(epoch)"
        case .syncPublishesTimedOut(let count, let timeout):
            "sync mode: \(count) publish(es) not confirmed by any standby within \(timeout) ms; committed on the active only"
        case .syncPublishesOverflowed(let max): "sync mode: more than \(max) publishes waiting; the oldest timed out"
        case .syncPublishesUnconfirmedHAStopped(let count):
            "sync mode, but HA is stopped here: \(count) publish(es) answered at once, committed on the active only (nothing is synchronized until ha start)"
        case .syncPublishesUnconfirmedNoStandby(let count):
            "sync mode, but the HA group has no standby: \(count) publish(es) answered at once, committed on the active only (add a standby with ha add-peer)"
        case .syncPublishesUnconfirmedNewEpoch(let count, let epoch):
            "sync mode: \(count) publish(es) of the previous epoch answered unconfirmed on entering \(epoch); committed on the active, replicated from here on"

        case .schemaMismatch(let peer, let schema, let software, let ours):
            "\(peer) runs schema \(schema) (software \(software)), we run \(ours): not synchronizing"
        case .probingFork(let peer, let shared, let firstDiffering):
            "\(peer)'s journal parts from ours after #\(shared) and by #\(firstDiffering): asking for its hashes in between"
        case .journalChangedDuringProbe(let peer): "\(peer)'s journal changed while we compared it with ours: waiting for its next hello"
        case .toldToDiscardUnsyncedTail(let peer, let epoch, let after, let author):
            "\(peer) holds revisions of epoch \(epoch) after #\(after) that we do not: lost by \(author) in a crash before their fsync, so never answered; told it to drop them and take ours"
        case .collisionFound(let peer, let divergent, let after):
            "collision: \(peer) holds \(divergent) revision(s) after #\(after) that we lack; they are kept there for export"
        case .deltaSyncStarted(let peer, let from, let ours): "delta sync to \(peer) from \(from) (we are at \(ours))"
        case .fullSyncStarted(let peer, let head, let sharedWith, let cause):
            "full sync of \(peer) at \(head)\(sharedWith.map { " (the snapshot already going to \($0))" } ?? ""): \(cause)"
        case .journalCompacted(let base, let held):
            "journal compacted: the HA core holds the \(held) revisions after #\(base.number) (older ones stay in the store; a standby behind #\(base.number) gets a full sync)"
        case .snapshotUnreadable(let standby, let head, let retry):
            "full sync of \(standby): the snapshot at \(head) could not be read; asking again in \(retry) ms"
        case .fullSyncCompleted(let peer, let head): "full sync of \(peer) complete at \(head): delta sync from here"
        case .ackOfUnknownHead(let peer, let head): "\(peer) acknowledged \(head), which we do not hold: asking it to say hello again"

        case .switchoverRequestRefusedNotActive(let peer): "refused switchover request from \(peer): this server is not active"
        case .switchoverRequestRefusedHandingOver(let peer, let target): "refused switchover to \(peer): already handing over to \(target)"
        case .switchoverRequestRefusedNotInDelta(let peer, let status): "refused switchover to \(peer): it is \(status), not in delta sync"
        case .handingOver(let peer, let head): "switchover to \(peer): writes stopped at \(head); it takes over once it holds every revision"
        case .switchoverRefusedByActive(let peer, let reason): "switchover refused by the active \(peer): \(reason)"
        case .switchoverRequested(let active): "switchover requested from \(active)"
        case .handedOver(let sender, let head): "\(sender) stopped writes and handed over at \(head); taking over once we hold it durably"
        case .switchoverCompleted(let previous, let head, let epoch):
            "switchover complete: we hold every revision of \(previous) up to \(head); active in epoch \(epoch), nothing lost"
        case .switchoverTimedOut(let milliseconds, let active): "switchover timed out after \(milliseconds) ms: told \(active) to resume writes"

        case .activeSilent(let active, let milliseconds): "no word from the active \(active) for \(milliseconds) ms: reconnecting"
        case .reconnecting(let cause): "\(cause): saying hello again"
        case .replicationModeAdopted(let mode, let sender): "replication mode is now \(mode), as on the active \(sender)"
        case .deltaSyncEstablished(let sender, let head): "delta sync with \(sender) established at \(head)"
        case .fullSyncReceiving(let sender, let head, let chunkCount, let resume):
            "full sync from \(sender) at \(head): \(chunkCount) chunk(s), starting at chunk \(resume)"
        case .chunkChecksumFailed(let index): "snapshot chunk \(index) failed its checksum: asked for it again"
        case .fullSyncInstalled(let sender, let head): "full sync from \(sender) complete at \(head): switching to delta sync"
        case .collisionWithActive(let sender, let divergent, let after):
            "collision with the active \(sender): our \(divergent) revision(s) after #\(after) are not in its journal; they are kept for export. Resolve with resolve-collision keep=peer (export, then take \(sender)'s data) or keep=local"
        case .droppedUnsyncedTail(let count, let after, let active, let epoch):
            "dropped our \(count) revision(s) after #\(after): \(active) wrote them in epoch \(epoch) and lost them before its fsync, so they were never answered; saying hello again"

        case .haStopped: "HA stopped by an administrator: no synchronization until ha start (epochs are still obeyed)"
        case .haStarted: "HA started by an administrator"
        case .alreadyStopped: "HA is already stopped here"
        case .alreadyStarted: "HA is already running here"
        case .dryRun(let summary): "dry run: \(summary)"
        case .alreadyActive(let epoch): "already active in epoch \(epoch)"
        case .forcedPromotionOfPausedActive(let epoch):
            "forced promotion of a paused active that had not heard from every peer since its restart, or lately: active in new epoch \(epoch)"
        case .handoverUnderWay(let target): "handing over to \(target): wait for it, or force a promotion into a new epoch"
        case .forcedPromotionDuringHandover(let target, let epoch):
            "forced promotion during a hand-over to \(target): active in new epoch \(epoch); \(target) is fenced if it took over"
        case .promotionRefused(let summary): "promotion refused: \(summary)"
        case .forcedPromotionOfRestartedActive(let silent, let epoch):
            "forced promotion of a restarted active that had not heard from \(Self.names(silent)): active in new epoch \(epoch)"
        case .notReady(let writes): "active, \(writes): writes are enabled as soon as possible"
        case .forcedPromotion(let epoch, let previous, let summary): "forced promotion: active in epoch \(epoch) (was \(previous)). \(summary)"
        case .failoverRefused(let summary): "failover refused: \(summary)"
        case .failoverWithoutPoll(let epoch): "failover: no other standby to ask; active in epoch \(epoch)"
        case .failoverPolling(let epoch):
            "failover: epoch raised to \(epoch); asking every other standby for its head before enabling writes"
        case .failoverUnconfirmed(let missing, let milliseconds):
            "failover refused: no answer from \(Self.names(missing)) within \(milliseconds) ms, so they may hold acknowledged revisions we lack; use force to promote anyway"
        case .standbyAhead(let peer, let lacking, let peerHead, let ourHead):
            "failover refused: \(peer) holds \(lacking.map { "\($0) revision(s) we lack" } ?? "another revision #\(peerHead.number) than ours") (its head \(peerHead), ours \(ourHead)); promote \(peer) or use force"
        case .failoverCompleted(let epoch):
            "failover: every other standby answered and none holds revisions we lack; active in epoch \(epoch)"
        case .demoteOnStandby: "demote: this server is already a standby"
        case .demoted: "demoted by an administrator: writes disabled; still replicating; promote a standby to switch over"
        case .demoteWritesAlreadyOff(let writes): "demote: writes are already off (\(writes))"
        case .fullSyncRefusedHere: "a full sync is asked for on a standby that is not in collision"
        case .fullSyncRequested(let active): "full sync requested from \(active)"
        case .fullSyncRefusedNotActive(let target): "full sync of \(target): run it on the active, naming one of its standbys"
        case .fullSyncRefusedNotInDelta(let target, let status): "full sync of \(target) refused: it is \(status), not in delta sync"
        case .noCollision: "resolve-collision: this server is not in collision (run it on the server that reports one)"
        case .collisionResolvedKeepingPeer(let active, let divergent, let after, let base):
            "collision resolved keeping \(active)'s data: exported and dropped our \(divergent) divergent revision(s) after #\(after)\(base.map { " (with a database backup: they reach into our snapshot at \($0)); a full sync follows" } ?? "")"
        case .collisionResolvedKeepingLocal(let epoch, let previous):
            "collision resolved keeping this server's data: active in epoch \(epoch); \(previous) will report a collision and export its own divergent revisions when resolved there"
        case .peerExists(let peer): "add peer \(peer): already a member"
        case .tooManyServers(let peer, let max): "add peer \(peer): at most \(max) servers"
        case .peerAdded(let peer): "added \(peer) to the HA group; it gets a full sync when it connects"
        case .noSuchPeer(let peer): "remove peer \(peer): not a member"
        case .peerIsActive(let peer): "remove peer \(peer): it is the active; promote another server first"
        case .peerRemoved(let peer): "removed \(peer) from the HA group"
        case .replicationModeOnStandby(let active): "replication mode is set on the active (\(active)); standbys follow it"
        case .replicationModeSet(let mode, let pending):
            "replication mode set to \(mode)\(pending.map { ": until every standby holds it, publishes still wait for one (at most \($0) ms)" } ?? "")"
        }
    }

    static func names(_ servers: [ServerID]) -> String { servers.map(\.name).joined(separator: ", ") }
}

/// Routine bookkeeping of a step that decided nothing: a trace line at most.
public enum HARoutine: Hashable, Sendable, CustomStringConvertible {
    /// A tick before any timer was due: only the clock moved.
    case clockMoved
    case timersChecked
    case nothingToDo
    case heartbeat
    case heartbeatFromActive
    case epochAnnouncement
    case activeAnnounced
    case lowerEpochAnnounced
    case haStoppedHere
    case messageIgnoredHAStopped
    case pollAnswered
    case linkRestored(ServerID)
    case linkRestoredResent(ServerID)
    case revisionCommitted
    case helloIgnoredNotActive
    case forkProbeReplyNotNeeded
    case forkProbeNarrowed
    case snapshotOfferedAgain
    case snapshotChunkReadNotNeeded
    case snapshotChunkRead
    case unavailableSnapshotNotNeeded
    case staleSnapshotAck
    case snapshotAcked
    case ack
    case handoverRepeated
    case staleSwitchoverAbort
    case unexpectedHandover
    case appendIgnored
    case gapBeforeAppend
    case appendApplied
    case stalePersistenceReport
    case publishedDurable(upTo: RevisionHead)
    case persistedAndAcknowledged
    case offerIgnoredInCollision
    case offerRepeated
    case offerForHeldSnapshot
    case chunkOutsideFullSync
    case chunkDroppedWhileApplying
    case chunkOutOfOrder
    case chunkVerified
    case staleChunkReport
    case chunkApplied
    case discardIgnored
    case forkProbeIgnored
    case forkProbeAnswered

    public var description: String {
        switch self {
        case .clockMoved: "tick"
        case .timersChecked: "timers checked"
        case .nothingToDo: "nothing to do"
        case .heartbeat: "heartbeat"
        case .heartbeatFromActive: "heartbeat from the active"
        case .epochAnnouncement: "epoch announcement"
        case .activeAnnounced: "the active announced its epoch: hello"
        case .lowerEpochAnnounced: "ignored a message from a lower epoch and announced ours"
        case .haStoppedHere: "HA is stopped here"
        case .messageIgnoredHAStopped: "HA is stopped here: message ignored"
        case .pollAnswered: "answered a promotion poll with our durable head"
        case .linkRestored(let peer): "link to \(peer) restored"
        case .linkRestoredResent(let peer): "link to \(peer) restored: what it had not acknowledged sent again"
        case .revisionCommitted: "revision committed: delta sync to standbys"
        case .helloIgnoredNotActive: "hello ignored: not active"
        case .forkProbeReplyNotNeeded: "fork probe reply no longer needed"
        case .forkProbeNarrowed: "fork probe narrowed: asking again"
        case .snapshotOfferedAgain: "hello during a full sync: snapshot offered again"
        case .snapshotChunkReadNotNeeded: "snapshot chunk read is no longer needed"
        case .snapshotChunkRead: "snapshot chunk read"
        case .unavailableSnapshotNotNeeded: "unavailable snapshot no longer needed"
        case .staleSnapshotAck: "stale snapshot ack ignored"
        case .snapshotAcked: "snapshot ack: sending the next step"
        case .ack: "ack"
        case .handoverRepeated: "handover repeated"
        case .staleSwitchoverAbort: "stale switchover abort ignored"
        case .unexpectedHandover: "unexpected handover: aborted it"
        case .appendIgnored: "append ignored: not in delta sync"
        case .gapBeforeAppend: "gap before an append: asked the active to resend"
        case .appendApplied: "append applied"
        case .stalePersistenceReport: "stale persistence report ignored"
        case .publishedDurable(let head): "published revisions durable up to \(head)"
        case .persistedAndAcknowledged: "persisted: acknowledged to the active"
        case .offerIgnoredInCollision: "snapshot offer ignored: in collision"
        case .offerRepeated: "snapshot offer repeated"
        case .offerForHeldSnapshot: "snapshot offer for the snapshot we already hold"
        case .chunkOutsideFullSync: "snapshot chunk for a full sync we are not in: said hello"
        case .chunkDroppedWhileApplying: "snapshot chunk dropped while another is applied"
        case .chunkOutOfOrder: "snapshot chunk out of order dropped"
        case .chunkVerified: "snapshot chunk verified: applying"
        case .staleChunkReport: "stale snapshot chunk report ignored"
        case .chunkApplied: "snapshot chunk applied durably"
        case .discardIgnored: "discard of an unsynced tail ignored: it does not match our journal or link"
        case .forkProbeIgnored: "fork probe ignored: not from our active, or too long"
        case .forkProbeAnswered: "answered a fork probe with our hashes"
        }
    }
}
