import Foundation
import ManagementModel
import ManagementService
import Synchronization
import TrustCore

/// What this server knows of each peer beside HA: the versions it announced, and how far its clock is
/// from ours (from the `ha-clock` messages each channel carries every `HALinkLimits.clockIntervalMilliseconds`).
public final class PeerFacts: Sendable {
    public struct Versions: Equatable, Sendable {
        public var software: String
        public var schema: Int
        public init(software: String, schema: Int) {
            self.software = software
            self.schema = schema
        }
    }

    /// Offsets kept per peer; their median is the reported skew (one late message does not make one).
    static let clockSamplesMax = 9
    /// Offsets are kept within ± this (about 100 years): a peer's clock field is its to choose, and
    /// no value of it may overflow the subtraction or the magnitude taken later.
    static let clockOffsetMillisecondsMax: Int64 = 100 * 366 * 86_400_000

    private let state = Mutex<(versions: [String: Versions], clockOffsets: [String: [Int64]], clockLevels: [String: ClockSkew.Level])>(([:], [:], [:]))
    /// Where a peer's clock moving out of (or back into) range is published.
    let events: EventBus<ManagementEvent>

    public init(events: EventBus<ManagementEvent> = EventBus()) {
        self.events = events
    }

    /// From an `ha-attach` / `ha-member` announcement.
    public func recordVersions(_ name: String, _ message: JSONValue) {
        guard let software = message["software-version"]?.stringValue, software.count <= 64,
            let schema = message["schema-version"]?.intValue
        else { return }
        state.withLock { $0.versions[name] = Versions(software: software, schema: Int(schema)) }
    }

    /// From an `ha-clock` message: its sender's wall clock when it was sent, against ours on arrival
    /// (positive: the peer is ahead). The transit time counts as skew: milliseconds on a LAN.
    /// A change of the peer's skew level (ok, warning, problem) is published as `clockSkew`; a peer first
    /// heard within range is not news.
    public func recordClock(_ name: String, sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64) {
        let change = state.withLock { state -> ClockSkew? in
            var samples = state.clockOffsets[name] ?? []
            let (offset, overflow) = sentAtMilliseconds.subtractingReportingOverflow(receivedAtMilliseconds)
            let bound = Self.clockOffsetMillisecondsMax
            samples.append(overflow ? (sentAtMilliseconds < 0 ? -bound : bound) : min(max(offset, -bound), bound))
            samples = Array(samples.suffix(Self.clockSamplesMax))
            state.clockOffsets[name] = samples
            let median = Self.median(samples)
            let level = PromotionChecks.clockLevel(median)
            guard level != state.clockLevels[name] ?? .ok else { return nil }
            state.clockLevels[name] = level
            return ClockSkew(peer: name, offsetMilliseconds: median, level: level)
        }
        if let change { events.publish(.clockSkew(change)) }
    }

    /// The middle sample (samples are bounded, so never empty here and never overflowing).
    static func median(_ samples: [Int64]) -> Int64 {
        let sorted = samples.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    public func versions(of name: String) -> Versions? { state.withLock { $0.versions[name] } }

    /// The peer's clock minus ours, in milliseconds (the median of the last samples); nil when unknown.
    public func clockOffsetMilliseconds(of name: String) -> Int64? {
        state.withLock { state in
            guard let samples = state.clockOffsets[name], !samples.isEmpty else { return nil }
            return Self.median(samples)
        }
    }
}

/// The trust, clock and version checks of a promotion (`PromotionCheck`), from this server's files and
/// what its peers told it.
public struct PromotionChecks: Sendable {
    /// Clock skew up to this is ok (servers on NTP are milliseconds apart).
    static let clockOkMilliseconds: Int64 = 5_000
    /// Up to this a warning; beyond, a problem: an enrolment with a peer this far off is refused, and
    /// certificates this server signs would be taken as not yet valid.
    static let clockProblemMilliseconds = Int64(TrustLimits.enrolmentClockSkewSecondsMax) * 1000
    /// A certificate expiring sooner than this is a warning.
    static let certificateWarningDays = 30.0

