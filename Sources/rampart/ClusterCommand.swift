import ArgumentParser
import ClusterRuntime
import Foundation
import ManagementModel

/// `rampart cluster …` on a cluster member: asks the running agent over DIR/cluster.sock.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "A gateway cluster member's state and controls (cphaprob and clusterXL_admin): state, list, if, admin, pnote.",
        subcommands: [ClusterStateCommand.self, ClusterListCommand.self, ClusterIfCommand.self, ClusterAdminCommand.self, ClusterPnoteCommand.self])
}

struct ClusterTarget: ParsableArguments {
    @Option(name: .long, help: "The member's gateway agent data directory.")
    var data: String

    @Flag(name: .long, help: "Print the agent's answer as JSON.")
    var json = false

    /// Sends `request`; a refusal is printed and exits 1.
    func call(_ request: JSONValue) async throws -> JSONValue {
        let answer: JSONValue
        do {
            answer = try await OperatorSocket.request(directory: URL(fileURLWithPath: data).standardizedFileURL, request)
        } catch {
            FileHandle.standardError.write(Data("rampart cluster: \(error)\n".utf8))
            throw ExitCode(1)
        }
        guard answer["ok"]?.boolValue == true else {
            if json {
                print(answer.canonicalString)
            } else {
                FileHandle.standardError.write(
                    Data("refused (\(answer["code"]?.stringValue ?? "?")): \(answer["message"]?.stringValue ?? "")\n".utf8))
            }
            throw ExitCode(1)
        }
        return answer
    }
}

struct ClusterStateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "state", abstract: "The cluster state as this member sees it (cphaprob state).")
    @OptionGroup var target: ClusterTarget

    func run() async throws {
        let answer = try await target.call(["command": "state"])
        print(target.json ? answer.canonicalString : ClusterText.state(answer["status"] ?? .null))
    }
}

struct ClusterListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Critical devices (pnotes) and their states (cphaprob -l list).")
    @OptionGroup var target: ClusterTarget

    func run() async throws {
        let answer = try await target.call(["command": "state"])
        print(target.json ? (answer["status"]?["devices"] ?? .array([])).canonicalString : ClusterText.devices(answer["status"] ?? .null))
    }
}

struct ClusterIfCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "if", abstract: "Monitored interfaces, their links and the age of each member's last heartbeat (cphaprob -a if).")
    @OptionGroup var target: ClusterTarget

    func run() async throws {
        let answer = try await target.call(["command": "state"])
        print(target.json ? (answer["status"]?["interfaces"] ?? .array([])).canonicalString : ClusterText.interfaces(answer["status"] ?? .null))
    }
}

struct ClusterAdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin",
        abstract: "admin down: this member goes DOWN through the admin_down pnote (refused when no other member is healthy, unless --force); admin up.")
    @Argument(help: "down or up") var direction: String
    @Flag(name: .long, help: "admin down even when no other member is healthy to take over.") var force = false
    @OptionGroup var target: ClusterTarget

    func validate() throws {
        guard ["down", "up"].contains(direction) else { throw ValidationError("expected down or up") }
    }

    func run() async throws {
        let answer = try await target.call(direction == "down" ? ["command": "admin-down", "force": .bool(force)] : ["command": "admin-up"])
        print(target.json ? answer.canonicalString : answer["reason"]?.stringValue ?? "done")
    }
}

struct ClusterPnoteCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pnote",
        abstract: "Register, report or unregister a critical device (cphaprob -d DEVICE -s STATE [-t SECONDS] register|report|unregister).")
    @Argument(help: "register, report or unregister") var action: String
    @Option(name: .shortAndLong, help: "The device's name.") var device: String
    @Option(name: .shortAndLong, help: "ok, init or problem (register, report).") var state: String?
    @Option(name: .shortAndLong, help: "register: report timeout in seconds; 0 for none.") var timeout: Int = 0
    @OptionGroup var target: ClusterTarget

    func validate() throws {
        guard ["register", "report", "unregister"].contains(action) else { throw ValidationError("expected register, report or unregister") }
        if action != "unregister", !["ok", "init", "problem"].contains(state ?? "") { throw ValidationError("--state: ok, init or problem") }
        guard (0...3_600).contains(timeout) else { throw ValidationError("--timeout: 0 to 3600 seconds") }
    }

    func run() async throws {
        var request: [String: JSONValue] = ["command": .string("pnote-\(action)"), "name": .string(device)]
        if let state { request["state"] = .string(state) }
        if action == "register" { request["timeout-ms"] = .int(Int64(timeout) * 1_000) }
        let answer = try await target.call(.object(request))
        print(target.json ? answer.canonicalString : answer["reason"]?.stringValue ?? "done")
    }
}

