/// A ClusterXL-style event code, one per kind of transition or cluster event.
///
/// | Code        | Kind                       | Transition                        | Meaning |
/// |-------------|----------------------------|-----------------------------------|---------|
/// | CLUS-110100 | alone at start             | INIT → ACTIVE                     | No other member answered during the startup wait |
/// | CLUS-110200 | no active member           | STANDBY/READY/DOWN/INIT → ACTIVE  | Nobody is active; this member ranks first |
/// | CLUS-110300 | active member dead         | STANDBY/READY/DOWN → ACTIVE       | The active member sent no heartbeat within the dead timer |
/// | CLUS-110400 | active member left         | STANDBY/READY/DOWN → ACTIVE       | The active member went DOWN or STANDBY (a problem, admin down, split brain) |
/// | CLUS-110500 | preempting                 | STANDBY → READY                   | Primary Up: this member's priority is above the active member's |
/// | CLUS-110600 | preemption completed       | READY → ACTIVE                    | Primary Up: the active member released |
/// | CLUS-110700 | preempted                  | ACTIVE → STANDBY                  | Primary Up: a healthy member of higher priority claims ACTIVE |
/// | CLUS-110800 | preemption abandoned       | READY → STANDBY                   | The active member did not release in time, or another member comes first |
/// | CLUS-110900 | split brain resolved       | ACTIVE/ACTIVE(!) → STANDBY/DOWN   | Another active member comes first (health, priority, then the lower member ID) |
/// | CLUS-111000 | standing by                | INIT/DOWN/READY → STANDBY         | Another member is active, ranks higher, or is still starting |
/// | CLUS-111100 | critical device problem    | any → DOWN                        | A critical device reports a problem or init, or missed its deadline |
/// | CLUS-111200 | admin down                 | any → DOWN                        | An administrator holds the member down (`admin_down`) |
/// | CLUS-111300 | devices recovered          | DOWN → STANDBY                    | Every critical device reports ok again |
/// | CLUS-111400 | admin up                   | DOWN → STANDBY                    | The administrator released the member |
/// | CLUS-111500 | only member left           | ACTIVE → ACTIVE(!)                | A device has a problem but no healthy member can take over |
/// | CLUS-111600 | all members have problems  | INIT/STANDBY/DOWN → ACTIVE(!)     | Nobody is active, nobody is healthy; this member ranks first |
/// | CLUS-114904 | attention resolved         | ACTIVE(!) → ACTIVE                | The reason for ACTIVE(!) is gone (ClusterXL's code for this) |
/// | CLUS-120200 | dead timer stretched       | (no state change)                 | Some member reported load at or above the threshold (ClusterXL's CUL start) |
/// | CLUS-120202 | dead timer restored        | (no state change)                 | No load above the threshold for the quiet period, or the longest stretch ran out |
///
/// Rampart's own numbering, except CLUS-114904, CLUS-120200 and CLUS-120202, which keep the codes
/// ClusterXL documents for the same events (sk125152; the CUL lines quoted in the research note).
public struct EventCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    public static let aloneAtStart = EventCode(rawValue: "CLUS-110100")
    public static let noActiveMember = EventCode(rawValue: "CLUS-110200")
    public static let activeMemberDead = EventCode(rawValue: "CLUS-110300")
    public static let activeMemberLeft = EventCode(rawValue: "CLUS-110400")
    public static let preempting = EventCode(rawValue: "CLUS-110500")
    public static let preemptionCompleted = EventCode(rawValue: "CLUS-110600")
    public static let preempted = EventCode(rawValue: "CLUS-110700")
    public static let preemptionAbandoned = EventCode(rawValue: "CLUS-110800")
    public static let splitBrainResolved = EventCode(rawValue: "CLUS-110900")
    public static let standingBy = EventCode(rawValue: "CLUS-111000")
    public static let criticalDeviceProblem = EventCode(rawValue: "CLUS-111100")
    public static let adminDown = EventCode(rawValue: "CLUS-111200")
    public static let devicesRecovered = EventCode(rawValue: "CLUS-111300")
    public static let adminUp = EventCode(rawValue: "CLUS-111400")
    public static let onlyMemberLeft = EventCode(rawValue: "CLUS-111500")
    public static let allMembersHaveProblems = EventCode(rawValue: "CLUS-111600")
    public static let attentionResolved = EventCode(rawValue: "CLUS-114904")
    public static let deadTimerStretched = EventCode(rawValue: "CLUS-120200")
    public static let deadTimerRestored = EventCode(rawValue: "CLUS-120202")

    /// Every code with its kind, in table order (documentation and a uniqueness test).
    public static let table: [(code: EventCode, kind: String)] = [
        (aloneAtStart, "alone at start"), (noActiveMember, "no active member"), (activeMemberDead, "active member dead"),
        (activeMemberLeft, "active member left"), (preempting, "preempting"), (preemptionCompleted, "preemption completed"),
        (preempted, "preempted"), (preemptionAbandoned, "preemption abandoned"), (splitBrainResolved, "split brain resolved"),
        (standingBy, "standing by"), (criticalDeviceProblem, "critical device problem"), (adminDown, "admin down"),
        (devicesRecovered, "devices recovered"), (adminUp, "admin up"), (onlyMemberLeft, "only member left"),
        (allMembersHaveProblems, "all members have problems"), (attentionResolved, "attention resolved"),
        (deadTimerStretched, "dead timer stretched"), (deadTimerRestored, "dead timer restored"),
    ]
}

