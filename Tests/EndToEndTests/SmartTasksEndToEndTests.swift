import Foundation
import Testing

/// The SmartTasks receiver (Tests/SmartTasksTests/receiver.py) for end-to-end tests: HTTPS on
/// 127.0.0.1 with a certificate made here, checking the secret, the signature and replays.
final class SmartTaskReceiver: Sendable {
    let directory: TemporaryDirectory
    let process: Process
    let port: Int
    let fingerprint: String
    let secret = "e2e-receiver-s3cret"

    /// Waits without holding a thread of Swift concurrency (other tests wait for servers with deadlines).
    init(mode: String) async throws {
        directory = try TemporaryDirectory()
        let key = directory.path("key.pem")
        let certificate = directory.path("cert.pem")
        _ = try await Self.run(
            [
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=127.0.0.1",
                "-addext", "subjectAltName=IP:127.0.0.1", "-days", "2", "-keyout", key, "-out", certificate,
            ])
        // "sha256 Fingerprint=AB:CD:..." (the API takes the colons)
        let line = try await Self.run(["x509", "-noout", "-fingerprint", "-sha256", "-in", certificate])
        fingerprint = String(line.split(separator: "=").last ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SmartTasksTests/receiver.py")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", source.path, certificate, key, secret, mode, directory.path("received.jsonl"), directory.path("port")]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var port: Int?
        for _ in 0..<1_500 where port == nil {
            port = (try? String(contentsOfFile: directory.path("port"), encoding: .utf8)).flatMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
            if port == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard let port else {
            Foundation.kill(process.processIdentifier, SIGKILL)
            throw E2EFailure("the SmartTasks receiver did not start")
        }
        self.port = port
    }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    var url: String { "https://127.0.0.1:\(port)/hook" }

    func setMode(_ mode: String) throws { try mode.write(toFile: directory.path("port.mode"), atomically: true, encoding: .utf8) }

    /// The payloads accepted so far.
    func received() -> [[String: Any]] { Self.payloads(directory.path("received.jsonl")) }

    /// The payloads refused so far (mode "fail"): deliveries their sender will try again.
    func refused() -> [[String: Any]] { Self.payloads(directory.path("received.jsonl.refused")) }

    static func payloads(_ path: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }

    static func run(_ arguments: [String]) async throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        guard process.terminationStatus == 0 else { throw E2EFailure("openssl \(arguments.first ?? "") failed") }
        return String(decoding: output, as: UTF8.self)
    }
}

@Suite(.serialized, .endToEndSlot) struct SmartTasksEndToEndTests {
    /// `rampart smarttask history --json` of a server: its executions.
    static func history(_ group: HAGroup, _ name: String, extra: [String] = []) async throws -> [[String: Any]] {
        let result = try await group.fixture.rampart(["smarttask", "history", "--data", group.data(name), "--json"] + extra)
        return (try? result.json())?.objects("objects") ?? []
    }

