import Foundation
import Synchronization

/// The SmartTasks engine's executor: one thread of its own. The engine's work is synchronous SQLite
/// and payload building; on Swift concurrency's threads (two on a two-core machine) it would hold one
/// that the API and the HA runtime need. Not at a lower priority: it takes the management store's
/// connection lock (journal reads, published tasks), and a low-priority thread preempted while holding
/// it would hold up publishes behind it.
final class EngineThread: SerialExecutor, Sendable {

    private struct Queue {
        var jobs: [UnownedJob] = []
        var stopping = false
    }
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)

    init(name: String) {
        let thread = Thread { [self] in runJobs() }
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
