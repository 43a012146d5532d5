import Foundation
import ManagementModel
import ManagementService
import Testing
import TrustCore

@testable import HARuntime

/// The trust, clock and version checks a promotion reports, on credentials minted here.
@Suite("rampart: promotion checks (trust, clock, versions)")
struct PromotionChecksTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let versions = PeerFacts.Versions(software: "0.9.0", schema: 1)

    /// This server's SIC credentials, issued by a new ICA, valid for `validityDays` from `issuedAt`.
    static func credentials(issuedAt: Date = now, validityDays: Int = 365) throws -> (NodeCredentials, InternalCA) {
        let ica = try InternalCA.create(name: "checks", now: issuedAt)
        let keyPair = NodeKeyPair.generate()
        let identity = NodeIdentity(uid: "uid-b", name: "mgmt-b")
        let issued = try ica.issueNodeCertificate(publicKey: keyPair.publicKey, identity: identity, now: issuedAt, validityDays: validityDays)
        return (
            NodeCredentials(
                identity: identity, privateKeyPEM: keyPair.privateKeyPEM, certificatePEM: issued.certificatePEM,
                icaPEM: ica.certificatePEM), ica
        )
    }

    static func checks(_ credentials: NodeCredentials, authority: InternalCA?, facts: PeerFacts, peers: [String] = ["mgmt-a", "mgmt-c"]) -> PromotionChecks {
        PromotionChecks(credentials: credentials, authority: { authority }, facts: facts, local: versions, peers: { peers })
    }

    func status(_ checks: [PromotionCheck], _ name: String) -> PromotionCheck.Status? { checks.first { $0.name == name }?.status }

    @Test("a healthy server: every check ok, and each says what it looked at")
    func healthy() throws {
        let (credentials, ica) = try Self.credentials()
        let facts = PeerFacts()
        for peer in ["mgmt-a", "mgmt-c"] {
            facts.recordVersions(peer, ["software-version": "0.9.0", "schema-version": 1])
            facts.recordClock(peer, sentAtMilliseconds: 1_000_040, receivedAtMilliseconds: 1_000_000)
        }
        let checks = Self.checks(credentials, authority: ica, facts: facts).evaluate(now: Self.now)
        #expect(checks.map(\.name) == ["trust", "clock", "versions"])
        #expect(checks.allSatisfy { $0.status == .ok }, "\(checks)")
        #expect(checks[0].detail.contains("Internal CA key present"))
        #expect(checks[1].detail.contains("mgmt-a +40 ms (ahead)"))
    }

    @Test("clock: over 5 s a warning, over 300 s a problem; the median of the last samples decides")
    func clock() throws {
        let (credentials, ica) = try Self.credentials()
        func clockStatus(_ offsets: [Int64]) -> PromotionCheck.Status {
            let facts = PeerFacts()
            for offset in offsets { facts.recordClock("mgmt-a", sentAtMilliseconds: 5_000_000 + offset, receivedAtMilliseconds: 5_000_000) }
            return Self.checks(credentials, authority: ica, facts: facts, peers: ["mgmt-a"]).clock().status
        }
        #expect(clockStatus([4_000]) == .ok)
        #expect(clockStatus([-6_000]) == .warning)
        #expect(clockStatus([301_000]) == .problem)
        #expect(clockStatus([10, 20, 400_000]) == .ok, "one late message is not a skew")
        let silent = Self.checks(credentials, authority: ica, facts: PeerFacts(), peers: ["mgmt-a"]).clock()
        #expect(silent.status == .ok && silent.detail.contains("not heard from"))
    }

    @Test("versions: another software release is a warning, another schema a problem")
    func versions() throws {
        let (credentials, ica) = try Self.credentials()
        let facts = PeerFacts()
        facts.recordVersions("mgmt-a", ["software-version": "0.9.1", "schema-version": 1])
        #expect(Self.checks(credentials, authority: ica, facts: facts, peers: ["mgmt-a"]).versions().status == .warning)
        facts.recordVersions("mgmt-c", ["software-version": "0.9.0", "schema-version": 2])
        let check = Self.checks(credentials, authority: ica, facts: facts).versions()
        #expect(check.status == .problem && check.detail.contains("do not synchronize"), "\(check)")
    }

    @Test("trust: no Internal CA key here, or an expired certificate, is a problem; one expiring soon a warning")
    func trust() throws {
        let (credentials, ica) = try Self.credentials()
        let withoutKey = Self.checks(credentials, authority: nil, facts: PeerFacts()).trust(now: Self.now)
        #expect(withoutKey.status == .problem && withoutKey.detail.contains("could not enrol"), "\(withoutKey)")
        let soon = Self.checks(credentials, authority: ica, facts: PeerFacts()).trust(now: Self.now.addingTimeInterval(350 * 86_400))
        #expect(soon.status == .warning, "\(soon)")
        let expired = Self.checks(credentials, authority: ica, facts: PeerFacts()).trust(now: Self.now.addingTimeInterval(400 * 86_400))
        #expect(expired.status == .problem && expired.detail.contains("expired"), "\(expired)")
    }

    @Test("a peer's clock field at the edges of Int64 is a problem to report, never a trap")
    func hostileClockValues() throws {
        let (credentials, ica) = try Self.credentials()
        let facts = PeerFacts()
        facts.recordClock("mgmt-a", sentAtMilliseconds: Int64.min, receivedAtMilliseconds: 1_000_000)
        facts.recordClock("mgmt-c", sentAtMilliseconds: Int64.max, receivedAtMilliseconds: -1_000_000)
        let checks = Self.checks(credentials, authority: ica, facts: facts).evaluate(now: Self.now)
        #expect(status(checks, "clock") == .problem, "\(checks)")
        #expect(facts.clockOffsetMilliseconds(of: "mgmt-a") == -PeerFacts.clockOffsetMillisecondsMax)
        #expect(facts.clockOffsetMilliseconds(of: "mgmt-c") == PeerFacts.clockOffsetMillisecondsMax)
    }

    @Test("hostile clock stamps and modes from a peer: no trap, the offset stays bounded, an impossible mode is ignored")
    func ntpHostileTimestamps() {
        let facts = PeerFacts()
        facts.recordClock(
            "mgmt-a",
            ClockStamps(sentAtMilliseconds: .max, receivedAtMilliseconds: .min, echoed: .init(sentAtMilliseconds: .min, receivedAtMilliseconds: .max)))
        #expect(facts.clockOffsetMilliseconds(of: "mgmt-a") == PeerFacts.clockOffsetMillisecondsMax, "falls back to the clamped one-way offset")
        #expect(facts.clockMeasurement(of: "mgmt-a")?.delayMilliseconds == nil)
        facts.recordMode("mgmt-a", mode: "standby", heldMilliseconds: .max, receivedAtMilliseconds: .min)
        facts.recordMode("mgmt-a", mode: "leader", heldMilliseconds: 5, receivedAtMilliseconds: 10)
        #expect(facts.mode(of: "mgmt-a") == nil, "an impossible mode or duration is ignored")
    }

    @Test("with the peer's echo the offset is NTP's (the transit does not count as skew), with the round trip and when measured")
    func echoedClock() {
        let facts = PeerFacts()
        let stamps = ClockStamps(
            sentAtMilliseconds: 1_000_542, receivedAtMilliseconds: 1_000_504, echoed: .init(sentAtMilliseconds: 1_000_000, receivedAtMilliseconds: 1_000_042))
        facts.recordClock("mgmt-a", stamps)
        #expect(
            facts.clockMeasurement(of: "mgmt-a")
                == ClockMeasurement(offsetMilliseconds: 40, delayMilliseconds: 4, measuredAtMilliseconds: 1_000_504, level: .ok))
        #expect(facts.lastHeard(from: "mgmt-a")?.sentAtMilliseconds == 1_000_542, "echoed on our next message")
        facts.recordClock("mgmt-c", sentAtMilliseconds: 1_000_542, receivedAtMilliseconds: 1_000_504)
        #expect(facts.clockMeasurement(of: "mgmt-c")?.offsetMilliseconds == 38, "an older peer without the echo: one-way")
        facts.recordMode("mgmt-a", mode: "active", heldMilliseconds: 60_000, receivedAtMilliseconds: 1_000_504)
        #expect(facts.mode(of: "mgmt-a") == PeerMode(mode: "active", sinceMilliseconds: 940_504))
    }

    @Test("thresholds are settings: the same injected skew is ok, a warning or a problem by them")
    func thresholdsAreSettings() throws {
        let (credentials, ica) = try Self.credentials()
        #expect(ClockThresholds(warningMilliseconds: 0, problemMilliseconds: 10) == nil)
        #expect(ClockThresholds(warningMilliseconds: 20, problemMilliseconds: 10) == nil)
        func clockStatus(_ offset: Int64, _ thresholds: ClockThresholds) -> PromotionCheck {
            let facts = PeerFacts(thresholds: thresholds)
            facts.recordClock("mgmt-a", sentAtMilliseconds: 7_000_000 + offset, receivedAtMilliseconds: 7_000_000)
            return Self.checks(credentials, authority: ica, facts: facts, peers: ["mgmt-a"]).clock()
        }
        let strict = try #require(ClockThresholds(warningMilliseconds: 100, problemMilliseconds: 1_000))
        #expect(clockStatus(1_500, .standard).status == .ok)
        #expect(clockStatus(500, strict).status == .warning)
        let problem = clockStatus(-1_500, strict)
        #expect(problem.status == .problem && problem.detail.contains("-1.5 s (behind)") && problem.detail.contains("NTP"), "\(problem)")
    }
}
