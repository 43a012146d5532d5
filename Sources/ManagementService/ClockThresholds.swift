import Foundation
import ManagementModel
import TrustCore

/// Warning and problem thresholds of a peer's clock offset (`rampart server --clock-warning-ms` and
/// `--clock-problem-ms`). Above the problem threshold a promotion and an enrolment are refused unless forced.
public struct ClockThresholds: Codable, Sendable, Equatable {
    /// Servers on NTP are milliseconds apart.
    public static let warningMillisecondsDefault: Int64 = 5_000
    /// Beyond this, certificates this server signs would be taken as not yet valid by the peer.
    public static let problemMillisecondsDefault = Int64(TrustLimits.enrolmentClockSkewSecondsMax) * 1000

    public let warningMilliseconds: Int64
    public let problemMilliseconds: Int64

    /// Nil unless 0 < warning <= problem <= `ClockSamples.offsetMillisecondsMax`.
    public init?(warningMilliseconds: Int64 = warningMillisecondsDefault, problemMilliseconds: Int64 = problemMillisecondsDefault) {
        guard warningMilliseconds > 0, warningMilliseconds <= problemMilliseconds, problemMilliseconds <= ClockSamples.offsetMillisecondsMax
        else { return nil }
        self.warningMilliseconds = warningMilliseconds
        self.problemMilliseconds = problemMilliseconds
    }

    enum CodingKeys: String, CodingKey {
        case warningMilliseconds = "warning-ms"
        case problemMilliseconds = "problem-ms"
    }

    /// As `show-ha-status` sends them; values `init?` refuses are refused here too.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        guard
            let thresholds = ClockThresholds(
                warningMilliseconds: try container.decode(Int64.self, forKey: .warningMilliseconds),
                problemMilliseconds: try container.decode(Int64.self, forKey: .problemMilliseconds))
        else { throw DecodingError.dataCorruptedError(forKey: .problemMilliseconds, in: container, debugDescription: "clock thresholds out of range") }
        self = thresholds
    }

    /// "over 5 s a warning, over 300 s a problem (promotion and enrolment refuse unless forced)".
    public var text: String {
        "over \(Self.seconds(warningMilliseconds)) a warning, over \(Self.seconds(problemMilliseconds)) a problem (promotion and enrolment refuse unless forced)"
    }

    static func seconds(_ milliseconds: Int64) -> String {
        milliseconds % 1000 == 0 ? "\(milliseconds / 1000) s" : String(format: "%.1f s", Double(milliseconds) / 1000)
    }

    public static let standard = ClockThresholds(warningMilliseconds: warningMillisecondsDefault, problemMilliseconds: problemMillisecondsDefault)!

    /// How far off a clock offset is: up to the warning threshold ok, up to the problem threshold a warning.
    public func level(_ offsetMilliseconds: Int64) -> ClockSkew.Level {
        // magnitude: no overflow even at Int64.min.
        let size = offsetMilliseconds.magnitude
        return size <= warningMilliseconds.magnitude ? .ok : size <= problemMilliseconds.magnitude ? .warning : .problem
    }
}

/// A peer server's or a gateway's clock as this server measured it (`rampart time`, `ha status`).
public struct ClockMeasurement: Sendable, Equatable {
    /// The peer's clock minus ours (positive: ahead); the median of the last samples.
    public var offsetMilliseconds: Int64
    /// The last sample's round trip, NTP's delay; nil when the peer echoes no timestamps (an older
    /// release: the offset is then one-way and counts the transit as skew).
    public var delayMilliseconds: Int64?
    /// Our wall clock when the last sample arrived.
    public var measuredAtMilliseconds: Int64
    public var level: ClockSkew.Level

    public init(offsetMilliseconds: Int64, delayMilliseconds: Int64?, measuredAtMilliseconds: Int64, level: ClockSkew.Level) {
        self.offsetMilliseconds = offsetMilliseconds
        self.delayMilliseconds = delayMilliseconds
        self.measuredAtMilliseconds = measuredAtMilliseconds
        self.level = level
    }

    /// The measurement of `samples` at `thresholds`; nil before any sample.
    public init?(_ samples: ClockSamples, thresholds: ClockThresholds) {
        guard let offset = samples.offsetMilliseconds else { return nil }
        self.init(
            offsetMilliseconds: offset, delayMilliseconds: samples.delayMilliseconds, measuredAtMilliseconds: samples.measuredAtMilliseconds,
            level: thresholds.level(offset))
    }

    /// `{"offset-ms", "delay-ms" (null: the peer echoes nothing), "measured-at", "level"}`.
    public var json: JSONValue {
        [
            "offset-ms": .int(offsetMilliseconds), "delay-ms": delayMilliseconds.map(JSONValue.int) ?? .null,
            "measured-at": Renderer.timestamp(measuredAtMilliseconds), "level": .string(level.rawValue),
        ]
    }
}
