import Foundation
import Synchronization

/// A thread of its own for an actor or task whose work is synchronous store work (SQLite, canonical
/// JSON, hashing): a publish of a large revision or a standby applying it takes seconds. On Swift
/// concurrency's threads (two on a two-core machine) two such jobs at once hold them all, and nothing
/// else in the process runs meanwhile: not the API, not the HA heartbeats, not a timer. Here the kernel
/// shares the cores between this thread and the others.
///
/// Both a serial executor (an actor's `unownedExecutor`) and a task executor
/// (`withTaskExecutorPreference`, for a loop that is not an actor). Not at a lower priority: its work
/// takes the store's connection lock, and a low-priority thread preempted while holding it would hold up
/// publishes behind it.
public final class StoreThread: SerialExecutor, TaskExecutor, Sendable {
    private struct Queue {
        var jobs: [UnownedJob] = []
        var started = false
        var stopping = false
    }
    private let queue = Mutex(Queue())
    private let wake = DispatchSemaphore(value: 0)
    private let name: String

    /// The thread starts with the first job (an owner whose initializer throws leaves none behind);
    /// `name` is what `top -H` and a debugger show.
    public init(name: String) {
        self.name = String(name.prefix(15))  // Linux keeps 15 bytes of a thread's name
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let start = queue.withLock { queue in
            queue.jobs.append(job)
            defer { queue.started = true }
            return !queue.started
        }
        if start {
            let thread = Thread { [self] in runJobs() }
            thread.name = name
            thread.start()
        }
        wake.signal()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }

    /// Lets the thread end once the jobs queued so far have run (its owner is gone).
    public func stop() {
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
            for job in jobs {
                job.runSynchronously(isolatedTo: asUnownedSerialExecutor(), taskExecutor: asUnownedTaskExecutor())
            }
            if stopping { return }
        }
    }
}
