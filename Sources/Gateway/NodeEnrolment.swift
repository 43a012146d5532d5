import Foundation
import ManagementModel
import PeerTransport
import Store
import TrustCore

/// Enrolment of this node with a server's ICA (`rampart sic enroll`, `rampart server --join`, a
/// gateway's first start): prove the one-time key, check the server's proof, write DIR/pki.
public enum NodeEnrolment {
    /// Why an enrolment failed; `isUsage` when the operator's input is wrong (the key file).
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public let isUsage: Bool
    }

    /// `allowsClockSkew`: the operator forced it (`--force`): the server enrols even when the clocks
    /// differ by more than its `--clock-problem-ms`.
    public static func enrol(
        dataDirectory: String, server: SICAddress, name: String, activationKeyFile: String, allowsClockSkew: Bool = false
    ) async throws -> NodeCredentials {
        guard let text = try? String(contentsOfFile: activationKeyFile, encoding: .utf8) else {
            throw Failure(description: "--activation-key-file: cannot read \(activationKeyFile)", isUsage: true)
        }
        let key = text.trimmingCharacters(in: .whitespacesAndNewlines)
        let client = try EnrolmentClient(nodeName: name, activationKey: key)
        // The clock this node shows its peers (a test shifts it to inject skew).
        let now = Date(timeIntervalSince1970: Double(WallClock.milliseconds()) / 1000)
        let request = try client.makeRequest(
            nodeNonce: SecureRandom.bytes(count: TrustLimits.enrolmentNonceByteCount), now: now, allowsClockSkew: allowsClockSkew)
        let answer: [UInt8]
        do {
            answer = try await PeerConnector.connectForEnrolment(host: server.host, port: server.port) { connection in
                try await connection.send(PeerFrame(type: .enrolment, bytes: request.encoded()))
                for try await frame in connection.inbound { return frame.payloadBytes }
                throw Failure(description: "the server closed the enrolment connection without an answer", isUsage: false)
            }
        } catch let error as PeerTransportError {
            throw Failure(description: "cannot reach the SIC port \(server.host):\(server.port): \(error.message)", isUsage: false)
        }
        let credentials: NodeCredentials
        do {
            credentials = try client.accept(answer: answer, to: request, now: Date())
        } catch {
            throw Failure(description: "enrolment failed: \(error)", isUsage: false)
        }
        let directory = URL(fileURLWithPath: dataDirectory).standardizedFileURL
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        let pki = directory.appendingPathComponent(DataDirectoryLayout.pki)
        try DurableFile.ensureDirectory(pki, mode: 0o700)
        try credentials.write(to: pki)
        return credentials
    }
}
