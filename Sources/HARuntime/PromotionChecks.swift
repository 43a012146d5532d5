import Foundation
import ManagementModel
import ManagementService
import Synchronization
import TrustCore

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

    /// Per peer: its clock samples, the level last published and the mode it announced.
    struct PeerClock {
        var samples = ClockSamples()
        var level = ClockSkew.Level.ok
        var mode: PeerMode?
    }

    /// Offsets and durations a peer gives are kept within ± this (about 100 years).
    public static let clockOffsetMillisecondsMax = ClockSamples.offsetMillisecondsMax

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

    /// From an `ha-clock` message (positive offset: the peer is ahead; NTP's arithmetic in
    /// `ClockSamples`). A change of the peer's skew level (ok, warning, problem) is published as
    /// `clockSkew`; a peer first heard within range is not news.
    public func recordClock(_ name: String, _ stamps: ClockStamps) {
        let change = state.withLock { state -> ClockSkew? in
            var clock = state.clocks[name] ?? PeerClock()
            clock.samples.record(stamps)
            let offset = clock.samples.offsetMilliseconds ?? 0
            let level = thresholds.level(offset)
            let changed = level != clock.level
            clock.level = level
            state.clocks[name] = clock
            return changed ? ClockSkew(peer: name, offsetMilliseconds: offset, level: level) : nil
        }
        if let change { events.publish(.clockSkew(change)) }
    }

    public func versions(of name: String) -> Versions? { state.withLock { $0.versions[name] } }

    /// The peer's clock minus ours, in milliseconds (the median of the last samples); nil when unknown.
    public func clockOffsetMilliseconds(of name: String) -> Int64? { clockMeasurement(of: name)?.offsetMilliseconds }

    /// The peer's clock as measured; nil when never heard from.
    public func clockMeasurement(of name: String) -> ClockMeasurement? {
        state.withLock { state in
            guard let clock = state.clocks[name], let offset = clock.samples.offsetMilliseconds else { return nil }
            return ClockMeasurement(
                offsetMilliseconds: offset, delayMilliseconds: clock.samples.delayMilliseconds,
                measuredAtMilliseconds: clock.samples.measuredAtMilliseconds, level: clock.level)
        }
    }

    /// The peer's last stamps, which our next `ha-clock` echoes (NTP's t1 and t2 for the peer).
    func lastHeard(from name: String) -> ClockStamps.Echo? {
        state.withLock { $0.clocks[name]?.samples.lastHeard }
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
