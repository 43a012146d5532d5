import Foundation
import ManagementModel
import Testing

@testable import ManagementService

/// The HA status report as one Codable type: what a server without HA answers, key for key, and a
/// report read back as it was sent (HARuntimeTests pin the reports of active and standby servers).
@Suite("show-ha-status: one Codable report")
struct HAStatusReportCodingTests {
    @Test func aServerWithoutHAAnswersAsBefore() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let status = try await h.ok("show-ha-status", sid: sid)
        #expect(
            status.canonicalString == """
                {"domain-type":"domain","name":"SMC User","rampart-ha":"not-configured","servers":[],"successfully-synced":true,\
                "uid":"41e821a0-3720-11e3-aa6e-0800200c9fde"}
                """)
    }

    @Test func aReportReadsBackAsItWasSent() throws {
        var report = HAStatusReport(
            servers: [
                .init(
                    name: "mgmt-b", ipAddress: "192.0.2.12", haState: "standby", syncState: "Ok", syncStatus: "synchronized",
                    syncDetail: "synchronized", knownHead: 42, lagRevisions: nil, lagSeconds: 0, connected: true,
                    lastContactMillisecondsAgo: nil, lastSuccessfulSync: .init(milliseconds: 1_800_000_000_000))
            ], successfullySynced: true)
        report.lagRevisions = .some(nil)
        report.epoch = .init(term: 2, server: "primary")
        report.lastBackup = .init(time: "2027-01-15T02:00:00Z", result: "succeeded", sizeBytes: 4096, schedule: "none")
        let json = try report.jsonValue()
        #expect(json["lag-revisions"] == .null && json["servers"]?[0]?["lag-revisions"] == .null, "unknown figures are sent as null")
        #expect(json["last-backup"]?["size-bytes"] == 4096 && json["epoch"]?["term"] == 2)
        #expect(try HAStatusReport(json: json) == report)
        report.lagRevisions = nil
        #expect(try report.jsonValue()["lag-revisions"] == nil, "absent on an active")
        #expect(try HAStatusReport(json: report.jsonValue()) == report)
    }

    @Test func integersBeyondInt64AreRefusedNotWrapped() throws {
        #expect(throws: EncodingError.self) { try JSONValueEncoder.encode([UInt64.max]) }
        #expect(try JSONValueEncoder.encode(["a": [1, 2], "b": []]) == ["a": [1, 2], "b": []])
    }
}
