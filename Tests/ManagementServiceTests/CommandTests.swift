import Foundation
import ManagementModel
import ManagementService
import Testing

@Suite("Web API commands")
struct CommandTests {
    @Test func seedDataIsThere() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        #expect(await h.call("show-package", ["name": "standard"], sid: sid).status == 200)
        let rulebase = try await h.ok("show-access-rulebase", ["name": "Network"], sid: sid)
        #expect(rulebase["total"] == .int(1))
        #expect(rulebase["rulebase"]![0]!["name"] == "Cleanup rule")
        #expect(try await h.ok("show-services-tcp", sid: sid)["total"]!.intValue! >= 4)
    }

    @Test func listsPageWithFromToTotal() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        for index in 0..<7 { try await h.ok("add-host", ["name": .string("h\(index)"), "ip-address": .string("192.0.2.\(index + 1)")], sid: sid) }
        let page = try await h.ok("show-hosts", ["limit": 3, "offset": 3], sid: sid)
        #expect(page["from"] == .int(4) && page["to"] == .int(6) && page["total"] == .int(7))
        _ = try await h.publish(sid: sid)
        let uids = try await h.ok("show-hosts", ["limit": 2, "details-level": "uid"], sid: sid)
        #expect(uids["objects"]![0]!.stringValue != nil)
        #expect(await h.call("show-hosts", ["limit": 501], sid: sid).status == 400)
        let empty = try await h.ok("show-networks", sid: sid)
        #expect(empty["from"] == .int(0) && empty["to"] == .int(0) && empty["total"] == .int(0))
    }

    @Test func equalsAnswers200Or404Or400() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-host", ["name": "web-1", "ip-address": "192.0.2.10", "color": "red"], sid: sid)
        #expect(
            try await h.ok("equals", ["type": "host", "params": ["name": "web-1", "ip-address": "192.0.2.10", "color": "red"]], sid: sid)["equals"] == true)
        #expect(try await h.ok("equals", ["type": "host", "params": ["name": "web-1", "color": "blue"]], sid: sid)["equals"] == false)
        let missing = await h.call("equals", ["type": "host", "params": ["name": "nope"]], sid: sid)
        #expect(missing.status == 404 && missing.body["message"]?.stringValue?.contains("not found") == true)
        #expect(await h.call("equals", ["type": "unicorn", "params": ["name": "x"]], sid: sid).status == 400)
        #expect(await h.call("equals", ["type": "host", "params": ["color": "red"]], sid: sid).status == 400)
    }

    @Test func whereUsedListsGroupsAndRules() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-host", ["name": "h", "ip-address": "192.0.2.1"], sid: sid)
        try await h.ok("add-group", ["name": "g", "members": ["h"]], sid: sid)
        try await h.ok("add-access-rule", ["layer": "Network", "position": 1, "name": "r", "destination": "h"], sid: sid)
        let used = try await h.ok("where-used", ["name": "h"], sid: sid)["used-directly"]!
        #expect(used["total"] == .int(2))
        #expect(used["access-control-rules"]![0]!["rule"]?["name"] == "r")
        let refused = await h.call("delete-host", ["name": "h"], sid: sid)
        #expect(refused.status == 400 && refused.body["message"]?.stringValue?.contains("g (group)") == true)
    }

    @Test func rulebasePagingCountsRulesAndWrapsSections() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-access-section", ["layer": "Network", "position": "top", "name": "Admin"], sid: sid)
        try await h.ok("add-access-rule", ["layer": "Network", "position": ["below": "Admin"], "name": "ssh", "action": "Accept"], sid: sid)
        try await h.ok("add-access-section", ["layer": "Network", "position": ["above": "Cleanup rule"], "name": "Empty"], sid: sid)
        try await h.ok("add-access-section", ["layer": "Network", "position": ["above": "Cleanup rule"], "name": "Tail"], sid: sid)
        let all = try await h.ok("show-access-rulebase", ["name": "Network"], sid: sid)
        let names = all["rulebase"]!.arrayValue!.map { $0["name"]!.stringValue! }
        #expect(names == ["Admin", "Empty", "Tail"])
        #expect(all["rulebase"]![0]!["rulebase"]![0]!["rule-number"] == .int(1))
        #expect(all["rulebase"]![1]!["rulebase"] == [])
        let zero = try await h.ok("show-access-rulebase", ["name": "Network", "limit": 0], sid: sid)
        #expect(zero["total"] == .int(2) && zero["rulebase"] == [] && zero["from"] == .int(0))
        let second = try await h.ok("show-access-rulebase", ["name": "Network", "offset": 1, "limit": 1], sid: sid)
        #expect(second["from"] == .int(2) && second["to"] == .int(2))
        let rule = try await h.ok("show-access-rule", ["name": "ssh", "layer": "Network"], sid: sid)
        #expect(rule["action"]?["name"] == "Accept")
        #expect(rule["rule-number"] == .int(1))
        let structure = try await h.ok("show-layer-structure", ["name": "Network"], sid: sid)
        #expect(structure["root-section"]?["children"]?[0]?["from-rule"] == .int(1))
    }

    @Test func badInputChangesNothing() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let bad = await h.call("add-host", ["name": "x", "ip-address": "not-an-ip"], sid: sid)
        #expect(bad.status == 400 && bad.body["message"]?.stringValue?.contains("ip-address") == true)
        #expect(try await h.ok("show-session", sid: sid)["changes"] == .int(0))
        #expect(await h.call("add-unicorn", ["name": "x"], sid: sid).body["code"] == "generic_err_command_not_found")
        #expect(await h.call("add-host", .array([]), sid: sid).status == 400)
    }

    @Test func showObjectsAndApiVersions() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let versions = await h.call("show-api-versions", sid: nil)
        #expect(versions.body["current-version"] == "1.9.1")
        let objects = try await h.ok("show-objects", ["type": "service-tcp", "filter": "http"], sid: sid)
        #expect(objects["total"] == .int(2))
    }
}
