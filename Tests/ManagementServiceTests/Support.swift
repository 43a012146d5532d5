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
    func advance(seconds: Int) { milliseconds.withLock { $0 += Int64(seconds) * 1000 } }
}

/// Every test database of this process lives under one directory, removed when the process exits:
/// hundreds of harnesses otherwise leave their directories behind, and a full disk fails other tests.
enum TestDirectories {
    static let root: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-api-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: TestDirectories.root) }
        return url
    }()

    /// A new directory's path under `root` (not created).
    static func make() -> URL { root.appendingPathComponent(UUID().uuidString) }
}

/// A management service on a temporary database, with `admin`/`adminpw` and fast password hashing.
struct Harness {
    let directory: URL
    let store: ManagementStore
    let logs: LogStore
    let service: ManagementService
    let clock: TestClock

    init(directory: URL? = nil, clock: TestClock = TestClock()) async throws {
        self.directory = directory ?? TestDirectories.make()
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        store = try ManagementStore(path: self.directory.appendingPathComponent("rampart.sqlite").path)
        self.clock = clock
        logs = try LogStore(directory: self.directory)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        service = try ManagementService(
            store: store, identity: ServerIdentity(name: "primary", ipAddress: "127.0.0.1", apiPort: 8443),
            logger: logger, passwordIterations: 1_000, clockMilliseconds: { [clock] in clock.now }, logs: logs)
        _ = try await service.initializeIfEmpty(adminPassword: "adminpw")
    }

    static let client = ClientInfo(address: "127.0.0.1", isLocalSocket: false)

    func call(_ command: String, _ body: JSONValue = [:], sid: String?) async -> APIResponse {
        await service.handle(command: command, body: body, sid: sid, client: Harness.client)
    }

    func login(_ user: String = "admin", _ password: String = "adminpw", extra: [String: JSONValue] = [:]) async throws -> String {
        var body: [String: JSONValue] = ["user": .string(user), "password": .string(password)]
        body.merge(extra) { _, new in new }
        let reply = await call("login", .object(body), sid: nil)
        guard reply.status == 200, let sid = reply.body["sid"]?.stringValue else { throw HarnessError(reply: reply) }
        return sid
    }

    /// Calls a command that must succeed.
    @discardableResult
    func ok(_ command: String, _ body: JSONValue = [:], sid: String) async throws -> JSONValue {
        let reply = await call(command, body, sid: sid)
        guard reply.status == 200 else { throw HarnessError(reply: reply) }
        return reply.body
    }

    func publish(sid: String) async throws -> JSONValue {
        let reply = try await ok("publish", sid: sid)
        let tasks = try await ok("show-task", ["task-id": reply["task-id"]!, "details-level": "full"], sid: sid)
        return tasks["tasks"]![0]!
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let reply: APIResponse
    var description: String { "HTTP \(reply.status): \(reply.body.canonicalString)" }
}

extension JSONValue {
    subscript(index: Int) -> JSONValue? { arrayValue.flatMap { index < $0.count ? $0[index] : nil } }
}
