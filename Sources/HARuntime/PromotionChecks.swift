import Foundation
import ManagementModel
import ManagementService
import Synchronization
import TrustCore

/// Warning and problem thresholds of a peer's clock offset (`rampart server --clock-warning-ms` and
/// `--clock-problem-ms`). Above the problem threshold a promotion is refused unless forced.
public struct ClockThresholds: Sendable, Equatable {
    /// Servers on NTP are milliseconds apart.
    public static let warningMillisecondsDefault: Int64 = 5_000
    /// Beyond this, certificates this server signs would be taken as not yet valid by the peer.
    public static let problemMillisecondsDefault = Int64(TrustLimits.enrolmentClockSkewSecondsMax) * 1000

    public let warningMilliseconds: Int64
    public let problemMilliseconds: Int64

    /// Nil unless 0 < warning <= problem <= `PeerFacts.clockOffsetMillisecondsMax`.
    public init?(warningMilliseconds: Int64 = warningMillisecondsDefault, problemMilliseconds: Int64 = problemMillisecondsDefault) {
        guard warningMilliseconds > 0, warningMilliseconds <= problemMilliseconds, problemMilliseconds <= PeerFacts.clockOffsetMillisecondsMax
        else { return nil }
        self.warningMilliseconds = warningMilliseconds
        self.problemMilliseconds = problemMilliseconds
    }

    public static let standard = ClockThresholds(warningMilliseconds: warningMillisecondsDefault, problemMilliseconds: problemMillisecondsDefault)!

    /// How far off a clock offset is: up to the warning threshold ok, up to the problem threshold a warning.
    public func level(_ offsetMilliseconds: Int64) -> ClockSkew.Level {
        // magnitude: no overflow even at Int64.min.
        let size = offsetMilliseconds.magnitude
        return size <= warningMilliseconds.magnitude ? .ok : size <= problemMilliseconds.magnitude ? .warning : .problem
    }
}

/// A peer's clock as this server measured it (`rampart time`, `ha status`).
public struct ClockMeasurement: Sendable, Equatable {
    /// The peer's clock minus ours (positive: ahead); the median of the last samples.
    public var offsetMilliseconds: Int64
    /// The last sample's round trip, NTP's delay; nil when the peer echoes no timestamps (an older
    /// release: the offset is then one-way and counts the transit as skew).
    public var delayMilliseconds: Int64?
    /// Our wall clock when the last sample arrived.
    public var measuredAtMilliseconds: Int64
    public var level: ClockSkew.Level
}

/// What a peer says of its HA mode on its `ha-clock` messages: the mode and since when (our clock).
public struct PeerMode: Sendable, Equatable {
    public var mode: String
    public var sinceMilliseconds: Int64
}

/// What this server knows of each peer beside HA: the versions it announced, how far its clock is
/// from ours, and its mode (from the `ha-clock` messages each channel carries every `HALinkLimits.clockInterval`).
public final class PeerFacts: Sendable {
    public struct Versions: Equatable, Sendable {
        public var software: String
        public var schema: Int
        public init(software: String, schema: Int) {
            self.software = software
            self.schema = schema
        }
    }

    /// One `ha-clock` message's timestamps. `echoed` is the last of ours the peer received: our send
    /// time and its receive time (NTP's t1 and t2); nil from a release that does not echo.
    public struct ClockStamps: Sendable, Equatable {
        public var sentAtMilliseconds: Int64
        public var receivedAtMilliseconds: Int64
        public var echoed: (sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64)?

        public init(sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64, echoed: (sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64)? = nil) {
            self.sentAtMilliseconds = sentAtMilliseconds
            self.receivedAtMilliseconds = receivedAtMilliseconds
            self.echoed = echoed
        }

        public static func == (lhs: Self, rhs: Self) -> Bool {
            lhs.sentAtMilliseconds == rhs.sentAtMilliseconds && lhs.receivedAtMilliseconds == rhs.receivedAtMilliseconds
                && lhs.echoed?.sentAtMilliseconds == rhs.echoed?.sentAtMilliseconds
                && lhs.echoed?.receivedAtMilliseconds == rhs.echoed?.receivedAtMilliseconds
        }
    }

