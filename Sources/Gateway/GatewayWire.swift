import ManagementModel
import NIOCore
import PeerTransport

/// Messages between a gateway agent and a management server, on the gateway's SIC channel (mutual TLS,
/// `message` frames). A frame's payload is a JSON header, then, for a policy push only, a newline and
/// the policy bytes: canonical JSON never holds a raw newline, and the policy, serialized once for many
/// gateways, travels without being parsed into or copied out of another JSON value.
public enum GatewayWire {
    /// Agent → server, first on every channel: who it is and what it runs (`GatewayReport`).
    public static let hello = "gw-hello"
    /// Server → agent, after hello and then periodically: the server's epoch, whether it is the active,
    /// every management server's SIC address, the last log sequence it stored from this gateway, and
    /// (since 0.10) `sent-at-ms`, the server's wall clock, for NTP's arithmetic on the next `gw-status`.
    public static let welcome = "gw-welcome"
    /// Server → agent: a policy to install (header: id, target; body: CompiledPolicy JSON).
    public static let install = "gw-install"
    /// Agent → server: how an install ended (installed / refused / failed), with the agent's report.
    public static let installResult = "gw-install-result"
    /// Server → agent: return to the policy before the install `{package, revision, epoch}` (a cluster
    /// member whose peer failed an install-on-all-cluster-members-or-fail); answered with `rollbackResult`.
    public static let rollback = "gw-rollback"
    /// Agent → server: how a rollback ended (installed = the previous policy is in force again).
    public static let rollbackResult = "gw-rollback-result"
    /// Agent → server: the report, when it changes and periodically (also a heartbeat). Since 0.10 with
    /// `sent-at-ms` and the echo of the last welcome's `sent-at-ms` and its arrival (`statusHeader`).
    public static let status = "gw-status"
    /// Agent → server: log records with their per-gateway sequence numbers.
    public static let logs = "gw-logs"
    /// Server → agent: every record up to `through` is stored.
    public static let logsAck = "gw-logs-ack"

    /// A `gw-status` header: the report, this agent's wall clock, and the echo of the last welcome
    /// (so the server measures the gateway's clock offset and round trip as NTP does).
    public static func statusHeader(_ report: JSONValue, echo: ClockStamps.Echo?) -> JSONValue {
        var header = ClockStamps.fields(sentAtMilliseconds: WallClock.milliseconds(), echo: echo)
        header["type"] = .string(status)
        header["status"] = report
        return .object(header)
    }

    public static func frame(_ header: JSONValue, body: [UInt8]? = nil) -> PeerFrame {
        let head = header.canonicalBytes
        // One copy of the body, straight into the frame's buffer: a fleet install sends it N times.
        var buffer = ByteBufferAllocator().buffer(capacity: head.count + 1 + (body?.count ?? 0))
        buffer.writeBytes(head)
        if let body {
            buffer.writeInteger(UInt8(0x0A))
            buffer.writeBytes(body)
        }
        return PeerFrame(type: .message, payload: buffer)
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
    /// Both sides send at this period (status / welcome) and close a channel silent for `silenceMilliseconds`
    /// (a black-holed TCP connection would otherwise hold it for many minutes). Generous: an agent busy
    /// applying a large policy, or a server pushing to thousands, must not be taken for a dead one.
    public static let heartbeatMilliseconds = 5_000
    public static let silenceMilliseconds = 30_000
    /// Management servers an agent follows.
    public static let managementServersMax = 16
    /// Log records per `gw-logs` frame, and unacknowledged frames in flight per server.
    public static let logRecordsPerFrameMax = 500
}
