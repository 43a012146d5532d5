import Foundation
import Testing

@testable import TrustCore

@Suite("Login throttle")
struct LoginThrottleTests {
    let alice = LoginThrottle.Key(user: "alice", address: "192.0.2.1")
    let configuration = LoginThrottle.Configuration(
        freeFailures: 3, windowMilliseconds: 60_000, delayMillisecondsBase: 1_000, delayMillisecondsMax: 8_000,
        trackedKeysMax: 100)

    func at(_ milliseconds: Int64) -> Date {
        referenceTime.addingTimeInterval(Double(milliseconds) / 1000)
    }

    @Test("free failures pass, then delays double up to the maximum")
    func escalation() {
        var throttle = LoginThrottle(configuration: configuration)
        #expect(throttle.check(alice, now: at(0)) == .allowed)
        #expect(throttle.recordFailure(alice, now: at(0)) == .allowed)
        #expect(throttle.recordFailure(alice, now: at(10)) == .allowed)
        #expect(throttle.recordFailure(alice, now: at(20)) == .allowed)
        // Fourth failure: 1 s.
        #expect(throttle.recordFailure(alice, now: at(30)) == .refused(retryAfterMilliseconds: 1_000))
        #expect(throttle.check(alice, now: at(530)) == .refused(retryAfterMilliseconds: 500))
        #expect(throttle.check(alice, now: at(1_030)) == .allowed)
        #expect(throttle.recordFailure(alice, now: at(1_030)) == .refused(retryAfterMilliseconds: 2_000))
        #expect(throttle.recordFailure(alice, now: at(3_030)) == .refused(retryAfterMilliseconds: 4_000))
        #expect(throttle.recordFailure(alice, now: at(7_030)) == .refused(retryAfterMilliseconds: 8_000))
        #expect(throttle.recordFailure(alice, now: at(15_030)) == .refused(retryAfterMilliseconds: 8_000))
        // Other keys are not affected: same user from another address, another user from the same one.
        #expect(throttle.check(.init(user: "alice", address: "192.0.2.2"), now: at(15_030)) == .allowed)
        #expect(throttle.check(.init(user: "bob", address: "192.0.2.1"), now: at(15_030)) == .allowed)
    }

    @Test("success resets the key")
    func successResets() {
        var throttle = LoginThrottle(configuration: configuration)
        for step in 0..<4 { throttle.recordFailure(alice, now: at(Int64(step))) }
        #expect(throttle.check(alice, now: at(5)) != .allowed)
        throttle.recordSuccess(alice)
        #expect(throttle.check(alice, now: at(5)) == .allowed)
        #expect(throttle.recordFailure(alice, now: at(6)) == .allowed)
        #expect(throttle.trackedKeyCount == 1)
    }

    @Test("failures are forgotten after the window")
    func windowExpiry() {
        var throttle = LoginThrottle(configuration: configuration)
        for step in 0..<3 { throttle.recordFailure(alice, now: at(Int64(step))) }
        // Within the window the next failure is delayed; after it, counting starts again.
        #expect(throttle.recordFailure(alice, now: at(2 + 60_000)) == .allowed)
        throttle.removeExpired(now: at(2 + 120_000))
        #expect(throttle.trackedKeyCount == 0)
    }

    @Test("memory is bounded: the oldest keys are evicted first")
    func bounded() {
        var throttle = LoginThrottle(configuration: configuration)
        for index in 0..<250 {
            let key = LoginThrottle.Key(user: "user\(index)", address: "198.51.100.1")
            for _ in 0..<4 { throttle.recordFailure(key, now: at(Int64(index))) }
            #expect(throttle.trackedKeyCount <= 100)
        }
        #expect(throttle.trackedKeyCount > 0)
        // The newest key is still refused; the oldest was evicted.
        #expect(throttle.check(.init(user: "user249", address: "198.51.100.1"), now: at(250)) != .allowed)
        #expect(throttle.check(.init(user: "user0", address: "198.51.100.1"), now: at(250)) == .allowed)
    }
}
