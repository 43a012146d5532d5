import HACore

/// A whole HA group in simulated time: servers, disks, network, and the invariant checks that run after
/// every step. Scenario tests drive it by hand; `RandomSchedule` drives it with seeded faults.
public final class SimulatedCluster {
    public let seed: UInt64
    public let tickMilliseconds: UInt64
    public private(set) var tick = 0
    public private(set) var steps = 0
    public private(set) var violation: SimulationViolation?
    /// Every step's reason but the clock's and idle timers', in order. Kept only when `keepsLog` is on.
    public private(set) var log: [(tick: Int, server: ServerID, reason: HAReason)] = []
    public var keepsLog = false
    /// Every effect carried out, in order. Kept only when `keepsLog` is on.
    public private(set) var effectLog: [(tick: Int, server: ServerID, effect: HAEffect)] = []
    /// One line per event, when set.
    public var trace: ((String) -> Void)?
    public private(set) var statistics = Statistics()

    public struct Statistics: Hashable, Sendable {
        public var publishes = 0
        public var syncAcknowledged = 0
        public var syncTimedOut = 0
        public var forcedPromotions = 0
        public var promotions = 0
        public var fullSyncsCompleted = 0
        public var exports = 0
        public var crashes = 0
        public var messagesSent = 0
        public var collisions = 0
        /// Standbys that dropped revisions their active lost before its fsync.
        public var unsyncedDiscards = 0

        public init() {}

        public mutating func add(_ other: Statistics) {
            publishes += other.publishes
            syncAcknowledged += other.syncAcknowledged
            syncTimedOut += other.syncTimedOut
            forcedPromotions += other.forcedPromotions
            promotions += other.promotions
            fullSyncsCompleted += other.fullSyncsCompleted
            exports += other.exports
            crashes += other.crashes
            messagesSent += other.messagesSent
            collisions += other.collisions
            unsyncedDiscards += other.unsyncedDiscards
        }
    }

    var random: SplitMix64
    var network: SimulatedNetwork
    var servers: [SimulatedServer]
    var inbox: [(server: Int, input: HAInput)] = []
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
    /// Per published revision (by hash): its server's `writesHeld` when it was committed.
    var writesHeldAtCommit: [String: (sinceStep: Int, newEpoch: Bool)] = [:]

    public init(servers ids: [ServerID], seed: UInt64, network profile: NetworkProfile = .perfect,
                tickMilliseconds: UInt64 = 10, limits: HALimits = HALimits()) {
        precondition(ids.count >= 1 && ids == ids.sorted(), "servers are given sorted by name")
        self.seed = seed
        self.tickMilliseconds = tickMilliseconds
        random = SplitMix64(seed: seed)
        network = SimulatedNetwork(serverCount: ids.count, profile: profile)
        servers = ids.map { id in
            SimulatedServer(configuration: HAConfiguration(serverID: id, peers: ids.filter { $0 != id }, limits: limits))
        }
        for index in servers.indices { startCore(index) }
    }

    public var serverIDs: [ServerID] { servers.map(\.id) }
    public var nowMilliseconds: UInt64 { UInt64(tick) * tickMilliseconds }

    func index(of id: ServerID) -> Int {
        guard let index = servers.firstIndex(where: { $0.id == id }) else { preconditionFailure("no server \(id)") }
        return index
    }

    /// The core of a running server (nil while it is crashed).
    public func core(_ id: ServerID) -> HAStateMachine? {
        let server = servers[index(of: id)]
        return server.isUp ? server.core : nil
    }
    public func diskJournal(_ id: ServerID) -> Journal { servers[index(of: id)].diskJournal }
    public func exportedHashes(_ id: ServerID) -> Set<String> { servers[index(of: id)].exported }
    public func writesEnabled(_ id: ServerID) -> Bool { servers[index(of: id)].writesEpoch != nil }

    // MARK: - Setup and faults

    /// Makes `id` the group's first active (as installing the primary does), before any tick.
    public func bootstrap(active id: ServerID) {
        let index = index(of: id)
        servers[index].diskHardState = HAStateMachine.bootstrapActive(configuration: servers[index].configuration)
        startCore(index)
    }

