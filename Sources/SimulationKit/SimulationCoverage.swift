/// What a batch of seeds must have exercised for its verdict to mean something (FoundationDB's
/// "buggify" coverage, TigerBeetle's swarm counts): each fault injected, each named path taken, each
/// path of `ha promote` in a share of the seeds. A batch where faults stopped firing fails here.
public struct SimulationCoverage: Sendable {
    /// Each fault injected at least this often.
    public var faultFiredMin: Int
    /// Paths (by `Statistics.paths` name) taken at least once.
    public var paths: [String]
    /// Each path of `ha promote` the group size allows, taken in at least this share of the seeds.
    public var promotePathSeedShareMin: Double
    /// Paths of `ha promote` not required (too rare for the batch's schedules).
    public var promotePathsExempt: [PromotePath]
    public var serverCount: Int

    public init(
        faultFiredMin: Int, paths: [String], promotePathSeedShareMin: Double, promotePathsExempt: [PromotePath] = [],
        serverCount: Int = 3
    ) {
        self.faultFiredMin = faultFiredMin
        self.paths = paths
        self.promotePathSeedShareMin = promotePathSeedShareMin
        self.promotePathsExempt = promotePathsExempt
        self.serverCount = serverCount
    }

    /// One line per shortfall; empty when the batch covered everything.
    public func shortfalls(_ statistics: SimulatedCluster.Statistics) -> [String] {
        var missing: [String] = []
        for fault in statistics.faults where fault.count < faultFiredMin {
            missing.append("fault \(fault.name) fired \(fault.count) times (at least \(faultFiredMin) expected)")
        }
        let taken = Dictionary(uniqueKeysWithValues: statistics.paths.map { ($0.name, $0.count) })
        for path in paths where (taken[path] ?? 0) < 1 { missing.append("path \(path) never taken") }
        let runs = Double(max(statistics.runs, 1))
        for path in PromotePath.allCases where path.isReachable(serverCount: serverCount) && !promotePathsExempt.contains(path) {
            let share = Double(statistics.promotePathSeeds[path]) / runs
            if share < promotePathSeedShareMin {
                missing.append(
                    "promote path \(path.name) taken in \(Self.percent(share)) of seeds (at least \(Self.percent(promotePathSeedShareMin)) expected)")
            }
        }
        return missing
    }

    static func percent(_ share: Double) -> String {
        let tenths = Int(share * 1000)
        return "\(tenths / 10).\(tenths % 10)%"
    }
}

extension PromotePath {
    /// A failover polls every server but the old active and itself: with more than two servers there
    /// is always one to poll. Every other path needs a peer.
    public func isReachable(serverCount: Int) -> Bool {
        switch self {
        case .failoverWithoutPoll: serverCount == 2
        default: serverCount >= 2
        }
    }
}
