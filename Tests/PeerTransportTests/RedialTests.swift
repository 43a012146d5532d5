import Synchronization
import Testing

@testable import PeerTransport

/// One dial plan, one redial loop, one last-heard tracker and one address parser, for the HA mesh
/// and the gateway agent alike.
@Suite("PeerTransport: dial plan, redial loop, last heard, SIC addresses")
struct RedialTests {
    static let quickBackoff = RedialBackoff(
        delayMin: .milliseconds(10), delayMax: .milliseconds(40), workingAfter: .seconds(600),
        idleCheck: .milliseconds(5))

    @Test("a plan starts one loop per new key, and a key that goes ends its loop and may come back")
    func planKeys() {
        let plan = DialPlan<String, Int>()
        #expect(plan.update([("a", 1), ("b", 2), ("a", 3)]) == ["a", "b"])
        #expect(plan.target("a") == 1, "of two targets with one key, the first counts")
        #expect(plan.update([("b", 4), ("c", 5)]) == ["c"], "b runs already")
        #expect(plan.target("b") == 4, "a loop dials its key's current target")
        #expect(plan.target("a") == nil, "a is gone: its loop ends")
        #expect(plan.update([("a", 6)]) == ["a"], "a later a starts a new loop")
    }

    @Test("the loop waits from delayMin, doubling up to delayMax, and ends when the plan drops its key")
    func backoff() async {
        let plan = DialPlan<String, String>()
        _ = plan.update([("peer", "address")])
        let attempts = Mutex<[ContinuousClock.Instant]>([])
        await plan.dialLoop("peer", backoff: Self.quickBackoff) { target in
            let count = attempts.withLock { attempts in
                attempts.append(.now)
                return attempts.count
            }
            if count == 5 { _ = plan.update([]) }
            return false
        }
        let times = attempts.withLock { $0 }
        #expect(times.count == 5)
        for (gap, least) in zip(zip(times.dropFirst(), times).map { $0 - $1 }, [10, 20, 40, 40]) {
            #expect(gap >= .milliseconds(least), "\(times)")
        }
    }

    @Test("while the target needs no dial (the peer dialed in), the loop only looks again")
    func idle() async {
        let plan = DialPlan<String, String>()
        _ = plan.update([("peer", "address")])
        var looks = 0
        var dials = 0
        await plan.dialLoop(
            "peer", backoff: Self.quickBackoff,
            isIdle: { _ in
                looks += 1
                if looks == 3 { _ = plan.update([]) }
                return true
            },
            dial: { _ in
                dials += 1
                return true
            })
        #expect(looks == 3 && dials == 0)
    }

    @Test("a channel stays alive while frames arrive; once silent past the limit, the wait ends")
    func silence() async throws {
        let heard = LastHeard()
        let beats = Mutex(0)
        // Each check that finds it alive sends this side's heartbeat; the peer answers the first five.
        try await heard.waitForSilence(longerThan: .milliseconds(50), checkingEvery: .milliseconds(10)) {
            if beats.withLock({
                $0 += 1
                return $0
            }) < 5 {
                heard.now()
            }
        }
        #expect(heard.silence > .milliseconds(50))
        heard.now()
        #expect(heard.silence < .seconds(60), "a frame resets it")
    }

    @Test("HOST:PORT, an IPv6 host in brackets or not; anything else is refused")
    func addresses() {
        #expect(SICAddress(argument: "127.0.0.1:18191") == SICAddress(host: "127.0.0.1", port: 18191))
        #expect(SICAddress(argument: "[::1]:18191") == SICAddress(host: "::1", port: 18191))
        #expect(SICAddress(argument: "::1:18191") == SICAddress(host: "::1", port: 18191))
        for bad in ["", "host", "host:", ":80", "host:0", "host:65536", "host:x", "[]:80", "host:-1"] {
            #expect(SICAddress(argument: bad) == nil, "\(bad)")
        }
        #expect("\(SICAddress(host: "mgmt-a", port: 18191))" == "mgmt-a:18191", "as servers announce and record it")
    }
}
