import HACore
import HADriverKit

/// A whole HA group in simulated time: servers (each the real HA driver over a simulated disk),
/// a seeded network, and the invariant checks that run after every step. Scenario tests drive it by
/// hand; `RandomSchedule` drives it with seeded faults.
public final class SimulatedCluster {
    public let seed: UInt64
    public private(set) var clock: SimulatedClock
    public private(set) var steps = 0
    public private(set) var violation: SimulationViolation?
    /// Every step's reason but the clock's and idle timers', in order. Kept only when `keepsLog` is on.
    public private(set) var log: [(tick: Int, server: ServerID, reason: HAReason)] = []
    public var keepsLog = false
    /// Every effect carried out, in order. Kept only when `keepsLog` is on.
    public private(set) var effectLog: [(tick: Int, server: ServerID, effect: HAEffect)] = []
    /// One line per event, when set.
    public var trace: ((String) -> Void)?
    /// What happened: the workload, the faults injected (the network's among them) and the paths taken.
    public var statistics: Statistics {
        var statistics = counters
        statistics.network = network.faults
        statistics.runs = 1
        statistics.promotePathSeeds = counters.promotePaths.taken
        return statistics
    }

    /// Counts of one run (or, added up, of many). Every fault is counted as it is injected and every
    /// path as it is taken, so a run that claims to exercise them proves it did.
    public struct Statistics: Hashable, Sendable, Codable {
        public var publishes = 0
        public var syncAcknowledged = 0
        public var syncTimedOut = 0
        /// Epochs whose server enabled writes, those among them that a promotion forced, and those
        /// that were a new group's first active (no promotion at all).
        public var promotions = 0
        public var forcedPromotions = 0
        /// Forced promotions into an epoch below one already taking writes elsewhere (born fenced).
        public var forcedBelowAnEnabledEpoch = 0
        public var firstStarts = 0
        /// Completed switchovers (nothing lost) and failovers (every other standby polled, or none to poll).
        public var switchovers = 0
        public var failovers = 0
        /// Actives demoted at once by a higher epoch.
        public var fencings = 0
        public var switchoverTimeouts = 0
        public var fullSyncsStarted = 0
        public var fullSyncsCompleted = 0
        /// Cores that forgot the older half of their journal (`HALimits.journalRevisionsHeldMax`).
        public var journalCompactions = 0
        public var forkProbes = 0
        public var collisions = 0
        public var collisionResolutions = 0
        public var exports = 0
        /// Standbys that dropped revisions their active lost before its fsync.
        public var unsyncedDiscards = 0
        /// Administrator commands the core refused.
        public var refusals = 0
        public var crashes = 0
        public var restarts = 0
        public var messagesSent = 0
        /// The network's faults.
        public var network = NetworkFaultCounts()
        /// Every path of `ha promote` taken, how often, and in how many of `runs` seeds.
        public var promotePaths = PromotePathCounts()
        public var promotePathSeeds = PromotePathCounts()
        public var runs = 0
        /// What the liveness operator had to do after the heal: start HA, resolve collisions, promote
        /// (plainly, and by force only once a plain promotion could not do it).
        public var operatorHAStarts = 0
        public var operatorCollisionResolutions = 0
        public var operatorPlainPromotions = 0
        public var operatorForcedPromotions = 0

        public init() {}

        public mutating func add(_ other: Statistics) {
            publishes += other.publishes
            syncAcknowledged += other.syncAcknowledged
            syncTimedOut += other.syncTimedOut
            promotions += other.promotions
            forcedPromotions += other.forcedPromotions
            forcedBelowAnEnabledEpoch += other.forcedBelowAnEnabledEpoch
            firstStarts += other.firstStarts
            switchovers += other.switchovers
            failovers += other.failovers
            fencings += other.fencings
            switchoverTimeouts += other.switchoverTimeouts
            fullSyncsStarted += other.fullSyncsStarted
            fullSyncsCompleted += other.fullSyncsCompleted
            journalCompactions += other.journalCompactions
            forkProbes += other.forkProbes
            collisions += other.collisions
            collisionResolutions += other.collisionResolutions
            exports += other.exports
            unsyncedDiscards += other.unsyncedDiscards
            refusals += other.refusals
            crashes += other.crashes
            restarts += other.restarts
            messagesSent += other.messagesSent
            network.add(other.network)
            promotePaths.add(other.promotePaths)
            promotePathSeeds.add(other.promotePathSeeds)
            runs += other.runs
            operatorHAStarts += other.operatorHAStarts
            operatorCollisionResolutions += other.operatorCollisionResolutions
            operatorPlainPromotions += other.operatorPlainPromotions
            operatorForcedPromotions += other.operatorForcedPromotions
        }

        /// Every fault injected, by name, in a fixed order: the servers' and the network's.
        public var faults: [(name: String, count: Int)] {
            [("crashes", crashes), ("restarts", restarts)] + network.faults
        }

        /// Every path taken, by name, in a fixed order.
        public var paths: [(name: String, count: Int)] {
            [
                ("plain-promotions", promotions - forcedPromotions - firstStarts), ("forced-promotions", forcedPromotions),
                ("forced-below-an-enabled-epoch", forcedBelowAnEnabledEpoch),
                ("switchovers", switchovers), ("failovers", failovers), ("fencings", fencings),
                ("switchover-timeouts", switchoverTimeouts), ("full-syncs-started", fullSyncsStarted),
                ("full-syncs-completed", fullSyncsCompleted), ("journal-compactions", journalCompactions), ("fork-probes", forkProbes),
                ("collisions", collisions),
                ("collision-resolutions", collisionResolutions), ("exports", exports), ("unsynced-discards", unsyncedDiscards),
                ("refusals", refusals), ("sync-acknowledged", syncAcknowledged), ("sync-timeouts", syncTimedOut),
            ]
        }

        /// Every intervention of the liveness operator, by name.
        public var interventions: [(name: String, count: Int)] {
            [
                ("ha-starts", operatorHAStarts), ("collision-resolutions", operatorCollisionResolutions),
                ("plain-promotions", operatorPlainPromotions), ("forced-promotions", operatorForcedPromotions),
            ]
        }

