import Foundation
import Testing

@testable import ManagementModel

/// NTP's arithmetic on clock messages, the one place both peer servers (`ha-clock`) and gateways
/// (`gw-welcome` / `gw-status`) are measured by.
@Suite("Clock samples")
struct ClockSamplesTests {
    @Test("NTP arithmetic: offset ((t2-t1)+(t3-t4))/2 and delay (t4-t1)-(t3-t2)")
    func ntpArithmetic() {
        // The peer is 40 ms ahead, 2 ms away each way, and held our message 500 ms before answering.
        let sample = ClockSamples.ntpSample(originate: 1_000_000, receive: 1_000_042, transmit: 1_000_542, destination: 1_000_504)
        #expect(sample?.offset == 40 && sample?.delay == 4, "\(String(describing: sample))")
        let behind = ClockSamples.ntpSample(originate: 5_000, receive: 2_001, transmit: 2_101, destination: 5_102)
        #expect(behind?.offset == -3_000 && behind?.delay == 2)
        // Whole milliseconds: a true round trip of 0 can read -1; it counts as 0, a larger negative is no sample.
        #expect(ClockSamples.ntpSample(originate: 10, receive: 10, transmit: 11, destination: 10)?.delay == 0)
        #expect(ClockSamples.ntpSample(originate: 10, receive: 10, transmit: 500, destination: 20) == nil)
    }

    @Test("NTP arithmetic on hostile timestamps: no trap, no sample, and the offset stays bounded")
    func ntpHostileTimestamps() {
        let edges: [Int64] = [.min, .min + 1, -1, 0, 1, .max - 1, .max, ClockSamples.offsetMillisecondsMax]
        for t1 in edges {
            for t2 in edges {
                for t3 in edges {
                    for t4 in edges {
                        guard let sample = ClockSamples.ntpSample(originate: t1, receive: t2, transmit: t3, destination: t4) else { continue }
                        #expect(sample.offset.magnitude <= ClockSamples.offsetMillisecondsMax.magnitude && sample.delay >= 0)
                    }
                }
            }
        }
        #expect(ClockSamples.ntpSample(originate: .min, receive: .max, transmit: 0, destination: 0) == nil)
        var samples = ClockSamples()
        samples.record(
            ClockStamps(sentAtMilliseconds: .max, receivedAtMilliseconds: .min, echoed: .init(sentAtMilliseconds: .min, receivedAtMilliseconds: .max)))
        #expect(samples.offsetMilliseconds == ClockSamples.offsetMillisecondsMax && samples.delayMilliseconds == nil, "the clamped one-way offset")
    }

    @Test("a gateway 30 s ahead that held the welcome 5 s: offset 30 s, delay the transit only; the median resists one late message")
    func gatewayExchange() throws {
        // Server's welcome at t1 = 1_000_000 (ours); the gateway receives it at its 1_030_003; its status
        // 5 s later at its 1_035_003 echoes both; we receive it at 1_005_006.
        let message: JSONValue = ["type": "gw-status", "sent-at-ms": 1_035_003, "echo-sent-at-ms": 1_000_000, "echo-received-at-ms": 1_030_003]
        let stamps = try #require(ClockStamps(message: message, receivedAtMilliseconds: 1_005_006))
        var samples = ClockSamples()
        samples.record(stamps)
        #expect(samples.offsetMilliseconds == 30_000 && samples.delayMilliseconds == 6 && samples.measuredAtMilliseconds == 1_005_006)
        #expect(samples.lastHeard == ClockStamps.Echo(sentAtMilliseconds: 1_035_003, receivedAtMilliseconds: 1_005_006))
        samples.record(ClockStamps(sentAtMilliseconds: 2_000_000, receivedAtMilliseconds: 1_000_000))
        samples.record(stamps)
        #expect(samples.offsetMilliseconds == 30_000, "one late one-way sample does not move the median")
    }

    @Test("an older peer's message without the echo (or with half of it) gives a one-way offset and no delay; without sent-at-ms, nothing")
    func olderPeers() throws {
        let half: JSONValue = ["sent-at-ms": 1_000_542, "echo-sent-at-ms": 1_000_000]
        let stamps = try #require(ClockStamps(message: half, receivedAtMilliseconds: 1_000_504))
        #expect(stamps.echoed == nil)
        var samples = ClockSamples()
        samples.record(stamps)
        #expect(samples.offsetMilliseconds == 38 && samples.delayMilliseconds == nil)
        #expect(ClockStamps(message: ["type": "gw-status"], receivedAtMilliseconds: 1) == nil)
        #expect(ClockStamps(message: ["sent-at-ms": "soon"], receivedAtMilliseconds: 1) == nil)
        #expect(ClockSamples().offsetMilliseconds == nil, "never measured")
    }
}