    let credentials: NodeCredentials
    /// The Internal CA with its key, when this server holds it (the primary; a secondary once the active sent it).
    let authority: @Sendable () -> InternalCA?
    let facts: PeerFacts
    let local: PeerFacts.Versions
    /// The other servers of the group.
    let peers: @Sendable () -> [String]

    public init(
        credentials: NodeCredentials, authority: @escaping @Sendable () -> InternalCA?, facts: PeerFacts, local: PeerFacts.Versions,
        peers: @escaping @Sendable () -> [String]
    ) {
        self.credentials = credentials
        self.authority = authority
        self.facts = facts
        self.local = local
        self.peers = peers
    }

    public func evaluate(now: Date) -> [PromotionCheck] {
        [trust(now: now), clock(), versions()]
    }

    func trust(now: Date) -> PromotionCheck {
        guard let notValidAfter = credentials.certificateNotValidAfter else {
            return PromotionCheck(name: "trust", status: .problem, detail: "this server's SIC certificate (pki/node.pem) cannot be read")
        }
        let until = Renderer.iso8601(milliseconds: Int64(notValidAfter.timeIntervalSince1970 * 1000))
        let days = notValidAfter.timeIntervalSince(now) / 86_400
        var status = PromotionCheck.Status.ok
        var notes = ["SIC certificate valid until \(until)"]
        if days <= 0 {
            status = .problem
            notes = ["SIC certificate expired at \(until): peers and gateways refuse this server (sic reset)"]
        } else if days < Self.certificateWarningDays {
            status = .warning
            notes[0] += " (in \(Int(days)) days)"
        }
        if authority() == nil {
            status = max(status, .problem)
            notes.append("the Internal CA's key is not here yet: as the active, this server could not enrol gateways or servers, nor revoke")
        } else {
            notes.append("Internal CA key present: it can sign and revoke")
        }
        return PromotionCheck(name: "trust", status: status, detail: notes.joined(separator: "; "))
    }

    func clock() -> PromotionCheck {
        var status = PromotionCheck.Status.ok
        var notes: [String] = []
        for peer in peers() {
            guard let offset = facts.clockOffsetMilliseconds(of: peer) else {
                notes.append("\(peer): not heard from")
                continue
            }
            let peerStatus: PromotionCheck.Status =
                switch Self.clockLevel(offset) {
                case .ok: .ok
                case .warning: .warning
                case .problem: .problem
                }
            status = max(status, peerStatus)
            notes.append("\(peer) \(Self.describe(offset))")
        }
        if status != .ok { notes.append("keep the servers' clocks on NTP") }
        return PromotionCheck(name: "clock", status: status, detail: notes.isEmpty ? "no peers" : notes.joined(separator: "; "))
    }

    /// How far off a clock `offset` is: within `clockOkMilliseconds` ok, within `clockProblemMilliseconds` a warning.
    static func clockLevel(_ offsetMilliseconds: Int64) -> ClockSkew.Level {
        // Offsets are clamped to ± clockOffsetMillisecondsMax, so the magnitude cannot overflow.
        let size = offsetMilliseconds.magnitude
        return size <= clockOkMilliseconds.magnitude ? .ok : size <= clockProblemMilliseconds.magnitude ? .warning : .problem
    }

    func versions() -> PromotionCheck {
        var status = PromotionCheck.Status.ok
        var notes = ["this server \(local.software) (schema \(local.schema))"]
        for peer in peers() {
            guard let theirs = facts.versions(of: peer) else {
                notes.append("\(peer): not known")
                continue
            }
            notes.append("\(peer) \(theirs.software) (schema \(theirs.schema))")
            if theirs.schema != local.schema {
                status = .problem
            } else if theirs.software != local.software {
                status = max(status, .warning)
            }
        }
        if status == .problem { notes.append("servers of different schemas do not synchronize: upgrade them to one release") }
        return PromotionCheck(name: "versions", status: status, detail: notes.joined(separator: "; "))
    }

    /// "+12 ms (ahead)", "-3.4 s (behind)".
    static func describe(_ offsetMilliseconds: Int64) -> String {
        let size = abs(offsetMilliseconds)
        let amount = size < 1_000 ? "\(size) ms" : String(format: "%.1f s", Double(size) / 1000)
        return offsetMilliseconds >= 0 ? "+\(amount) (ahead)" : "-\(amount) (behind)"
    }
}
