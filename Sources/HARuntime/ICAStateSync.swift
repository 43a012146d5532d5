import Foundation
import HACore
import Logging
import ManagementModel
import ManagementService
import Synchronization
import TrustCore

/// What is synchronized outside the revision journal: the Internal CA's certificate, key and revocation
/// list, which a promoted standby needs to enrol and revoke. The active sends it over each channel
/// (mutual TLS between enrolled servers) when the channel opens and whenever it changes; a standby
/// accepts it only from the active of its epoch and only for the ICA it already trusts.
public final class ICAStateSync: Sendable {
    let pkiDirectory: URL
    let service: ManagementService
    let logger: Logger
    private struct State {
        /// Per peer: the channel and the state last sent on it.
        var sent: [ServerID: (channel: UInt64, digest: String)] = [:]
        var authority: InternalCA?
    }
    private let state = Mutex(State())

    public init(pkiDirectory: URL, service: ManagementService, logger: Logger) {
        self.pkiDirectory = pkiDirectory
        self.service = service
        self.logger = logger
    }

    var certificateFile: URL { pkiDirectory.appendingPathComponent(PKIDirectory.FileName.icaCertificate) }
    var keyFile: URL { pkiDirectory.appendingPathComponent(PKIDirectory.FileName.icaKey) }

    /// The authority, when this server holds the ICA key (the primary; a standby once it received it).
    /// Read from pki/ once, then kept: `push` asks for it every reconcile interval.
    public func loadAuthority() -> InternalCA? {
        if let cached = state.withLock({ $0.authority }) { return cached }
        guard let certificate = try? String(contentsOf: certificateFile, encoding: .utf8),
            let key = try? String(contentsOf: keyFile, encoding: .utf8),
            let loaded = try? InternalCA(certificatePEM: certificate, privateKeyPEM: key)
        else { return nil }
        state.withLock { $0.authority = loaded }
        return loaded
    }

    func push(to peers: [ServerID], links: HAPeerLinks) async {
        guard let authority = loadAuthority(), let revocations = try? service.currentRevocations() else { return }
        let message: JSONValue = [
            "type": .string(HAChannel.icaType), "certificate": .string(authority.certificatePEM),
            "key": .string(authority.privateKeyPEM), "revocations": .string(revocations.jsonText),
        ]
        let digest = message.canonicalString  // what was sent is compared whole: it is small
        for peer in peers {
            guard let channel = links.channelToken(peer) else { continue }
            let due = state.withLock { state -> Bool in
                guard state.sent[peer]?.channel != channel || state.sent[peer]?.digest != digest else { return false }
                state.sent[peer] = (channel, digest)
                return true
            }
            if due { links.send(message, to: peer) }
        }
    }

    func receive(_ message: JSONValue, from peer: ServerID, runtime: HARuntime) async {
        let status = runtime.status
        guard status.role == .standby, peer == status.activeServer else { return }
        guard let certificate = message["certificate"]?.stringValue, let key = message["key"]?.stringValue,
            let revocations = message["revocations"]?.stringValue
        else { return }
        do {
            let trusted = try String(contentsOf: certificateFile, encoding: .utf8)
            guard trusted.trimmingCharacters(in: .whitespacesAndNewlines) == certificate.trimmingCharacters(in: .whitespacesAndNewlines) else {
                logger.error("ICA state refused: it is not the Internal CA this server trusts", metadata: ["from": "\(peer)"])
                return
            }
            let authority = try InternalCA(certificatePEM: certificate, privateKeyPEM: key)
            if (try? String(contentsOf: keyFile, encoding: .utf8)) != key {
                try DurableFile.write(Array(key.utf8), to: keyFile, mode: 0o600)
                logger.notice("Internal CA key received from the active: this server can enrol and revoke once promoted")
            }
            state.withLock { $0.authority = authority }
            try await service.adoptICAState(authority: authority, revocationsText: revocations)
        } catch {
            logger.error("ICA state from the active could not be stored", metadata: ["error": "\(error)"])
        }
    }
}
