import Foundation

/// Slows down password guessing: counts failed logins per key (administrator name and client address)
/// and, after `freeFailures` failures within `windowMilliseconds`, refuses further attempts for a delay
/// that doubles with each failure up to `delayMillisecondsMax`. A successful login resets the key.
///
/// Pure: no clock, no I/O; the caller passes `now`. Memory is bounded by `trackedKeysMax`: when full,
/// expired entries are dropped first, then the entries whose last failure is oldest.
///
/// Use, when the verification runs concurrently with other attempts (a login's slow hash): `reserve`
/// before verifying (a refusal answers without doing the hash), then `release` with the outcome. An
/// attempt in flight counts against the budget, so concurrent attempts beyond it are refused at once
/// instead of all being verified. Use, when nothing else can happen between the check and the
/// outcome: `check`, then `recordFailure` or `recordSuccess`.
public struct LoginThrottle: Sendable {
    /// Tunable limits; the defaults suit an administrator login.
    public struct Configuration: Sendable, Equatable {
        /// Failures allowed within the window before attempts are delayed.
        public var freeFailures: Int
        /// A key's failures are forgotten this long after its last failure.
        public var windowMilliseconds: Int64
        /// Delay after the first failure beyond `freeFailures`; it doubles with each further failure.
        public var delayMillisecondsBase: Int64
        /// The longest delay.
        public var delayMillisecondsMax: Int64
        /// Most keys tracked at once.
        public var trackedKeysMax: Int

        /// Creates a configuration; every value must be positive.
        public init(
            freeFailures: Int = 5,
            windowMilliseconds: Int64 = 15 * 60 * 1000,
            delayMillisecondsBase: Int64 = 1000,
            delayMillisecondsMax: Int64 = 5 * 60 * 1000,
            trackedKeysMax: Int = 10_000
        ) {
            precondition(freeFailures >= 0 && windowMilliseconds > 0 && delayMillisecondsBase > 0)
            precondition(delayMillisecondsMax >= delayMillisecondsBase && trackedKeysMax > 0)
            self.freeFailures = freeFailures
            self.windowMilliseconds = windowMilliseconds
            self.delayMillisecondsBase = delayMillisecondsBase
            self.delayMillisecondsMax = delayMillisecondsMax
            self.trackedKeysMax = trackedKeysMax
        }
    }

    /// Who is trying: the administrator name as typed and the client's address.
    public struct Key: Hashable, Sendable, Comparable {
        /// The user name as given in the login request.
        public var user: String
        /// The client's address (without port).
        public var address: String

        /// Creates a key.
        public init(user: String, address: String) {
            self.user = user
            self.address = address
        }

