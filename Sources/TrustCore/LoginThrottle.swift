import Foundation

/// Slows down password guessing: counts failed logins per key (administrator name and client address)
/// and, after `freeFailures` failures within `windowMilliseconds`, refuses further attempts for a delay
/// that doubles with each failure up to `delayMillisecondsMax`. A successful login resets the key.
///
/// Pure: no clock, no I/O; the caller passes `now`. Memory is bounded by `trackedKeysMax`: when full,
/// expired entries are dropped first, then the entries whose last failure is oldest.
///
/// Use: `check` before verifying the password (a refusal answers without doing the slow hash), then
/// `recordFailure` or `recordSuccess`.
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

    /// Records a failed attempt by `key` at `now` and returns what its next attempt will meet.
    @discardableResult
    public mutating func recordFailure(_ key: Key, now: Date) -> Decision {
        let nowMilliseconds = Self.milliseconds(now)
        var entry: Entry
        if let existing = entries[key], !isExpired(existing, nowMilliseconds: nowMilliseconds) {
            entry = existing
        } else {
            entries[key] = nil
            makeRoom(nowMilliseconds: nowMilliseconds)
            entry = Entry(failures: 0, lastFailureMilliseconds: nowMilliseconds, blockedUntilMilliseconds: 0)
        }
        entry.failures += 1
        entry.lastFailureMilliseconds = max(entry.lastFailureMilliseconds, nowMilliseconds)
        let excess = entry.failures - configuration.freeFailures
        if excess > 0 {
            // Doubling capped well before overflow: 2^20 times any sane base exceeds any sane maximum.
            let shift = Int64(min(excess - 1, 20))
            let delay = min(configuration.delayMillisecondsBase << shift, configuration.delayMillisecondsMax)
            entry.blockedUntilMilliseconds = max(entry.blockedUntilMilliseconds, nowMilliseconds + delay)
        }
        entries[key] = entry
        return check(key, now: now)
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
        entry.blockedUntilMilliseconds <= nowMilliseconds
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
