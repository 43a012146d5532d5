import Crypto
import Foundation
import Logging
import ManagementModel
import ManagementService
import SmartTasks
import Store
import Synchronization

/// A temporary directory, removed by the test that made it.
func temporaryDirectory(_ tag: String) throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-smarttasks-\(tag)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Smart-tasks held in memory (what the published objects would give).
final class StaticCatalog: SmartTaskCatalog {
    let specs: Mutex<[SmartTaskSpec]>
    init(_ specs: [SmartTaskSpec]) { self.specs = Mutex(specs) }
    func tasks(for trigger: String) async -> [SmartTaskSpec] { specs.withLock { $0.filter { $0.trigger == trigger && $0.enabled } } }
    func task(uid: String) async -> SmartTaskSpec? { specs.withLock { $0.first { $0.uid == uid } } }
}

/// A count several tasks add to.
final class Counter: Sendable {
    private let count = Mutex(0)
    func add(_ amount: Int) { count.withLock { $0 += amount } }
    var value: Int { count.withLock { $0 } }
}

/// A flag tests flip (an HA role).
final class Flag: Sendable {
    let value: Mutex<Bool>
    init(_ value: Bool) { self.value = Mutex(value) }
    var isSet: Bool { value.withLock { $0 } }
    func set(_ new: Bool) { value.withLock { $0 = new } }
}

/// Holds the thread that passes it (an engine's journal read, on the engine's actor) until opened, or
/// for `seconds` at most: a test that forgets to open it does not hang.
final class Gate: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    private let state = Mutex((entered: false, opened: false))
    let seconds: Int

    init(seconds: Int = 30) { self.seconds = seconds }

    var entered: Bool { state.withLock { $0.entered } }
    var opened: Bool { state.withLock { $0.opened } }

    func pass() {
        let first = state.withLock { state -> Bool in
            defer { state.entered = true }
            return !state.entered
        }
        guard first else { return }
        _ = semaphore.wait(timeout: .now() + .seconds(seconds))
        open()
    }

    func open() {
        let wasOpen = state.withLock { state -> Bool in
            defer { state.opened = true }
            return state.opened
        }
        if !wasOpen { semaphore.signal() }
    }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass (no test depends on speed).
func eventually(seconds: Double = 30, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int64(seconds * 1000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

var quietLogger: Logger {
    var logger = Logger(label: "smarttasks-test")
    logger.logLevel = .critical
    return logger
}

/// A revision for a journal in memory.
func revision(_ number: UInt64, after previous: Revision?, changes: [ObjectChange], atMilliseconds: Int64) -> Revision {
    Revision(
        after: previous.map { ($0.number, $0.hash) } ?? (number > 1 ? (number - 1, Revision.genesisHash) : nil),
        epoch: RevisionEpoch(term: 1, server: "primary"), publishedAtMilliseconds: atMilliseconds,
        author: "admin", sessionUID: "session-\(number)", sessionName: "change \(number)", changes: changes)
}

func host(_ name: String, uid: String, extra: [String: JSONValue] = [:]) -> ManagedObject {
    var fields: [String: JSONValue] = ["ipv4-address": .string("10.0.0.1")]
    fields.merge(extra) { _, new in new }
    return ManagedObject(
        uid: uid, type: .host, name: name, fields: fields,
        meta: MetaInfo(creator: "admin", creationTimeMilliseconds: 0, lastModifier: "admin", lastModifyTimeMilliseconds: 0))
}

/// A local HTTPS receiver (Python, 127.0.0.1, a self-signed certificate made for the test) that checks
/// the shared secret, the HMAC signature and the timestamp, refuses a replayed event id, and appends
/// each accepted payload to a file. Modes: "ok", "fail" (503), "hang" (never answers).
final class Receiver: Sendable {
    let directory: URL
    let process: Process
    let port: Int
    /// SHA-256 of the receiver's certificate (DER), hex.
    let fingerprint: String
    let secret: String

    /// Waits without holding a thread of Swift concurrency: tests run side by side, and others wait for
    /// servers with deadlines.
    init(secret: String = "s3cret-of-the-receiver", mode: String = "ok") async throws {
        directory = try temporaryDirectory("receiver")
        self.secret = secret
        let key = directory.appendingPathComponent("key.pem").path
        let certificate = directory.appendingPathComponent("cert.pem").path
        try await Self.run(
            "/usr/bin/openssl",
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2", "-keyout", key, "-out", certificate,
            ])
        let pem = try String(contentsOfFile: certificate, encoding: .utf8)
        let base64 = pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        guard let der = Data(base64Encoded: base64) else { throw ReceiverError(message: "the certificate does not decode") }
        fingerprint = SHA256.hash(data: der).map { String(format: "%02x", $0) }.joined()
        let script = Self.source
        let portFile = directory.appendingPathComponent("port")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, certificate, key, secret, mode, directory.appendingPathComponent("received.jsonl").path, portFile.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var port: Int?
        for _ in 0..<1_500 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let value = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                port = value
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        guard let port else {
            kill(process.processIdentifier, SIGKILL)
            throw ReceiverError(message: "the receiver did not start")
        }
        self.port = port
    }

    var url: String { "https://127.0.0.1:\(port)/hook" }

    /// The payloads accepted so far, in order.
    func received() -> [JSONValue] {
        guard let text = try? String(contentsOf: directory.appendingPathComponent("received.jsonl"), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
    }

    func stop() {
        // SIGKILL: the test process may hand its children a blocked SIGTERM. Not waited for: this runs
        // on a thread of Swift concurrency.
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: directory)
    }

    static func run(_ path: String, _ arguments: [String]) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard process.terminationStatus == 0 else { throw ReceiverError(message: "\(path) failed") }
    }

    struct ReceiverError: Error { let message: String }

    /// The receiver's source, beside this file.
    static let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("receiver.py")

    /// Switches the receiver's mode ("ok", "fail", "hang") for the next requests.
    func setMode(_ mode: String) throws {
        try mode.write(to: directory.appendingPathComponent("port.mode"), atomically: true, encoding: .utf8)
    }
}
