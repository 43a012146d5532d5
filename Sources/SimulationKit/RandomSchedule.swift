import HACore

/// What one seeded run does. The seed alone decides everything else (swarm testing: every seed also
/// draws its own fault rates, as TigerBeetle's VOPR does).
public struct SimulationOptions: Hashable, Sendable {
    public var seed: UInt64
    public var serverCount: Int
    /// Ticks with faults (safety phase).
    public var faultTicks: Int
    /// After the faults heal, the group must converge within this many ticks (liveness phase).
    public var livenessTicksMax: Int
    public var tickMilliseconds: UInt64
    public var faultsEnabled: Bool

    public init(
        seed: UInt64, serverCount: Int = 3, faultTicks: Int = 2_000, livenessTicksMax: Int = 2_000,
        tickMilliseconds: UInt64 = 10, faultsEnabled: Bool = true
    ) {
        precondition((1...8).contains(serverCount), "1 to 8 servers")
        self.seed = seed
        self.serverCount = serverCount
        self.faultTicks = faultTicks
        self.livenessTicksMax = livenessTicksMax
        self.tickMilliseconds = tickMilliseconds
        self.faultsEnabled = faultsEnabled
    }
}

/// Per-tick probabilities (per million) of the seed's faults and workload.
public struct FaultProfile: Hashable, Sendable, CustomStringConvertible {
    public var description: String {
        "delay<=\(network.delayTicksMax) ticks, long delays \(network.longDelayPerMillion)ppm, drop \(network.dropPerMillion)ppm, duplicate \(network.duplicatePerMillion)ppm, corrupt chunks \(network.corruptPerMillion)ppm; per tick: partition \(partitionPerMillion)ppm, heal \(healPerMillion)ppm, crash \(crashPerMillion)ppm (restart within \(restartTicksMax) ticks), publish \(publishPerMillion)ppm, admin command \(adminPerMillion)ppm (forced promotions \(forcedPromotionPerMillion)ppm of promotions); drills: isolate the active and promote \(isolateActivePerMillion)ppm, switchover \(switchoverDrillPerMillion)ppm, demote and promote \(pauseDrillPerMillion)ppm, restart the active and promote \(restartDrillPerMillion)ppm; \(startsInSyncMode ? "starts in sync mode" : "starts in async mode"); the core holds \(journalRevisionsHeldMax) revisions"
    }

    public var network: NetworkProfile
    public var partitionPerMillion: Int
    public var healPerMillion: Int
    public var crashPerMillion: Int
    public var restartTicksMax: Int
    public var publishPerMillion: Int
    public var adminPerMillion: Int
    public var forcedPromotionPerMillion: Int
    /// Drills (per tick): the rare paths of `ha promote` on purpose. Isolate the server taking writes,
    /// then promote a standby plainly once it noticed (a failover: polled in sync mode, refused in async).
    public var isolateActivePerMillion: Int
    /// Promote a standby plainly, then the active a few ticks later, during its hand-over.
    public var switchoverDrillPerMillion: Int
    /// Demote the active, then promote it again.
    public var pauseDrillPerMillion: Int
    /// Crash the active, then promote it right after its restart (before its peers answered).
    public var restartDrillPerMillion: Int
    /// The group is set to sync mode at its start (and mode changes lean to sync).
    public var startsInSyncMode: Bool
    /// Revisions each server's core holds before it compacts its journal: small in half the seeds, so
    /// that standbys fall behind a compacted base and divergences reach under it.
    public var journalRevisionsHeldMax = HALimits().journalRevisionsHeldMax

    /// Draws the compaction limit from a stream of its own (`seed` mixed), so that every other draw of a
    /// seed is what it was before the limit was drawn.
    public mutating func drawCompaction(seed: UInt64) {
        var random = SplitMix64(seed: seed ^ 0x6a09_e667_f3bc_c908)
        if random.chance(perMillion: 500_000) { journalRevisionsHeldMax = random.int(in: 2...48) }
    }

