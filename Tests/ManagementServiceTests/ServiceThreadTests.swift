import Foundation
import Logging
import ManagementModel
import ManagementService
import Store
import Synchronization
import Testing

/// A publish of a large revision is seconds of synchronous store work (64 MiB of canonical JSON, its
/// hash, SQLite). Run on Swift concurrency's threads (two on a two-core machine), two services busy at
/// once held every one of them: nothing else in the process ran, not the API, not the HA heartbeats, not
/// a timer (CI saw a two-minute freeze). The service runs on a thread of its own.
@Suite("The service's synchronous work leaves Swift concurrency's threads free")
struct ServiceThreadTests {
    /// A clock whose reads block, while held, until released: a stand-in for a long synchronous step
    /// inside a command (every session command reads the clock on the service's executor).
    final class HeldClock: Sendable {
        private let held = Mutex(false)
        let entered = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)

        var now: Int64 {
            if held.withLock({ $0 }) {
                entered.signal()
                release.wait()
            }
            return 1_800_000_000_000
        }

        func hold(_ on: Bool) { held.withLock { $0 = on } }
    }

    @Test func servicesBusyOnEveryCoreAtOnceLeaveThePoolFree() async throws {
        // Twice the pool's width (the machine's cores), so that before the fix every pool thread was held.
        let count = 2 * ProcessInfo.processInfo.activeProcessorCount
        let clock = HeldClock()
        var sessions: [(ManagementService, String)] = []
        for _ in 0..<count {
            let directory = TestDirectories.make()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let service = try ManagementService(
                store: try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path),
                identity: ServerIdentity(name: "primary", ipAddress: "127.0.0.1", apiPort: 8443), logger: logger,
                passwordIterations: 1_000, clockMilliseconds: { clock.now })
            _ = try await service.initializeIfEmpty(adminPassword: "adminpw")
            let login = await service.handle(
                command: "login", body: ["user": "admin", "password": "adminpw"], sid: nil, client: Harness.client)
            sessions.append((service, try #require(login.body["sid"]?.stringValue)))
        }

        clock.hold(true)
        let calls = sessions.map { service, sid in
            Task { await service.handle(command: "keepalive", body: [:], sid: sid, client: Harness.client).status }
        }
        // Decided on a thread of its own: with the pool held, nothing on it could decide.
        let verdict = await Self.onOwnThread { () -> String? in
            defer {
                clock.hold(false)
                for _ in 0..<count { clock.release.signal() }
            }
            for started in 0..<count where clock.entered.wait(timeout: .now() + 30) == .timedOut {
                return "\(started) of \(count) commands started: the others found no thread to run on"
            }
            let probeRan = DispatchSemaphore(value: 0)
            Task.detached { probeRan.signal() }
            guard probeRan.wait(timeout: .now() + 30) == .success else {
                return "a task on Swift concurrency's threads did not run while \(count) services were busy"
            }
            return nil
        }
        #expect(verdict == nil, "\(verdict ?? "")")
        for call in calls { #expect(await call.value == 200) }
    }

    static func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: body()) }
        }
    }
}
