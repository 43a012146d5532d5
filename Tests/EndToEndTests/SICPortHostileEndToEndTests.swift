import Foundation
import Testing

/// Issue 18: the SIC port survives hostile input. Tests/sic-fuzz/sic_fuzz.py opens connections that are
/// not TLS, TLS connections without a certificate carrying malformed frames and enrolment messages
/// (bad magic, lengths up to 2^32-1, frame types only a verified peer may send, node names with
/// newlines, wrong field sizes, truncations), and TLS with another CA's certificate. The server must
/// close every one of them itself and keep accepting; nothing a client sent may forge a log line.
@Suite("End to end: hostile input to the SIC port", .serialized, .endToEndSlot)
struct SICPortHostileEndToEndTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sic-fuzz/sic_fuzz.py")

    @Test("malformed connections, frames and enrolment messages: the server closes each and stays up", .timeLimit(.minutes(5)))
    func sweep() async throws {
        let fixture = try EndToEndTests.Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server-sic-fuzz")
        defer { server.kill() }
        let sicPort = try #require(server.sicPort)
        let result = try await CLI.run(
            program: URL(fileURLWithPath: "/usr/bin/env"), ["python3", Self.script.path, "127.0.0.1", String(sicPort)],
            scratch: fixture.scratch)
        print("SIC port sweep: \(result.stdout)")
        #expect(result.status == 0, "\(result)\n\(server.logTail)")
        let report = try result.json()
        #expect(report["alive"] as? Bool == true)
        #expect((report["requests"] as? Int ?? 0) >= 150, "\(report)")
        let endings = report["endings"] as? [String: Int] ?? [:]
        #expect(endings["still open after 10 s"] == nil, "the server must close hostile connections itself: \(endings)")
        #expect(server.record.exit == nil, "the server died:\n\(server.logTail)")
        #expect(!server.log.split(separator: "\n").contains { $0.hasPrefix("FORGED") }, "a node name forged a log line")
        #expect(try await fixture.rampart(["sic", "status", "--data", fixture.data]).status != -1, "the server still answers its operator")
    }
}
