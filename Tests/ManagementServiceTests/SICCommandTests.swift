import Foundation
import ManagementModel
import ManagementService
import Synchronization
import Testing
import TrustCore

@Suite("Secondary server objects and SIC commands")
struct SICCommandTests {
    @Test func checkpointHostKeepsNoActivationKeyInReplies() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let added = try await h.ok("add-checkpoint-host", ["name": "mgmt-b", "ip-address": "192.0.2.12", "one-time-password": "activate-me-123"], sid: sid)
        #expect(added["sic-state"] == "uninitialized")
        #expect(added["management-blades"]?["secondary"] == true)
        #expect(!added.canonicalString.contains("activate-me-123"))
        #expect(added["activation-key"] == nil)
        let tooShort = await h.call("add-checkpoint-host", ["name": "mgmt-c", "ip-address": "192.0.2.13", "one-time-password": "short"], sid: sid)
        #expect(tooShort.status == 400 && tooShort.body["message"]?.stringValue?.contains("one-time-password") == true)
    }

    @Test func internalFieldsCannotBeSetByClients() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        for field in ["activation-key", "sic-state", "sic-serial"] {
            let body: JSONValue = .object(["name": "x", "ip-address": "192.0.2.12", field: "forged"])
            let reply = await h.call("add-checkpoint-host", body, sid: sid)
            #expect(reply.body["code"] == "generic_err_invalid_parameter_name", "field \(field)")
        }
    }

    @Test func sicStatusAndReset() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-checkpoint-host", ["name": "mgmt-b", "ip-address": "192.0.2.12", "one-time-password": "activate-me-123"], sid: sid)
        _ = try await h.publish(sid: sid)
        let status = try await h.ok("test-sic-status", ["name": "mgmt-b"], sid: sid)
        #expect(status["sic-status"] == "uninitialized")
        #expect(status["sic-message"]?.stringValue?.contains("enrol") == true)
        let reset = try await h.ok("reset-sic", ["name": "mgmt-b"], sid: sid)
        #expect(reset["message"] == "OK")
        #expect((reset["one-time-password"]?.stringValue?.count ?? 0) >= 8)
        #expect(await h.call("reset-sic", ["name": "nobody"], sid: sid).status == 404)
    }

    /// Status commands read the management servers on every call; what they get must follow every
    /// revision that changes them (an address recorded, a server added), never an older read.
    @Test func managementServersFollowEveryRevision() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        #expect(h.service.managementServers().isEmpty)
        try await h.ok("add-checkpoint-host", ["name": "mgmt-b", "ip-address": "192.0.2.12", "one-time-password": "activate-me-123"], sid: sid)
        #expect(h.service.managementServers().isEmpty, "a draft is not a management server yet")
        _ = try await h.publish(sid: sid)
        #expect(h.service.managementServers().map(\.name) == ["mgmt-b"])
        #expect(h.service.managementServers().first?.apiAddress == nil)
        #expect(try await h.service.recordAddresses(of: "mgmt-b", sicAddress: "192.0.2.12:18211", apiAddress: "192.0.2.12:8443"))
        #expect(h.service.managementServers().first?.apiAddress == "192.0.2.12:8443")
        #expect(try await h.service.recordAddresses(of: "mgmt-b", sicAddress: "192.0.2.12:18211", apiAddress: "192.0.2.99:8443"))
        #expect(h.service.managementServers().first?.apiAddress == "192.0.2.99:8443")
    }

    /// Records which nodes' channels the service asked to close.
    final class ChannelLog: SICChannelCloser {
        let closed = Mutex<[String]>([])
        func closeChannels(ofNode uid: String, reason: String) -> Int {
            closed.withLock { $0.append(uid) }
            return 1
        }
    }

    /// reset-sic cuts the node off at once: its open channels close as the revocation is stored (before
    /// the session is even published), its status says revoked, and a renewal over an old channel is refused.
    @Test func resetClosesTheNodesChannelsAtOnceAndItsStatusSaysRevoked() async throws {
        let h = try await Harness()
        let channels = ChannelLog()
        await h.service.attachSICChannels(channels)
        try await h.service.registerPrimary(name: "mgmt-a", uid: "uid-mgmt-a", ipAddress: "192.0.2.11", sicSerial: "0a0b0c")
        let sid = try await h.login()
        #expect(try await h.ok("test-sic-status", ["name": "mgmt-a"], sid: sid)["rampart-revoked"] == false)
        try await h.ok("reset-sic", ["name": "mgmt-a"], sid: sid)
        #expect(channels.closed.withLock { $0 } == ["uid-mgmt-a"], "closed before publish")
        let entry = try #require(try h.service.currentRevocations().entry(forSerial: "0a0b0c"))
        #expect(entry.node == "uid-mgmt-a" && entry.reason == .sicReset)
        _ = try await h.publish(sid: sid)
        let status = try await h.ok("test-sic-status", ["name": "mgmt-a"], sid: sid)
        #expect(status["rampart-revoked"] == true && status["sic-message"]?.stringValue?.hasPrefix("Revoked") == true, "\(status)")
        await #expect(throws: ManagementError.self) {
            _ = try await h.service.renewCertificate(for: NodeIdentity(uid: "uid-mgmt-a", name: "mgmt-a"), csrDER: [])
        }
        // The server itself is never reset from itself.
        try await h.service.registerPrimary(name: "primary", uid: "uid-primary", ipAddress: "127.0.0.1", sicSerial: "0d0e")
        #expect(await h.call("reset-sic", ["name": "primary"], sid: sid).body["code"] == "err_sic_reset_self")
    }

    /// Whichever server is active can reset every server of the group: the active records each server's
    /// certificate serial as the server announces it (the primary's was never recorded: reset failed with
    /// "not a certificate serial").
    @Test func theActiveRecordsEachServersSerialSoAnyServerCanBeReset() async throws {
        let h = try await Harness()
        try await h.service.registerPrimary(name: "mgmt-a", uid: "uid-mgmt-a", ipAddress: "192.0.2.11", sicSerial: "")
        let sid = try await h.login()
        #expect(await h.call("reset-sic", ["name": "mgmt-a"], sid: sid).body["code"] == "err_sic_serial_unknown")
        _ = try await h.ok("discard", sid: sid)
        #expect(try await h.service.recordAddresses(of: "mgmt-a", sicAddress: "192.0.2.11:18191", apiAddress: "192.0.2.11:8443", sicSerial: "not hex"))
        #expect(h.service.managementServers().first?.sicSerial == nil, "only a serial is recorded")
        #expect(try await h.service.recordAddresses(of: "mgmt-a", sicAddress: "192.0.2.11:18191", apiAddress: "192.0.2.11:8443", sicSerial: "1f2e"))
        #expect(h.service.managementServers().first?.sicSerial == "1f2e")
        try await h.ok("reset-sic", ["name": "mgmt-a"], sid: sid)
        #expect(try h.service.currentRevocations().contains(serial: "1f2e"))
    }

    /// On a standby the revocation arrives with the ICA state: it cuts the node's channels there too.
    @Test func aRevocationListFromTheActiveClosesTheRevokedNodesChannels() async throws {
        let h = try await Harness()
        let channels = ChannelLog()
        await h.service.attachSICChannels(channels)
        var list = RevocationList()
        try list.revoke(serial: "0a0a", reason: .superseded, node: "renewed-node", now: Date())
        try list.revoke(serial: "0b0b", reason: .sicReset, node: "gw-uid", now: Date())
        let authority = try InternalCA.create(name: "test-ica", now: Date())
        try await h.service.adoptICAState(authority: authority, revocationsText: list.jsonText)
        #expect(channels.closed.withLock { $0 } == ["gw-uid"], "a renewal supersedes a certificate without cutting its node off")
        try await h.service.adoptICAState(authority: authority, revocationsText: list.jsonText)
        #expect(channels.closed.withLock { $0 }.count == 1, "only what is new")
    }

    /// A joining secondary gets the Internal CA's key over its SIC channel so it can issue its API
    /// certificate from the group's CA; never a gateway, a node that is not enrolled, or a revoked one.
    @Test func theCAStateGoesOnlyToAnEnrolledUnrevokedManagementServer() async throws {
        let h = try await Harness()
        let authority = try InternalCA.create(name: "test-ica", now: Date())
        await h.service.configureSIC(authority: authority)
        try await h.service.registerPrimary(name: "mgmt-b", uid: "uid-mgmt-b", ipAddress: "192.0.2.12", sicSerial: "0a0b")
        let state = try await h.service.icaState(forServer: NodeIdentity(uid: "uid-mgmt-b", name: "mgmt-b"))
        #expect(state.privateKeyPEM == authority.privateKeyPEM && state.addresses == ["192.0.2.12"])
        await #expect(throws: ManagementError.self) { _ = try await h.service.icaState(forServer: NodeIdentity(uid: "unknown", name: "gw-1")) }
        let sid = try await h.login()
        try await h.ok("reset-sic", ["name": "mgmt-b"], sid: sid)
        await #expect(throws: ManagementError.self) { _ = try await h.service.icaState(forServer: NodeIdentity(uid: "uid-mgmt-b", name: "mgmt-b")) }
    }
}