        /// The paths a step's decisions name.
        mutating func count(_ decisions: [HADecision], effects: [HAEffect]) {
            var refusal: HARefusal?
            for effect in effects { if case .commandRefused(let code) = effect { refusal = code } }
            for decision in decisions {
                if let path = PromotePath.taken(by: decision, refusal: refusal) { promotePaths[path] += 1 }
                switch decision {
                case .switchoverCompleted: switchovers += 1
                case .failoverCompleted, .failoverWithoutPoll: failovers += 1
                case .fenced: fencings += 1
                case .switchoverTimedOut: switchoverTimeouts += 1
                case .fullSyncStarted: fullSyncsStarted += 1
                case .journalCompacted: journalCompactions += 1
                case .probingFork: forkProbes += 1
                case .collisionResolvedKeepingPeer, .collisionResolvedKeepingLocal: collisionResolutions += 1
                default: break
                }
            }
        }
    }

    var counters = Statistics()
    var random: SplitMix64
    var network: SimulatedNetwork<HAMessage>
    var servers: [SimulatedServer] = []
    /// The servers' ids, in the same order: looked up on every step (searching `servers` retained each).
    public let serverIDs: [ServerID]
    var inbox: [InboxEntry] = []
    /// A struct, not a tuple: an array of tuples is copied and destroyed through the runtime's generic
    /// tuple witnesses, a measurable share of the time.
    struct InboxEntry {
        var server: Int
        var input: HAInput
    }
    /// The messages due this tick (a buffer the network's wheel and this tick swap, with its capacity).
    var dueMessages: [Packet<HAMessage>] = []
    var draining = false
    /// The server that enabled writes in each epoch (a dictionary only for lookup, never for ordering).
    var writerOfEpoch: [Epoch: Int] = [:]
    /// Revisions acknowledged in sync mode that every non-forced promotion must keep.
    var syncAcknowledged: [(number: UInt64, hash: String, epoch: Epoch)] = []
    /// Acknowledgements of revisions older than the newest forced promotion are not promised to survive.
    var guaranteeFloorEpoch = Epoch.initial
    var highestEnabledEpoch = Epoch.initial
    /// Hashes of revisions that were durable at some point on the server that wrote them: it may have
    /// answered their publish, so no server may drop one without an export.
    var durableOnAuthor: Set<String> = []
    /// Per epoch, its first committed revision: the step (simulated real time, finer than a tick) and
    /// the writer's journal then. No publish of a lower epoch may be answered after that step.
    var firstWriteOfEpoch: [Epoch: (step: Int, journal: Journal)] = [:]
    /// Epochs entered by a forced promotion (which may lose what a partitioned active still answers).
    var forcedEpochs: [Epoch] = []
    /// The step at which each forced epoch took writes (its promotion).
    var forcedAtStep: [Epoch: Int] = [:]
    /// Epochs a forced promotion began (decided; their writes may come on only later, or after a restart).
    var promotedByForce: Set<Epoch> = []
    /// Forced epochs below one already taking writes elsewhere (the promoted server never heard of it):
    /// their side of the split the force made is the one fenced when the two meet, so what they
    /// acknowledge is not promised (the operator was told both sides may collide).
    var forcedBelowAnEnabledEpoch: Set<Epoch> = []
    /// What a server held when it committed a revision: writes since a step, whether it entered the
    /// epoch by promotion, and since when it had asked every peer before those writes came on (nil: it
    /// took them without asking).
    struct WritesHeld {
        var sinceStep: Int
        var newEpoch: Bool
        var askedPeersSinceStep: Int?
    }
    /// The epoch `bootstrap(active:)` created: its first writes are no promotion.
    var bootstrapEpoch: Epoch?
    /// Epochs entered by a failover without force (sync mode: the old active may still hold revisions
    /// no standby acknowledged, which collide when it comes back).
    var failoverEpochs: [Epoch] = []
    /// Every revision ever published, by hash (one table: three, one per fact, were a measurable share
    /// of the time).
    var published: [String: PublishedRevision] = [:]
    struct PublishedRevision {
        /// The hash of the one before it. Revisions are hash chained, so a journal holds a revision
        /// under its snapshot base exactly when the chain from the base reaches it: what the author
        /// wrote decides, never "unknown".
        var previousHash: String
        /// The journal on disk of whichever server holds it (the core's journal keeps none; the
        /// driver loads them before an append leaves).
        var payload: [UInt8]
        /// Its server's `writesHeld` when it was committed.
        var writesHeld: WritesHeld
    }

    /// The hash of the revision before the one with `hash` (nil: never published).
    func previousHash(of hash: String) -> String? { published[hash]?.previousHash }

    public init(
        servers ids: [ServerID], seed: UInt64, network profile: NetworkProfile = .perfect,
        tickMilliseconds: UInt64 = 10, limits: HALimits = HALimits()
    ) {
        precondition(ids.count >= 1 && ids == ids.sorted(), "servers are given sorted by name")
        self.seed = seed
        clock = SimulatedClock(tickMilliseconds: tickMilliseconds)
        random = SplitMix64(seed: seed)
        network = SimulatedNetwork(endpointCount: ids.count, profile: profile, corrupter: Self.corruptSnapshotChunk)
        serverIDs = ids
        servers = ids.enumerated().map { index, id in
            SimulatedServer(
                configuration: HAConfiguration(serverID: id, peers: ids.filter { $0 != id }, limits: limits),
                index: index, cluster: self)
        }
        for index in servers.indices { startCore(index) }
    }

    /// Damages a snapshot chunk in transit (one byte): its checksum must catch it. TLS would reject
    /// any other damaged message, so the network leaves them alone.
    static func corruptSnapshotChunk(_ message: inout HAMessage, _ random: inout SplitMix64) -> Bool {
        guard case .snapshotChunk(let head, let index, var bytes, let checksum) = message.body, !bytes.isEmpty else { return false }
        bytes[random.below(bytes.count)] ^= 0x5a
        message.body = .snapshotChunk(snapshotHead: head, index: index, bytes: bytes, checksum: checksum)
        return true
    }

