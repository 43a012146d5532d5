import Foundation
import HACore
import ManagementModel
import Synchronization

/// The last events of this node, and since when this server holds its HA mode, for `rampart view`
/// (`show-live-view`). The node feeds it from its event bus; it keeps a small bounded ring.
public final class RecentEvents: Sendable {
    /// One event as the view shows it (its text is the event's description: names from peers and
    /// gateways are in it, so a viewer escapes it).
    public struct Entry: Codable, Sendable, Equatable {
        public var sequence: UInt64
        public var atMilliseconds: Int64
        public var kind: String
        public var text: String
        public var needsAttention: Bool

        enum CodingKeys: String, CodingKey {
            case sequence
            case atMilliseconds = "at-ms"
            case kind, text
            case needsAttention = "needs-attention"
        }

        public init(sequence: UInt64, atMilliseconds: Int64, kind: String, text: String, needsAttention: Bool) {
            self.sequence = sequence
            self.atMilliseconds = atMilliseconds
            self.kind = kind
            self.text = text
            self.needsAttention = needsAttention
        }
    }

    struct State {
        var entries: [Entry] = []
        var mode: (role: HARole, term: UInt64)?
        var modeSinceMilliseconds: Int64?
    }

    private let state = Mutex(State())
    public let entriesMax: Int

    public init(entriesMax: Int = LiveViewLimits.recentEventsMax) {
        self.entriesMax = max(entriesMax, 1)
    }

    /// Keeps `event` (dropping the oldest beyond `entriesMax`); a change of this server's mode or epoch
    /// (`localServer`) restarts the time it has held it.
    public func record(_ event: ManagementEvent, sequence: UInt64, atMilliseconds: Int64, localServer: String) {
        let entry = Entry(
            sequence: sequence, atMilliseconds: atMilliseconds, kind: event.kind,
            text: String(event.description.prefix(LiveViewLimits.eventTextCharactersMax)), needsAttention: event.needsAttention)
        state.withLock { state in
            state.entries.append(entry)
            if state.entries.count > entriesMax { state.entries.removeFirst(state.entries.count - entriesMax) }
            guard case .haStateChanged(let change) = event, change.server.name == localServer else { return }
            if state.mode?.role != change.role || state.mode?.term != change.epoch.term {
                state.mode = (change.role, change.epoch.term)
                state.modeSinceMilliseconds = atMilliseconds
            }
        }
    }

    /// The kept events, oldest first.
    public var entries: [Entry] { state.withLock { $0.entries } }
    /// When this server took its current mode and epoch; nil before the node reported any.
    public var modeSinceMilliseconds: Int64? { state.withLock { $0.modeSinceMilliseconds } }
}

public enum LiveViewLimits {
    /// Events `rampart view` shows (the ring keeps as many).
    public static let recentEventsMax = 10
    /// One event's text at most (a description naming many objects stays one line).
    public static let eventTextCharactersMax = 400
}

/// `show-live-view`: everything `rampart view` draws, in one answer (one actor hop). The one definition
/// of its JSON: the server encodes it, the CLI decodes it. Counters are totals since start; the viewer
/// takes rates from two snapshots.
public struct LiveViewSnapshot: Codable, Sendable, Equatable {
    public var ha: HAStatusReport
    /// When this server took its current mode and epoch (milliseconds since 1970); nil when unknown.
    public var modeSinceMilliseconds: Int64?
    public var sessions: Int
    public var locks: Int
    public var gateways: [MonitoringFacts.Gateway]
    public var clusterMembers: [MonitoringFacts.ClusterMember]
    /// Each peer's clock minus ours, as the heartbeats measured it.
    public var clockOffsetsMilliseconds: [String: Int64]
    /// On the active: per standby, the bytes of the revisions it lacks (nil from a server that does not say).
    public var pendingBytes: [String: Int64]?
    public var publishesTotal: Int64
    public var publishNanosecondsTotal: Int64
    /// The last events, oldest first.
    public var events: [RecentEvents.Entry]
    public var nowMilliseconds: Int64

    enum CodingKeys: String, CodingKey {
        case ha
        case modeSinceMilliseconds = "mode-since-ms"
        case sessions, locks, gateways
        case clusterMembers = "cluster-members"
        case clockOffsetsMilliseconds = "clock-offsets-ms"
        case pendingBytes = "pending-bytes"
        case publishesTotal = "publishes-total"
        case publishNanosecondsTotal = "publish-ns-total"
        case events
        case nowMilliseconds = "now-ms"
    }

    public init(
        ha: HAStatusReport, modeSinceMilliseconds: Int64? = nil, sessions: Int = 0, locks: Int = 0, gateways: [MonitoringFacts.Gateway] = [],
        clusterMembers: [MonitoringFacts.ClusterMember] = [], clockOffsetsMilliseconds: [String: Int64] = [:], pendingBytes: [String: Int64]? = nil,
        publishesTotal: Int64 = 0, publishNanosecondsTotal: Int64 = 0, events: [RecentEvents.Entry] = [], nowMilliseconds: Int64
    ) {
        self.ha = ha
        self.modeSinceMilliseconds = modeSinceMilliseconds
        self.sessions = sessions
        self.locks = locks
        self.gateways = gateways
        self.clusterMembers = clusterMembers
        self.clockOffsetsMilliseconds = clockOffsetsMilliseconds
        self.pendingBytes = pendingBytes
        self.publishesTotal = publishesTotal
        self.publishNanosecondsTotal = publishNanosecondsTotal
        self.events = events
        self.nowMilliseconds = nowMilliseconds
    }

    /// Reads a snapshot as `show-live-view` sent it.
    public init(json: JSONValue) throws {
        self = try JSONDecoder().decode(LiveViewSnapshot.self, from: Data(json.canonicalBytes))
    }
}

extension ManagementService {
    /// The node's measure of its peers' clocks, for `show-live-view`.
    public func attachClockOffsets(_ offsets: @escaping @Sendable () -> [String: Int64]) { clockOffsets = offsets }

    func showLiveView(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        APIResponse(body: try JSONValueEncoder.encode(liveViewSnapshot()))
    }

    public func liveViewSnapshot() -> LiveViewSnapshot {
        let facts = monitoringFacts()
        let publishes = metrics.publishTotals
        return LiveViewSnapshot(
            ha: facts.ha, modeSinceMilliseconds: recentEvents.modeSinceMilliseconds, sessions: facts.sessions, locks: facts.locks,
            gateways: facts.gateways, clusterMembers: facts.clusterMembers, clockOffsetsMilliseconds: clockOffsets?() ?? [:],
            pendingBytes: pendingBytes(facts.ha), publishesTotal: publishes.count, publishNanosecondsTotal: publishes.nanoseconds, events: recentEvents.entries,
            nowMilliseconds: facts.nowMilliseconds)
    }
}