    /// Per peer: offset samples, the last delay, when measured, the level last published, the last
    /// stamps heard (echoed back on our next message) and the mode it announced.
    struct PeerClock {
        var samples: [Int64] = []
        var delayMilliseconds: Int64?
        var measuredAtMilliseconds: Int64 = 0
        var level = ClockSkew.Level.ok
        var lastHeard: (sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64)?
        var mode: PeerMode?
    }

    /// Offsets kept per peer; their median is the reported skew (one late message does not make one).
    static let clockSamplesMax = 9
    /// Offsets are kept within ± this (about 100 years): a peer's clock field is its to choose, and
    /// no value of it may overflow the subtraction or the magnitude taken later.
    public static let clockOffsetMillisecondsMax: Int64 = 100 * 366 * 86_400_000
    /// Timestamps are whole milliseconds: four truncations make a true round trip of 0 read as down to -2 ms.
    static let delayRoundingMilliseconds: Int64 = 2

    private let state = Mutex<(versions: [String: Versions], clocks: [String: PeerClock])>(([:], [:]))
    /// Where a peer's clock moving out of (or back into) range is published.
    let events: EventBus<ManagementEvent>
    public let thresholds: ClockThresholds

    public init(events: EventBus<ManagementEvent> = EventBus(), thresholds: ClockThresholds = .standard) {
        self.events = events
        self.thresholds = thresholds
    }

    /// From an `ha-attach` / `ha-member` announcement.
    public func recordVersions(_ name: String, _ message: JSONValue) {
        guard let software = message["software-version"]?.stringValue, software.count <= 64,
            let schema = message["schema-version"]?.intValue
        else { return }
        state.withLock { $0.versions[name] = Versions(software: software, schema: Int(schema)) }
    }

    /// From an `ha-clock` message whose sender's wall clock read `sentAt` and ours `receivedAt` on arrival.
    public func recordClock(_ name: String, sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64) {
        recordClock(name, ClockStamps(sentAtMilliseconds: sentAtMilliseconds, receivedAtMilliseconds: receivedAtMilliseconds))
    }

    /// From an `ha-clock` message (positive offset: the peer is ahead). With the peer's echo of our
    /// last message the offset and round trip are NTP's; without, the offset is one-way and the transit
    /// counts as skew (milliseconds on a LAN). A change of the peer's skew level (ok, warning, problem)
    /// is published as `clockSkew`; a peer first heard within range is not news.
    public func recordClock(_ name: String, _ stamps: ClockStamps) {
        let change = state.withLock { state -> ClockSkew? in
            var clock = state.clocks[name] ?? PeerClock()
            let sample = stamps.echoed.flatMap {
                Self.ntpSample(
                    originate: $0.sentAtMilliseconds, receive: $0.receivedAtMilliseconds, transmit: stamps.sentAtMilliseconds,
                    destination: stamps.receivedAtMilliseconds)
            }
            clock.samples.append(sample?.offset ?? Self.oneWayOffset(sent: stamps.sentAtMilliseconds, received: stamps.receivedAtMilliseconds))
            clock.samples = Array(clock.samples.suffix(Self.clockSamplesMax))
            clock.delayMilliseconds = sample?.delay
            clock.measuredAtMilliseconds = stamps.receivedAtMilliseconds
            clock.lastHeard = (stamps.sentAtMilliseconds, stamps.receivedAtMilliseconds)
            let median = Self.median(clock.samples)
            let level = thresholds.level(median)
            let changed = level != clock.level
            clock.level = level
            state.clocks[name] = clock
            return changed ? ClockSkew(peer: name, offsetMilliseconds: median, level: level) : nil
        }
        if let change { events.publish(.clockSkew(change)) }
    }

    /// The peer's clock minus ours from one message: its send time against our receive time, clamped.
    static func oneWayOffset(sent: Int64, received: Int64) -> Int64 {
        let (offset, overflow) = sent.subtractingReportingOverflow(received)
        return overflow ? (sent < 0 ? -clockOffsetMillisecondsMax : clockOffsetMillisecondsMax) : clamp(offset)
    }