    public var tick: Int { clock.tick }
    public var tickMilliseconds: UInt64 { clock.tickMilliseconds }
    public var nowMilliseconds: UInt64 { clock.nowMilliseconds }

    func index(of id: ServerID) -> Int {
        guard let index = serverIDs.firstIndex(of: id) else { preconditionFailure("no server \(id)") }
        return index
    }

    /// The highest epoch a running server is at (`Epoch.initial` with none): the schedule asks every tick.
    public func highestRunningEpoch() -> Epoch {
        var highest = Epoch.initial
        for index in servers.indices where servers[index].isUp {
            let epoch = servers[index].driver.core.summary.epoch
            if epoch > highest { highest = epoch }
        }
        return highest
    }

    /// The first server (in id order) taking writes at the highest running epoch, if any.
    public func writerAtHighestEpoch() -> ServerID? { writerIndexAtHighestEpoch().map { serverIDs[$0] } }

    /// `writerAtHighestEpoch()` as an index into `serverIDs`, in one pass (the schedule asks every tick).
    public func writerIndexAtHighestEpoch() -> Int? {
        var highest = Epoch.initial
        var writer: Int?
        for index in servers.indices where servers[index].isUp {
            let epoch = servers[index].driver.core.summary.epoch
            let writes = servers[index].runtime.writesEpoch != nil
            if epoch > highest {
                highest = epoch
                writer = writes ? index : nil
            } else if writer == nil, writes, epoch == highest {
                writer = index
            }
        }
        return writer
    }

    /// The core of a running server (nil while it is crashed).
    public func core(_ id: ServerID) -> HAStateMachine? {
        let server = servers[index(of: id)]
        return server.isUp ? server.driver.core : nil
    }
    /// A running server's epoch, role, writes and head (nil while down), without copying its core:
    /// the schedule asks on every tick.
    public func summary(_ id: ServerID) -> HASummary? {
        let server = servers[index(of: id)]
        return server.isUp ? server.driver.core.summary : nil
    }
    public func diskJournal(_ id: ServerID) -> Journal { servers[index(of: id)].runtime.diskJournal }
    public func exportedHashes(_ id: ServerID) -> Set<String> { servers[index(of: id)].runtime.exported }
    public func writesEnabled(_ id: ServerID) -> Bool { servers[index(of: id)].runtime.writesEpoch != nil }

    // MARK: - Setup and faults

    /// Makes `id` the group's first active (as installing the primary does), before any tick.
    public func bootstrap(active id: ServerID) {
        let index = index(of: id)
        let hardState = HAStateMachine.bootstrapActive(configuration: servers[index].configuration)
        servers[index].runtime.diskHardState = hardState
        bootstrapEpoch = hardState.epoch
        startCore(index)
    }

    func startCore(_ index: Int) {
        servers[index].start()
        network.restart(index)
        checkEpochNeverBackwards(index)
        noteAskingPeers(index)
    }

    /// An active that restarted in its epoch, or was promoted again after a pause, asks every peer
    /// before writes come back: since when (for the stale-answer invariant).
    func noteAskingPeers(_ index: Int) {
        let core = servers[index].driver.core
        if core.waitsForPeersToAnswer { servers[index].runtime.askingPeersSince = (core.epoch, steps) }
    }

    public func crash(_ id: ServerID, restartAfterTicks: Int? = nil) {
        let index = index(of: id)
        guard servers[index].isUp else { return }
        servers[index].isUp = false
        servers[index].runtime.crash()
        network.crash(index)
        servers[index].restartAtTick = restartAfterTicks.map { tick + $0 }
        counters.crashes += 1
        traceLine { "t=\(self.nowMilliseconds)ms \(id) CRASH (unpersisted writes lost)" }
    }

    public func restart(_ id: ServerID) {
        let index = index(of: id)
        guard !servers[index].isUp else { return }
        startCore(index)
        counters.restarts += 1
        traceLine {
            "t=\(self.nowMilliseconds)ms \(id) RESTART at epoch \(self.servers[index].driver.core.epoch), head \(self.servers[index].runtime.diskJournal.head)"
        }
        for other in servers.indices where other != index { reportNewConnection(index, other) }
    }

    /// Cuts both directions between two servers.
    public func partition(_ a: ServerID, _ b: ServerID) {
        network.partition(index(of: a), index(of: b))
        traceLine { "t=\(self.nowMilliseconds)ms NET cut \(a) -> \(b)" }
        traceLine { "t=\(self.nowMilliseconds)ms NET cut \(b) -> \(a)" }
    }

    /// Cuts one direction only: `from` can no longer reach `to`.
    public func cut(from: ServerID, to: ServerID) {
        network.cut(from: index(of: from), to: index(of: to))
        traceLine { "t=\(self.nowMilliseconds)ms NET cut \(from) -> \(to)" }
    }

    public func clog(from: ServerID, to: ServerID) {
        network.clog(from: index(of: from), to: index(of: to))
        traceLine { "t=\(self.nowMilliseconds)ms NET clog \(from) -> \(to)" }
    }

    public func isolate(_ id: ServerID) {
        network.isolate(index(of: id))
        traceLine { "t=\(self.nowMilliseconds)ms NET isolate \(id)" }
    }

    public func heal() {
        let restored = network.heal(at: tick, random: &random)
        traceLine { "t=\(self.nowMilliseconds)ms NET heal: every link up, held messages released" }
        for pair in restored { reportNewConnection(pair.a, pair.b) }
    }

    /// A new connection between two servers that are up and can reach each other: both runtimes
    /// report it to their core.
    func reportNewConnection(_ a: Int, _ b: Int) {
        guard servers[a].isUp, servers[b].isUp, !network.isCut(from: a, to: b), !network.isCut(from: b, to: a) else { return }
        deliver(a, .linkRestored(peer: servers[b].id))
        deliver(b, .linkRestored(peer: servers[a].id))
    }

