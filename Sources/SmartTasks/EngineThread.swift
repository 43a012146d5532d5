import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The SmartTasks engine's executor: one thread of its own, at a lower scheduling priority. The
/// engine's work is synchronous SQLite and payload building; on Swift concurrency's threads (two on a
/// two-core machine) it would hold one the API and the HA runtime need, and at the same priority it
/// would take CPU from publishes. Deliveries can wait; a publish should not.
final class EngineThread: SerialExecutor, Sendable {
    /// Linux keeps a nice value per thread.
    static let niceness: Int32 = 10

    private struct Queue {
        var jobs: [UnownedJob] = []
        var stopping = false
    }
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, Self.niceness)
            runJobs()
        }
        thread.name = name
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.withLock { $0.jobs.append(job) }
        wake.signal()
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    /// Lets the thread end once the jobs queued so far have run (the engine is gone).
    func stop() {
        queue.withLock { $0.stopping = true }
        wake.signal()
    }

    private func runJobs() {
        while true {
            wake.wait()
            let (jobs, stopping) = queue.withLock { queue in
                defer { queue.jobs.removeAll(keepingCapacity: true) }
                return (queue.jobs, queue.stopping)
            }
            for job in jobs { job.runSynchronously(on: asUnownedSerialExecutor()) }
            if stopping { return }
        }
    }
}
