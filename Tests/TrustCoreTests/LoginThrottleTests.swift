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
        // Third failure: the free ones are used up, the next attempt waits 1 s.
        #expect(throttle.recordFailure(alice, now: at(20)) == .refused(retryAfterMilliseconds: 1_000))
        #expect(throttle.check(alice, now: at(520)) == .refused(retryAfterMilliseconds: 500))
        #expect(throttle.check(alice, now: at(1_020)) == .allowed)
        #expect(throttle.recordFailure(alice, now: at(1_020)) == .refused(retryAfterMilliseconds: 2_000))
        #expect(throttle.recordFailure(alice, now: at(3_020)) == .refused(retryAfterMilliseconds: 4_000))
        #expect(throttle.recordFailure(alice, now: at(7_020)) == .refused(retryAfterMilliseconds: 8_000))
        #expect(throttle.recordFailure(alice, now: at(15_020)) == .refused(retryAfterMilliseconds: 8_000))
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

    @Test("concurrent attempts beyond the free failures are refused before any verification")
    func reservationsCountAgainstTheBudget() {
        var throttle = LoginThrottle(configuration: configuration)
        // 50 attempts arrive before any outcome is known: only the budget (3) may verify.
        let decisions = (0..<50).map { _ in throttle.reserve(alice, now: at(0)) }
        #expect(decisions.filter { $0 == .allowed }.count == 3)
        for _ in 0..<3 { throttle.release(alice, succeeded: false, now: at(5)) }
        #expect(throttle.reserve(alice, now: at(6)) == .refused(retryAfterMilliseconds: 999))
        // After the delay, one attempt at a time.
        #expect(throttle.reserve(alice, now: at(1_005)) == .allowed)
        #expect(throttle.reserve(alice, now: at(1_005)) != .allowed)
        throttle.release(alice, succeeded: true, now: at(1_010))
        #expect(throttle.reserve(alice, now: at(1_010)) == .allowed)
    }

    @Test("failed attempts and reservations settle: a released reservation leaves no entry behind")
    func reservationsAreReleased() {
        var throttle = LoginThrottle(configuration: configuration)
        #expect(throttle.reserve(alice, now: at(0)) == .allowed)
        #expect(throttle.reserve(alice, now: at(0)) == .allowed)
        throttle.release(alice, succeeded: true, now: at(1))
        throttle.release(alice, succeeded: false, now: at(2))
        throttle.removeExpired(now: at(2 + 60_000))
        #expect(throttle.trackedKeyCount == 0)
    }
}
