import Foundation
import Logging
import ManagementModel
import ManagementService
import Store
import Synchronization

/// A clock tests move by hand.
final class TestClock: Sendable {
    private let milliseconds = Mutex<Int64>(1_800_000_000_000)
    var now: Int64 { milliseconds.withLock { $0 } }
}

/// A management service on a temporary database, with `admin`/`adminpw` and fast password hashing,
/// for the HTTP layer to serve (ManagementServiceTests has the full harness).
struct Harness {
    let directory: URL
    let store: ManagementStore
    let service: ManagementService
    let clock: TestClock

    init(directory: URL? = nil, clock: TestClock = TestClock()) async throws {
        self.directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("rampart-webapi-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        store = try ManagementStore(path: self.directory.appendingPathComponent("rampart.sqlite").path)
        self.clock = clock
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        service = try ManagementService(
            store: store, identity: ServerIdentity(name: "primary", ipAddress: "127.0.0.1", apiPort: 8443),
            logger: logger, passwordIterations: 1_000, clockMilliseconds: { [clock] in clock.now })
        _ = try await service.initializeIfEmpty(adminPassword: "adminpw")
    }
}
