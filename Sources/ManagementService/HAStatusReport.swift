import Foundation
import ManagementModel

/// `show-ha-status` and `rampart ha status`: Check Point's shape (CHECKPOINT-API.md §3.6: `servers`,
/// `ip-address`, `ha-state`, `sync-state`, `last-successful-sync`, `successfully-synced`) with Rampart's
/// fields beside it. The one definition of the report's JSON: the server encodes it, the CLI decodes it.
/// `problems` lists what is wrong, each with what to do; empty means healthy (`ha status` exits 0).
public struct HAStatusReport: Codable, Sendable, Equatable {
    // Check Point's fields. `uid` and `name` name the domain ("SMC User").
    public var uid: String
    public var name: String
    public var domainType: String
    /// The other servers of the group.
    public var servers: [Server]
    public var successfullySynced: Bool

    // Rampart's. All absent when HA does not run on the server (`rampartHA` says so).
    /// "not-configured" when this server runs no HA.
    public var rampartHA: String?
    public var thisServer: String?
    /// Install-time identity: primary or secondary.
    public var role: String?
    /// Runtime mode: active or standby.
    public var mode: String?
    /// When this server took its mode.
    public var modeSince: Timestamp?
    public var activeServer: String?
    public var epoch: EpochText?
    public var head: Head?
    public var durableHead: Int64?
    public var writesEnabled: Bool?
    public var writesRefusal: String?
    public var replicationMode: String?
    /// A standby's own sync status; on the active, synchronized or degraded.
    public var syncStatus: String?
    /// A standby: revisions behind the active's last reported head. Absent on the active; present
    /// and nil (JSON null) on a standby that does not know.
    public var lagRevisions: Int64??
    public var problems: [String]?
    public var lastError: String?
    public var lastErrorAt: Timestamp?
    public var lastSuccessfulSync: Timestamp?
    public var lastApplied: LastApplied?
    /// This node's last backup (node-local, never synchronized).
    public var lastBackup: LastBackup?
    /// The clock thresholds this server applies (`--clock-warning-ms`, `--clock-problem-ms`).
    public var clockThresholds: ClockThresholds?

    enum CodingKeys: String, CodingKey {
        case uid, name
        case domainType = "domain-type"
        case servers
        case successfullySynced = "successfully-synced"
        case rampartHA = "rampart-ha"
        case thisServer = "this-server"
        case role, mode
        case modeSince = "mode-since"
        case activeServer = "active-server"
        case epoch, head
        case durableHead = "durable-head"
        case writesEnabled = "writes-enabled"
        case writesRefusal = "writes-refusal"
        case replicationMode = "replication-mode"
        case syncStatus = "sync-status"
        case lagRevisions = "lag-revisions"
        case problems
        case lastError = "last-error"
        case lastErrorAt = "last-error-at"
        case lastSuccessfulSync = "last-successful-sync"
        case lastApplied = "rampart-last-applied"
        case lastBackup = "last-backup"
        case clockThresholds = "clock-thresholds"
    }

    /// The domain every report names (Check Point's single-domain server).
    public static let domainUID = Renderer.defaultDomain["uid"]?.stringValue ?? ""

    public init(servers: [Server], successfullySynced: Bool) {
        uid = Self.domainUID
        name = "SMC User"
        domainType = "domain"
        self.servers = servers
        self.successfullySynced = successfullySynced
    }

    /// The report of a server that runs no HA.
    public static var notConfigured: HAStatusReport {
        var report = HAStatusReport(servers: [], successfullySynced: true)
        report.rampartHA = "not-configured"
        return report
    }

    /// One other server of the group, as this server sees it.
    public struct Server: Codable, Sendable, Equatable {
        public var name: String
        /// Its address as its checkpoint-host object records it ("" when unknown).
        public var ipAddress: String
        /// active or standby.
        public var haState: String
        /// Check Point's: "Ok", "Communication Error" or "Sync Error".
        public var syncState: String
        /// Rampart's sync status (DESIGN.md §1) and its detail.
        public var syncStatus: String
        public var syncDetail: String
        public var knownHead: Int64
        /// Nil (JSON null) when unknown.
        public var lagRevisions: Int64?
        public var lagSeconds: Int64
        public var connected: Bool
        /// Nil (JSON null) when never heard from.
        public var lastContactMillisecondsAgo: Int64?
        public var lastSuccessfulSync: Timestamp?
        /// Its clock minus ours (NTP's offset, the median of the last samples); nil (JSON null) when not measured.
        public var clockOffsetMilliseconds: Int64?
        /// The round trip of the last measurement; nil when not measured or the peer echoes no timestamps.
        public var clockDelayMilliseconds: Int64?
        /// When the offset was last measured (our clock).
        public var clockMeasuredAt: Timestamp?
        /// ok, warning or problem against this server's thresholds.
        public var clockLevel: String?
        /// When it took its mode, as it told us (its duration, laid on our clock); nil when not told.
        public var modeSince: Timestamp?