    /// Draws a profile from the seed's generator (swarm testing): each fault is on in some seeds
    /// only, each at its own rate, and so is each drill.
    public static func draw(_ random: inout SplitMix64) -> FaultProfile {
        func some(_ range: ClosedRange<Int>, onPerMillion: Int = 700_000) -> Int {
            random.chance(perMillion: onPerMillion) ? random.int(in: range) : 0
        }
        let network = NetworkProfile(
            delayTicksMax: random.int(in: 1...12),
            longDelayPerMillion: some(0...20_000),
            dropPerMillion: some(0...150_000),
            duplicatePerMillion: some(0...50_000),
            corruptPerMillion: some(0...100_000))
        return FaultProfile(
            network: network,
            partitionPerMillion: some(0...8_000),
            healPerMillion: random.int(in: 1_000...10_000),
            crashPerMillion: some(0...3_000),
            restartTicksMax: random.int(in: 10...400),
            publishPerMillion: random.int(in: 5_000...120_000),
            adminPerMillion: some(0...8_000, onPerMillion: 800_000),
            forcedPromotionPerMillion: random.int(in: 0...300_000),
            isolateActivePerMillion: some(1_000...5_000, onPerMillion: 400_000),
            switchoverDrillPerMillion: some(1_000...5_000, onPerMillion: 400_000),
            pauseDrillPerMillion: some(1_000...5_000, onPerMillion: 400_000),
            restartDrillPerMillion: some(500...3_000, onPerMillion: 400_000),
            startsInSyncMode: random.chance(perMillion: 400_000))
    }
}

/// The outcome of one seeded run.
public struct SimulationResult: Hashable, Sendable {
    public var seed: UInt64
    public var ticks: Int
    public var steps: Int
    /// Ticks after the heal until the group converged; nil when it did not (or a safety invariant broke first).
    public var convergedAfterTicks: Int?
    public var violation: SimulationViolation?
    public var statistics: SimulatedCluster.Statistics
}

/// Drives a `SimulatedCluster` with seeded faults, then heals and checks convergence.
public struct RandomSchedule {
    public let options: SimulationOptions
    public let profile: FaultProfile
    public let cluster: SimulatedCluster
    var random: SplitMix64
    let ids: [ServerID]
    /// Drills' second halves, due at a tick: an administrator command on a server.
    var followUps: [(tick: Int, command: AdminCommand, on: ServerID)] = []

    public init(options: SimulationOptions, trace: ((String) -> Void)? = nil) {
        self.options = options
        var random = SplitMix64(seed: options.seed)
        var profile = FaultProfile.draw(&random)
        profile.drawCompaction(seed: options.seed)
        self.profile = profile
        self.random = random
        ids = (0..<options.serverCount).map { ServerID(String(UnicodeScalar(UInt8(65 + $0)))) }
        var limits = HALimits()
        limits.journalRevisionsHeldMax = profile.journalRevisionsHeldMax
        cluster = SimulatedCluster(
            servers: ids, seed: options.seed ^ 0x5bd1_e995,
            network: options.faultsEnabled ? profile.network : .perfect,
            tickMilliseconds: options.tickMilliseconds, limits: limits)
        cluster.trace = trace
        if let trace { trace("seed \(options.seed): \(options.serverCount) servers, \(options.faultTicks) fault ticks, profile \(profile)") }
        cluster.bootstrap(active: ids[0])
        if profile.startsInSyncMode { cluster.admin(.setReplicationMode(.sync(timeoutMilliseconds: 2_000)), on: ids[0]) }
    }

    public static func run(_ options: SimulationOptions, trace: ((String) -> Void)? = nil) -> SimulationResult {
        var schedule = RandomSchedule(options: options, trace: trace)
        return schedule.run()
    }

    public mutating func run() -> SimulationResult {
        for _ in 0..<options.faultTicks where cluster.violation == nil {
            if options.faultsEnabled {
                injectFaults()
                drills()
            }
            workload()
            cluster.runTick()
        }
        var converged: Int?
        if cluster.violation == nil { converged = liveness() }
        if cluster.violation == nil, converged == nil {
            cluster.fail("after the faults heal, every server converges", "not converged \(options.livenessTicksMax) ticks after the heal: \(describeState())")
        }
        var violation = cluster.violation
        violation?.seed = options.seed
        return SimulationResult(
            seed: options.seed, ticks: cluster.tick, steps: cluster.steps,
            convergedAfterTicks: converged, violation: violation, statistics: cluster.statistics)
    }

    func pick<T>(_ items: [T], _ random: inout SplitMix64) -> T { items[random.below(items.count)] }

    /// `pick(items, excluding: items[excluded])` for items without repeats, the same draw, without
    /// comparing a single name (this runs every tick).
    func pick(_ items: [ServerID], excludingIndex excluded: Int, _ random: inout SplitMix64) -> ServerID {
        let drawn = random.below(items.count - 1)
        return items[drawn < excluded ? drawn : drawn + 1]
    }