    @Test(
        "the active dies while it retries an After Publish delivery: the promoted standby delivers it, under the same event id",
        .timeLimit(.minutes(10)))
    func promotionDuringRetryDeliversOnTheNewActive() async throws {
        let receiver = try await SmartTaskReceiver(mode: "fail")
        let group = try await HAGroup()
        try await group.join("mgmt-b")
        try await group.fixture.mgmtJSON(
            [
                "add-smart-task", "name=notify", "trigger=After Publish", "enabled=true", "action.send-web-request.url=\(receiver.url)",
                "action.send-web-request.fingerprint=\(receiver.fingerprint)",
                "action.send-web-request.shared-secret-file=\(secretFile(receiver.secret, in: group.fixture.scratch))",
                "action.send-web-request.time-out=10",
            ] + group.asRoot("primary"))
        #expect(try await group.addHost("watched", on: "primary").status == 0)
        let revision = try #require(try await group.head("primary"))
        #expect(try await group.eventually { try await group.hasHost("watched", on: "mgmt-b") })

        // The receiver refuses: the active records failed attempts and will retry (the task's own
        // revision fired it too: two events).
        let failed = try await group.eventually {
            Set(try await Self.history(group, "primary", extra: ["--result", "failed"]).compactMap { $0["event-id"] as? String }).count >= 2
        }
        let activeHistory = try await Self.history(group, "primary")
        #expect(failed, "no failed attempts on the active: \(activeHistory)")
        let attempts = try await Self.history(group, "primary", extra: ["--result", "failed"])
        // The watched revision's own delivery is among those the old active retries (the system publishes
        // revisions too, and After Publish fires for each: two failed ids need not include it).
        var refusedID: String?
        _ = try await group.eventually {
            refusedID = receiver.refused().first { ($0["session"] as? [String: Any])?["revision-number"] as? Int == revision }?["event-id"] as? String
            return refusedID != nil
        }
        #expect(refusedID != nil, "the old active never tried the watched revision #\(revision)")
        group.server("primary").kill()
        try receiver.setMode("ok")

        #expect(
            try await group.eventually { try await group.ha(["promote", "--dry-run", "--json"], on: "mgmt-b").json().string("path") == "failover" })
        let promoted = try await group.ha(["promote", "--force"], on: "mgmt-b")
        #expect(promoted.status == 0, "\(promoted)")

        let delivered = try await group.eventually(seconds: 60) {
            receiver.received().contains { ($0["session"] as? [String: Any])?["revision-number"] as? Int == revision }
        }
        let newActiveHistory = try await Self.history(group, "mgmt-b")
        #expect(delivered, "the new active never delivered revision \(revision): \(newActiveHistory)\n\(group.haLog("mgmt-b"))")
        let payload = try #require(receiver.received().first { ($0["session"] as? [String: Any])?["revision-number"] as? Int == revision })
        #expect(payload["trigger"] as? String == "After Publish")
        let added = ((payload["operations"] as? [String: Any])?["added-or-modified-objects"] as? [[String: Any]]) ?? []
        #expect(added.contains { $0["name"] as? String == "watched" })
        let succeeded = try await Self.history(group, "mgmt-b", extra: ["--result", "succeeded"])
        #expect(succeeded.contains { $0["event-id"] as? String == payload["event-id"] as? String })
        // The old active's attempts and the new active's delivery of one event carry one id (the receiver dedupes by it).
        let oldIDs = Set(attempts.compactMap { $0["event-id"] as? String })
        #expect(
            refusedID == payload["event-id"] as? String,
            "refused \(refusedID ?? "none") (failed on the old active: \(oldIDs)) vs \(payload["event-id"] ?? "none")")
    }

    @Test("a before-publish script vetoes: the publish is refused with its message and nothing is published", .timeLimit(.minutes(5)))
    func beforePublishVeto() async throws {
        let group = try await HAGroup()
        let script = "echo 'change freeze: no publish before Monday' >&2; exit 1"
        try await group.fixture.mgmtJSON(["add-repository-script", "name=freeze", "script-body=\(script)"] + group.asRoot("primary"))
        try await group.fixture.mgmtJSON(
            [
                "add-smart-task", "name=freeze-check", "trigger=Before Publish", "enabled=true", "fail-open=false",
                "action.run-script.repository-script=freeze", "action.run-script.time-out=20",
            ] + group.asRoot("primary"))
        let refused = try await group.addHost("during-freeze", on: "primary")
        #expect(refused.status != 0)
        #expect((refused.stdout + refused.stderr).contains("change freeze: no publish before Monday"), "\(refused)")
        // (The head may move meanwhile: the server records its own addresses as system changes.)
        #expect(try await !group.hasHost("during-freeze", on: "primary"))
        let vetoed = try await Self.history(group, "primary", extra: ["--result", "vetoed"])
        #expect(vetoed.first?["trigger"] as? String == "Before Publish")
        let text = try await group.fixture.rampart(["smarttask", "history", "--data", group.data("primary")])
        #expect(text.status == 0 && text.stdout.contains("freeze-check") && text.stdout.contains("vetoed"), "\(text)")
    }
}
