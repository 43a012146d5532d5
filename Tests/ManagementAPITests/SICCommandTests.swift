import Testing
import ManagementAPI
import ManagementModel

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
}
