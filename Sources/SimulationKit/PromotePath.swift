import HACore

/// Every way `ha promote` can go, and the outcomes that follow a switchover or a failover: the swarm
/// profiles must take each in a share of the seeds, so that a path no schedule reaches is seen.
public enum PromotePath: Int, CaseIterable, Sendable {
    case dryRun, alreadyActive, resumedPaused, forcedPaused, handoverUnderWay, forcedDuringHandover
    case peersUnconfirmed, forcedRestartedActive, notReady, refused, forced, switchoverRequested
    case failoverRefused, failoverWithoutPoll, failoverPolling
    case switchoverCompleted, switchoverTimedOut, switchoverRefusedByActive, failoverCompleted
    case failoverUnconfirmed, standbyAhead

    public var name: String {
        switch self {
        case .dryRun: "dry-run"
        case .alreadyActive: "already-active"
        case .resumedPaused: "resumed-paused-active"
        case .forcedPaused: "forced-paused-active"
        case .handoverUnderWay: "handover-under-way"
        case .forcedDuringHandover: "forced-during-handover"
        case .peersUnconfirmed: "peers-unconfirmed"
        case .forcedRestartedActive: "forced-restarted-active"
        case .notReady: "not-ready"
        case .refused: "refused"
        case .forced: "forced"
        case .switchoverRequested: "switchover-requested"
        case .failoverRefused: "failover-refused"
        case .failoverWithoutPoll: "failover-without-poll"
        case .failoverPolling: "failover-polling"
        case .switchoverCompleted: "switchover-completed"
        case .switchoverTimedOut: "switchover-timed-out"
        case .switchoverRefusedByActive: "switchover-refused-by-active"
        case .failoverCompleted: "failover-completed"
        case .failoverUnconfirmed: "failover-unconfirmed"
        case .standbyAhead: "failover-standby-ahead"
        }
    }

    /// The path a decision names; nil for a decision no promotion makes. `refusal` tells the two
    /// refusals that share a decision apart.
    static func taken(by decision: HADecision, refusal: HARefusal?) -> PromotePath? {
        switch decision {
        case .dryRun: .dryRun
        case .alreadyActive: .alreadyActive
        case .writesEnabled(.promotedAgain, _), .writesEnabledOnceDurable(.promotedAgain, _),
            .writesEnabledOncePeersAnswer(.promotedAgain, _, _):
            .resumedPaused
        case .forcedPromotionOfPausedActive: .forcedPaused
        case .handoverUnderWay: .handoverUnderWay
        case .forcedPromotionDuringHandover: .forcedDuringHandover
        case .promotionRefused: refusal == .peersUnconfirmed ? .peersUnconfirmed : .refused
        case .forcedPromotionOfRestartedActive: .forcedRestartedActive
        case .notReady: .notReady
        case .forcedPromotion: .forced
        case .switchoverRequested: .switchoverRequested
        case .failoverRefused: .failoverRefused
        case .failoverWithoutPoll: .failoverWithoutPoll
        case .failoverPolling: .failoverPolling
        case .switchoverCompleted: .switchoverCompleted
        case .switchoverTimedOut: .switchoverTimedOut
        case .switchoverRefusedByActive: .switchoverRefusedByActive
        case .failoverCompleted: .failoverCompleted
        case .failoverUnconfirmed: .failoverUnconfirmed
        case .standbyAhead: .standbyAhead
        default: nil
        }
    }
}

/// How often each promote path was taken (indexed by `PromotePath.rawValue`).
public struct PromotePathCounts: Hashable, Sendable, Codable {
    public var counts = [Int](repeating: 0, count: PromotePath.allCases.count)

    public init() {}

    public subscript(path: PromotePath) -> Int {
        get { counts[path.rawValue] }
        set { counts[path.rawValue] = newValue }
    }

    public mutating func add(_ other: PromotePathCounts) {
        for index in counts.indices { counts[index] += other.counts[index] }
    }

    /// One for each path taken at least once (adding these up over seeds counts the seeds per path).
    public var taken: PromotePathCounts {
        var result = PromotePathCounts()
        for index in counts.indices where counts[index] > 0 { result.counts[index] = 1 }
        return result
    }

    public var named: [(name: String, count: Int)] { PromotePath.allCases.map { ($0.name, counts[$0.rawValue]) } }
}