    /// NTP's offset ((t2 - t1) + (t3 - t4)) / 2 and delay (t4 - t1) - (t3 - t2): t1 our send, t2 the
    /// peer's receive, t3 its send, t4 our receive. Nil when a step overflows or the delay is negative
    /// (timestamps no real exchange gives: a hostile peer, or a clock stepped in between).
    static func ntpSample(originate t1: Int64, receive t2: Int64, transmit t3: Int64, destination t4: Int64) -> (offset: Int64, delay: Int64)? {
        let outbound = t2.subtractingReportingOverflow(t1)
        let inbound = t3.subtractingReportingOverflow(t4)
        let roundTrip = t4.subtractingReportingOverflow(t1)
        let held = t3.subtractingReportingOverflow(t2)
        guard !outbound.overflow, !inbound.overflow, !roundTrip.overflow, !held.overflow else { return nil }
        let sum = outbound.partialValue.addingReportingOverflow(inbound.partialValue)
        let delay = roundTrip.partialValue.subtractingReportingOverflow(held.partialValue)
        guard !sum.overflow, !delay.overflow, delay.partialValue >= -delayRoundingMilliseconds else { return nil }
        return (clamp(sum.partialValue / 2), max(delay.partialValue, 0))
    }

    static func clamp(_ offset: Int64) -> Int64 { min(max(offset, -clockOffsetMillisecondsMax), clockOffsetMillisecondsMax) }

    /// The middle sample (samples are bounded, so never empty here and never overflowing).
    static func median(_ samples: [Int64]) -> Int64 {
        let sorted = samples.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }

    public func versions(of name: String) -> Versions? { state.withLock { $0.versions[name] } }

    /// The peer's clock minus ours, in milliseconds (the median of the last samples); nil when unknown.
    public func clockOffsetMilliseconds(of name: String) -> Int64? { clockMeasurement(of: name)?.offsetMilliseconds }

    /// The peer's clock as measured; nil when never heard from.
    public func clockMeasurement(of name: String) -> ClockMeasurement? {
        state.withLock { state in
            guard let clock = state.clocks[name], !clock.samples.isEmpty else { return nil }
            return ClockMeasurement(
                offsetMilliseconds: Self.median(clock.samples), delayMilliseconds: clock.delayMilliseconds,
                measuredAtMilliseconds: clock.measuredAtMilliseconds, level: clock.level)
        }
    }

    /// The peer's last stamps, which our next `ha-clock` echoes (NTP's t1 and t2 for the peer).
    func lastHeard(from name: String) -> (sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64)? {
        state.withLock { $0.clocks[name]?.lastHeard }
    }

    /// From an `ha-clock` message: the peer's mode, held for `heldMilliseconds` (its own clock's
    /// duration, so skew does not enter) when it arrived at `receivedAt` (ours).
    public func recordMode(_ name: String, mode: String, heldMilliseconds: Int64, receivedAtMilliseconds: Int64) {
        guard mode == "active" || mode == "standby", heldMilliseconds >= 0, heldMilliseconds <= Self.clockOffsetMillisecondsMax else { return }
        let since = receivedAtMilliseconds.subtractingReportingOverflow(heldMilliseconds)
        guard !since.overflow else { return }
        state.withLock { $0.clocks[name, default: PeerClock()].mode = PeerMode(mode: mode, sinceMilliseconds: since.partialValue) }
    }

    public func mode(of name: String) -> PeerMode? { state.withLock { $0.clocks[name]?.mode } }
}

/// The trust, clock and version checks of a promotion (`PromotionCheck`), from this server's files and
/// what its peers told it.
public struct PromotionChecks: Sendable {
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
                switch facts.thresholds.level(offset) {
                case .ok: .ok
                case .warning: .warning
                case .problem: .problem
                }
            status = max(status, peerStatus)
            notes.append("\(peer) \(Self.describe(offset))")
        }
        if status != .ok {
            notes.append(
                "set the clocks right and keep every server on NTP (chrony or systemd-timesyncd; `rampart time` shows each offset)")
        }
        return PromotionCheck(name: "clock", status: status, detail: notes.isEmpty ? "no peers" : notes.joined(separator: "; "))
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