    mutating func injectFaults() {
        if random.chance(perMillion: profile.partitionPerMillion) {
            switch random.below(4) {
            case 0: cluster.isolate(pick(ids, &random))
            case 1:
                let from = pick(ids, &random)
                let to = pick(ids, &random)
                if from != to { cluster.cut(from: from, to: to) }
            case 2:
                let a = pick(ids, &random)
                let b = pick(ids, &random)
                if a != b { cluster.partition(a, b) }
            default:
                // Clogging one link at a time: repeated draws clog more links until the heal.
                let from = pick(ids, &random)
                let to = pick(ids, &random)
                if from != to { cluster.clog(from: from, to: to) }
            }
        }
        if random.chance(perMillion: profile.healPerMillion) { cluster.heal() }
        if random.chance(perMillion: profile.crashPerMillion) {
            cluster.crash(pick(ids, &random), restartAfterTicks: random.int(in: 1...profile.restartTicksMax))
        }
        if random.chance(perMillion: profile.adminPerMillion) { randomAdminCommand() }
    }

    /// The server taking writes in the highest epoch, if one does.
    func writer() -> ServerID? { cluster.writerAtHighestEpoch() }

    /// The drills of the seed's profile, and the second halves of earlier ones that are due.
    mutating func drills() {
        var due = 0
        while due < followUps.count {
            if followUps[due].tick <= cluster.tick {
                let followUp = followUps.remove(at: due)
                cluster.admin(followUp.command, on: followUp.on)
            } else {
                due += 1
            }
        }
        guard ids.count > 1, let writerIndex = cluster.writerIndexAtHighestEpoch() else { return }
        let writer = ids[writerIndex]
        let standby = pick(ids, excludingIndex: writerIndex, &random)
        let plainly = AdminCommand.promote(dryRun: false, force: false)
        if random.chance(perMillion: profile.isolateActivePerMillion) {
            // In sync mode (a failover polls the other standbys) or not (it needs force). The active
            // isolated, or cut from the promoted standby only (another standby may be ahead of it), or
            // isolated with the other standbys out of the candidate's reach (the poll goes unanswered).
            if random.below(3) != 0 { cluster.admin(.setReplicationMode(.sync(timeoutMilliseconds: 2_000)), on: writer) }
            switch random.below(3) {
            case 0: cluster.cut(from: writer, to: standby)
            case 1:
                cluster.isolate(writer)
                for other in ids where other != writer && other != standby { cluster.partition(standby, other) }
            default: cluster.isolate(writer)
            }
            followUps.append((cluster.tick + random.int(in: 110...200), plainly, standby))
        } else if random.chance(perMillion: profile.switchoverDrillPerMillion) {
            // The hand-over may never reach the standby, which times out (or takes over once healed).
            if random.below(3) == 0 { cluster.cut(from: writer, to: standby) }
            cluster.admin(plainly, on: standby)
            followUps.append((cluster.tick + random.int(in: 1...6), .promote(dryRun: false, force: random.below(2) == 0), writer))
        } else if random.chance(perMillion: profile.pauseDrillPerMillion) {
            cluster.admin(.demote, on: writer)
            var promoteAfter = random.int(in: 5...60)
            if random.below(3) == 0 {
                // A paused active that restarts comes back paused, its peers unconfirmed.
                cluster.crash(writer, restartAfterTicks: promoteAfter)
                promoteAfter += random.int(in: 1...3)
            }
            followUps.append((cluster.tick + promoteAfter, .promote(dryRun: false, force: random.below(2) == 0), writer))
        } else if random.chance(perMillion: profile.pauseDrillPerMillion), let behind = standbyWithRevisionsNotDurable() {
            // Promoted twice at once while revisions it applied are not durable yet: the second
            // promotion finds it waiting for them.
            cluster.admin(.promote(dryRun: false, force: true), on: behind)
            cluster.admin(plainly, on: behind)
        } else if random.chance(perMillion: profile.restartDrillPerMillion) {
            let restartTicks = random.int(in: 5...40)
            cluster.crash(writer, restartAfterTicks: restartTicks)
            followUps.append((cluster.tick + restartTicks + random.int(in: 1...8), .promote(dryRun: false, force: random.below(2) == 0), writer))
        }
    }

    func standbyWithRevisionsNotDurable() -> ServerID? {
        ids.first { id in cluster.core(id).map { $0.role == .standby && $0.durableHead != $0.journal.head } ?? false }
    }

    mutating func workload() {
        guard random.chance(perMillion: profile.publishPerMillion) else { return }
        let writers = ids.filter { cluster.writesEnabled($0) }
        if !writers.isEmpty { cluster.publish(on: pick(writers, &random)) }
    }

