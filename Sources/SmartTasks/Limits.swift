/// The bounds of SmartTasks delivery: retries, storms, the node-local queue and history, output.
public struct SmartTaskLimits: Sendable, Equatable {
    /// Attempts per delivery, the first included; after the last failure the delivery is a dead letter.
    public var attemptsMax = 6
    /// The delay before the second attempt; each later one doubles it, up to `retryDelayMaxMilliseconds`.
    public var retryDelayBaseMilliseconds: Int64 = 2_000
    public var retryDelayMaxMilliseconds: Int64 = 300_000
    /// Each retry delay varies by up to this fraction either way, so many nodes or tasks do not retry in step.
    public var retryJitterFraction = 0.2
    /// Two deliveries of one task start at least this far apart: a storm of events is spread out, not dropped.
    public var taskIntervalMinimumMilliseconds: Int64 = 200
    /// Deliveries a node keeps pending (queued on the active, held on a standby); beyond, the oldest go.
    public var queuedDeliveriesMax = 10_000
    /// A pending delivery older than this is dropped (a standby's held deliveries after a long quiet spell).
    public var queuedAgeMaxMilliseconds: Int64 = 3_600_000
    /// Executions the history keeps; the oldest go beyond.
    public var historyEntriesMax = 10_000
    /// Output kept per execution (a script's stdout and stderr, a receiver's answer).
    public var outputBytesMax = 65_536
    /// Time-out of an action whose task gives none.
    public var actionTimeoutDefaultSeconds = 30
    /// Time-outs a task may ask for.
    public static let actionTimeoutSecondsRange = 1...3_600
    /// How often the engine looks for work when nothing woke it (a standby applying revisions, retries due).
    public var pollIntervalMilliseconds: Int64 = 250

    public init() {}
}