    func startCore(_ index: Int) {
        let server = servers[index]
        server.core = HAStateMachine(configuration: server.configuration, hardState: server.diskHardState, journal: server.diskJournal)
        server.isUp = true
        server.restartAtTick = nil
        checkEpochNeverBackwards(index)
    }

    public func crash(_ id: ServerID, restartAfterTicks: Int? = nil) {
        let index = index(of: id)
        guard servers[index].isUp else { return }
        servers[index].isUp = false
        servers[index].diskQueue = []
        servers[index].builtSnapshots = []
        servers[index].writesEpoch = nil
        servers[index].writesHeld = nil
        servers[index].awaitingDurableAnswer = [:]
        servers[index].incarnation += 1
        servers[index].restartAtTick = restartAfterTicks.map { tick + $0 }
        statistics.crashes += 1
        traceLine { "t=\(self.nowMilliseconds)ms \(id) CRASH (unpersisted writes lost)" }
    }

    public func restart(_ id: ServerID) {
        let index = index(of: id)
        guard !servers[index].isUp else { return }
        startCore(index)
        traceLine { "t=\(self.nowMilliseconds)ms \(id) RESTART at epoch \(self.servers[index].core.epoch), head \(self.servers[index].diskJournal.head)" }
        for other in servers.indices where other != index { reportNewConnection(index, other) }
    }

    /// Cuts both directions between two servers.
    public func partition(_ a: ServerID, _ b: ServerID) {
        cut(from: a, to: b)
        cut(from: b, to: a)
    }

    /// Cuts one direction only: `from` can no longer reach `to`.
    public func cut(from: ServerID, to: ServerID) {
        network.dropping[network.link(index(of: from), index(of: to))] = true
        traceLine { "t=\(self.nowMilliseconds)ms NET cut \(from) -> \(to)" }
    }

    public func clog(from: ServerID, to: ServerID) {
        network.clogged[network.link(index(of: from), index(of: to))] = true
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
        guard servers[a].isUp, servers[b].isUp, !network.dropping[network.link(a, b)], !network.dropping[network.link(b, a)] else { return }
        deliver(a, .linkRestored(peer: servers[b].id))
        deliver(b, .linkRestored(peer: servers[a].id))
    }

    public func setNetworkProfile(_ profile: NetworkProfile) { network.profile = profile }

    // MARK: - Driving

    /// Publishes one revision on `id` if it takes writes; returns the revision number, or nil.
    @discardableResult
    public func publish(on id: ServerID) -> UInt64? {
        let index = index(of: id)
        guard let epoch = servers[index].writesEpoch, servers[index].isUp else { return nil }
        flushDisk(index)
        settleInbox()
        guard servers[index].writesEpoch == epoch else { return nil }
        let head = servers[index].core.journal.head
        let payload: [UInt8] = [UInt8(truncatingIfNeeded: head.number), UInt8(truncatingIfNeeded: random.next())]
        let revision = ReplicatedRevision(number: head.number + 1, epoch: epoch, previousHash: head.hash,
                                          hash: simulatedHash(previous: head.hash, epoch: epoch, number: head.number + 1, payload: payload),
                                          payload: payload)
        statistics.publishes += 1
        // As the runtime: committed visibly, sent, and made durable afterwards (lost in a crash before).
        // In async mode the publish is answered once durable here; in sync mode by `publishAcknowledged`.
        if case .async = servers[index].core.publishMode { servers[index].awaitingDurableAnswer[revision.hash] = revision }
        writesHeldAtCommit[revision.hash] = servers[index].writesHeld.map { ($0.sinceStep, $0.newEpoch) } ?? (steps, false)
        deliver(index, .revisionCommitted(revision))
        if firstWriteOfEpoch[epoch] == nil { firstWriteOfEpoch[epoch] = (steps, servers[index].core.journal) }
        servers[index].diskQueue.append((tick + random.below(3), .applyRevisions([revision])))
        return revision.number
    }

