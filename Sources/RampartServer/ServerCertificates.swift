import Foundation
import HARuntime
import Logging
import ManagementModel
import PeerTransport
import SICPort
import Store
import TrustCore

/// The Web API's certificate on every management server of a group comes from the group's Internal CA,
/// so a client that trusts `pki/ica.pem` (curl --cacert, Ansible's CA path, `rampart mgmt`) verifies
/// whichever server it reaches, before and after a promotion. A secondary receives the CA's key when it
/// joins (the same key the active sends every standby over HA) and issues its own API certificate
/// with it, at its first start and again at any start where it is due (`PKIDirectory.loadOrCreate`).
enum ServerCertificates {
    /// Addresses a server takes from a peer's answer, at most.
    static let addressesMax = 8

    /// The names the API certificate carries besides the server's name and localhost, 127.0.0.1, ::1
    /// (which `PKIDirectory` always adds): the listen address, the advertised SIC host, and the addresses
    /// of the server's checkpoint-host object. Anything that cannot be a certificate name is left out.
    static func apiNames(listen: String, advertisedHost: String?, ownObjectAddresses: [String]) -> [String] {
        var names: [String] = []
        for name in [listen] + [advertisedHost].compactMap { $0 } + ownObjectAddresses
        where !names.contains(name) && PKIDirectory.isCertificateName(name) {
            names.append(name)
        }
        return names
    }

    /// The addresses the database records for server `name` (its checkpoint-host object).
    static func objectAddresses(of name: String, in store: ManagementStore) -> [String] {
        guard let object = store.reader.objects(named: name).first(where: { $0.type == .checkpointHost }) else { return [] }
        return ["ipv4-address", "ipv6-address"].compactMap { object.fields[$0]?.stringValue }.filter { !$0.isEmpty }
    }

    /// Asks the servers in `servers`, in order, for the Internal CA's state over SIC and stores the
    /// key (pki/ica.key, 0600) from the first that gives it — only for the CA this node already trusts
    /// (its pki/ica.pem from enrolment). Returns this server's addresses as that server records them,
    /// or nil when none answered.
    static func fetchICAKey(credentials: NodeCredentials, from servers: [SICAddress], pkiDirectory: URL, logger: Logger) async -> [String]? {
        for server in servers {
            do {
                let (_, reply) = try await SICNodeChannel(credentials: credentials, host: server.host, port: server.port)
                    .exchange(SICChannelMessage.icaStateRequest())
                guard reply["type"]?.stringValue == "ica-state", let certificate = reply["certificate"]?.stringValue,
                    let key = reply["key"]?.stringValue
                else {
                    throw ServerStartError.failure(reply["message"]?.stringValue.map(SICChannels.printable) ?? "no Internal CA state in the answer")
                }
                guard certificate.trimmingCharacters(in: .whitespacesAndNewlines) == credentials.icaPEM.trimmingCharacters(in: .whitespacesAndNewlines) else {
                    throw ServerStartError.failure("it is not the Internal CA this server enrolled with")
                }
                _ = try InternalCA(certificatePEM: certificate, privateKeyPEM: key)  // the key must be the CA's
                try DurableFile.write(Array(key.utf8), to: pkiDirectory.appendingPathComponent(PKIDirectory.FileName.icaKey), mode: 0o600)
                logger.notice(
                    "Internal CA key received: this server issues its API certificate from the group's CA",
                    metadata: ["from": "\(server.host):\(server.port)"])
                let addresses = (reply["addresses"]?.arrayValue ?? []).compactMap(\.stringValue).filter(PKIDirectory.isCertificateName)
                return Array(addresses.prefix(addressesMax))
            } catch {
                logger.warning("could not get the Internal CA key", metadata: ["from": "\(server.host):\(server.port)", "error": "\(error)"])
            }
        }
        return nil
    }
}
