import ArgumentParser
import Foundation
import Gateway
import HARuntime
import ManagementClient
import ManagementModel
import PeerTransport
import RampartTools
import SICPort
import Store
import TrustCore

struct SICCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sic",
        abstract: "Secure Internal Communication: trust between management servers (and, later, gateways).",
        discussion: """
            Every server-to-server channel is mutual TLS with certificates from the Internal CA.
            A node is enrolled once with a one-time activation key: create its object on the
            active server, then enrol the node with the key:
              rampart sic new-key --out F
              rampart mgmt add-checkpoint-host name=mgmt-b ip-address=… one-time-password-file=F -r true --data DIR
              rampart sic enroll --data NODEDIR --server HOST:18191 --name mgmt-b --activation-key-file F
            status, test PEER and reset talk to the local server through DIR/rampart.sock.
            """,
        subcommands: [
            SICStatusCommand.self, SICTestCommand.self, SICResetCommand.self, SICEnrollCommand.self, SICRenewCommand.self,
            SICNewKeyCommand.self,
        ])
}

struct SICStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the SIC state of every peer server known to this server (exit 1 when one is not communicating).")

    @Option(name: .long, help: "The server's data directory.")
    var data: String

    @Flag(name: .long, help: "JSON output.")
    var json = false

    func run() async throws {
        let rows = try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid -> [JSONValue] in
            let hosts = try await LocalOperator.call(transport, "show-checkpoint-hosts", ["limit": 500], sid: sid)
            var rows: [JSONValue] = []
            for host in hosts["objects"]?.arrayValue ?? [] {
                guard let uid = host["uid"] else { continue }
                let status = try await LocalOperator.call(transport, "test-sic-status", ["uid": uid], sid: sid)
                rows.append([
                    "name": host["name"] ?? "", "ip-address": host["ipv4-address"] ?? "",
                    "sic-status": status["sic-status"] ?? "", "sic-name": status["sic-name"] ?? "",
                    "sic-message": status["sic-message"] ?? "", "revoked": status["rampart-revoked"] ?? false,
                ])
            }
            return rows
        }
        if json {
            for row in rows { print(row.canonicalString) }
        } else if rows.isEmpty {
            print(
                "No peer servers: add one with `rampart sic new-key --out F` and `rampart mgmt add-checkpoint-host name=… ip-address=… one-time-password-file=F`."
            )
        } else {
            for row in rows {
                let revoked = row["revoked"]?.boolValue == true ? " (revoked)" : ""
                print("\(row["name"]?.stringValue ?? "")  \(row["ip-address"]?.stringValue ?? "")  \(row["sic-status"]?.stringValue ?? "")\(revoked)")
                print("    \(row["sic-message"]?.stringValue ?? "")")
            }
        }
        if rows.contains(where: { $0["sic-status"]?.stringValue != "communicating" }) { throw ExitCode(1) }
    }
}

struct SICResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: "Revoke a peer's certificate at once and give it a new one-time activation key (published at once).",
        discussion:
            "Every open channel of the peer (HA channels, a gateway's channel) closes at once, on every server of the group; its status says revoked. Any server of the group can be reset from whichever server is active, except that one itself. The new key is printed once (or taken from --activation-key-file). Enrol the node again with it."
    )

    @Argument(help: "The peer server's object name.")
    var name: String

    @Option(name: .long, help: "The server's data directory.")
    var data: String

    @Option(name: .long, help: "File holding the new activation key (otherwise one is generated and printed once).")
    var activationKeyFile: String?

    func run() async throws {
        var body: [String: JSONValue] = ["name": .string(name)]
        if let activationKeyFile {
            guard let text = try? String(contentsOfFile: activationKeyFile, encoding: .utf8) else {
                throw ValidationError("--activation-key-file: cannot read \(activationKeyFile)")
            }
            body["one-time-password"] = .string(text.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        let requestBody = body
        let reply = try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid -> JSONValue in
            let reply = try await LocalOperator.call(transport, "reset-sic", requestBody, sid: sid)
            _ = try await LocalOperator.call(transport, "publish", [:], sid: sid)
            return reply
        }
        print("SIC of \(name) reset: any certificate it held is revoked.")
        if let key = reply["one-time-password"]?.stringValue { print("New one-time activation key (shown once): \(key)") }
    }
}

