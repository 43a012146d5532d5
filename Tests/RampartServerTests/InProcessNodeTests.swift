import Foundation
import HACore
import Logging
import ManagementClient
import ManagementModel
import ManagementService
import PeerTransport
import Store
import Synchronization
import Testing
import TrustCore

@testable import RampartServer

/// Whole management servers booted in this process by `RampartNode`, as `rampart server` boots one:
/// ephemeral ports, temporary data directories, real TLS over loopback, the Web API over HTTPS and the
/// local operator socket.
@Suite("RampartServer: nodes in process", .serialized)
struct InProcessNodeTests {
    static let pollTimeout = Duration.seconds(180)

    /// A primary and a secondary booted in this process, the secondary joined with a one-time key as
    /// --join does; both running until `stop`.
    struct Pair {
        let scratch: Scratch
        let password: String
        let primary: RampartNode
        let secondary: RampartNode
        let primaryAPIPort: Int
        /// Everything the primary's event bus delivered since it was prepared.
        let primaryEvents: EventCollector
        let runs: [Task<Void, any Error>]

        static func boot() async throws -> Pair {
            let scratch = try Scratch()
            let password = "in-process-" + UUID().uuidString
            let passwordFile = scratch.path("admin-password")
            try Data(password.utf8).write(to: URL(fileURLWithPath: passwordFile))
            let primary = try await RampartNode.prepare(
                ServerConfiguration(
                    dataDirectory: scratch.url("a"), apiPort: 0, sicPort: 0, serverName: "mgmt-a",
                    adminPasswordFile: passwordFile, logger: logger("mgmt-a")))
            let primaryEvents = try EventCollector(primary.service.events)
            let primaryRun = Task { try await primary.run() }
            let primaryAPIPort = try await poll("the primary's listeners") { await primary.apiPort() }

            // On the primary, as `rampart mgmt -r true` does over DIR/rampart.sock: the secondary's object with a one-time key.
            let key = SecureRandom.password(length: 32)
            try await LocalOperator.withRootSession(dataDirectory: scratch.path("a")) { transport, sid in
                _ = try await LocalOperator.call(
                    transport, "add-checkpoint-host",
                    [
                        "name": "mgmt-b", "ip-address": "127.0.0.1",
                        "one-time-password": .string(key),
                    ], sid: sid)
                _ = try await LocalOperator.call(transport, "publish", [:], sid: sid)
            }
            let keyFile = scratch.path("mgmt-b.key")
            try Data((key + "\n").utf8).write(to: URL(fileURLWithPath: keyFile))

            let secondary = try await RampartNode.prepare(
                ServerConfiguration(
                    dataDirectory: scratch.url("b"), apiPort: 0, sicPort: 0, serverName: "mgmt-b",
                    join: SICAddress(host: "127.0.0.1", port: primary.sicPort),
                    activationKeyFile: keyFile, logger: logger("mgmt-b")))
            let secondaryRun = Task { try await secondary.run() }
            _ = try await poll("the secondary's listeners") { await secondary.apiPort() }
            return Pair(
                scratch: scratch, password: password, primary: primary, secondary: secondary, primaryAPIPort: primaryAPIPort,
                primaryEvents: primaryEvents, runs: [primaryRun, secondaryRun])
        }

        func stop() async throws {
            await secondary.shutdown()
            await primary.shutdown()
            for run in runs { try await run.value }
        }

        func cancel() { for run in runs { run.cancel() } }
    }

    @Test(
        "a primary and a secondary in one process: the secondary joins with a one-time key as --join does, and a publish replicates",
        .timeLimit(.minutes(10)))
    func publishReplicatesToASecondaryInProcess() async throws {
        let pair = try await Pair.boot()
        defer { pair.cancel() }
        let scratch = pair.scratch
        #expect(FileManager.default.fileExists(atPath: scratch.path("b/ha.json")), "the join is recorded as --join records it")

        // A publish on the primary over HTTPS, verified against the group's Internal CA.
        let endpoint = MgmtEndpoint(
            target: .https(host: "127.0.0.1", port: pair.primaryAPIPort), caFile: scratch.path("a/pki/ica.pem"),
            unsafe: false, apiVersion: nil)
        try await MgmtTransport.with(endpoint) { transport in
            let login = try await transport.call("login", ["user": "admin", "password": .string(pair.password)], sid: nil)
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
            pair.primaryEvents.events.lazy.compactMap {
                if case .revisionPublished(let revision) = $0, revision.changes == 1, revision.author == "admin" { revision } else { nil }
            }.first
        }
        #expect(published.number >= 3, "after revision 1 (installation) and 2 (mgmt-b's object): \(published)")
        _ = try await Self.poll("mgmt-b synchronized, as an event") { () -> Bool? in
            pair.primaryEvents.events.contains {
                if case .syncStatusChanged(let change) = $0 { change.peer.name == "mgmt-b" && change.status == .synchronized } else { false }
            } ? true : nil
        }
        #expect(!pair.secondary.runtime.writesEnabled, "the secondary is a standby")
        #expect(pair.primary.runtime.writesEnabled, "the primary is the active")
        try await pair.stop()
    }

