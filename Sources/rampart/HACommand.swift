import ArgumentParser
import Foundation
import ManagementModel

struct HACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ha",
        abstract: "Management High Availability: status of this server and its peers.",
        discussion: """
        Add a secondary: on the active, `rampart mgmt add-checkpoint-host name=mgmt-b ip-address=… one-time-password=…`
        and publish; on the new machine, `rampart server --data DIR --server-name mgmt-b --join ACTIVE:18191
        --activation-key-file KEYFILE`. It enrols, gets a full sync, then follows every publish (delta sync).
        These commands talk to the local server through DIR/rampart.sock.
        """,
        subcommands: [HAStatusCommand.self])
}

struct HAStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show this server's HA role, mode, epoch, head and each peer's sync status (exit 1 when something is wrong).")

    @Option(name: .long, help: "The server's data directory.")
    var data: String

    @Flag(name: .long, help: "JSON output (the body of the Web API's show-ha-status).")
    var json = false

    func run() async throws {
        let status = try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid in
            try await LocalOperator.call(transport, "show-ha-status", [:], sid: sid)
        }
        if json {
            print(status.canonicalString)
        } else {
            print(Self.text(status))
        }
        if status["successfully-synced"]?.boolValue != true { throw ExitCode(1) }
    }

    static func text(_ status: JSONValue) -> String {
        guard status["rampart-ha"]?.stringValue != "not-configured" else { return "HA is not running on this server." }
        func field(_ key: String) -> String { status[key]?.scalarText ?? "-" }
        let head = status["head"]
        let epoch = status["epoch"]
        var lines = [
            "server:       \(field("this-server")) (\(field("role")), \(field("mode")))",
            "active:       \(field("active-server"))",
            "epoch:        \(epoch?["term"]?.scalarText ?? "?")/\(epoch?["server"]?.scalarText ?? "?")",
            "head:         #\(head?["number"]?.scalarText ?? "?") \(head?["hash"]?.stringValue?.prefix(12) ?? "")",
            "writes:       \(status["writes-enabled"]?.boolValue == true ? "enabled" : "refused")",
            "sync status:  \(field("sync-status"))",
            "last sync:    \(status["last-successful-sync"]?["iso-8601"]?.stringValue ?? "-")",
            "last error:   \(status["last-error"]?.stringValue ?? "-")",
        ]
        for server in status["servers"]?.arrayValue ?? [] {
            lines.append("peer \(server["name"]?.stringValue ?? "?"): \(server["ha-state"]?.stringValue ?? "?"), \(server["rampart-sync-detail"]?.stringValue ?? "?"), lag \(server["lag-revisions"]?.scalarText ?? "?") revisions / \(server["lag-seconds"]?.scalarText ?? "?") s, connected \(server["connected"]?.scalarText ?? "?")")
        }
        for problem in status["problems"]?.arrayValue ?? [] { lines.append("problem: \(problem.stringValue ?? "")") }
        return lines.joined(separator: "\n")
    }
}
