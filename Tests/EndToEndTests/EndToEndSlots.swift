import Synchronization
import Testing

/// At most `EndToEndSlots.count` end-to-end suites run at once. Each starts real servers and waits on
/// their deadlines (handshakes, enrolment, heartbeats, idle timeouts); thirty of them at once on two
/// cores starved one another until those deadlines passed (CI failed a different one each run). A suite
/// nested in one that holds a slot runs in its parent's.
struct EndToEndSlot: SuiteTrait, TestScoping {
    var isRecursive: Bool { false }

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        if EndToEndSlots.isHeld {
            try await function()
            return
        }
        await EndToEndSlots.shared.acquire()
        defer { EndToEndSlots.shared.release() }
        try await EndToEndSlots.$isHeld.withValue(true) { try await function() }
    }
}

extension Trait where Self == EndToEndSlot {
    /// The suite takes one of the end-to-end slots while it runs.
    static var endToEndSlot: Self { Self() }
}

/// A counting semaphore for suites (waiters resume in order).
final class EndToEndSlots: Sendable {
    static let count = 4
    static let shared = EndToEndSlots(count: count)
    @TaskLocal static var isHeld = false

    private let state: Mutex<(free: Int, waiters: [CheckedContinuation<Void, Never>])>

    init(count: Int) { state = Mutex((count, [])) }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state -> Bool in
                guard state.free > 0 else {
                    state.waiters.append(continuation)
                    return false
                }
                state.free -= 1
                return true
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.waiters.isEmpty else {
                state.free += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
