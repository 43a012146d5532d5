import ManagementModel
import PeerTransport

/// Messages between a gateway agent and a management server, on the gateway's SIC channel (mutual TLS,
/// `message` frames). A frame's payload is a JSON header, then, for a policy push only, a newline and
/// the policy bytes: canonical JSON never holds a raw newline, and the policy, serialized once for many
/// gateways, travels without being parsed into or copied out of another JSON value.
public enum GatewayWire {
    /// Agent → server, first on every channel: who it is and what it runs (`GatewayReport`).
    public static let hello = "gw-hello"
    /// Server → agent, after hello and then periodically: the server's epoch, whether it is the active,
    /// every management server's SIC address, and the last log sequence it stored from this gateway.
    public static let welcome = "gw-welcome"
    /// Server → agent: a policy to install (header: id, target; body: CompiledPolicy JSON).
    public static let install = "gw-install"
    /// Agent → server: how an install ended (installed / refused / failed), with the agent's report.
    public static let installResult = "gw-install-result"
    /// Agent → server: the report, when it changes and periodically (also a heartbeat).
    public static let status = "gw-status"
    /// Agent → server: log records with their per-gateway sequence numbers.
    public static let logs = "gw-logs"
    /// Server → agent: every record up to `through` is stored.
    public static let logsAck = "gw-logs-ack"

    public static func frame(_ header: JSONValue, body: [UInt8]? = nil) -> PeerFrame {
        var bytes = header.canonicalBytes
        if let body {
            bytes.reserveCapacity(bytes.count + 1 + body.count)
            bytes.append(0x0A)
            bytes.append(contentsOf: body)
        }
        return PeerFrame(type: .message, bytes: bytes)
    }

    /// The header and the body (empty when there is none); nil when the header is not a JSON object.
    public static func decode(_ frame: PeerFrame) -> (header: JSONValue, body: ArraySlice<UInt8>)? {
        guard frame.type == .message else { return nil }
        let bytes = frame.payloadBytes
        let split = bytes.firstIndex(of: 0x0A) ?? bytes.endIndex
        guard let header = try? JSONValue.parse(bytes[..<split]), header.objectValue != nil else { return nil }
        return (header, split < bytes.endIndex ? bytes[(split + 1)...] : [])
    }
}

/// Bounds and periods of the gateway channels, in one place.
public enum GatewayLimits {
    /// Reconnect backoff of the agent's dial loops.
    public static let reconnectDelayMinMilliseconds = 100
    public static let reconnectDelayMaxMilliseconds = 5_000
    /// Both sides send at this period (status / welcome) and close a channel silent for `silenceMilliseconds`.
    public static let heartbeatMilliseconds = 2_000
    public static let silenceMilliseconds = 10_000
    /// Management servers an agent follows.
    public static let managementServersMax = 16
    /// Log records per `gw-logs` frame, and unacknowledged frames in flight per server.
    public static let logRecordsPerFrameMax = 500
    /// Longest reason text kept from a refusal or failure.
    public static let messageLengthMax = 1_000
}

/// An epoch as it travels and is stored: "term/server".
extension RevisionEpoch {
    public var text: String { "\(term)/\(server)" }

    public var json: JSONValue { ["term": .int(Int64(term)), "server": .string(server)] }

    public init?(json: JSONValue?) {
        guard let term = json?["term"]?.intValue, term >= 0, let server = json?["server"]?.stringValue else { return nil }
        self.init(term: UInt64(term), server: server)
    }
}

/// What the agent reports about itself: the policy in force, the fence, the last refusal.
public struct GatewayReport: Sendable, Equatable {
    public var name: String
    public var enforcement: String
    public var installedPackage: String?
    public var installedRevision: UInt64?
    public var installedEpoch: RevisionEpoch?
    public var installedAtMilliseconds: Int64?
    public var highestEpoch: RevisionEpoch?
    public var lastRefusal: String?

    public init(name: String, enforcement: String, installedPackage: String? = nil, installedRevision: UInt64? = nil,
                installedEpoch: RevisionEpoch? = nil, installedAtMilliseconds: Int64? = nil, highestEpoch: RevisionEpoch? = nil,
                lastRefusal: String? = nil) {
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
        if let installedRevision { fields["installed-revision"] = .int(Int64(installedRevision)) }
        if let installedEpoch { fields["installed-epoch"] = installedEpoch.json }
        if let installedAtMilliseconds { fields["installed-at"] = .int(installedAtMilliseconds) }
        if let highestEpoch { fields["highest-epoch"] = highestEpoch.json }
        if let lastRefusal { fields["last-refusal"] = .string(lastRefusal) }
        return .object(fields)
    }

    public init?(json: JSONValue?) {
        guard let json, let name = json["name"]?.stringValue else { return nil }
        self.init(name: name, enforcement: json["enforcement"]?.stringValue ?? "unknown",
                  installedPackage: json["installed-package"]?.stringValue,
                  installedRevision: json["installed-revision"]?.intValue.flatMap { $0 >= 0 ? UInt64($0) : nil },
                  installedEpoch: RevisionEpoch(json: json["installed-epoch"]), installedAtMilliseconds: json["installed-at"]?.intValue,
                  highestEpoch: RevisionEpoch(json: json["highest-epoch"]),
                  lastRefusal: json["last-refusal"]?.stringValue.map { String($0.prefix(GatewayLimits.messageLengthMax)) })
    }
}
