import Foundation
import Gateway
import HACore
import HARuntime
import Logging
import ManagementModel
import ManagementService
import PeerTransport
import ServiceLifecycle
import TrustCore

/// The SIC port: enrolment of new nodes, and mutual-TLS channels from enrolled ones.
public struct SICService: Service {
    let listener: PeerListener
    let service: ManagementService
    let serverName: String
    /// The HA group's links: peer channels that ask for HA are handed to it (nil: no HA on this port).
    var mesh: HAMesh?
    /// Gateways' channels (nil: this port takes none).
    var gateways: GatewayHub?
    let logger: Logger

    public init(listener: PeerListener, service: ManagementService, serverName: String, mesh: HAMesh?, gateways: GatewayHub?, logger: Logger) {
        self.listener = listener
        self.service = service
        self.serverName = serverName
        self.mesh = mesh
        self.gateways = gateways
        self.logger = logger
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await listener.run(
                onConnection: { connection in
                    try await handle(connection)
                },
                onHandshakeFailure: { failure in
                    logger.warning(
                        "SIC connection refused", metadata: ["peer": "\(failure.remoteAddress.map { "\($0)" } ?? "?")", "reason": "\(failure.error)"])
                })
        }
    }

    func handle(_ connection: PeerConnection) async throws {
        switch connection.kind {
        case .enrolment:
            for try await frame in connection.inbound {
                let answer: EnrolmentMessage
                if case .request(let request)? = try? EnrolmentMessage.decode(frame.payloadBytes) {
                    answer = await service.enrol(
                        request, address: connection.remoteAddress?.ipAddress ?? "unknown",
                        serverNonce: SecureRandom.bytes(count: TrustLimits.enrolmentNonceByteCount))
                } else {
                    answer = .refusal(EnrolmentRefusal(.badRequest, "expected one enrolment request"))
                }
                try await connection.send(PeerFrame(type: .enrolment, bytes: answer.encoded()))
                return  // one request per enrolment connection
            }
        case .peer(let identity):
            await service.sicPeerSeen(uid: identity.uid)
            var frames = connection.inbound.makeAsyncIterator()
            while let frame = try await frames.next() {
                guard frame.type == .message else { continue }
                await service.sicPeerSeen(uid: identity.uid)
                let message = SICChannelMessage.decode(frame)
                // A gateway's certificate names its simple-gateway object: it never joins the HA mesh.
                if let mesh, let message, let type = message["type"]?.stringValue,
                    type == HAChannel.attachType || type == HAMessageCodec.messageType, !service.isEnrolledGateway(uid: identity.uid)
                {
                    // From here on the connection is a long-lived HA channel to this peer.
                    try await mesh.accept(connection, peer: ServerID(identity.name), first: message, frames: &frames)
                    return
                }
                if let gateways, let message, message["type"]?.stringValue == GatewayWire.hello {
                    try await gateways.accept(connection, identity: identity, hello: message, frames: &frames)
                    return
                }
                try await connection.send(SICChannelMessage.frame(await answer(message, from: identity)))
            }
        }
    }

    func answer(_ message: JSONValue?, from identity: NodeIdentity) async -> JSONValue {
        switch message?["type"]?.stringValue {
        case "ping":
            return SICChannelMessage.pong(server: serverName)
        case "renew":
            guard let text = message?["csr"]?.stringValue, let csr = Data(base64Encoded: text) else {
                return SICChannelMessage.error("renew needs a base64 csr")
            }
            do {
                return SICChannelMessage.renewed(certificatePEM: try await service.renewCertificate(for: identity, csrDER: Array(csr)).certificatePEM)
            } catch {
                logger.warning("SIC renewal refused", metadata: ["node": "\(identity)", "reason": "\(error)"])
                return SICChannelMessage.error("\(error)")
            }
        case "ica-state":
            do {
                return SICChannelMessage.icaState(try await service.icaState(forServer: identity))
            } catch {
                logger.warning("Internal CA state refused", metadata: ["node": "\(identity)", "reason": "\(error)"])
                return SICChannelMessage.error("\(error)")
            }
        default:
            return SICChannelMessage.error("unknown SIC message")
        }
    }
}
