import ClusterCore

extension SimulatedGatewayCluster {
    /// Every fault injected and every path taken, counted as it happened: a run that claims to test
    /// split brains proves it resolved some.
    public struct Statistics: Hashable, Sendable, Codable {
        // Faults.
        public var crashes = 0
        public var restarts = 0
        public var linkDowns = 0
        public var linkUps = 0
        public var partitions = 0
        /// One interface (the sync link, say) cut both ways between two members.
        public var interfacePartitions = 0
        public var isolations = 0
        public var oneWayCuts = 0
        public var clogs = 0
        public var heals = 0
        public var loadSpikes = 0
        public var adminDowns = 0
        public var forcedAdminDowns = 0
        public var adminUps = 0
        public var pnoteProblems = 0
        public var pnoteSilences = 0
        public var pnoteUnregistrations = 0
        public var policyRemovals = 0
        public var counterResets = 0
        /// Every interface's network summed.
        public var network = NetworkFaultCounts()
        // Paths.
        public var stateChanges = 0
        public var takeovers = 0
        /// A takeover from another member that was active (dead, or left ACTIVE).
        public var failovers = 0
        public var deadTimerFailovers = 0
        public var splitBrainResolutions = 0
        /// A takeover by a steadier member although a healthy standby that lost ACTIVE (or started)
        /// recently ranked above it by priority: the hysteresis at work.
        public var flapsAvoided = 0
        public var deadTimerStretches = 0
        public var deadTimerRestores = 0
        public var attentions = 0
        public var attentionsResolved = 0
        public var preemptions = 0
        public var preemptionsAbandoned = 0
        public var fullSyncs = 0
        public var adminDownsRefused = 0
        public var deviceDeadlinesMissed = 0
        public var refusals = 0
        public var heartbeats = 0

        public init() {}

        /// Each fault by name, in a fixed order (network link events are the cluster's own counts).
        public var faults: [(name: String, count: Int)] {
            [
                ("crashes", crashes), ("restarts", restarts), ("link-downs", linkDowns), ("link-ups", linkUps),
                ("partitions", partitions), ("interface-partitions", interfacePartitions), ("isolations", isolations),
                ("one-way-cuts", oneWayCuts), ("clogs", clogs), ("heals", heals), ("load-spikes", loadSpikes),
                ("admin-downs", adminDowns), ("forced-admin-downs", forcedAdminDowns), ("admin-ups", adminUps),
                ("pnote-problems", pnoteProblems), ("pnote-silences", pnoteSilences), ("pnote-unregistrations", pnoteUnregistrations),
                ("policy-removals", policyRemovals), ("counter-resets", counterResets),
                ("dropped", network.dropped), ("duplicated", network.duplicated), ("delayed", network.delayed),
                ("long-delayed", network.longDelayed), ("reordered", network.reordered), ("dropped-at-cuts", network.droppedAtCuts),
                ("held-by-clogs", network.heldByClogs), ("lost-to-crashes", network.lostToCrashes),
            ]
        }

        /// Each path by name, in a fixed order.
        public var paths: [(name: String, count: Int)] {
            [
                ("takeovers", takeovers), ("failovers", failovers), ("dead-timer-failovers", deadTimerFailovers),
                ("split-brain-resolutions", splitBrainResolutions), ("flaps-avoided", flapsAvoided),
                ("dead-timer-stretches", deadTimerStretches), ("dead-timer-restores", deadTimerRestores),
                ("active-attention", attentions), ("attention-resolved", attentionsResolved), ("preemptions", preemptions),
                ("preemptions-abandoned", preemptionsAbandoned), ("full-syncs", fullSyncs), ("admin-downs-refused", adminDownsRefused),
                ("device-deadlines-missed", deviceDeadlinesMissed), ("refusals", refusals), ("state-changes", stateChanges),
            ]
        }

        public mutating func add(_ other: Statistics) {
            func sum(_ path: WritableKeyPath<Statistics, Int>) { self[keyPath: path] += other[keyPath: path] }
            for path in Self.counted { sum(path) }
            network.add(other.network)
        }

        // Computed: key paths are not Sendable, so no stored static.
        static var counted: [WritableKeyPath<Statistics, Int>] {
            [
                \.crashes, \.restarts, \.linkDowns, \.linkUps, \.partitions, \.interfacePartitions, \.isolations, \.oneWayCuts,
                \.clogs, \.heals, \.loadSpikes, \.adminDowns, \.forcedAdminDowns, \.adminUps, \.pnoteProblems, \.pnoteSilences,
                \.pnoteUnregistrations, \.policyRemovals, \.counterResets, \.stateChanges, \.takeovers, \.failovers,
                \.deadTimerFailovers, \.splitBrainResolutions, \.flapsAvoided, \.deadTimerStretches, \.deadTimerRestores,
                \.attentions, \.attentionsResolved, \.preemptions, \.preemptionsAbandoned, \.fullSyncs, \.adminDownsRefused,
                \.deviceDeadlinesMissed, \.refusals, \.heartbeats,
            ]
        }
    }

    /// Counts what a state change stands for.
    func countPaths(of change: StateChange, on member: SimulatedMember) {
        counters.stateChanges += 1
        switch change.reason {
        case .activeMemberDead:
            counters.failovers += 1
            counters.deadTimerFailovers += 1
        case .activeMemberLeft: counters.failovers += 1
        case .splitBrainResolved: counters.splitBrainResolutions += 1
        case .preemptionCompleted: counters.preemptions += 1
        case .preemptionAbandoned: counters.preemptionsAbandoned += 1
        case .attentionResolved: counters.attentionsResolved += 1
        default: break
        }
        if change.to == .activeAttention { counters.attentions += 1 }
        guard change.to.isActive, !change.from.isActive else { return }
        counters.takeovers += 1
        if hysteresisDecided(takeoverBy: member) { counters.flapsAvoided += 1 }
    }

    /// Whether a healthy standby that comes first by priority stood back because it lost ACTIVE, or
    /// started, within the hysteresis.
    func hysteresisDecided(takeoverBy member: SimulatedMember) -> Bool {
        let own = member.configuration.local
        return members.contains { other in
            guard other !== member, let core = other.core, core.state == .standby, core.steadiness < .steady else { return false }
            let priority = other.configuration.local.priority
            return priority > own.priority || (priority == own.priority && other.id < member.id)
        }
    }
}