/// The text forms, from the JSON status (so text and --json say the same).
enum ClusterText {
    static func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }

    static func time(_ value: JSONValue?) -> String {
        guard let milliseconds = value?.intValue else { return "-" }
        let formatter = DateFormatter()
        formatter.dateFormat = "EEE MMM d HH:mm:ss yyyy"
        formatter.locale = Locale(identifier: "en_US_POSIX")
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1_000))
    }

    static func state(_ status: JSONValue) -> String {
        var lines = ["Cluster Mode:   \(status["mode"]?.stringValue ?? "?")", ""]
        lines.append(pad("ID", 11) + pad("Unique Address", 16) + pad("Assigned Load", 16) + pad("State", 22) + "Name")
        for member in status["members"]?.arrayValue ?? [] {
            let id = "\(member["id"]?.intValue ?? 0)" + (member["local"]?.boolValue == true ? " (local)" : "")
            lines.append(
                pad(id, 11) + pad(member["address"]?.stringValue ?? "", 16) + pad("\(member["assigned-load-percent"]?.intValue ?? 0)%", 16)
                    + pad(member["state"]?.stringValue ?? "", 22) + (member["name"]?.stringValue ?? ""))
        }
        let pnotes = (status["active-pnotes"]?.arrayValue ?? []).compactMap(\.stringValue)
        lines += ["", "Active PNOTEs: " + (pnotes.isEmpty ? "None" : pnotes.joined(separator: ", ")), ""]
        if let change = status["last-change"] {
            lines += [
                "Last member state change event:",
                "   Event Code:                 \(change["event-code"]?.stringValue ?? "")",
                "   State change:               \(change["from"]?.stringValue ?? "") -> \(change["to"]?.stringValue ?? "")",
                "   Reason for state change:    \(change["reason"]?.stringValue ?? "")",
                "   Event time:                 \(time(change["time-ms"]))", "",
            ]
        }
        lines += [
            "Cluster failover count:",
            "   Failover counter:           \(status["failover-count"]?.intValue ?? 0)",
            "   Time of counter reset:      \(time(status["failover-count-reset-at"])) (\(status["failover-count-reset-cause"]?.stringValue ?? ""))",
            "",
            "Heartbeat interval: \(status["heartbeat-interval-ms"]?.intValue ?? 0) ms; \(status["dead-timer"]?.stringValue ?? "")",
            "Load (how late this member's loop ran, share of the heartbeat interval, every second): "
                + (status["load-percent"]?.intValue.map { "\($0)%" } ?? "not sampled yet"),
        ]
        return lines.joined(separator: "\n")
    }

    static func devices(_ status: JSONValue) -> String {
        var lines: [String] = []
        for (title, kind) in [("Built-in Devices:", "built-in"), ("Registered Devices:", "registered")] {
            lines += [title, ""]
            for device in (status["devices"]?.arrayValue ?? []) where device["kind"]?.stringValue == kind {
                lines.append("Device Name: \(device["name"]?.stringValue ?? "")")
                lines.append("Current state: \((device["state"]?.stringValue ?? "").uppercased())")
                let missed = device["missed-deadline"]?.boolValue == true ? " (missed its report deadline)" : ""
                lines.append("Detail: \(device["detail"]?.stringValue ?? "")\(missed)")
                if let timeout = device["timeout-ms"]?.intValue { lines.append("Timeout: \(timeout / 1_000) s") }
                lines.append("")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func interfaces(_ status: JSONValue) -> String {
        let interfaces = status["interfaces"]?.arrayValue ?? []
        var lines = [
            "Required interfaces: \(status["required-interfaces"]?.intValue ?? 0)", "Interfaces up: \(status["interfaces-up"]?.intValue ?? 0)",
            "Heartbeats: UDP port \(status["heartbeat-port"]?.intValue ?? 0), unicast, HMAC-SHA256", "",
            pad("Interface Name:", 21) + pad("Status:", 10) + pad("Address:", 18) + "Last heartbeat:",
        ]
        for interface in interfaces {
            let ages = (interface["heartbeat-ages"]?.arrayValue ?? []).map { age in
                "member \(age["member"]?.intValue ?? 0) " + (age["age-ms"]?.intValue.map { "\($0) ms ago" } ?? "never")
            }
            lines.append(
                pad(interface["name"]?.stringValue ?? "", 21) + pad(interface["link-up"]?.boolValue == true ? "UP" : "DOWN", 10)
                    + pad(interface["address"]?.stringValue ?? "", 18) + ages.joined(separator: ", "))
        }
        let virtual = interfaces.filter { $0["virtual-address"]?.stringValue != nil }
        lines += ["", "Virtual cluster interfaces: \(virtual.count)"]
        for interface in virtual { lines.append(pad(interface["name"]?.stringValue ?? "", 21) + (interface["virtual-address"]?.stringValue ?? "")) }
        return lines.joined(separator: "\n")
    }
}