    public func setNetworkProfile(_ profile: NetworkProfile) { network.profile = profile }

    // MARK: - Driving

    /// Publishes one revision on `id` if it takes writes; returns the revision number, or nil.
    @discardableResult
    public func publish(on id: ServerID) -> UInt64? {
        let index = index(of: id)
        let runtime = servers[index].runtime
        guard let epoch = runtime.writesEpoch, servers[index].isUp else { return nil }
        runtime.flushDisk()
        settleInbox()
        guard runtime.writesEpoch == epoch else { return nil }
        let head = servers[index].driver.core.journal.head
        let payload: [UInt8] = [UInt8(truncatingIfNeeded: head.number), UInt8(truncatingIfNeeded: random.next())]
        let revision = ReplicatedRevision(
            number: head.number + 1, epoch: epoch, previousHash: head.hash,
            hash: simulatedHash(previous: head.hash, epoch: epoch, number: head.number + 1, payload: payload),
            payload: payload)
        counters.publishes += 1
        // As the runtime: committed visibly, sent, and made durable afterwards (lost in a crash before).
        // In async mode the publish is answered once durable here; in sync mode by `publishAcknowledged`.
        switch servers[index].driver.core.summary.publishMode {
        case .async: runtime.awaitingDurableAnswer[revision.hash] = revision
        case .sync: runtime.awaitSyncAnswer(revision.number, committedMilliseconds: nowMilliseconds)
        }
        published[revision.hash] = PublishedRevision(
            previousHash: revision.previousHash, payload: payload,
            writesHeld: WritesHeld(
                sinceStep: runtime.writesHeld?.sinceStep ?? steps, newEpoch: runtime.writesHeld?.newEpoch ?? false,
                askedPeersSinceStep: runtime.askingPeersSince.flatMap { $0.epoch == epoch ? $0.step : nil }))
        deliver(index, .revisionCommitted(revision))
        if firstWriteOfEpoch[epoch] == nil { firstWriteOfEpoch[epoch] = (steps, servers[index].driver.core.journal) }
        runtime.queue(.applyRevisions([revision]))
        return revision.number
    }

    /// Runs an administrator command on `id`; returns the core's reason (nil while `id` is down).
    @discardableResult
    public func admin(_ command: AdminCommand, on id: ServerID) -> HAReason? {
        let index = index(of: id)
        guard servers[index].isUp else { return nil }
        return deliver(index, .admin(command))?.reason
    }

    /// Advances simulated time by one tick: disk completions, timers, then due messages.
    public func runTick() {
        clock.advance()
        for index in servers.indices {
            if let restartAt = servers[index].restartAtTick, restartAt <= tick, !servers[index].isUp {
                restart(servers[index].id)
            }
        }
        for index in servers.indices where servers[index].isUp { servers[index].runtime.completeDue() }
        settleInbox()
        let now = nowMilliseconds
        for index in servers.indices where servers[index].isUp {
            // A tick with no timer due only moves the clock: no output, nothing an invariant reads changes.
            if servers[index].driver.moveClockIfNoTimerDue(to: now) { continue }
            deliver(index, .tick(now: now))
        }
        network.takeDue(at: tick, into: &dueMessages)
        // By index: a copy of each packet, then of its message, was a measurable share of the time.
        for index in dueMessages.indices {
            deliver(dueMessages[index].to, .receive(from: serverIDs[dueMessages[index].from], message: dueMessages[index].message))
        }
        dueMessages.removeAll(keepingCapacity: true)
        checkSyncPublishesAnswered()
    }

    public func run(ticks: Int) {
        for _ in 0..<ticks where violation == nil { runTick() }
    }

    /// Feeds one input, carries out its output, checks every invariant, then does the same for the
    /// inputs that output caused (disk completions done at once, snapshot reads). Returns the output
    /// (whole: copying its reason out for every step was a measurable share of the time).
    @discardableResult
    func deliver(_ index: Int, _ input: HAInput) -> HAOutput? {
        precondition(!draining, "inputs caused by a step wait in the inbox")
        draining = true
        let output = stepAndApply(index, input)
        drainInbox()
        draining = false
        return output
    }

    func drainInbox() {
        var next = 0
        while next < inbox.count {
            let entry = inbox[next]
            next += 1
            if servers[entry.server].isUp { stepAndApply(entry.server, entry.input) }
        }
        inbox.removeAll(keepingCapacity: true)
    }

    /// Delivers inputs queued outside a step (disk completions on a tick, a flush before a publish).
    func settleInbox() {
        guard !draining, !inbox.isEmpty else { return }
        draining = true
        drainInbox()
        draining = false
    }

    /// An input a server's runtime reports (a disk completion, a snapshot read): stepped after the
    /// inputs before it, in order.
    func post(_ input: HAInput, to index: Int) { inbox.append(InboxEntry(server: index, input: input)) }

    /// One step of `index`'s driver (the runtime's own: persist, send, effects in order), then every
    /// invariant.
    @discardableResult
    func stepAndApply(_ index: Int, _ input: HAInput) -> HAOutput? {
        guard servers[index].isUp else { return nil }
        steps += 1
        let summaryChangesBefore = servers[index].driver.core.summaryChanges
        let writesSetsBefore = servers[index].runtime.writesEpochSets
        var completions: [HAInput] = []
        guard let output = servers[index].driver.step(input, completions: &completions) else { return nil }
        if case .decided(let decisions) = output.reason {
            observe(decisions, on: index)
            counters.count(decisions, effects: output.effects)
        }
        for completion in completions { post(completion, to: index) }
        // The invariants read this server's summary and writes (a peer's part changes in the peer's own
        // steps, which check it): a step that changed neither, as most heartbeats, cannot break one.
        if servers[index].driver.core.summaryChanges != summaryChangesBefore || servers[index].runtime.writesEpochSets != writesSetsBefore {
            checkInvariants(afterStepOf: index)
        }
        return output
    }

