import Synchronization

/// When a long-lived channel last received a frame. Both sides of every channel send within a
/// heartbeat period, so a channel silent much longer is dead even when TCP has not noticed (a
/// black-holed connection would hold it until the kernel gives up, many minutes later).
public final class LastHeard: Sendable {
    private let at = Mutex(ContinuousClock.now)

    public init() {}

    /// A frame arrived.
    public func now() { at.withLock { $0 = ContinuousClock.now } }

    public var silence: Duration { ContinuousClock.now - at.withLock { $0 } }

    /// Checks every `period` until the channel has been silent longer than `limit`, then returns;
    /// `eachPeriod` runs at every check that finds it alive (a heartbeat of this side). Throws when cancelled.
    public func waitForSilence(
        longerThan limit: Duration, checkingEvery period: Duration,
        eachPeriod: () async -> Void = {}
    ) async throws {
        while true {
            try await Task.sleep(for: period)
            if silence > limit { return }
            await eachPeriod()
        }
    }
}

/// How a dial loop waits between attempts: from `delayMin`, doubling up to `delayMax`; back to
/// `delayMin` after a channel that lasted longer than `workingAfter` (a peer that accepts and closes
/// at once must not be redialed in a tight loop).
public struct RedialBackoff: Sendable {
    public var delayMin: Duration
    public var delayMax: Duration
    public var workingAfter: Duration
    /// While the target needs no dial (say, the peer dialed this side), how often to look again.
    public var idleCheck: Duration

    public init(delayMin: Duration, delayMax: Duration, workingAfter: Duration, idleCheck: Duration) {
        self.delayMin = delayMin
        self.delayMax = delayMax
        self.workingAfter = workingAfter
        self.idleCheck = idleCheck
    }
}

/// The dial loops running and what each should dial now: one loop per key (a peer's name, an
/// address), started when its key appears in `update` and ended once the key is gone.
public final class DialPlan<Key: Hashable & Sendable, Target: Sendable>: Sendable {
    private let state = Mutex<(targets: [Key: Target], running: Set<Key>)>(([:], []))

    public init() {}

    /// Sets the targets (of two with one key, the first counts); returns, in order, the keys that
    /// need a new dial loop.
    public func update(_ targets: [(key: Key, target: Target)]) -> [Key] {
        state.withLock { state in
            state.targets = [:]
            var starting: [Key] = []
            for (key, target) in targets where state.targets[key] == nil {
                state.targets[key] = target
                if state.running.insert(key).inserted { starting.append(key) }
            }
            return starting
        }
    }

    /// The current target of `key`; nil ends its loop (and frees the key for a later one).
    public func target(_ key: Key) -> Target? {
        state.withLock { state in
            guard let target = state.targets[key] else {
                state.running.remove(key)
                return nil
            }
            return target
        }
    }

    /// Dials `key`'s current target again and again, with `backoff` between attempts, until the plan
    /// drops the key or the task is cancelled. `dial` lasts as long as the channel it made and says
    /// whether one was established; while `isIdle` holds no dial is made.
    public func dialLoop(
        _ key: Key, backoff: RedialBackoff, isIdle: (Target) -> Bool = { _ in false },
        dial: (Target) async -> Bool
    ) async {
        var delay = backoff.delayMin
        while !Task.isCancelled, let target = target(key) {
            if isIdle(target) {
                try? await Task.sleep(for: backoff.idleCheck)
                continue
            }
            let started = ContinuousClock.now
            if await dial(target), ContinuousClock.now - started > backoff.workingAfter { delay = backoff.delayMin }
            try? await Task.sleep(for: delay)
            delay = min(delay * 2, backoff.delayMax)
        }
    }
}
