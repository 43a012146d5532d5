import ArgumentParser
import Foundation
import ManagementClient
import ManagementModel
import ManagementService

/// `rampart time`: like `ntpq -p`, each peer server's clock offset and round trip as this server
/// measured them (NTP's arithmetic on the `ha-clock` messages), and this machine's own synchronization.
struct TimeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "time",
        abstract: "Show each peer server's clock offset, round trip and when measured, and this clock's NTP state (exit 1 on a problem).",
        discussion: """
            Offsets are measured as NTP does, from the timestamps on the messages the servers exchange every second \
            (offset = ((t2-t1)+(t3-t4))/2, delay = (t4-t1)-(t3-t2)); positive: the peer is ahead. Levels follow \
            `rampart server --clock-warning-ms` and `--clock-problem-ms`; above the problem level `ha promote` refuses unless --force. \
            It talks to the local server through DIR/rampart.sock.
            """)

    @Option(name: .long, help: "The server's data directory.")
    var data: String

    @Flag(name: .long, help: "JSON output.")
    var json = false

    func run() async throws {
        let status = try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid in
            try await LocalOperator.call(transport, "show-ha-status", [:], sid: sid)
        }
        let report = try HAStatusReport(json: status)
        let local = LocalClockSync.probe()
        if json {
            print(Self.json(report, local: local).canonicalString)
        } else {
            print(Self.text(report, local: local))
        }
        if report.servers.contains(where: { $0.clockLevel == "problem" }) { throw ExitCode(1) }
    }

    static func json(_ report: HAStatusReport, local: LocalClockSync) -> JSONValue {
        let peers: [JSONValue] = report.servers.map { server in
            [
                "name": .string(server.name), "kind": "management-server", "ha-state": .string(server.haState),
                "offset-ms": server.clockOffsetMilliseconds.map(JSONValue.int) ?? .null,
                "delay-ms": server.clockDelayMilliseconds.map(JSONValue.int) ?? .null,
                "measured-at": server.clockMeasuredAt.map { .string($0.iso8601) } ?? .null,
                "level": server.clockLevel.map(JSONValue.string) ?? "not measured",
            ]
        }
        return [
            "this-server": .string(report.thisServer ?? ""), "peers": .array(peers),
            "local-clock": [
                "source": .string(local.source), "synchronized": local.synchronized.map(JSONValue.bool) ?? .null, "detail": .string(local.detail),
            ],
        ]
    }

    static func text(_ report: HAStatusReport, local: LocalClockSync) -> String {
        var lines = ["     remote                 kind     offset(ms)  delay(ms)  measured             level"]
        for server in report.servers {
            let offset = server.clockOffsetMilliseconds.map { ($0 >= 0 ? "+" : "") + String($0) } ?? "-"
            let delay = server.clockDelayMilliseconds.map(String.init) ?? "-"
            let marker = server.clockLevel == "problem" ? "x" : server.clockLevel == "warning" ? "-" : "*"
            lines.append(
                "\(marker) \(pad(server.name, 24)) server \(pad(offset, 11, right: true)) \(pad(delay, 10, right: true))  "
                    + "\(pad(server.clockMeasuredAt?.iso8601 ?? "never", 20)) \(server.clockLevel ?? "not measured")")
        }
        if report.servers.isEmpty { lines.append("  (no peer servers: HA does not run here, or the group has one server)") }
        let synced = local.synchronized.map { $0 ? "synchronized" : "NOT synchronized" } ?? "not synchronized by any service"
        lines.append("local clock: \(local.source), \(synced): \(local.detail)")
        return lines.joined(separator: "\n")
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }
}