    /// Before a step's output is carried out: its trace line and log entries.
    func record(_ output: HAOutput, for input: HAInput, on index: Int) {
        if trace != nil { traceStep(index, input, output) }
        guard keepsLog else { return }
        if !output.reason.isTimersOnly { log.append((tick, servers[index].id, output.reason)) }
        for effect in output.effects { effectLog.append((tick, servers[index].id, effect)) }
    }

    /// A message from `index` onto the network.
    func send(_ envelope: Envelope, from index: Int) {
        counters.messagesSent += 1
        if case .append = envelope.message.body, case .append(_, let revisions, _) = envelope.message.body,
            let missing = revisions.first(where: { $0.payload.bytes == nil })
        {
            fail("an append leaves with every payload", "\(servers[index].id) sent #\(missing.number) to \(envelope.to) without its payload")
        }
        network.send(envelope.message, from: index, to: self.index(of: envelope.to), at: tick, random: &random)
    }

    // MARK: - What the runtimes report

    func enableWrites(_ index: Int, epoch: Epoch, forced: Bool, journal: Journal) {
        // An epoch a forced promotion began is forced, even when its writes first come on after a restart
        // (the core's enable-writes then says plain: the restarted core no longer knows).
        let forced = forced || promotedByForce.contains(epoch)
        let id = servers[index].id
        let runtime = servers[index].runtime
        if let writer = writerOfEpoch[epoch], writer != index {
            fail("at most one server takes writes per epoch", "\(id) enabled writes in \(epoch), where \(servers[writer].id) already did")
        }
        if epoch.server != id { fail("at most one server takes writes per epoch", "\(id) enabled writes in \(epoch), which belongs to \(epoch.server)") }
        let firstTime = writerOfEpoch[epoch] == nil
        writerOfEpoch[epoch] = index
        runtime.writesEpoch = epoch
        if runtime.writesHeld?.epoch != epoch { runtime.writesHeld = (epoch, steps, firstTime) }
        guard firstTime else { return }
        counters.promotions += 1
        if epoch == bootstrapEpoch { counters.firstStarts += 1 }
        if forced {
            counters.forcedPromotions += 1
            forcedEpochs.append(epoch)
            if forcedAtStep[epoch] == nil { forcedAtStep[epoch] = steps }
            if epoch < highestEnabledEpoch {
                forcedBelowAnEnabledEpoch.insert(epoch)
                counters.forcedBelowAnEnabledEpoch += 1
            }
            if epoch > guaranteeFloorEpoch {
                guaranteeFloorEpoch = epoch
                let kept = held(syncAcknowledged.map { RevisionHead(number: $0.number, hash: $0.hash) }, in: journal)
                syncAcknowledged = zip(syncAcknowledged, kept).filter(\.1).map(\.0)
            }
        } else if epoch >= guaranteeFloorEpoch, epoch >= highestEnabledEpoch {
            let kept = held(syncAcknowledged.map { RevisionHead(number: $0.number, hash: $0.hash) }, in: journal)
            for (acknowledged, isHeld) in zip(syncAcknowledged, kept) where !isHeld {
                fail(
                    "a revision acknowledged in sync mode survives every promotion that was not forced",
                    "\(id) became active in \(epoch) without #\(acknowledged.number) (acknowledged in \(acknowledged.epoch))")
            }
        }
        highestEnabledEpoch = max(highestEnabledEpoch, epoch)
    }

    /// A sync-mode publish was acknowledged by `index`: every unforced promotion must keep it.
    func syncAcknowledged(_ revision: ReplicatedRevision, by index: Int) {
        checkAnswerNotStale(revision, answeredBy: index)
        if revision.epoch >= guaranteeFloorEpoch, !forcedBelowAnEnabledEpoch.contains(revision.epoch) {
            syncAcknowledged.append((revision.number, revision.hash, revision.epoch))
        }
    }

    /// `revision` reached `index`'s disk: on its author, its publish may be answered from now on.
    func madeDurable(_ revision: ReplicatedRevision, on index: Int) {
        if revision.epoch.server == servers[index].id { durableOnAuthor.insert(revision.hash) }
    }

    /// A standby dropped `dropped` as revisions their author lost before its fsync (as its active said):
    /// none may be one its author held durably, unless the active still holds it (it comes back).
    func checkUnsyncedDiscard(_ dropped: [ReplicatedRevision], by index: Int, active: ServerID) {
        let activeServer = servers[self.index(of: active)]
        for revision in dropped where durableOnAuthor.contains(revision.hash) {
            if activeServer.isUp, activeServer.driver.core.journal.contains(revision.head) == true { continue }
            fail(
                "a revision its author held durably is never dropped without an export",
                "\(servers[index].id) dropped #\(revision.number) of \(revision.epoch) as unsynced, but \(revision.epoch.server) held it durably")
        }
    }

    // MARK: - Invariants

    /// Whether `journal` holds the revision `head`: by its hash where it holds it individually, and
    /// under its snapshot base by the hash chain from the base.
    func holds(_ journal: Journal, _ head: RevisionHead) -> Bool {
        if let held = journal.contains(head) { return held }
        return chain(from: journal.base, reaches: head)
    }

    /// The last revision of `journal` in an epoch lower than `epoch`.
    func lastHead(of journal: Journal, before epoch: Epoch) -> RevisionHead {
        guard let span = journal.spans.last(where: { $0.epoch < epoch }) else { return .empty }
        if let hash = journal.hash(at: span.lastNumber) { return RevisionHead(number: span.lastNumber, hash: hash) }
        // Under the snapshot base: follow the chain down from the base.
        var hash = journal.base.hash
        for _ in span.lastNumber..<journal.base.number { hash = previousHash(of: hash) ?? "" }
        return RevisionHead(number: span.lastNumber, hash: hash)
    }