        enum CodingKeys: String, CodingKey {
            case name
            case ipAddress = "ip-address"
            case haState = "ha-state"
            case syncState = "sync-state"
            case syncStatus = "rampart-sync-status"
            case syncDetail = "rampart-sync-detail"
            case knownHead = "known-head"
            case lagRevisions = "lag-revisions"
            case lagSeconds = "lag-seconds"
            case connected
            case lastContactMillisecondsAgo = "last-contact-ms-ago"
            case lastSuccessfulSync = "last-successful-sync"
            case clockOffsetMilliseconds = "clock-offset-ms"
            case clockDelayMilliseconds = "clock-delay-ms"
            case clockMeasuredAt = "clock-measured-at"
            case clockLevel = "clock-level"
            case modeSince = "mode-since"
        }

        public init(
            name: String, ipAddress: String, haState: String, syncState: String, syncStatus: String, syncDetail: String,
            knownHead: Int64, lagRevisions: Int64?, lagSeconds: Int64, connected: Bool, lastContactMillisecondsAgo: Int64?,
            lastSuccessfulSync: Timestamp?
        ) {
            self.name = name
            self.ipAddress = ipAddress
            self.haState = haState
            self.syncState = syncState
            self.syncStatus = syncStatus
            self.syncDetail = syncDetail
            self.knownHead = knownHead
            self.lagRevisions = lagRevisions
            self.lagSeconds = lagSeconds
            self.connected = connected
            self.lastContactMillisecondsAgo = lastContactMillisecondsAgo
            self.lastSuccessfulSync = lastSuccessfulSync
        }

