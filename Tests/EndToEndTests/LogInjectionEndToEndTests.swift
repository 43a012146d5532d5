import Foundation
import PeerTransport
import Testing
import TrustCore

/// Values from requests and peers are logged on one line: a newline in a login name or an enrolling
/// node's name cannot forge a line of the server's log.
@Suite("End to end: no forged log lines", .serialized, .endToEndSlot)
struct LogInjectionEndToEndTests {
    static let forged = "x\nFORGED line: admin logged in as root\r\nFORGED\u{2028}FORGED again"

    /// Lines as any reader may split them (LF, CR, VT, FF, NEL, LS, PS) that start with FORGED.
    func forgedLines(_ log: String) -> [String] {
        var lines: [String] = []
        var current = String.UnicodeScalarView()
        for scalar in log.unicodeScalars {
            if [0x0A, 0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029].contains(scalar.value) {
                lines.append(String(current))
                current = String.UnicodeScalarView()
            } else {
                current.append(scalar)
            }
        }
        lines.append(String(current))
        return lines.filter { $0.hasPrefix("FORGED") }
    }

    @Test("a login name and a SIC node name with newlines stay on one log line", .timeLimit(.minutes(10)))
    func newlinesInLoggedValues() async throws {
        let fixture = try EndToEndTests.Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server-log-injection")
        defer { server.kill() }

        // Before any authentication: a failed login logs the user name as given.
        try await APIClient.with(caFile: "\(fixture.data)/pki/ica.pem", port: server.port) { client in
            let reply = try await client.call("login", ["user": Self.forged, "password": "wrong"])
            #expect(reply.status == 400)
        }
        // Without any authentication at all: an enrolment refused for an unknown node name logs the name.
        // (`rampart sic enroll` refuses such a name itself, so the request is made here, as an attacker would.)
        let sicPort = try #require(server.sicPort)
        let request = EnrolmentRequest(
            nodeName: Self.forged, csrDER: [0x30, 0x00], nodeNonce: Array(repeating: 7, count: TrustLimits.enrolmentNonceByteCount),
            nodeTimeMilliseconds: Int64(Date().timeIntervalSince1970 * 1000), proof: Array(repeating: 1, count: 32))
        let answer: [UInt8]
        do {
            answer = try await PeerConnector.connectForEnrolment(host: "127.0.0.1", port: sicPort) { connection in
                try await connection.send(PeerFrame(type: .enrolment, bytes: request.encoded()))
                for try await frame in connection.inbound { return frame.payloadBytes }
                return []
            }
        } catch {
            Issue.record("the enrolment failed (server running: \(server.process.isRunning)): \(error)\n\(server.logTail)")
            throw error
        }
        #expect(!answer.isEmpty, "the server answers the enrolment (with a refusal)")

        #expect(
            try await pollUntil(seconds: 30) { server.log.contains("SIC enrolment refused") && server.log.contains("login failed") },
            "both attempts are logged: \(server.logTail)")
        #expect(forgedLines(server.log).isEmpty, "forged lines in the server's log:\n\(forgedLines(server.log).joined(separator: "\n"))\n\(server.logTail)")
        #expect(server.log.contains(#"x\nFORGED line"#), "the value is logged, escaped: \(server.logTail)")
    }
}
