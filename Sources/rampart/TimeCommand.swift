import ArgumentParser
import Foundation
import ManagementClient
import ManagementModel
import ManagementService
import RampartServer

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
        let (status, gateways) = try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid in
            let status = try await LocalOperator.call(transport, "show-ha-status", [:], sid: sid)
            let gateways = try await LocalOperator.call(
                transport, "show-gateways-and-servers", ["limit": .int(Int64(Limits.pageSizeMax))], sid: sid)
            return (status, gateways)
        }
        let report = try HAStatusReport(json: status)
        let rows = Self.rows(report) + Self.gatewayRows(gateways)
        let local = LocalClockSync.probe()
        if json {
            print(Self.json(report, rows: rows, local: local).canonicalString)
        } else {
            print(Self.text(rows, local: local))
        }
        if rows.contains(where: { $0.level == "problem" }) { throw ExitCode(1) }
    }

    /// One peer server's or gateway's clock as the server measured it; nil figures: not measured.
    struct Row: Equatable {
        var name: String
        var kind: String
        /// A server's HA state; nil for a gateway.
        var haState: String?
        var offsetMilliseconds: Int64?
        var delayMilliseconds: Int64?
        var measuredAt: String?
        var level: String?
    }

    static func rows(_ report: HAStatusReport) -> [Row] {
        report.servers.map { server in
            Row(
                name: server.name, kind: "management-server", haState: server.haState, offsetMilliseconds: server.clockOffsetMilliseconds,
                delayMilliseconds: server.clockDelayMilliseconds, measuredAt: server.clockMeasuredAt?.iso8601, level: server.clockLevel)
        }
    }

    /// Every gateway and cluster member of `show-gateways-and-servers` (members sit in their cluster's
    /// `members`), with the clock its `gateway-status` shows; a gateway whose agent sends no stamps (an
    /// older release) or that is not connected has a row without figures.
    static func gatewayRows(_ answer: JSONValue) -> [Row] {
        var rows: [Row] = []
        for object in answer["objects"]?.arrayValue ?? [] {
            for node in [object] + (object["members"]?.arrayValue ?? []) {
                guard let name = node["name"]?.stringValue, let status = node["gateway-status"] else { continue }
                let clock = status["clock"]
                rows.append(
                    Row(
                        name: name, kind: "gateway", haState: nil, offsetMilliseconds: clock?["offset-ms"]?.intValue,
                        delayMilliseconds: clock?["delay-ms"]?.intValue, measuredAt: clock?["measured-at"]?["iso-8601"]?.stringValue,
                        level: clock?["level"]?.stringValue))
            }
        }
        return rows
    }

    static func json(_ report: HAStatusReport, rows: [Row], local: LocalClockSync) -> JSONValue {
        let peers: [JSONValue] = rows.map { row in
            var fields: [String: JSONValue] = [
                "name": .string(row.name), "kind": .string(row.kind),
                "offset-ms": row.offsetMilliseconds.map(JSONValue.int) ?? .null,
                "delay-ms": row.delayMilliseconds.map(JSONValue.int) ?? .null,
                "measured-at": row.measuredAt.map(JSONValue.string) ?? .null,
                "level": .string(row.level ?? "not measured"),
            ]
            if let state = row.haState { fields["ha-state"] = .string(state) }
            return .object(fields)
        }
        return [
            "this-server": .string(report.thisServer ?? ""), "peers": .array(peers),
            "local-clock": [
                "source": .string(local.source), "synchronized": local.synchronized.map(JSONValue.bool) ?? .null, "detail": .string(local.detail),
            ],
        ]
    }

    static func text(_ rows: [Row], local: LocalClockSync) -> String {
        var lines = ["     remote                 kind     offset(ms)  delay(ms)  measured             level"]
        for row in rows {
            let offset = row.offsetMilliseconds.map { ($0 >= 0 ? "+" : "") + String($0) } ?? "-"
            let delay = row.delayMilliseconds.map(String.init) ?? "-"
            let marker = row.level == "problem" ? "x" : row.level == "warning" ? "-" : row.level == nil ? " " : "*"
            let kind = row.kind == "gateway" ? "gateway" : "server "
            lines.append(
                "\(marker) \(pad(LogEscaping.escape(row.name), 24)) \(kind)\(pad(offset, 11, right: true)) \(pad(delay, 10, right: true))  "
                    + "\(pad(row.measuredAt ?? "never", 20)) \(row.level ?? "not measured")")
        }
        if rows.isEmpty { lines.append("  (no peer servers or gateways: HA does not run here, or the group has one server, and no gateway is defined)") }
        let synced = local.synchronized.map { $0 ? "synchronized" : "NOT synchronized" } ?? "not synchronized by any service"
        lines.append("local clock: \(local.source), \(synced): \(local.detail)")
        return lines.joined(separator: "\n")
    }

    static func pad(_ text: String, _ width: Int, right: Bool = false) -> String {
        let fill = String(repeating: " ", count: max(0, width - text.count))
        return right ? fill + text : text + fill
    }
}