struct SICEnrollCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enroll",
        abstract: "Enrol this node with a server's Internal CA using a one-time activation key.",
        discussion: """
            Make a key:    rampart sic new-key --out KEYFILE
            On the server: rampart mgmt add-checkpoint-host name=mgmt-b ip-address=… one-time-password-file=KEYFILE -r true --data DIR
            On the node:   rampart sic enroll --data DIR --server HOST:18191 --name mgmt-b --activation-key-file KEYFILE
            The node proves it knows the key without sending it; the server proves the same before the node
            accepts its certificate and CA (no trust on first use). The key works once and expires (24 h).
            The node's key and certificate are written to DIR/pki (node.key 0600, node.pem, ica.pem).
            """)

    @Option(name: .long, help: "The node's data directory (created when missing).")
    var data: String

    @Option(name: .long, help: "The server's SIC address, HOST:PORT.")
    var server: SICAddress

    @Option(name: .long, help: "The node's name: exactly the name of its object on the server.")
    var name: String

    @Option(name: .long, help: "File holding the one-time activation key (never on the command line).")
    var activationKeyFile: String

    @Flag(name: .long, help: "Enrol even when this clock and the server's differ by more than the server's --clock-problem-ms.")
    var force = false

    func run() async throws {
        let credentials = try await withUsageErrors {
            try await NodeEnrolment.enrol(dataDirectory: data, server: server, name: name, activationKeyFile: activationKeyFile, allowsClockSkew: force)
        }
        let pki = URL(fileURLWithPath: data).standardizedFileURL.appendingPathComponent(DataDirectoryLayout.pki)
        let until = (try? credentials.certificate().notValidAfter).map { "\($0)" } ?? "?"
        print("Enrolled as \(credentials.identity); certificate valid until \(until). Keys in \(pki.path).")
    }
}

struct SICTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Test SIC: from an enrolled node to its server (--server), or a peer's state as this server sees it (PEER).",
        discussion: """
            On a node:    rampart sic test --data NODEDIR --server HOST:18191
                          opens a mutual-TLS channel, exchanges a message, and renews the node's certificate when
                          two thirds of its lifetime have passed.
            On a server:  rampart sic test mgmt-b --data SERVERDIR
                          Check Point's test-sic-status for that peer.
            Exit 0 when the channel works; otherwise the message says why (expired, revoked, other CA…).
            """)

    @Argument(help: "On a server: the peer's object name.")
    var peer: String?

    @Option(name: .long, help: "The data directory (the node's with --server, else the server's).")
    var data: String

    @Option(name: .long, help: "On a node: the server's SIC address, HOST:PORT.")
    var server: SICAddress?

    func validate() throws {
        guard (peer == nil) != (server == nil) else { throw ValidationError("give either PEER (on a server) or --server HOST:PORT (on a node)") }
    }

    func run() async throws {
        if let peer {
            let reply = try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid in
                try await LocalOperator.call(transport, "test-sic-status", ["name": .string(peer)], sid: sid)
            }
            let status = reply["sic-status"]?.stringValue ?? "unknown"
            print("\(peer): \(status)\n    \(reply["sic-message"]?.stringValue ?? "")")
            if status != "communicating" { throw ExitCode(1) }
            return
        }
        guard let server else { return }
        let pki = URL(fileURLWithPath: data).standardizedFileURL.appendingPathComponent(DataDirectoryLayout.pki)
        var credentials: NodeCredentials
        do { credentials = try NodeCredentials.load(from: pki) } catch {
            throw ToolFailure("no SIC credentials in \(pki.path): enrol first (rampart sic enroll). \(error)")
        }
        let channel = SICNodeChannel(credentials: credentials, host: server.host, port: server.port)
        do {
            let (peerIdentity, reply) = try await channel.exchange(SICChannelMessage.ping())
            print(
                "communicating: mutual TLS with \(peerIdentity.map { "\($0)" } ?? "the server") at \(server.host):\(server.port) (\(reply["type"]?.stringValue ?? "?"))"
            )
            let certificate = try credentials.certificate()
            if CertificateLifecycle.renewalDue(certificate, now: Date()) {
                credentials = try await channel.renew(pkiDirectory: pki)
                print("renewed this node's certificate: valid until \((try? credentials.certificate().notValidAfter).map { "\($0)" } ?? "?")")
            }
            for warning in CertificateLifecycle.expiryWarnings(
                icaNotValidAfter: try credentials.makeVerifier().icaCertificate.notValidAfter,
                nodeNotValidAfter: try? credentials.certificate().notValidAfter, now: Date())
            {
                print("warning: \(warning)")
            }
        } catch let error as PeerTransportError {
            print("not communicating: \(error.message)")
            throw ExitCode(1)
        }
    }
}