    /// Runs an administrator command on `id`; returns the core's reason (nil while `id` is down).
    @discardableResult
    public func admin(_ command: AdminCommand, on id: ServerID) -> HAReason? {
        let index = index(of: id)
        guard servers[index].isUp else { return nil }
        return deliver(index, .admin(command))
    }

    /// Advances simulated time by one tick: disk completions, timers, then due messages.
    public func runTick() {
        tick += 1
        for index in servers.indices {
            if let restartAt = servers[index].restartAtTick, restartAt <= tick, !servers[index].isUp {
                restart(servers[index].id)
            }
        }
        for index in servers.indices where servers[index].isUp { completeDiskOperations(index) }
        settleInbox()
        let now = nowMilliseconds
        for index in servers.indices where servers[index].isUp { deliver(index, .tick(now: now)) }
        for packet in network.takeDue(at: tick) where servers[packet.to].isUp && servers[packet.to].incarnation == packet.toIncarnation {
            deliver(packet.to, .receive(from: servers[packet.from].id, message: packet.message))
        }
    }

    public func run(ticks: Int) {
        for _ in 0..<ticks where violation == nil { runTick() }
    }

    /// Feeds one input, carries out its output, checks every invariant, then does the same for the
    /// inputs that output caused (disk completions done at once, snapshot reads). Returns the reason.
    @discardableResult
    func deliver(_ index: Int, _ input: HAInput) -> HAReason? {
        precondition(!draining, "inputs caused by a step wait in the inbox")
        draining = true
        let reason = stepAndApply(index, input)
        drainInbox()
        draining = false
        return reason
    }

