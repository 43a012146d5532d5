import ArgumentParser
import Foundation
import ManagementModel

/// Local operator access: root over the server's Unix socket in its data directory (the file's
/// permissions are the authority, as root on a Check Point box).
enum LocalOperator {
    static func withRootSession<T: Sendable>(dataDirectory: String, _ body: @Sendable (MgmtTransport, String) async throws -> T) async throws -> T {
        let socket = (dataDirectory as NSString).appendingPathComponent("rampart.sock")
        guard FileManager.default.fileExists(atPath: socket) else {
            throw ValidationError("No server socket at \(socket): is `rampart server --data \(dataDirectory)` running?")
        }
        let endpoint = MgmtEndpoint(target: .unixSocket(path: socket), caFile: nil, unsafe: false, apiVersion: nil)
        return try await MgmtTransport.with(endpoint) { transport in
            let login = try await transport.call("login", ["login-as-root": true], sid: nil)
            guard login.ok, let sid = login.body["sid"]?.stringValue else { throw ValidationError("root login failed: \(login.message)") }
            let result: Result<T, any Error>
            do { result = .success(try await body(transport, sid)) } catch { result = .failure(error) }
            _ = try? await transport.call("logout", [:], sid: sid)
            return try result.get()
        }
    }

    /// Calls a command that must succeed and returns its reply.
    static func call(_ transport: MgmtTransport, _ command: String, _ body: [String: JSONValue], sid: String) async throws -> JSONValue {
        let reply = try await transport.call(command, body, sid: sid)
        guard reply.ok else { throw ValidationError("\(command): \(reply.code): \(reply.message)") }
        return reply.body
    }
}

struct SICCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sic",
        abstract: "Secure Internal Communication: trust between management servers (and, later, gateways).",
        discussion: """
        Every server-to-server channel is mutual TLS with certificates from the Internal CA. A node is
        enrolled once with a one-time activation key: create its object on the active server
        (`rampart mgmt add-checkpoint-host name=mgmt-b ip-address=… one-time-password=…`), then enrol it.
        These commands talk to the local server through DIR/rampart.sock.
        """,
        subcommands: [SICStatusCommand.self, SICResetCommand.self])
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
                rows.append(["name": host["name"] ?? "", "ip-address": host["ipv4-address"] ?? "",
                             "sic-status": status["sic-status"] ?? "", "sic-name": status["sic-name"] ?? "",
                             "sic-message": status["sic-message"] ?? ""])
            }
            return rows
        }
        if json {
            for row in rows { print(row.canonicalString) }
        } else if rows.isEmpty {
            print("No peer servers: add one with `rampart mgmt add-checkpoint-host name=… ip-address=… one-time-password=…`.")
        } else {
            for row in rows {
                print("\(row["name"]?.stringValue ?? "")  \(row["ip-address"]?.stringValue ?? "")  \(row["sic-status"]?.stringValue ?? "")")
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
        discussion: "The new key is printed once (or taken from --activation-key-file). Enrol the node again with it.")

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