        /// The unknown lag and contact are sent as null, so a client always finds the key.
        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(name, forKey: .name)
            try container.encode(ipAddress, forKey: .ipAddress)
            try container.encode(haState, forKey: .haState)
            try container.encode(syncState, forKey: .syncState)
            try container.encode(syncStatus, forKey: .syncStatus)
            try container.encode(syncDetail, forKey: .syncDetail)
            try container.encode(knownHead, forKey: .knownHead)
            try container.encode(lagRevisions, forKey: .lagRevisions)
            try container.encode(lagSeconds, forKey: .lagSeconds)
            try container.encode(connected, forKey: .connected)
            try container.encode(lastContactMillisecondsAgo, forKey: .lastContactMillisecondsAgo)
            try container.encodeIfPresent(lastSuccessfulSync, forKey: .lastSuccessfulSync)
            try container.encode(clockOffsetMilliseconds, forKey: .clockOffsetMilliseconds)
            try container.encodeIfPresent(clockDelayMilliseconds, forKey: .clockDelayMilliseconds)
            try container.encodeIfPresent(clockMeasuredAt, forKey: .clockMeasuredAt)
            try container.encodeIfPresent(clockLevel, forKey: .clockLevel)
            try container.encodeIfPresent(modeSince, forKey: .modeSince)
        }
    }

    /// An epoch: its term and the server that owns it.
    public struct EpochText: Codable, Sendable, Equatable {
        public var term: Int64
        public var server: String
        public init(term: Int64, server: String) {
            self.term = term
            self.server = server
        }
    }

    /// A revision head.
    public struct Head: Codable, Sendable, Equatable {
        public var number: Int64
        public var hash: String
        public init(number: Int64, hash: String) {
            self.number = number
            self.hash = hash
        }
    }

    /// A time as Check Point shows it: milliseconds since 1970 and ISO 8601.
    public struct Timestamp: Codable, Sendable, Equatable {
        public var posix: Int64
        public var iso8601: String

        enum CodingKeys: String, CodingKey {
            case posix
            case iso8601 = "iso-8601"
        }

        public init(milliseconds: Int64) {
            posix = milliseconds
            iso8601 = Renderer.iso8601(milliseconds: milliseconds)
        }
    }

    /// The last revision this server applied, on the machine's monotonic clock (the bench reads it).
    public struct LastApplied: Codable, Sendable, Equatable {
        public var revision: Int64
        public var monotonicNanoseconds: Int64

        enum CodingKeys: String, CodingKey {
            case revision
            case monotonicNanoseconds = "monotonic-ns"
        }

        public init(revision: Int64, monotonicNanoseconds: Int64) {
            self.revision = revision
            self.monotonicNanoseconds = monotonicNanoseconds
        }
    }

    /// This node's last backup, as the operations provider reports it (`NodeOperationsProvider.lastBackup`).
    public struct LastBackup: Codable, Sendable, Equatable {
        public var time: String?
        /// succeeded, failed, or "none yet".
        public var result: String?
        public var message: String?
        public var durationMilliseconds: Int64?
        /// manual or scheduled.
        public var trigger: String?
        public var file: String?
        public var sizeBytes: Int64?
        /// The schedule in words, or "none".
        public var schedule: String?

        enum CodingKeys: String, CodingKey {
            case time, result, message
            case durationMilliseconds = "duration-ms"
            case trigger, file
            case sizeBytes = "size-bytes"
            case schedule
        }

        public init(
            time: String? = nil, result: String? = nil, message: String? = nil, durationMilliseconds: Int64? = nil,
            trigger: String? = nil, file: String? = nil, sizeBytes: Int64? = nil, schedule: String? = nil
        ) {
            self.time = time
            self.result = result
            self.message = message
            self.durationMilliseconds = durationMilliseconds
            self.trigger = trigger
            self.file = file
            self.sizeBytes = sizeBytes
            self.schedule = schedule
        }
    }

    // MARK: JSON

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        uid = try container.decode(String.self, forKey: .uid)
        name = try container.decode(String.self, forKey: .name)
        domainType = try container.decode(String.self, forKey: .domainType)
        servers = try container.decode([Server].self, forKey: .servers)
        successfullySynced = try container.decode(Bool.self, forKey: .successfullySynced)
        rampartHA = try container.decodeIfPresent(String.self, forKey: .rampartHA)
        thisServer = try container.decodeIfPresent(String.self, forKey: .thisServer)
        role = try container.decodeIfPresent(String.self, forKey: .role)
        mode = try container.decodeIfPresent(String.self, forKey: .mode)
        modeSince = try container.decodeIfPresent(Timestamp.self, forKey: .modeSince)
        activeServer = try container.decodeIfPresent(String.self, forKey: .activeServer)
        epoch = try container.decodeIfPresent(EpochText.self, forKey: .epoch)
        head = try container.decodeIfPresent(Head.self, forKey: .head)
        durableHead = try container.decodeIfPresent(Int64.self, forKey: .durableHead)
        writesEnabled = try container.decodeIfPresent(Bool.self, forKey: .writesEnabled)
        writesRefusal = try container.decodeIfPresent(String.self, forKey: .writesRefusal)
        replicationMode = try container.decodeIfPresent(String.self, forKey: .replicationMode)
        syncStatus = try container.decodeIfPresent(String.self, forKey: .syncStatus)
        if container.contains(.lagRevisions) {
            lagRevisions = .some(try container.decodeNil(forKey: .lagRevisions) ? nil : container.decode(Int64.self, forKey: .lagRevisions))
        }
        problems = try container.decodeIfPresent([String].self, forKey: .problems)
        lastError = try container.decodeIfPresent(String.self, forKey: .lastError)
        lastErrorAt = try container.decodeIfPresent(Timestamp.self, forKey: .lastErrorAt)
        lastSuccessfulSync = try container.decodeIfPresent(Timestamp.self, forKey: .lastSuccessfulSync)
        lastApplied = try container.decodeIfPresent(LastApplied.self, forKey: .lastApplied)
        lastBackup = try container.decodeIfPresent(LastBackup.self, forKey: .lastBackup)
        clockThresholds = try container.decodeIfPresent(ClockThresholds.self, forKey: .clockThresholds)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(uid, forKey: .uid)
        try container.encode(name, forKey: .name)
        try container.encode(domainType, forKey: .domainType)
        try container.encode(servers, forKey: .servers)
        try container.encode(successfullySynced, forKey: .successfullySynced)
        try container.encodeIfPresent(rampartHA, forKey: .rampartHA)
        try container.encodeIfPresent(thisServer, forKey: .thisServer)
        try container.encodeIfPresent(role, forKey: .role)
        try container.encodeIfPresent(mode, forKey: .mode)
        try container.encodeIfPresent(modeSince, forKey: .modeSince)
        try container.encodeIfPresent(activeServer, forKey: .activeServer)
        try container.encodeIfPresent(epoch, forKey: .epoch)
        try container.encodeIfPresent(head, forKey: .head)
        try container.encodeIfPresent(durableHead, forKey: .durableHead)
        try container.encodeIfPresent(writesEnabled, forKey: .writesEnabled)
        try container.encodeIfPresent(writesRefusal, forKey: .writesRefusal)
        try container.encodeIfPresent(replicationMode, forKey: .replicationMode)
        try container.encodeIfPresent(syncStatus, forKey: .syncStatus)
        if let lagRevisions { try container.encode(lagRevisions, forKey: .lagRevisions) }  // null when unknown
        try container.encodeIfPresent(problems, forKey: .problems)
        try container.encodeIfPresent(lastError, forKey: .lastError)
        try container.encodeIfPresent(lastErrorAt, forKey: .lastErrorAt)
        try container.encodeIfPresent(lastSuccessfulSync, forKey: .lastSuccessfulSync)
        try container.encodeIfPresent(lastApplied, forKey: .lastApplied)
        try container.encodeIfPresent(lastBackup, forKey: .lastBackup)
        try container.encodeIfPresent(clockThresholds, forKey: .clockThresholds)
    }

    /// The report as the Web API sends it.
    public func jsonValue() throws -> JSONValue { try JSONValueEncoder.encode(self) }

    /// Reads a report as the Web API sent it.
    public init(json: JSONValue) throws {
        self = try JSONDecoder().decode(HAStatusReport.self, from: Data(json.canonicalBytes))
    }
}