    mutating func randomAdminCommand() {
        let target = pick(ids, &random)
        let command: AdminCommand
        switch random.below(100) {
        case 0..<30: command = .promote(dryRun: false, force: random.chance(perMillion: profile.forcedPromotionPerMillion))
        case 30..<38: command = .promote(dryRun: true, force: false)
        case 38..<46: command = .demote
        case 46..<51: command = .haStop
        case 51..<61: command = .haStart
        case 61..<69: command = .requestFullSync(standby: random.below(2) == 0 ? target : pick(ids, &random))
        case 69..<79: command = .resolveCollision(keep: random.below(4) == 0 ? .local : .peer)
        default:
            command =
                random.below(profile.startsInSyncMode ? 5 : 2) == 0
                ? .setReplicationMode(.async) : .setReplicationMode(.sync(timeoutMilliseconds: UInt64(random.int(in: 200...3_000))))
        }
        cluster.admin(command, on: target)
    }

    /// Heals everything, restarts crashed servers, and acts as a careful operator until the group
    /// converges: starts HA where it was stopped, resolves collisions keeping the active's data (after
    /// the export), and, when no server takes writes, promotes plainly first (the epoch's active, or
    /// the most up-to-date standby), by force only once plain promotions could not do it. Every
    /// intervention is counted; force while the epoch's active is up and reachable is a violation
    /// (a plain promotion must always get a healed group going again).
    mutating func liveness() -> Int? {
        cluster.heal()
        cluster.setNetworkProfile(.perfect)
        for id in ids where cluster.core(id) == nil { cluster.restart(id) }
        var operatorState = OperatorState()
        for elapsed in 1...options.livenessTicksMax {
            cluster.runTick()
            if cluster.violation != nil { return nil }
            if cluster.isConverged {
                cluster.checkAcknowledgementsKept()
                return cluster.violation == nil ? elapsed : nil
            }
            let writing = writer() != nil
            operatorState.stalledTicks = writing ? 0 : operatorState.stalledTicks + 1
            if writing { operatorState.plainAttempts = 0 }
            if elapsed % 20 == 0 { operate(&operatorState) }
        }
        return nil
    }

    /// What the liveness operator remembers between its rounds.
    struct OperatorState {
        var stalledTicks = 0
        var plainAttempts = 0
    }

    /// Ticks without a writer before the operator promotes, and plain attempts before it forces.
    static let stalledTicksBeforePromotion = 150
    static let plainAttemptsBeforeForce = 3

    func highestEpoch() -> Epoch { cluster.highestRunningEpoch() }

    mutating func operate(_ state: inout OperatorState) {
        for id in ids {
            guard let core = cluster.core(id) else { continue }
            if core.hardState.haStopped {
                cluster.counters.operatorHAStarts += 1
                cluster.admin(.haStart, on: id)
            }
            if core.collision != nil {
                cluster.counters.operatorCollisionResolutions += 1
                cluster.admin(.resolveCollision(keep: .peer), on: id)
            }
        }
        guard state.stalledTicks > Self.stalledTicksBeforePromotion else { return }
        state.stalledTicks = 0
        let owner = highestEpoch().server
        let activeUp = ids.contains(owner) && cluster.summary(owner)?.role == .active
        if state.plainAttempts < Self.plainAttemptsBeforeForce {
            state.plainAttempts += 1
            cluster.counters.operatorPlainPromotions += 1
            // The epoch's active resumes (after a demote or an aborted hand-over); otherwise the most
            // up-to-date standby takes over (switchover, or failover when the active is gone).
            cluster.admin(.promote(dryRun: false, force: false), on: activeUp ? owner : mostUpToDate())
            return
        }
        state.plainAttempts = 0
        if activeUp {
            cluster.fail(
                "a healed group needs no forced promotion while its active is reachable",
                "\(Self.plainAttemptsBeforeForce) plain promotions did not get writes going: \(describeState())")
            return
        }
        cluster.counters.operatorForcedPromotions += 1
        cluster.admin(.promote(dryRun: false, force: true), on: mostUpToDate())
    }

    /// The server with the highest durable head (ties: the first by name).
    func mostUpToDate() -> ServerID {
        var best = ids[0]
        var bestHead: UInt64 = 0
        for id in ids {
            guard let head = cluster.core(id)?.durableHead.number else { continue }
            if head > bestHead {
                best = id
                bestHead = head
            }
        }
        return best
    }

    func describeState() -> String {
        ids.map { id in
            guard let core = cluster.core(id) else { return "\(id): down" }
            let status = core.status
            return
                "\(id): \(status.role.rawValue) \(status.epoch) writes=\(status.writesEnabled) head=\(status.head) durable=\(status.durableHead) link=\(status.link.map { "\($0)" } ?? "-") stopped=\(status.haStopped)"
        }.joined(separator: "; ")
    }
}