    /// For each of `heads`, whether `journal` holds it (as `holds`), following the hash chain under
    /// the journal's base once for all of them (once per head was quadratic in the revisions acknowledged).
    func held(_ heads: [RevisionHead], in journal: Journal) -> [Bool] {
        let base = journal.base
        // The chain under the base, newest first: the hash at number `base.number - offset` is `chain[offset]`.
        var chain: [String] = []
        if let lowest = heads.lazy.filter({ journal.contains($0) == nil }).map(\.number).min(), lowest <= base.number {
            var hash = base.hash
            var number = base.number
            chain.append(hash)
            while number > lowest, let previous = previousHash(of: hash) {
                hash = previous
                number -= 1
                chain.append(hash)
            }
        }
        return heads.map { head in
            if let held = journal.contains(head) { return held }
            guard head.number <= base.number else { return false }
            let offset = Int(base.number - head.number)
            return offset < chain.count && chain[offset] == head.hash
        }
    }

    /// Whether the revision `head` is `from` or one of the revisions before it.
    func chain(from: RevisionHead, reaches head: RevisionHead) -> Bool {
        guard from.number >= head.number else { return false }
        var hash = from.hash
        var number = from.number
        while number > head.number {
            guard let previous = previousHash(of: hash) else { return false }
            hash = previous
            number -= 1
        }
        return hash == head.hash
    }

    /// Decisions the invariants follow: a completed switchover keeps everything the old active held
    /// durably; a collision needs a promotion that could split the group (forced, or a failover).
    func observe(_ decisions: [HADecision], on index: Int) {
        let server = servers[index]
        for decision in decisions {
            switch decision {
            case .switchoverCompleted(let previous, _, let epoch):
                // Revisions of a higher epoch than ours (a forced promotion of the old active during
                // the hand-over, which fences us) were never handed over.
                let oldDurable = lastHead(of: servers[self.index(of: previous)].runtime.diskJournal, before: epoch)
                if !holds(server.driver.core.journal, oldDurable) {
                    fail(
                        "a switchover keeps every revision the old active held durably",
                        "\(server.id) took over in \(epoch) at \(server.driver.core.journal.head) without \(previous)'s durable \(oldDurable)")
                }
            case .failoverCompleted(let epoch), .failoverWithoutPoll(let epoch):
                failoverEpochs.append(epoch)
            case .collisionWithActive(let active, _, let common):
                checkCollisionExplained(standby: index, core: server.driver.core, active: active, common: common)
            case .writesEnabledOncePeersAnswer(.promotedAgain, _, _):
                noteAskingPeers(index)
            case .forcedPromotion(let epoch, _, _), .forcedPromotionOfPausedActive(let epoch), .forcedPromotionDuringHandover(_, let epoch),
                .forcedPromotionOfRestartedActive(_, let epoch):
                promotedByForce.insert(epoch)
                if forcedAtStep[epoch] == nil { forcedAtStep[epoch] = steps }
            default:
                break
            }
        }
    }

    /// A collision means two servers wrote after the same revision: only a forced promotion or a
    /// failover (whose old active may hold what no standby acknowledged) lets that happen. One of
    /// them must lie between the older branch's term and the active's epoch.
    func checkCollisionExplained(standby index: Int, core: HAStateMachine, active: ServerID, common: UInt64) {
        let standbyBranch = core.journal.spans.first { $0.lastNumber > common }?.epoch ?? core.epoch
        let activeServer = servers[self.index(of: active)]
        let activeBranch =
            activeServer.isUp ? activeServer.driver.core.journal.spans.first { $0.lastNumber > common }?.epoch ?? core.epoch : core.epoch
        let since = min(standbyBranch, activeBranch)
        // From the term of the older branch on, not its epoch: a promotion by force to a sibling epoch
        // of the same term (5/B beside a switchover's 5/C) split the group as much as a later one.
        let explains = { (epoch: Epoch) in epoch.term >= since.term && epoch <= core.epoch }
        let explained = forcedEpochs.contains(where: explains) || failoverEpochs.contains(where: explains)
        if !explained {
            fail(
                "a collision needs a forced promotion or a failover to explain it",
                "\(servers[index].id) collides with \(active) after #\(common) (its branch from \(standbyBranch), the active's from \(activeBranch), now \(core.epoch)), but every promotion since \(since) was a switchover"
            )
        }
    }

    /// At convergence: every acknowledgement still guaranteed (given in sync mode, not superseded by
    /// a forced promotion) is in the final journal.
    public func checkAcknowledgementsKept() {
        guard let active = servers.first(where: { $0.isUp && $0.driver.core.writesEnabled }) else { return }
        let kept = held(syncAcknowledged.map { RevisionHead(number: $0.number, hash: $0.hash) }, in: active.driver.core.journal)
        for (acknowledged, isHeld) in zip(syncAcknowledged, kept) where !isHeld {
            fail(
                "every revision acknowledged in sync mode, and not given up by a forced promotion, is in the final journal",
                "#\(acknowledged.number) (acknowledged in \(acknowledged.epoch)) is not in \(active.id)'s journal (head \(active.driver.core.journal.head))")
            return
        }
    }

    func fail(_ invariant: String, _ detail: String) {
        guard violation == nil else { return }
        violation = SimulationViolation(seed: seed, tick: tick, invariant: invariant, detail: detail)
        traceLine { "t=\(self.nowMilliseconds)ms VIOLATION \(invariant): \(detail)" }
    }

    /// A publish waiting for a standby is answered, acknowledged or not, once the timeout of the mode
    /// it waits in has passed (timers run every `timerResolutionMilliseconds`; a change of mode counts
    /// from when it is seen): whatever else the server is doing (HA stopped, a hand-over, a forced
    /// promotion, no peer to hear from), an operator's publish never hangs.
    func checkSyncPublishesAnswered() {
        let now = nowMilliseconds
        for server in servers where server.isUp && !server.runtime.awaitingSyncAnswer.isEmpty {
            // The stored summary: the core's computed `publishMode` copied the whole core every tick.
            let mode = server.driver.core.summary.publishMode
            if server.runtime.waitingInMode?.mode != mode { server.runtime.waitingInMode = (mode, now) }
            let since = server.runtime.waitingInMode?.sinceMilliseconds ?? now
            let timeout: UInt64 = if case .sync(let timeout) = mode { timeout } else { 0 }
            let grace = server.configuration.limits.timerResolutionMilliseconds + tickMilliseconds
            // The oldest is the first one due: every one waits in the same mode since the same time.
            guard let oldest = server.runtime.awaitingSyncAnswer.first, max(oldest.committedMilliseconds + timeout, since) + grace < now
            else { continue }
            fail(
                "every sync-mode publish is answered (acknowledged or timed out) once its timeout has passed",
                "\(server.id)'s publish of #\(oldest.number), committed at \(oldest.committedMilliseconds) ms, has no answer at \(now) ms (\(mode), HA stopped: \(server.driver.core.hardState.haStopped))"
            )
            return
        }
    }