struct SICRenewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "renew",
        abstract: "Renew this node's SIC certificate over its trusted channel (automatic in `sic test` once due).")

    @Option(name: .long, help: "The enrolled node's data directory.")
    var data: String

    @Option(name: .long, help: "The server's SIC address, HOST:PORT.")
    var server: SICAddress

    func run() async throws {
        let pki = URL(fileURLWithPath: data).standardizedFileURL.appendingPathComponent(DataDirectoryLayout.pki)
        let credentials = try NodeCredentials.load(from: pki)
        let before = try credentials.certificate()
        let renewed = try await SICNodeChannel(credentials: credentials, host: server.host, port: server.port).renew(pkiDirectory: pki)
        let after = try renewed.certificate()
        print(
            "renewed: serial \(NodeCertificate.serialHex(before.serialNumber)) → \(NodeCertificate.serialHex(after.serialNumber)), valid until \(after.notValidAfter)"
        )
    }
}

/// `rampart sic new-key`: a strong one-time activation key in a new private file, for
/// `one-time-password-file=FILE` on the server and `--activation-key-file FILE` on the node.
struct SICNewKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-key",
        abstract: "Write a strong one-time activation key to a new file (mode 0600).",
        discussion: """
            The key is never printed unless you ask for it with --out - (standard output). Use it:
              rampart sic new-key --out mgmt-b.key
              rampart mgmt add-checkpoint-host name=mgmt-b ip-address=192.0.2.12 one-time-password-file=mgmt-b.key -r true --data ./mgmt1
              rampart server --data ./mgmt2 --server-name mgmt-b --join 192.0.2.11:18191 --activation-key-file mgmt-b.key
            The same for a gateway: add-simple-gateway … one-time-password-file=F, then rampart gateway … --activation-key-file F.
            An existing file is never replaced (it may hold a key in use).
            """)

    @Option(name: .long, help: ArgumentHelp("The new key file (refused if it exists); - prints the key to standard output.", valueName: "file"))
    var out: String = "activation.key"

    func run() throws {
        let key = SecureRandom.password(length: TrustLimits.activationKeyGeneratedLength)
        if out == "-" {
            print(key)
            return
        }
        try Self.writeNew(key + "\n", to: out)
        print(
            """
            Wrote a one-time activation key to \(out) (mode 0600; the key is not shown).
            Give it to the node's object:  rampart mgmt add-checkpoint-host name=NAME ip-address=ADDRESS one-time-password-file=\(out) -r true --data DIR
                                      (or add-simple-gateway …, set-checkpoint-host …, with one-time-password-file=\(out))
            and to the node:               --activation-key-file \(out)
            """)
    }

    /// Creates `path` with mode 0600 and writes `text`; refuses an existing file.
    static func writeNew(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw ToolFailure("\(path) exists: it may hold a key in use; remove it or choose another --out")
            }
            throw ToolFailure("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard fchmod(fd, 0o600) == 0,
            bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, fsync(fd) == 0
        else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw ToolFailure("cannot write \(path): \(reason)")
        }
    }
}