    func drainInbox() {
        var next = 0
        while next < inbox.count {
            let (server, follow) = inbox[next]
            next += 1
            if servers[server].isUp { stepAndApply(server, follow) }
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

    @discardableResult
    func stepAndApply(_ index: Int, _ input: HAInput) -> HAReason? {
        guard servers[index].isUp else { return nil }
        steps += 1
        let output = servers[index].core.step(input)
        if trace != nil { traceStep(index, input, output) }
        if keepsLog, !output.reason.isTimersOnly {
            log.append((tick, servers[index].id, output.reason))
        }
        if let hardState = output.persist { servers[index].diskHardState = hardState }
        for envelope in output.messages {
            statistics.messagesSent += 1
            let receiver = self.index(of: envelope.to)
            network.send(Packet(from: index, to: receiver, message: envelope.message, toIncarnation: servers[receiver].incarnation),
                         at: tick, random: &random)
        }
        for effect in output.effects {
            if keepsLog { effectLog.append((tick, servers[index].id, effect)) }
            carryOut(effect, on: index)
        }
        checkInvariants(afterStepOf: index)
        return output.reason
    }

    // MARK: - Effects (the simulated runtime)

    func carryOut(_ effect: HAEffect, on index: Int) {
        switch effect {
        case .enableWrites(let epoch, let forced): enableWrites(index, epoch: epoch, forced: forced)
        case .disableWrites: servers[index].writesEpoch = nil
        case .applyRevisions(let revisions):
            servers[index].diskQueue.append((tick + random.below(3), .applyRevisions(revisions)))
        case .readSnapshotChunk(let standby, let snapshotHead, let chunk):
            guard snapshotAvailable(index, snapshotHead) else {
                inbox.append((index, .snapshotUnavailable(standby: standby, snapshotHead: snapshotHead)))
                return
            }
            let chunkCount = 1 + Int(snapshotHead.number / 16)
            let bytes = Array(simulatedHash(previous: snapshotHead.hash, epoch: .initial, number: UInt64(chunk), payload: []).utf8)
            inbox.append((index, .snapshotChunkRead(SnapshotChunkRead(standby: standby, snapshotHead: snapshotHead, index: chunk, chunkCount: chunkCount, bytes: bytes))))
        case .applySnapshotChunk(let snapshotHead, let chunk, _):
            servers[index].diskQueue.append((tick + random.below(3), .stageSnapshotChunk(snapshotHead: snapshotHead, index: chunk)))
        case .completeFullSync(let snapshotHead, let spans):
            let source = servers[index].core.epoch.server
            servers[index].diskQueue.append((tick + random.below(3), .installSnapshot(snapshotHead: snapshotHead, spans: spans, source: source)))
        case .exportDivergent(let revisions, let snapshotBase):
            for revision in revisions { servers[index].exported.insert(revision.hash) }
            if let snapshotBase { servers[index].exported.insert(snapshotBase.hash) }
            statistics.exports += 1
        case .truncateJournal(let number):
            flushDisk(index)
            let base = servers[index].diskJournal.base
            if number < base.number, !servers[index].exported.contains(base.hash) {
                fail("divergent revisions are never deleted without an export", "\(servers[index].id) dropped its snapshot at \(base) without a backup")
            }
            let removed = servers[index].diskJournal.truncate(after: number)
            for revision in removed where !servers[index].exported.contains(revision.hash) {
                fail("divergent revisions are never deleted without an export", "\(servers[index].id) dropped #\(revision.number) without exporting it")
            }
        case .discardUnsyncedRevisions(let number):
            statistics.unsyncedDiscards += 1
            flushDisk(index)
            let author = servers[self.index(of: servers[index].core.epoch.server)]
            for revision in servers[index].diskJournal.truncate(after: number) where durableOnAuthor.contains(revision.hash) {
                if author.isUp, author.core.journal.contains(revision.head) == true { continue }  // it comes back
                fail("a revision its author held durably is never dropped without an export",
                     "\(servers[index].id) dropped #\(revision.number) of \(revision.epoch) as unsynced, but \(revision.epoch.server) held it durably")
            }
        case .publishAcknowledged(let number):
            statistics.syncAcknowledged += 1
            let journal = servers[index].core.journal
            if let revision = journal.revisions(after: number - 1, limit: 1).first {
                checkAnswerNotStale(revision, answeredBy: index)
                if revision.epoch >= guaranteeFloorEpoch { syncAcknowledged.append((number, revision.hash, revision.epoch)) }
            }
        case .publishTimedOut: statistics.syncTimedOut += 1
        case .statusChanged(_, let status):
            if case .collision = status { statistics.collisions += 1 }
        case .promotionReport, .commandRefused: break
        }
    }

    func enableWrites(_ index: Int, epoch: Epoch, forced: Bool) {
        let id = servers[index].id
        if let writer = writerOfEpoch[epoch], writer != index {
            fail("at most one server takes writes per epoch", "\(id) enabled writes in \(epoch), where \(servers[writer].id) already did")
        }
        if epoch.server != id { fail("at most one server takes writes per epoch", "\(id) enabled writes in \(epoch), which belongs to \(epoch.server)") }
        let firstTime = writerOfEpoch[epoch] == nil
        writerOfEpoch[epoch] = index
        servers[index].writesEpoch = epoch
        if servers[index].writesHeld?.epoch != epoch { servers[index].writesHeld = (epoch, steps, firstTime) }
        guard firstTime else { return }
        statistics.promotions += 1
        let journal = servers[index].core.journal
        if forced {
            statistics.forcedPromotions += 1
            forcedEpochs.append(epoch)
            if epoch > guaranteeFloorEpoch {
                guaranteeFloorEpoch = epoch
                syncAcknowledged.removeAll { journal.contains(RevisionHead(number: $0.number, hash: $0.hash)) != true }
            }
        } else if epoch >= guaranteeFloorEpoch, epoch >= highestEnabledEpoch {
            for acknowledged in syncAcknowledged where journal.contains(RevisionHead(number: acknowledged.number, hash: acknowledged.hash)) == false {
                fail("a revision acknowledged in sync mode survives every promotion that was not forced",
                     "\(id) became active in \(epoch) without #\(acknowledged.number) (acknowledged in \(acknowledged.epoch))")
            }
        }
        highestEnabledEpoch = max(highestEnabledEpoch, epoch)
    }

    func completeDiskOperations(_ index: Int) {
        while let first = servers[index].diskQueue.first, first.dueTick <= tick {
            servers[index].diskQueue.removeFirst()
            perform(first.operation, on: index)
        }
    }

    /// Completes every pending disk write now (the runtime executes effects in order).
    func flushDisk(_ index: Int) {
        let operations = servers[index].diskQueue
        servers[index].diskQueue = []
        for (_, operation) in operations { perform(operation, on: index) }
    }

    func perform(_ operation: DiskOperation, on index: Int) {
        switch operation {
        case .applyRevisions(let revisions):
            for revision in revisions {
                servers[index].diskJournal.append(revision)
                if revision.epoch.server == servers[index].id { durableOnAuthor.insert(revision.hash) }
                if servers[index].awaitingDurableAnswer.removeValue(forKey: revision.hash) != nil {
                    checkAnswerNotStale(revision, answeredBy: index)
                }
            }
            inbox.append((index, .persistedUpTo(servers[index].diskJournal.head)))
        case .stageSnapshotChunk(let snapshotHead, let chunk):
            inbox.append((index, .snapshotChunkApplied(snapshotHead: snapshotHead, index: chunk)))
        case .installSnapshot(let snapshotHead, let spans, let source):
            checkSnapshotKeepsDurableRevisions(index, snapshotHead: snapshotHead, source: source)
            servers[index].diskJournal.installSnapshot(at: snapshotHead, spans: spans)
            statistics.fullSyncsCompleted += 1
            inbox.append((index, .persistedUpTo(snapshotHead)))
        }
    }

    // MARK: - Invariants

    func fail(_ invariant: String, _ detail: String) {
        guard violation == nil else { return }
        violation = SimulationViolation(seed: seed, tick: tick, invariant: invariant, detail: detail)
        traceLine { "t=\(self.nowMilliseconds)ms VIOLATION \(invariant): \(detail)" }
    }

    func checkEpochNeverBackwards(_ index: Int) {
        guard servers[index].isUp else { return }
        let epoch = servers[index].core.summary.epoch
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
        let summary = server.core.summary
        if let writes = server.writesEpoch, writes != summary.epoch || !summary.writesEnabled {
            fail("a server that saw a higher epoch never acts as active in a lower one",
                 "\(server.id) takes writes in \(writes) but is at \(summary.epoch) (core writes enabled: \(summary.writesEnabled))")
        }
        if summary.followsActiveVerified { checkPrefix(standby: index) }
        if summary.role == .active {
            for other in servers.indices where other != index && servers[other].isUp && servers[other].core.summary.followsActiveVerified {
                checkPrefix(standby: other)
            }
        }
    }

    /// No publish is answered after a higher epoch took its first write (judged in simulation steps),
    /// unless that epoch's writer held the revision then (nothing is lost), or a forced promotion
    /// split the group (into the answering server's epoch, or on the way to the higher one: the
    /// operator was told it may lose revisions) while the answering server, without a restart since,
    /// already held writes, or entered an epoch of its own it did not know was stale (the other side
    /// of that split). A server that restarted and takes writes again in an epoch it held, after a
    /// higher one wrote, is never excused: it must hear from every peer. Nor is an async answer given
    /// while a standby still believed in sync mode (it fails over without force).
    func checkAnswerNotStale(_ revision: ReplicatedRevision, answeredBy index: Int) {
        let now = steps
        for (epoch, first) in firstWriteOfEpoch where epoch > revision.epoch && first.step < now {
            if first.journal.contains(revision.head) == true { continue }
            let held = writesHeldAtCommit[revision.hash] ?? (sinceStep: .max, newEpoch: false)
            let forced = forcedEpochs.contains { $0 >= revision.epoch && $0 <= epoch }
            if forced && (held.sinceStep < first.step || held.newEpoch) { continue }
            fail("no publish is answered after a higher epoch has taken its first write",
                 "\(servers[index].id) answered the publish of #\(revision.number) in \(revision.epoch) at step \(now), after \(epoch) first wrote at step \(first.step) without it")
            return
        }
    }

    /// A standby that its active verified holds a prefix of the active's journal (same epoch).
    func checkPrefix(standby index: Int) {
        let standby = servers[index]
        let epoch = standby.core.summary.epoch
        let active = servers[self.index(of: epoch.server)]
        guard active.isUp, active.core.summary.role == .active, active.core.summary.epoch == epoch else { return }
        let head = standby.core.summary.head
        let activeHead = active.core.summary.head
        if let checked = standby.prefixCheckedFor, checked.epoch == epoch, checked.head == head, checked.activeHead == activeHead { return }
        if active.core.journal.contains(head) == false, let lost = firstRevisionNotLostByItsAuthor(in: standby.core.journal, missingFrom: active) {
            fail("a standby's journal is a prefix of its active's, but for revisions the active lost before their fsync",
                 "\(standby.id) holds #\(lost.number) of \(lost.epoch), not in \(epoch.server)'s journal (head \(activeHead)) in \(epoch)")
        }
        standby.prefixCheckedFor = (epoch, head, activeHead)
    }

    /// Among a standby's revisions the active does not hold (its tail), the first one the active did not
    /// lose before its fsync: one of another epoch, or one that was durable on its author. Nil when the
    /// whole tail is the active's own unsynced loss (the standby drops it on its next hello).
    func firstRevisionNotLostByItsAuthor(in journal: Journal, missingFrom active: SimulatedServer) -> ReplicatedRevision? {
        for revision in journal.revisions.reversed() {
            if active.core.journal.contains(revision.head) != false { return nil }
            if revision.epoch != active.core.epoch || durableOnAuthor.contains(revision.hash) { return revision }
        }
        return nil
    }

    /// Whether the runtime can read a snapshot at `head`: built already, or buildable now (the head).
    func snapshotAvailable(_ index: Int, _ head: RevisionHead) -> Bool {
        let server = servers[index]
        if server.builtSnapshots.contains(head) { return true }
        // As the runtime, which builds one only at its head, where every commit is synced already.
        guard head == server.core.journal.head, head == server.diskJournal.head else { return false }
        server.builtSnapshots.append(head)
        if server.builtSnapshots.count > SimulatedServer.snapshotsKeptMax { server.builtSnapshots.removeFirst() }
        return true
    }

    /// Installing a snapshot must not drop durable revisions unless they are in the snapshot or exported.
    func checkSnapshotKeepsDurableRevisions(_ index: Int, snapshotHead: RevisionHead, source: ServerID) {
        let old = servers[index].diskJournal
        guard old.head.number > old.base.number else { return }
        let sourceServer = servers[self.index(of: source)]
        let sourceJournal = sourceServer.isUp ? sourceServer.core.journal : sourceServer.diskJournal
        let covered = old.head.number <= snapshotHead.number && sourceJournal.contains(old.head) != false
        if !covered {
            for revision in old.revisions where !servers[index].exported.contains(revision.hash) {
                fail("divergent revisions are never deleted without an export",
                     "\(servers[index].id) installed a snapshot at \(snapshotHead) over #\(revision.number), which is not in it")
                return
            }
        }
    }

    // MARK: - Convergence (liveness)

    /// True when one server takes writes in the highest epoch and every other server is a verified
    /// standby of it holding exactly its journal, durably.
    public var isConverged: Bool {
        var highest = Epoch.initial
        for server in servers {
            guard server.isUp else { return false }
            highest = max(highest, server.core.epoch)
        }
        let active = servers[index(of: highest.server)]
        guard active.core.writesEnabled, active.core.epoch == highest else { return false }
        for server in servers where server !== active {
            guard server.core.epoch == highest, server.core.followsActiveVerified, server.core.journal.head == active.core.journal.head,
                  server.core.durableHead == server.core.journal.head, !server.core.hardState.haStopped else { return false }
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
        case .exportDivergent(let revisions, let base): "export \(revisions.count) divergent\(base == nil ? "" : " + database backup")"
        case .truncateJournal(let number): "truncate after #\(number)"
        case .discardUnsyncedRevisions(let number): "discard unsynced after #\(number)"
        case .publishAcknowledged(let number): "publish-acknowledged #\(number)"
        case .publishTimedOut(let number): "publish-timed-out #\(number)"
        case .statusChanged(let peer, let status): "status \(peer)=\(status)"
        case .promotionReport(let report): "report \(report.path.rawValue)"
        case .commandRefused(let code): "refused \(code)"
        }
    }
}