/// Why a member waits as STANDBY behind another one.
public enum StandbyCause: String, Hashable, Sendable {
    case isActive = "is active"
    case ranksHigher = "ranks higher and takes over"
    case isStarting = "is still starting (INIT)"
}

/// Why a member changed state: typed, so tests and the management server can act on it, and printable
/// in prose for `rampart cluster state` and the log.
public enum TransitionReason: Hashable, Sendable, CustomStringConvertible {
    case aloneAtStart(waitedMilliseconds: UInt64)
    case noActiveMember(candidates: Int)
    case activeMemberDead(MemberID, silentMilliseconds: UInt64, deadTimerMilliseconds: UInt64)
    case activeMemberLeft(MemberID, nowIn: MemberState, problems: [DeviceSummary])
    case preempting(active: MemberID)
    case preemptionCompleted(previous: MemberID)
    case preempted(by: MemberID)
    case preemptionAbandoned(active: MemberID, waitedMilliseconds: UInt64)
    case splitBrainResolved(winner: MemberID, winnerRank: MemberRank, ownRank: MemberRank)
    case standingBy(for: MemberID, because: StandbyCause)
    case criticalDeviceProblem([DeviceSummary], takeover: MemberID?)
    case adminDown(takeover: MemberID?)
    case devicesRecovered
    case adminUp
    case onlyMemberLeft([DeviceSummary])
    case allMembersHaveProblems([DeviceSummary])
    case attentionResolved

    public var eventCode: EventCode {
        switch self {
        case .aloneAtStart: .aloneAtStart
        case .noActiveMember: .noActiveMember
        case .activeMemberDead: .activeMemberDead
        case .activeMemberLeft: .activeMemberLeft
        case .preempting: .preempting
        case .preemptionCompleted: .preemptionCompleted
        case .preempted: .preempted
        case .preemptionAbandoned: .preemptionAbandoned
        case .splitBrainResolved: .splitBrainResolved
        case .standingBy: .standingBy
        case .criticalDeviceProblem: .criticalDeviceProblem
        case .adminDown: .adminDown
        case .devicesRecovered: .devicesRecovered
        case .adminUp: .adminUp
        case .onlyMemberLeft: .onlyMemberLeft
        case .allMembersHaveProblems: .allMembersHaveProblems
        case .attentionResolved: .attentionResolved
        }
    }

