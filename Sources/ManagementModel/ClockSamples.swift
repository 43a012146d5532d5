import Foundation

/// The timestamps of one clock message from a peer (a management server's `ha-clock`, a gateway's
/// `gw-status`): its send time on its clock, our receive time on ours, and — when the peer echoes the
/// last such message of ours it received — our send time and its receive time (NTP's t1 and t2).
public struct ClockStamps: Sendable, Equatable {
    /// The echo of one of our messages: when we sent it (our clock) and when the peer received it (its clock).
    public struct Echo: Sendable, Equatable {
        public var sentAtMilliseconds: Int64
        public var receivedAtMilliseconds: Int64
        public init(sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64) {
            self.sentAtMilliseconds = sentAtMilliseconds
            self.receivedAtMilliseconds = receivedAtMilliseconds
        }
    }

    public var sentAtMilliseconds: Int64
    public var receivedAtMilliseconds: Int64
    /// Nil from a peer that does not echo (an older release).
    public var echoed: Echo?

    public init(sentAtMilliseconds: Int64, receivedAtMilliseconds: Int64, echoed: Echo? = nil) {
        self.sentAtMilliseconds = sentAtMilliseconds
        self.receivedAtMilliseconds = receivedAtMilliseconds
        self.echoed = echoed
    }

    /// The stamps of a received message: `sent-at-ms`, and the echo `echo-sent-at-ms` with
    /// `echo-received-at-ms` (counted only whole). Nil without `sent-at-ms`.
    public init?(message: JSONValue, receivedAtMilliseconds: Int64) {
        guard let sentAt = message["sent-at-ms"]?.intValue else { return nil }
        self.init(sentAtMilliseconds: sentAt, receivedAtMilliseconds: receivedAtMilliseconds)
        if let echoSent = message["echo-sent-at-ms"]?.intValue, let echoReceived = message["echo-received-at-ms"]?.intValue {
            echoed = Echo(sentAtMilliseconds: echoSent, receivedAtMilliseconds: echoReceived)
        }
    }

    /// The fields a message carries: `sent-at-ms` and, when there is one, the echo of the peer's last message.
    public static func fields(sentAtMilliseconds: Int64, echo: Echo?) -> [String: JSONValue] {
        var fields: [String: JSONValue] = ["sent-at-ms": .int(sentAtMilliseconds)]
        if let echo {
            fields["echo-sent-at-ms"] = .int(echo.sentAtMilliseconds)
            fields["echo-received-at-ms"] = .int(echo.receivedAtMilliseconds)
        }
        return fields
    }
}

/// One peer's clock as measured from its messages: the offsets of the last few (their median is the
/// reported offset, so one late message does not make a skew), the last round trip and when measured.
/// The one place of NTP's arithmetic, for peer servers and gateways alike; every stamp is the peer's
/// to choose, so nothing here overflows or traps.
public struct ClockSamples: Sendable, Equatable {
    /// Offsets kept; their median is the reported offset.
    public static let samplesMax = 9
    /// Offsets are kept within ± this (about 100 years): no value of a peer's stamp may overflow the
    /// subtraction or the magnitude taken later.
    public static let offsetMillisecondsMax: Int64 = 100 * 366 * 86_400_000
    /// Timestamps are whole milliseconds: four truncations make a true round trip of 0 read as down to -2 ms.
    static let delayRoundingMilliseconds: Int64 = 2

    public private(set) var offsets: [Int64] = []
    /// The last sample's round trip (NTP's delay); nil when the peer echoed nothing (the offset is then
    /// one-way and counts the transit as skew: milliseconds on a LAN).
    public private(set) var delayMilliseconds: Int64?
    /// Our wall clock when the last message arrived.
    public private(set) var measuredAtMilliseconds: Int64 = 0
    /// The peer's last message: its send time and our receive time, which our next message echoes.
    public private(set) var lastHeard: ClockStamps.Echo?

    public init() {}

    /// The peer's clock minus ours (positive: ahead), the median of the last samples; nil before any.
    public var offsetMilliseconds: Int64? { offsets.isEmpty ? nil : Self.median(offsets) }

    /// Adds one message's sample: NTP's offset and delay with the peer's echo, else the one-way offset.
    public mutating func record(_ stamps: ClockStamps) {
        let sample = stamps.echoed.flatMap {
            Self.ntpSample(
                originate: $0.sentAtMilliseconds, receive: $0.receivedAtMilliseconds, transmit: stamps.sentAtMilliseconds,
                destination: stamps.receivedAtMilliseconds)
        }
        offsets.append(sample?.offset ?? Self.oneWayOffset(sent: stamps.sentAtMilliseconds, received: stamps.receivedAtMilliseconds))
        offsets = Array(offsets.suffix(Self.samplesMax))
        delayMilliseconds = sample?.delay
        measuredAtMilliseconds = stamps.receivedAtMilliseconds
        lastHeard = ClockStamps.Echo(sentAtMilliseconds: stamps.sentAtMilliseconds, receivedAtMilliseconds: stamps.receivedAtMilliseconds)
    }

    /// The peer's clock minus ours from one message: its send time against our receive time, clamped.
    public static func oneWayOffset(sent: Int64, received: Int64) -> Int64 {
        let (offset, overflow) = sent.subtractingReportingOverflow(received)
        return overflow ? (sent < 0 ? -offsetMillisecondsMax : offsetMillisecondsMax) : clamp(offset)
    }

    /// NTP's offset ((t2 - t1) + (t3 - t4)) / 2 and delay (t4 - t1) - (t3 - t2): t1 our send, t2 the
    /// peer's receive, t3 its send, t4 our receive. Nil when a step overflows or the delay is negative
    /// (timestamps no real exchange gives: a hostile peer, or a clock stepped in between).
    public static func ntpSample(originate t1: Int64, receive t2: Int64, transmit t3: Int64, destination t4: Int64) -> (offset: Int64, delay: Int64)? {
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

    public static func clamp(_ offset: Int64) -> Int64 { min(max(offset, -offsetMillisecondsMax), offsetMillisecondsMax) }

    /// The middle sample (samples are bounded, so never overflowing).
    static func median(_ samples: [Int64]) -> Int64 {
        let sorted = samples.sorted()
        return sorted.isEmpty ? 0 : sorted[sorted.count / 2]
    }
}

/// This node's wall clock as it shows it to peers on clock messages and enrolment requests.
public enum WallClock {
    /// Milliseconds since 1970, shifted by the test offset (a Date at the edge: it crosses to a peer).
    public static func milliseconds() -> Int64 {
        Int64(Date().timeIntervalSince1970 * 1000).addingReportingOverflow(testOffsetMilliseconds).partialValue
    }

    /// FOR TESTS ONLY: `RAMPART_TEST_CLOCK_OFFSET_MS` shifts the wall clock this process shows its peers
    /// (`ha-clock`, `gw-welcome` / `gw-status`, an enrolment request), so a test injects skew without
    /// changing the machine's clock. Never set it in production.
    public static let testOffsetMilliseconds: Int64 = {
        guard let text = ProcessInfo.processInfo.environment["RAMPART_TEST_CLOCK_OFFSET_MS"], let value = Int64(text) else { return 0 }
        return ClockSamples.clamp(value)
    }()
}
