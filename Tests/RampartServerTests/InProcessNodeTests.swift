import Foundation
import Logging
import HACore
import ManagementClient
import ManagementModel
import ManagementService
import Synchronization
import PeerTransport
import Testing
import TrustCore
@testable import RampartServer

/// Whole management servers booted in this process by `RampartNode`, as `rampart server` boots one:
/// ephemeral ports, temporary data directories, real TLS over loopback, the Web API over HTTPS and the
/// local operator socket.
@Suite("RampartServer: nodes in process", .serialized)
struct InProcessNodeTests {
    static let pollTimeout = Duration.seconds(180)

    @Test("a primary and a secondary in one process: the secondary joins with a one-time key as --join does, and a publish replicates",
          .timeLimit(.minutes(10)))
    func publishReplicatesToASecondaryInProcess() async throws {
        let scratch = try Scratch()
        let password = "in-process-" + UUID().uuidString
        let passwordFile = scratch.path("admin-password")
        try Data(password.utf8).write(to: URL(fileURLWithPath: passwordFile))
        let primary = try await RampartNode.prepare(ServerConfiguration(dataDirectory: scratch.url("a"), apiPort: 0, sicPort: 0, serverName: "mgmt-a",
                                                                        adminPasswordFile: passwordFile, logger: Self.logger("mgmt-a")))
        let primaryEvents = try EventCollector(primary.service.events)
        let primaryRun = Task { try await primary.run() }
        defer { primaryRun.cancel() }
        let primaryAPIPort = try await Self.poll("the primary's listeners") { await primary.apiPort() }

        // On the primary, as `rampart mgmt -r true` does over DIR/rampart.sock: the secondary's object with a one-time key.
        let key = SecureRandom.password(length: 32)
        try await LocalOperator.withRootSession(dataDirectory: scratch.path("a")) { transport, sid in
            _ = try await LocalOperator.call(transport, "add-checkpoint-host", ["name": "mgmt-b", "ip-address": "127.0.0.1",
                                                                               "one-time-password": .string(key)], sid: sid)
            _ = try await LocalOperator.call(transport, "publish", [:], sid: sid)
        }
        let keyFile = scratch.path("mgmt-b.key")
        try Data((key + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))

        let secondary = try await RampartNode.prepare(ServerConfiguration(dataDirectory: scratch.url("b"), apiPort: 0, sicPort: 0, serverName: "mgmt-b",
                                                                          join: SICAddress(host: "127.0.0.1", port: primary.sicPort),
                                                                          activationKeyFile: keyFile, logger: Self.logger("mgmt-b")))
        let secondaryRun = Task { try await secondary.run() }
        defer { secondaryRun.cancel() }
        _ = try await Self.poll("the secondary's listeners") { await secondary.apiPort() }
        #expect(FileManager.default.fileExists(atPath: scratch.path("b/ha.json")), "the join is recorded as --join records it")

        // A publish on the primary over HTTPS, verified against the group's Internal CA.
        let endpoint = MgmtEndpoint(target: .https(host: "127.0.0.1", port: primaryAPIPort), caFile: scratch.path("a/pki/ica.pem"),
                                    unsafe: false, apiVersion: nil)
        try await MgmtTransport.with(endpoint) { transport in
            let login = try await transport.call("login", ["user": "admin", "password": .string(password)], sid: nil)
            let sid = try #require(login.body["sid"]?.stringValue, "login: \(login.body.canonicalString)")
            _ = try await LocalOperator.call(transport, "add-host", ["name": "in-process-web", "ip-address": "192.0.2.7"], sid: sid)
            _ = try await LocalOperator.call(transport, "publish", [:], sid: sid)
            _ = try? await transport.call("logout", [:], sid: sid)
        }

        // The secondary, a read-only standby, shows the host: the revision travelled the SIC channel and was applied.
        let replicated = try await Self.poll("the host on the secondary") { () -> JSONValue? in
            try? await LocalOperator.withRootSession(dataDirectory: scratch.path("b")) { transport, sid in
                try await LocalOperator.call(transport, "show-host", ["name": "in-process-web"], sid: sid)
            }
        }
        #expect(replicated["ipv4-address"]?.stringValue == "192.0.2.7", "\(replicated.canonicalString)")
        // The primary's event stream told the story: the revision, and the secondary synchronized.
        let published = try await Self.poll("the publish as an event") { () -> RevisionPublished? in
            primaryEvents.events.lazy.compactMap { if case .revisionPublished(let revision) = $0, revision.changes == 1, revision.author == "admin" { revision } else { nil } }.first
        }
        #expect(published.number >= 3, "after revision 1 (installation) and 2 (mgmt-b's object): \(published)")
        _ = try await Self.poll("mgmt-b synchronized, as an event") { () -> Bool? in
            primaryEvents.events.contains { if case .syncStatusChanged(let change) = $0 { change.peer.name == "mgmt-b" && change.status == .synchronized } else { false } } ? true : nil
        }
        #expect(!secondary.runtime.writesEnabled, "the secondary is a standby")
        #expect(primary.runtime.writesEnabled, "the primary is the active")

        await secondary.shutdown()
        await primary.shutdown()
        try await secondaryRun.value
        try await primaryRun.value
    }

    static func logger(_ name: String) -> Logger {
        var logger = Logger(label: "rampart.\(name)")
        logger.logLevel = .warning
        return logger
    }

    /// Polls `probe` until it gives a value, at most `pollTimeout` (an upper bound for a loaded machine).
    static func poll<T>(_ what: String, _ probe: () async throws -> T?) async throws -> T {
        let deadline = ContinuousClock.now + pollTimeout
        while ContinuousClock.now < deadline {
            if let value = try await probe() { return value }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw PollTimeout(description: "gave up waiting for \(what)")
    }

    struct PollTimeout: Error, CustomStringConvertible {
        let description: String
    }
}

/// Everything a bus delivers from now on, kept for the test to look at.
final class EventCollector: Sendable {
    private final class Kept: Sendable {
        let events = Mutex<[ManagementEvent]>([])
    }

    private let kept: Kept
    private let reader: Task<Void, Never>

    init(_ bus: EventBus<ManagementEvent>) throws {
        let deliveries = try bus.subscribe(bufferedEventsMax: 4_096)
        let kept = Kept()
        self.kept = kept
        reader = Task {
            for await delivery in deliveries {
                if case .event(let event, _) = delivery { kept.events.withLock { $0.append(event) } }
            }
        }
    }

    var events: [ManagementEvent] { kept.events.withLock { $0 } }

    deinit { reader.cancel() }
}

/// A short temporary directory (the operator socket's path must fit a Unix socket address), removed at the end.
final class Scratch: Sendable {
    let root: URL

    init() throws {
        root = URL(fileURLWithPath: "/tmp").appendingPathComponent("rampart-node-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    func url(_ name: String) -> URL { root.appendingPathComponent(name) }
    func path(_ name: String) -> String { url(name).path }

    deinit { try? FileManager.default.removeItem(at: root) }
}