        /// Orders by user, then address: a deterministic tie-break for eviction.
        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.user, lhs.address) < (rhs.user, rhs.address)
        }
    }

    /// The answer to "may this key try now?".
    public enum Decision: Sendable, Equatable {
        /// Go ahead and verify the password.
        case allowed
        /// Refuse without verifying; the client may try again after this many milliseconds.
        case refused(retryAfterMilliseconds: Int64)
    }

    struct Entry: Sendable, Equatable {
        var failures: Int
        var lastFailureMilliseconds: Int64
        var blockedUntilMilliseconds: Int64
        /// Reserved attempts whose outcome is not known yet.
        var inFlight = 0
    }

    /// The limits in force.
    public let configuration: Configuration
    private(set) var entries: [Key: Entry] = [:]

    /// Creates an empty throttle.
    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Number of keys currently tracked (never more than `configuration.trackedKeysMax`).
    public var trackedKeyCount: Int { entries.count }

    /// Whether `key` may attempt a login at `now`.
    public func check(_ key: Key, now: Date) -> Decision {
        guard let entry = entries[key] else { return .allowed }
        let nowMilliseconds = Self.milliseconds(now)
        if entry.blockedUntilMilliseconds > nowMilliseconds {
            return .refused(retryAfterMilliseconds: entry.blockedUntilMilliseconds - nowMilliseconds)
        }
        return .allowed
    }

    /// Reserves one attempt by `key` at `now`: allowed while the failures so far plus the attempts in
    /// flight stay within `freeFailures` (after a delay has passed, one attempt at a time). An allowed
    /// attempt must be followed by `release`.
    public mutating func reserve(_ key: Key, now: Date) -> Decision {
        if case .refused(let retry) = check(key, now: now) { return .refused(retryAfterMilliseconds: retry) }
        var entry = liveEntry(key, nowMilliseconds: Self.milliseconds(now))
        let budget = max(configuration.freeFailures - entry.failures, 1)
        guard entry.inFlight < budget else {
            // The attempts in flight may use up the budget: ask again once their outcome is known.
            entries[key] = entry
            return .refused(retryAfterMilliseconds: configuration.delayMillisecondsBase)
        }
        entry.inFlight += 1
        entries[key] = entry
        return .allowed
    }

    /// Ends an attempt `reserve` allowed: its outcome is recorded as `recordSuccess` or `recordFailure` do.
    public mutating func release(_ key: Key, succeeded: Bool, now: Date) {
        if var entry = entries[key] {
            entry.inFlight = max(entry.inFlight - 1, 0)
            entries[key] = entry
        }
        if succeeded { recordSuccess(key) } else { recordFailure(key, now: now) }
    }

    /// Records a failed attempt by `key` at `now` and returns what its next attempt will meet.
    @discardableResult
    public mutating func recordFailure(_ key: Key, now: Date) -> Decision {
        let nowMilliseconds = Self.milliseconds(now)
        var entry = liveEntry(key, nowMilliseconds: nowMilliseconds)
        entry.failures += 1
        entry.lastFailureMilliseconds = max(entry.lastFailureMilliseconds, nowMilliseconds)
        let excess = entry.failures - configuration.freeFailures
        if excess >= 0 {
            // Doubling capped well before overflow: 2^20 times any sane base exceeds any sane maximum.
            let shift = Int64(min(excess, 20))
            let delay = min(configuration.delayMillisecondsBase << shift, configuration.delayMillisecondsMax)
            entry.blockedUntilMilliseconds = max(entry.blockedUntilMilliseconds, nowMilliseconds + delay)
        }
        entries[key] = entry
        return check(key, now: now)
    }

    /// The key's entry as it counts at `now`: a new one (room made for it) when it had none or its
    /// failures are forgotten; attempts in flight are kept either way.
    private mutating func liveEntry(_ key: Key, nowMilliseconds: Int64) -> Entry {
        if let existing = entries[key], !isExpired(existing, nowMilliseconds: nowMilliseconds) {
            if existing.failures > 0, nowMilliseconds - existing.lastFailureMilliseconds >= configuration.windowMilliseconds,
                existing.blockedUntilMilliseconds <= nowMilliseconds
            {
                return Entry(failures: 0, lastFailureMilliseconds: nowMilliseconds, blockedUntilMilliseconds: 0, inFlight: existing.inFlight)
            }
            return existing
        }
        entries[key] = nil
        makeRoom(nowMilliseconds: nowMilliseconds)
        return Entry(failures: 0, lastFailureMilliseconds: nowMilliseconds, blockedUntilMilliseconds: 0)
    }

    /// Records a successful login by `key`: its failures are forgotten.
    public mutating func recordSuccess(_ key: Key) {
        entries[key] = nil
    }

    /// Drops every entry that no longer affects decisions at `now`. `recordFailure` does this by itself
    /// when full; a server may also call it from a periodic tick.
    public mutating func removeExpired(now: Date) {
        let nowMilliseconds = Self.milliseconds(now)
        entries = entries.filter { !isExpired($0.value, nowMilliseconds: nowMilliseconds) }
    }

    private func isExpired(_ entry: Entry, nowMilliseconds: Int64) -> Bool {
        entry.inFlight == 0 && entry.blockedUntilMilliseconds <= nowMilliseconds
            && nowMilliseconds - entry.lastFailureMilliseconds >= configuration.windowMilliseconds
    }

    /// Ensures there is room for one more key.
    private mutating func makeRoom(nowMilliseconds: Int64) {
        guard entries.count >= configuration.trackedKeysMax else { return }
        entries = entries.filter { !isExpired($0.value, nowMilliseconds: nowMilliseconds) }
        guard entries.count >= configuration.trackedKeysMax else { return }
        // Evict a tenth at once (at least one) so that a flood of new keys costs one sort per many
        // insertions, not one per insertion. Oldest last failure goes first; ties by key, deterministically.
        let evictCount = max(1, configuration.trackedKeysMax / 10, entries.count - configuration.trackedKeysMax + 1)
        let victims = entries.sorted { lhs, rhs in
            lhs.value.lastFailureMilliseconds != rhs.value.lastFailureMilliseconds
                ? lhs.value.lastFailureMilliseconds < rhs.value.lastFailureMilliseconds
                : lhs.key < rhs.key
        }.prefix(evictCount)
        for victim in victims { entries[victim.key] = nil }
    }

    static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
    }
}
