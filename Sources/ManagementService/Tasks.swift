import ManagementModel
import TrustCore

/// Long operations report through tasks (`show-task`). Finished tasks are kept for
/// `retentionMilliseconds` (an hour unless the server is told otherwise) and at most
/// `Limits.tasksKeptMax` of them, oldest dropped first.
struct TaskList {
    struct Task {
        let id: String
        let name: String
        var status: String
        var progress: Int
        var comments: String
        let startMilliseconds: Int64
        var lastUpdateMilliseconds: Int64
        var details: [JSONValue]
    }

    private(set) var tasks: [String: Task] = [:]
    private var order: [String] = []
    var retentionMilliseconds = Int64(Limits.taskRetentionSeconds) * 1000

    /// Records a task that already finished (the work ran inside the request).
    mutating func finished(_ name: String, status: String, comments: String = "", details: [JSONValue], nowMilliseconds: Int64) -> String {
        let id = SecureRandom.uuid()
        tasks[id] = Task(
            id: id, name: name, status: status, progress: 100, comments: comments, startMilliseconds: nowMilliseconds,
            lastUpdateMilliseconds: nowMilliseconds, details: details)
        order.append(id)
        prune(nowMilliseconds: nowMilliseconds)
        return id
    }

    /// A task still running (its result comes later through `update`).
    mutating func started(_ name: String, details: [JSONValue], nowMilliseconds: Int64) -> String {
        let id = finished(name, status: "in progress", details: details, nowMilliseconds: nowMilliseconds)
        tasks[id]?.progress = 50
        return id
    }

    mutating func update(_ id: String, status: String, comments: String, nowMilliseconds: Int64) {
        guard var task = tasks[id] else { return }
        task.status = status
        task.comments = comments
        task.progress = 100
        task.lastUpdateMilliseconds = nowMilliseconds
        tasks[id] = task
    }

    /// One entry of a running task's details, and its progress (install-policy: one entry per gateway).
    /// Changed in place: a task of thousands of entries is never copied per update.
    mutating func updateDetail(_ id: String, at index: Int, _ detail: JSONValue, progress: Int, nowMilliseconds: Int64) {
        guard tasks[id]?.details.indices.contains(index) == true else { return }
        tasks[id]!.details[index] = detail
        tasks[id]!.progress = progress
        tasks[id]!.lastUpdateMilliseconds = nowMilliseconds
    }

    mutating func prune(nowMilliseconds: Int64) {
        while let oldest = order.first, let task = tasks[oldest],
            order.count > Limits.tasksKeptMax || nowMilliseconds - task.lastUpdateMilliseconds > retentionMilliseconds
        {
            tasks[oldest] = nil
            order.removeFirst()
        }
    }

    var newestFirst: [Task] { order.reversed().compactMap { tasks[$0] } }

    static func render(_ task: Task, full: Bool) -> JSONValue {
        var fields: [String: JSONValue] = [
            "uid": .string(task.id), "task-id": .string(task.id), "task-name": .string(task.name), "status": .string(task.status),
            "progress-percentage": .int(Int64(task.progress)),
            "progress-description": .string(task.status == "in progress" ? "In progress" : "Operation Complete"),
            "suppressed": .bool(false), "comments": .string(task.comments),
            "start-time": Renderer.timestamp(task.startMilliseconds), "last-update-time": Renderer.timestamp(task.lastUpdateMilliseconds),
        ]
        if full { fields["task-details"] = .array(task.details) }
        return .object(fields)
    }
}
