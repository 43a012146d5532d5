/// Every bound and timer of the gateway-cluster core, in one place. Times are milliseconds of the
/// `tick(now:)` clock.
///
/// The defaults aim at a failover well under a second (ClusterXL's documented dead timer is about
/// 2.5 s, keepalived's default detection about 3.6 s) without flapping: a member that lost ACTIVE
/// waits out a hysteresis, and a stretch of the dead timer under load is shown in the status (ClusterXL
/// tells it only to syslog).
public struct ClusterLimits: Hashable, Sendable {
    /// How often a member sends its heartbeat on every monitored interface (CCP's role).
    public var heartbeatIntervalMilliseconds: UInt64 = 100
    /// A member not heard on any interface for this long is dead in the view of the others.
    public var deadTimerMilliseconds: UInt64 = 500
    /// The dead timer while some member reports a load at or above `loadThresholdPercent` (ClusterXL's
    /// "Cluster Under Load" stretches 2.5 s to 10 s: four times, as here).
    public var deadTimerUnderLoadMilliseconds: UInt64 = 2_000
    /// A load figure at or above this stretches the dead timer.
    public var loadThresholdPercent: UInt8 = 80
    /// The stretch ends once no member reported a load above the threshold for this long.
    public var loadQuietMilliseconds: UInt64 = 10_000
    /// The stretch ends after this long even under load (a member that stays loaded must not keep
    /// failovers slow forever); it may start again only after a quiet period.
    public var loadStretchMaxMilliseconds: UInt64 = 180_000
    /// A starting member stays INIT until it heard every other member, or this long: long enough to hear
    /// every member that is alive, so that it joins the cluster instead of declaring itself active.
    public var startupWaitMilliseconds: UInt64 = 500
    /// A member that lost ACTIVE ranks below the members that did not for this long, and one that started
    /// below the steady ones, so it does not take ACTIVE back unless no other member can (the no-flapping
    /// rule; see `Steadiness`). In Primary Up only a steady member claims ACTIVE back.
    public var flapHysteresisMilliseconds: UInt64 = 5_000
    /// Primary Up: a member must be a healthy standby this long before it claims ACTIVE back.
    public var preemptHoldMilliseconds: UInt64 = 2_000
    /// Primary Up: a READY member gives up if the active member has not released within this long.
    public var readyTimeoutMilliseconds: UInt64 = 1_000
    /// A joining member asks the active member for the connection table again after this long without it.
    public var fullSyncRetryMilliseconds: UInt64 = 5_000
    /// Members in one cluster, this one included (ClusterXL allows 5).
    public var membersMax: Int = 5
    /// Monitored interfaces per member.
    public var interfacesMax: Int = 16
    /// Critical devices an administrator or a script may register (the built-ins are not counted).
    public var registeredDevicesMax: Int = 16
    /// Bytes in a critical device's name, a member's name or its address text.
    public var nameBytesMax: Int = 64
    /// The longest report timeout a registered device may ask for.
    public var deviceTimeoutMillisecondsMax: UInt64 = 3_600_000

    /// Built-in devices (interface check, policy, full sync, admin_down).
    public static let builtInDevicesMax = 4
    /// Bytes in an interface name (Linux IFNAMSIZ less the terminating zero).
    public static let interfaceNameBytesMax = 15

    public init() {}

    /// Devices a heartbeat may list as not ok: every device a member can hold.
    public var heartbeatProblemsMax: Int { registeredDevicesMax + Self.builtInDevicesMax }

    /// Checks that the timers fit together. The heartbeat interval and dead timer come from the
    /// cluster's settings on the management server, so a bad pair is an error, not a crash.
    public func validate() throws(ClusterConfigurationError) {
        func require(_ condition: Bool, _ message: String) throws(ClusterConfigurationError) {
            if !condition { throw ClusterConfigurationError(code: "cluster-limits-invalid", message: message) }
        }
        try require((10...60_000).contains(heartbeatIntervalMilliseconds), "the heartbeat interval must be 10 ms to 60 s")
        try require(
            deadTimerMilliseconds >= 2 * heartbeatIntervalMilliseconds,
            "the dead timer must be at least two heartbeat intervals (\(2 * heartbeatIntervalMilliseconds) ms)")
        try require(deadTimerMilliseconds <= 600_000, "the dead timer must be at most 10 minutes")
        try require(
            deadTimerUnderLoadMilliseconds >= deadTimerMilliseconds && deadTimerUnderLoadMilliseconds <= 600_000,
            "the dead timer under load must be between the dead timer and 10 minutes")
        try require((1...100).contains(loadThresholdPercent), "the load threshold must be 1 to 100 %")
        try require(loadQuietMilliseconds >= heartbeatIntervalMilliseconds, "the load quiet period must be at least one heartbeat interval")
        try require(loadStretchMaxMilliseconds >= loadQuietMilliseconds, "the longest stretch must be at least the quiet period")
        try require(startupWaitMilliseconds >= heartbeatIntervalMilliseconds, "the startup wait must be at least one heartbeat interval")
        try require(readyTimeoutMilliseconds >= heartbeatIntervalMilliseconds, "the READY timeout must be at least one heartbeat interval")
        try require(fullSyncRetryMilliseconds >= heartbeatIntervalMilliseconds, "the full sync retry must be at least one heartbeat interval")
        try require((1...255).contains(membersMax), "1 to 255 members")
        try require((1...255).contains(interfacesMax), "1 to 255 monitored interfaces")
        try require((0...1_024).contains(registeredDevicesMax), "at most 1,024 registered devices")
        try require((1...1_024).contains(nameBytesMax), "names of 1 to 1,024 bytes")
    }
}
