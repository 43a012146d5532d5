/// An epoch as it travels and is stored: "term/server".
extension RevisionEpoch {
    public var text: String { "\(term)/\(server)" }

    public var json: JSONValue { ["term": .int(Int64(clamping: term)), "server": .string(server)] }

    public init?(json: JSONValue?) {
        guard let term = json?["term"]?.intValue, term >= 0, let server = json?["server"]?.stringValue else { return nil }
        self.init(term: UInt64(term), server: server)
    }
}

/// What the agent reports about itself: the policy in force, the fence, the last refusal.
/// Agent → server on every channel (hello, heartbeat, install result); the server shows it as the
/// gateway's status.
public struct GatewayReport: Sendable, Equatable {
    /// Longest refusal text kept.
    public static let textLengthMax = 1_000

    public var name: String
    public var enforcement: String
    public var installedPackage: String?
    public var installedRevision: UInt64?
    public var installedEpoch: RevisionEpoch?
    public var installedAtMilliseconds: Int64?
    public var highestEpoch: RevisionEpoch?
    public var lastRefusal: String?
    /// A cluster member's cluster state (nil for a plain gateway, or before its cluster runtime runs).
    public var cluster: ClusterMemberReport?

    public init(
        name: String, enforcement: String, installedPackage: String? = nil, installedRevision: UInt64? = nil,
        installedEpoch: RevisionEpoch? = nil, installedAtMilliseconds: Int64? = nil, highestEpoch: RevisionEpoch? = nil,
        lastRefusal: String? = nil, cluster: ClusterMemberReport? = nil
    ) {
        self.cluster = cluster
        self.name = name
        self.enforcement = enforcement
        self.installedPackage = installedPackage
        self.installedRevision = installedRevision
        self.installedEpoch = installedEpoch
        self.installedAtMilliseconds = installedAtMilliseconds
        self.highestEpoch = highestEpoch
        self.lastRefusal = lastRefusal
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["name": .string(name), "enforcement": .string(enforcement)]
        if let installedPackage { fields["installed-package"] = .string(installedPackage) }
        if let installedRevision { fields["installed-revision"] = .int(Int64(clamping: installedRevision)) }
        if let installedEpoch { fields["installed-epoch"] = installedEpoch.json }
        if let installedAtMilliseconds { fields["installed-at"] = .int(installedAtMilliseconds) }
        if let highestEpoch { fields["highest-epoch"] = highestEpoch.json }
        if let lastRefusal { fields["last-refusal"] = .string(lastRefusal) }
        if let cluster { fields["cluster"] = cluster.json }
        return .object(fields)
    }

    public init?(json: JSONValue?) {
        guard let json, let name = json["name"]?.stringValue else { return nil }
        self.init(
            name: name, enforcement: json["enforcement"]?.stringValue ?? "unknown",
            installedPackage: json["installed-package"]?.stringValue,
            installedRevision: json["installed-revision"]?.intValue.flatMap { $0 >= 0 ? UInt64($0) : nil },
            installedEpoch: RevisionEpoch(json: json["installed-epoch"]), installedAtMilliseconds: json["installed-at"]?.intValue,
            highestEpoch: RevisionEpoch(json: json["highest-epoch"]),
            lastRefusal: json["last-refusal"]?.stringValue.map { String($0.prefix(GatewayReport.textLengthMax)) },
            cluster: json["cluster"].flatMap(ClusterMemberReport.init(json:)))
    }
}

/// A cluster member's state as its agent reports it (the `cphaprob state` facts): the state, the
/// critical devices (pnotes), the failover count and the last change with its reason. Decoded from
/// an untrusted peer: an unknown state drops the report, lists and texts are cut to their limits.
public struct ClusterMemberReport: Sendable, Equatable {
    public static let states = ["INIT", "READY", "ACTIVE", "ACTIVE(!)", "STANDBY", "DOWN"]
    public static let pnoteStates = ["ok", "init", "problem"]

    public struct Pnote: Sendable, Equatable {
        public var name: String
        public var state: String
        public init(name: String, state: String) {
            self.name = name
            self.state = state
        }
    }

    public struct Change: Sendable, Equatable {
        public var eventCode: String
        public var from: String
        public var to: String
        public var reason: String
        public var timeMilliseconds: Int64
        public init(eventCode: String, from: String, to: String, reason: String, timeMilliseconds: Int64) {
            self.eventCode = eventCode
            self.from = from
            self.to = to
            self.reason = reason
            self.timeMilliseconds = timeMilliseconds
        }
    }

    public var state: String
    public var pnotes: [Pnote]
    public var failoverCount: UInt64
    public var lastChange: Change?

    public init(state: String, pnotes: [Pnote] = [], failoverCount: UInt64 = 0, lastChange: Change? = nil) {
        self.state = state
        self.pnotes = pnotes
        self.failoverCount = failoverCount
        self.lastChange = lastChange
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            "state": .string(state), "failover-count": .int(Int64(clamping: failoverCount)),
            "pnotes": .array(pnotes.map { ["name": .string($0.name), "state": .string($0.state)] }),
        ]
        if let lastChange {
            fields["last-change"] = [
                "event-code": .string(lastChange.eventCode), "from": .string(lastChange.from), "to": .string(lastChange.to),
                "reason": .string(lastChange.reason), "time-ms": .int(lastChange.timeMilliseconds),
            ]
        }
        return .object(fields)
    }

    public init?(json: JSONValue) {
        guard let state = json["state"]?.stringValue, Self.states.contains(state) else { return nil }
        let pnotes = (json["pnotes"]?.arrayValue ?? []).prefix(Limits.clusterReportPnotesMax).compactMap { item -> Pnote? in
            guard let name = item["name"]?.stringValue, let pnoteState = item["state"]?.stringValue, Self.pnoteStates.contains(pnoteState) else { return nil }
            return Pnote(name: Limits.truncated(name, characters: Limits.clusterReportPnoteNameLengthMax), state: pnoteState)
        }
        var change: Change?
        if let last = json["last-change"], let from = last["from"]?.stringValue, let to = last["to"]?.stringValue,
            Self.states.contains(from) || from.isEmpty, Self.states.contains(to)
        {
            change = Change(
                eventCode: Limits.truncated(last["event-code"]?.stringValue ?? "", characters: Limits.clusterReportEventCodeLengthMax),
                from: from, to: to,
                reason: Limits.truncated(last["reason"]?.stringValue ?? "", characters: Limits.clusterReportReasonLengthMax),
                timeMilliseconds: last["time-ms"]?.intValue ?? 0)
        }
        let count = json["failover-count"]?.intValue ?? 0
        self.init(state: state, pnotes: Array(pnotes), failoverCount: count > 0 ? UInt64(count) : 0, lastChange: change)
    }
}