    public var description: String {
        switch self {
        case .aloneAtStart(let waited):
            "no other member answered within \(milliseconds(waited)) of starting: all other members are dead (timeout)"
        case .noActiveMember(let candidates):
            candidates == 0
                ? "no member is active and no other member can take over"
                : "no member is active; this member ranks first of \(candidates + 1) that can take over"
        case .activeMemberDead(let member, let silent, let deadTimer):
            "\(member), the active member, is dead: no heartbeat for \(milliseconds(silent)) (dead timer \(milliseconds(deadTimer)))"
        case .activeMemberLeft(let member, let state, let problems):
            "\(member), the active member, is now \(state)" + (problems.isEmpty ? "" : " (\(list(problems)))")
        case .preempting(let active):
            "Primary Up: this member comes before \(active), the active member (priority); waiting for it to release ACTIVE"
        case .preemptionCompleted(let previous):
            "Primary Up: \(previous) released ACTIVE to this member (higher priority)"
        case .preempted(let member):
            "Primary Up: \(member) comes first (healthy, higher priority) and claims ACTIVE"
        case .preemptionAbandoned(let active, let waited):
            "\(active) did not release ACTIVE within \(milliseconds(waited)), or another member comes first"
        case .splitBrainResolved(let winner, let winnerRank, let ownRank):
            "split brain: \(winner) is also active and comes first (\(winnerRank.health), priority \(winnerRank.priority) over \(ownRank.health), priority \(ownRank.priority)\(winnerRank.priority == ownRank.priority && winnerRank.health == ownRank.health ? ", lower member ID" : ""))"
        case .standingBy(let member, let cause):
            "\(member) \(cause.rawValue)"
        case .criticalDeviceProblem(let problems, let takeover):
            "critical device " + list(problems) + (takeover.map { "; \($0) takes over" } ?? "")
        case .adminDown(let takeover):
            "an administrator set this member down (admin_down)" + (takeover.map { "; \($0) takes over" } ?? "; no member takes over (forced)")
        case .devicesRecovered:
            "every critical device reports ok"
        case .adminUp:
            "an administrator set this member up"
        case .onlyMemberLeft(let problems):
            "critical device \(list(problems)), but no other member can take over: this member keeps forwarding (state change to DOWN cancelled)"
        case .allMembersHaveProblems(let problems):
            "no member is active and every member has a problem; this member ranks first and forwards (critical device \(list(problems)))"
        case .attentionResolved:
            "the reason for ACTIVE(!) has been resolved: every critical device reports ok"
        }
    }
}

func milliseconds(_ value: UInt64) -> String {
    value < 10_000 ? "\(value) ms" : "\(value / 1_000).\(value % 1_000 / 100) s"
}

func list(_ problems: [DeviceSummary]) -> String {
    problems.map(\.description).joined(separator: ", ")
}

/// One transition: what `cphaprob state` shows as "Last member state change event".
public struct StateChange: Hashable, Sendable, CustomStringConvertible {
    public var from: MemberState
    public var to: MemberState
    public var reason: TransitionReason
    public var atMilliseconds: UInt64

    public init(from: MemberState, to: MemberState, reason: TransitionReason, atMilliseconds: UInt64) {
        self.from = from
        self.to = to
        self.reason = reason
        self.atMilliseconds = atMilliseconds
    }

    public var eventCode: EventCode { reason.eventCode }

    public var description: String { "\(eventCode) \(from) -> \(to): \(reason)" }
}

/// Why the dead timer is stretched: the load report that started it.
public struct LoadStretch: Hashable, Sendable, CustomStringConvertible {
    public var sinceMilliseconds: UInt64
    /// The member whose load started the stretch, and its figure.
    public var member: MemberID
    public var loadPercent: UInt8
    public var thresholdPercent: UInt8
    /// When some member last reported load at or above the threshold.
    public var lastHighLoadAtMilliseconds: UInt64
    /// The stretch ends at the latest then (the longest stretch), earlier after a quiet period.
    public var endsAtLatestMilliseconds: UInt64

    public var description: String {
        "\(member) reported load \(loadPercent)% (threshold \(thresholdPercent)%)"
    }
}

/// The dead timer as it is now: never stretched silently.
public struct DeadTimerStatus: Hashable, Sendable, CustomStringConvertible {
    public var baseMilliseconds: UInt64
    public var effectiveMilliseconds: UInt64
    public var stretch: LoadStretch?

    public var description: String {
        guard let stretch else { return "dead timer \(milliseconds(baseMilliseconds))" }
        return "dead timer stretched to \(milliseconds(effectiveMilliseconds)) (base \(milliseconds(baseMilliseconds))) because \(stretch)"
    }
}
