import ManagementModel
import Testing

@testable import ManagementService

@Suite("Tasks: kept for the retention the server was given, and at most tasksKeptMax")
struct TaskListTests {
    @Test("a finished task stays for the retention and no longer; a server told a shorter one prunes sooner")
    func retentionBoundsTheList() {
        var tasks = TaskList()
        let first = tasks.finished("Publish operation", status: "succeeded", details: [], nowMilliseconds: 0)
        _ = tasks.finished("Publish operation", status: "succeeded", details: [], nowMilliseconds: 3_600_000)
        #expect(tasks.tasks[first] != nil, "an hour by default")
        _ = tasks.finished("Publish operation", status: "succeeded", details: [], nowMilliseconds: 3_600_001)
        #expect(tasks.tasks[first] == nil)

        var short = TaskList()
        short.retentionMilliseconds = 60_000
        let early = short.finished("Publish operation", status: "succeeded", details: [], nowMilliseconds: 0)
        _ = short.finished("Publish operation", status: "succeeded", details: [], nowMilliseconds: 60_001)
        #expect(short.tasks[early] == nil)
        #expect(short.tasks.count == 1)
    }
}
