import Foundation
import ManagementModel
import ManagementService
import PeerTransport

/// Messages on an enrolled node's SIC channel (JSON in `message` frames): a test, certificate renewal
/// over the trusted channel, the Internal CA's state for a server, and the HA channel's own types
/// (`HAChannel`).
public enum SICChannelMessage {
    public static func ping() -> JSONValue { ["type": "ping"] }
    public static func pong(server: String) -> JSONValue { ["type": "pong", "server": .string(server)] }
    public static func renew(csrDER: [UInt8]) -> JSONValue { ["type": "renew", "csr": .string(Data(csrDER).base64EncodedString())] }
    public static func renewed(certificatePEM: String) -> JSONValue { ["type": "renewed", "certificate": .string(certificatePEM)] }
    public static func error(_ message: String) -> JSONValue { ["type": "error", "message": .string(message)] }
    /// A management server asks for the Internal CA's state (it joined, or starts without the key).
    public static func icaStateRequest() -> JSONValue { ["type": "ica-state"] }
    public static func icaState(_ state: ICAStateForServer) -> JSONValue {
        [
            "type": "ica-state", "certificate": .string(state.certificatePEM), "key": .string(state.privateKeyPEM),
            "revocations": .string(state.revocationsText), "addresses": .array(state.addresses.map(JSONValue.string)),
        ]
    }

    public static func frame(_ value: JSONValue) -> PeerFrame { PeerFrame(type: .message, bytes: value.canonicalBytes) }
    public static func decode(_ frame: PeerFrame) -> JSONValue? { try? JSONValue.parse(frame.payloadBytes) }
}
