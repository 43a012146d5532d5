import Foundation
import ManagementModel
import Testing

@testable import ManagementService

/// show-changes and show-revisions render stored objects, internal fields included: they must never
/// carry an administrator's password hash or a one-time key's verifier (any reader may call them).
@Suite("Revisions never show secrets")
struct RevisionSecretsTests {
    @Test func showChangesAndRevisionsLeaveOutPasswordHashesAndKeyVerifiers() async throws {
        let h = try await PermissionTests.harness()
        let admin = try await h.login()
        try await h.ok("add-administrator", ["name": "newcomer", "password": "pw-newcomer-2026", "permissions-profile": "read-only"], sid: admin)
        try await h.ok("add-simple-gateway", ["name": "gw-secret", "ip-address": "192.0.2.9", "one-time-password": "otp-secret-2026-x"], sid: admin)
        _ = try await h.publish(sid: admin)
        let revisions = try await h.ok("show-revisions", ["limit": 50, "details-level": "full"], sid: admin)
        let numbers = revisions["objects"]?.arrayValue?.compactMap { $0["number"]?.intValue } ?? []
        #expect(!numbers.isEmpty)
        var shown: [JSONValue] = []
        for number in numbers { shown.append(try await h.ok("show-revisions", ["number": .int(number)], sid: admin)) }
        let changes = try await h.ok("show-changes", sid: admin)
        if let task = changes["task-id"] { shown.append(try await h.ok("show-task", ["task-id": task, "details-level": "full"], sid: admin)) }
        let text = shown.map(\.canonicalString).joined(separator: "\n")
        #expect(text.contains("newcomer") && text.contains("gw-secret"), "the revisions are shown")
        for field in ["\"password-hash\"", "\"\(ManagedObject.activationKeyField)\""] {
            #expect(!text.contains(field), "\(field) is shown: \(text.prefix(400))")
        }
    }
}