    /// Issue 19: "a test publishes one revision of 100,000 changes and watches the standby apply it". The
    /// session is filled through the node's command table (`ManagementService.handle`, what the Web API
    /// calls per request: 100,000 HTTPS round trips would measure TLS, not the limits), then published
    /// once; the revision (about 32 MB) reaches the standby in one SIC frame and is applied.
    @Test("one revision of changesPerSessionMax (100,000) changes publishes and the standby applies it", .timeLimit(.minutes(20)))
    func aRevisionOfAFullSessionReplicates() async throws {
        let pair = try await Pair.boot()
        defer { pair.cancel() }
        let client = ClientInfo(address: "127.0.0.1", isLocalSocket: false)
        let service = pair.primary.service
        func call(_ command: String, _ body: JSONValue, sid: String?) async throws -> JSONValue {
            let reply = await service.handle(command: command, body: body, sid: sid, client: client)
            guard reply.status == 200 else { throw CallFailed(description: "\(command): HTTP \(reply.status) \(reply.body.canonicalString.prefix(400))") }
            return reply.body
        }
        _ = try await Self.poll("writes on the primary") { pair.primary.runtime.writesEnabled ? true : nil }
        let login = try await call("login", ["user": "admin", "password": .string(pair.password)], sid: nil)
        let sid = try #require(login["sid"]?.stringValue)
        let count = Int(ProcessInfo.processInfo.environment["RAMPART_BULK_CHANGES"] ?? "") ?? Limits.changesPerSessionMax
        let started = ContinuousClock.now
        for index in 0..<count {
            _ = try await call(
                "add-host",
                [
                    "name": .string("bulk-\(index)"),
                    "ip-address": .string("10.\(index >> 16 & 255).\(index >> 8 & 255).\(index & 255)"),
                ], sid: sid)
        }
        let added = ContinuousClock.now
        _ = try await call("publish", [:], sid: sid)
        let published = ContinuousClock.now
        let head = pair.primary.runtime.status.head
        let replicated = try await Self.poll("the standby at the primary's head") {
            pair.secondary.runtime.status.head == head ? true : nil
        }
        let applied = ContinuousClock.now
        #expect(replicated)
        #expect(pair.primary.runtime.snapshot.lastError == nil, "\(pair.primary.runtime.snapshot.lastError ?? "")")

        // The standby shows every object of the revision.
        let total = try await LocalOperator.withRootSession(dataDirectory: pair.scratch.path("b")) { transport, sid in
            try await LocalOperator.call(transport, "show-hosts", ["limit": 1, "filter": "bulk-"], sid: sid)
        }["total"]?.intValue
        #expect(total == Int64(count), "the standby shows \(total ?? -1) of \(count) hosts")
        try await pair.stop()
        // The revision as the standby's journal holds it, byte for byte what travelled.
        let journal = try ManagementStore(readOnlyPath: pair.scratch.path("b/\(DataDirectoryLayout.database)"))
        let revision = try #require(try journal.revisions(from: head.number, limit: 1).first)
        #expect(revision.changes.count == count && revision.hash == head.hash)
        let revisionBytes = revision.json.canonicalBytes.count
        #expect(revisionBytes <= PublishLimits.revisionBytesMax)
        print(
            "a revision of \(count) changes: \(revisionBytes) bytes (limit \(PublishLimits.revisionBytesMax)); adds took \(added - started), "
                + "the publish \(published - added), the standby applied it \(applied - published) later")
    }

    struct CallFailed: Error, CustomStringConvertible {
        let description: String
    }

    static func logger(_ name: String) -> Logger {
        var logger = Logger(label: "rampart.\(name)")
        logger.logLevel = ProcessInfo.processInfo.environment["RAMPART_TEST_LOG"] == "notice" ? .notice : .warning
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