    func checkEpochNeverBackwards(_ index: Int) {
        guard servers[index].isUp else { return }
        let epoch = servers[index].driver.core.summary.epoch
        if epoch < servers[index].highestEpochSeen {
            fail("epochs never go backwards on a server", "\(servers[index].id) is at \(epoch) after \(servers[index].highestEpochSeen)")
        }
        servers[index].highestEpochSeen = max(servers[index].highestEpochSeen, epoch)
    }

    func checkInvariants(afterStepOf index: Int) {
        let server = servers[index]
        guard server.isUp else { return }
        checkEpochNeverBackwards(index)
        // Read the stored summary: calling the core's computed properties would copy the whole core.
        let summary = server.driver.core.summary
        if let writes = server.runtime.writesEpoch, writes != summary.epoch || !summary.writesEnabled {
            fail(
                "a server that saw a higher epoch never acts as active in a lower one",
                "\(server.id) takes writes in \(writes) but is at \(summary.epoch) (core writes enabled: \(summary.writesEnabled))")
        }
        if summary.followsActiveVerified { checkPrefix(standby: index) }
        if summary.role == .active {
            for other in servers.indices where other != index && servers[other].isUp && servers[other].driver.core.summary.followsActiveVerified {
                checkPrefix(standby: other)
            }
        }
    }

    /// No publish is answered after a higher epoch took its first write (judged in simulation steps),
    /// unless that epoch's writer held the revision then (nothing is lost), or a forced promotion
    /// split the group (into the answering server's epoch, or on the way to the higher one: the
    /// operator was told it may lose revisions) while the answering server, without a restart since,
    /// already held writes, or entered an epoch of its own it did not know was stale (the other side
    /// of that split), or had begun asking every peer (restarted in its epoch, or promoted again after
    /// a pause) before the force: the promoted server's "no higher epoch" was true when it answered.
    /// A server that began asking after a higher epoch was promoted is never excused: that epoch's
    /// server answers in it, and writes must stay off. Nor is an async answer given while a standby
    /// still believed in sync mode (it fails over without force).
    func checkAnswerNotStale(_ revision: ReplicatedRevision, answeredBy index: Int) {
        let now = steps
        for (epoch, first) in firstWriteOfEpoch where epoch > revision.epoch && first.step < now {
            if holds(first.journal, revision.head) { continue }
            let held = published[revision.hash]?.writesHeld ?? WritesHeld(sinceStep: .max, newEpoch: false)
            let forced = forcedEpochs.filter { $0 >= revision.epoch && $0 <= epoch }
            if !forced.isEmpty && (held.sinceStep < first.step || held.newEpoch) { continue }
            // Asking began before the force: the promoted server's "no higher epoch" was true when given.
            if let asked = held.askedPeersSinceStep, forced.contains(where: { asked < forcedAtStep[$0] ?? .min }) { continue }
            fail(
                "no publish is answered after a higher epoch has taken its first write",
                "\(servers[index].id) answered the publish of #\(revision.number) in \(revision.epoch) at step \(now), after \(epoch) first wrote at step \(first.step) without it"
            )
            return
        }
    }

    /// A standby that its active verified holds a prefix of the active's journal (same epoch).
    func checkPrefix(standby index: Int) {
        let standby = servers[index]
        let epoch = standby.driver.core.summary.epoch
        let active = servers[self.index(of: epoch.server)]
        guard active.isUp, active.driver.core.summary.role == .active, active.driver.core.summary.epoch == epoch else { return }
        let head = standby.driver.core.summary.head
        let activeHead = active.driver.core.summary.head
        if let checked = standby.prefixCheckedFor, checked.epoch == epoch, checked.head == head, checked.activeHead == activeHead { return }
        if !holds(active.driver.core.journal, head), let lost = firstRevisionNotLostByItsAuthor(in: standby.driver.core.journal, missingFrom: active) {
            fail(
                "a standby's journal is a prefix of its active's, but for revisions the active lost before their fsync",
                "\(standby.id) holds #\(lost.number) of \(lost.epoch), not in \(epoch.server)'s journal (head \(activeHead)) in \(epoch)")
        }
        standby.prefixCheckedFor = (epoch, head, activeHead)
    }

    /// Among a standby's revisions the active does not hold (its tail), the first one the active did not
    /// lose before its fsync: one of another epoch, or one that was durable on its author. Nil when the
    /// whole tail is the active's own unsynced loss (the standby drops it on its next hello).
    func firstRevisionNotLostByItsAuthor(in journal: Journal, missingFrom active: SimulatedServer) -> ReplicatedRevision? {
        for revision in journal.revisions.reversed() {
            if holds(active.driver.core.journal, revision.head) { return nil }
            if revision.epoch != active.driver.core.epoch || durableOnAuthor.contains(revision.hash) { return revision }
        }
        return nil
    }

