import ArgumentParser
import ManagementClient
import ManagementModel

struct SmartTaskCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smarttask",
        abstract: "SmartTasks on this server: the history of executions.",
        subcommands: [SmartTaskHistoryCommand.self])
}

/// `rampart smarttask history`: this node's executions over the local socket (show-smart-task-executions).
struct SmartTaskHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "This server's smart-task executions, newest first: time, task, trigger, result, attempt, duration, event id.")

    @Option(name: .long, help: "The server's data directory.")
    var data: String

    @Option(name: .long, help: "Only this task's (name or uid).")
    var task: String?

    @Option(name: .long, help: "Only this trigger's (\"After Publish\", \"HA State Changed\"...).")
    var trigger: String?

    @Option(name: .long, help: "Only this result: succeeded, failed, dead-letter, vetoed, failed-open, skipped, expired.")
    var result: String?

    @Option(name: .long, help: "Most executions to show (1 to \(Limits.pageSizeMax)).")
    var limit = 50

    @Option(name: .long, help: "Executions to skip.")
    var offset = 0

    @Flag(name: .long, help: "JSON output (the body of show-smart-task-executions, outputs included).")
    var json = false

    func run() async throws {
        var body: [String: JSONValue] = ["limit": .int(Int64(limit)), "offset": .int(Int64(offset))]
        if let task { body["task"] = .string(task) }
        if let trigger { body["trigger"] = .string(trigger) }
        if let result { body["result"] = .string(result) }
        let reply = try await LocalOperator.runAsRoot(dataDirectory: data, "show-smart-task-executions", body)
        if json {
            print(reply.canonicalString)
            return
        }
        let items = reply["objects"]?.arrayValue ?? []
        if items.isEmpty { print("no smart-task executions") }
        for item in items { print(Self.line(item)) }
    }

    static func line(_ item: JSONValue) -> String {
        let time = item["start-time"]?["iso-8601"]?.stringValue ?? "?"
        let task = item["smart-task"]?["name"]?.stringValue ?? "?"
        let fields = [
            time, task, item["trigger"]?.stringValue ?? "?", item["result"]?.stringValue ?? "?",
            "attempt \(item["attempt"]?.intValue ?? 0)", "\(item["duration-ms"]?.intValue ?? 0) ms", "event \(item["event-id"]?.stringValue ?? "?")",
        ]
        return fields.joined(separator: "  ")
    }
}