    /// Installing a snapshot must not drop a revision it lacks unless exported, or the unsynced tail of
    /// an epoch the snapshot holds too (lost by its author before its fsync, never answered: what
    /// `discardUnsyncedTail` drops without an export). The snapshot's own chain decides what it holds
    /// (its source may have moved on, or compacted its journal past the standby's head).
    func checkSnapshotKeepsDurableRevisions(
        _ old: Journal, exported: Set<String>, on index: Int, snapshotHead: RevisionHead, snapshotSpans: [EpochSpan], source: ServerID
    ) {
        guard old.head.number > old.base.number, !chain(from: snapshotHead, reaches: old.head) else { return }
        let sameEpochs = Journal.commonPrefixNumber(old.spans, snapshotSpans)
        // The snapshot's hashes over the old journal's numbers, walking its chain back once.
        var inSnapshot: Set<String> = []
        var hash = snapshotHead.hash
        var number = snapshotHead.number
        while number > old.base.number, let previous = previousHash(of: hash) {
            if number <= old.head.number { inSnapshot.insert(hash) }
            hash = previous
            number -= 1
        }
        for revision in old.revisions where !exported.contains(revision.hash) && !inSnapshot.contains(revision.hash) {
            guard revision.number > sameEpochs || durableOnAuthor.contains(revision.hash) else { continue }
            fail(
                "divergent revisions are never deleted without an export",
                "\(servers[index].id) installed a snapshot at \(snapshotHead) over #\(revision.number) of \(revision.epoch), which is not in it\(revision.number > sameEpochs ? "" : " and was durable on its author")"
            )
            return
        }
    }

    // MARK: - Convergence (liveness)

    /// True when one server takes writes in the highest epoch and every other server is a verified
    /// standby of it holding exactly its journal, durably.
    /// (Read through stored summaries: a core copied out per server and tick was a measurable share
    /// of the liveness phase.)
    public var isConverged: Bool {
        var highest = Epoch.initial
        for server in servers {
            guard server.isUp else { return false }
            highest = max(highest, server.driver.core.summary.epoch)
        }
        let active = servers[index(of: highest.server)].driver.core.summary
        guard active.writesEnabled, active.epoch == highest else { return false }
        for server in servers where server.id != highest.server {
            let summary = server.driver.core.summary
            guard summary.epoch == highest, summary.followsActiveVerified, summary.head == active.head,
                server.driver.core.durableHead == summary.head, !server.driver.core.hardState.haStopped
            else { return false }
        }
        return true
    }

    // MARK: - Trace

    func traceLine(_ line: () -> String) {
        if let trace { trace(line()) }
    }

    func traceStep(_ index: Int, _ input: HAInput, _ output: HAOutput) {
        let id = servers[index].id
        let event: String
        switch input {
        case .tick:
            guard !output.messages.isEmpty || !output.effects.isEmpty || output.persist != nil else { return }
            event = "timers"
        case .receive(let from, let message): event = "<- \(from) \(message.kindName)[\(message.epoch)]"
        case .admin(let command): event = "ADMIN \(command)"
        case .revisionCommitted(let revision): event = "PUBLISH #\(revision.number)"
        case .persistedUpTo(let head): event = "persisted \(head)"
        case .snapshotChunkRead(let read): event = "chunk \(read.index)/\(read.chunkCount) read for \(read.standby)"
        case .snapshotChunkApplied(_, let chunk): event = "chunk \(chunk) applied"
        case .snapshotUnavailable(let standby, let head): event = "snapshot \(head) unavailable for \(standby)"
        case .linkRestored(let peer): event = "link to \(peer) restored"
        }
        var line = "t=\(nowMilliseconds)ms \(id) \(event): \(output.reason)"
        if output.persist != nil { line += " | persist" }
        if !output.messages.isEmpty { line += " | send " + output.messages.map { "\($0.message.kindName)->\($0.to)" }.joined(separator: ",") }
        for effect in output.effects { line += " | \(describe(effect))" }
        trace?(line)
    }

    func describe(_ effect: HAEffect) -> String {
        switch effect {
        case .enableWrites(let epoch, let forced): "enable-writes \(epoch)\(forced ? " (forced)" : "")"
        case .disableWrites: "disable-writes"
        case .applyRevisions(let revisions): "apply #\(revisions.first!.number)-#\(revisions.last!.number)"
        case .readSnapshotChunk(let standby, _, let chunk): "read-chunk \(chunk) for \(standby)"
        case .applySnapshotChunk(_, let chunk, _): "apply-chunk \(chunk)"
        case .completeFullSync(let head, _): "complete-full-sync \(head)"
        case .exportDivergent(let after, let revisions, let base):
            "export the divergent revisions after #\(after) (\(revisions.count) held by the core)\(base == nil ? "" : ", database backup if needed")"
        case .truncateJournal(let number): "truncate after #\(number)"
        case .discardUnsyncedRevisions(let number): "discard unsynced after #\(number)"
        case .publishAcknowledged(let number): "publish-acknowledged #\(number)"
        case .publishTimedOut(let number): "publish-timed-out #\(number)"
        case .statusChanged(let peer, let status): "status \(peer)=\(status)"
        case .promotionReport(let report): "report \(report.path.rawValue)"
        case .commandRefused(let refusal): "refused \(refusal)"
        }
    }
}

/// A broken invariant: the seed reproduces it.
public struct SimulationViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public var seed: UInt64
    public var tick: Int
    public var invariant: String
    public var detail: String

    public var description: String {
        "invariant violated: \(invariant) at tick \(tick) (seed \(seed)): \(detail) — replay with: rampart sim --seed \(seed) --trace"
    }
}

/// A deterministic fake hash: chained like SHA-256 in the product, short enough to stay a small string.
func simulatedHash(previous: String, epoch: Epoch, number: UInt64, payload: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    func mix(_ value: UInt64) {
        hash = (hash ^ value) &* 0x0000_0100_0000_01b3
        hash ^= hash >> 29
    }
    for byte in previous.utf8 { mix(UInt64(byte)) }
    mix(epoch.term)
    for byte in epoch.server.name.utf8 { mix(UInt64(byte)) }
    mix(number)
    for byte in payload { mix(UInt64(byte)) }
    // The low 60 bits as 15 hex digits, written straight into the (small) string: no array per hash.
    return String(unsafeUninitializedCapacity: 15) { text in
        for digit in 0..<15 {
            let nibble = UInt8(truncatingIfNeeded: hash >> UInt64(56 - 4 * digit)) & 0xf
            text[digit] = nibble < 10 ? 0x30 + nibble : 0x57 + nibble
        }
        return 15
    }
}
