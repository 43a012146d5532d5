import Foundation
import ManagementModel
import ManagementService
import Store
import Testing

/// Requests that stopped the server or were misread (issue 18, items 8-10, 19, 20): each is answered,
/// with a 400 naming the field where the value is wrong.
@Suite("Hostile input: answered, never a trap")
struct HostileInputTests {
    static func isInvalid(_ reply: APIResponse, field: String) -> Bool {
        reply.status == 400 && reply.body["code"] == "generic_err_invalid_parameter"
            && reply.body["message"]?.stringValue?.contains("[\(field)]") == true
    }

    /// Doubles beyond Int64 where a name or filter is read (a read-only session could stop the server).
    @Test func numbersBeyondInt64AreReadAsText() async throws {
        let h = try await Harness()
        let sid = try await h.login(extra: ["read-only": true])
        #expect(await h.call("show-host", ["name": .double(1e300)], sid: sid).status == 404)
        #expect(await h.call("show-objects", ["filter": .double(1e19)], sid: sid).status == 200)
        #expect(await h.call("show-hosts", ["filter": .double(-1e19)], sid: sid).status == 200)
        #expect(await h.call("where-used", ["name": .double(-.infinity)], sid: sid).status == 404)
        #expect(await h.call("where-used", ["name": .double(.nan)], sid: sid).status == 404)
        #expect(await h.call("show-access-rule", ["layer": "Network", "name": .double(-1e300)], sid: sid).status == 404)
        #expect(await h.call("show-access-rule", ["layer": "Network", "rule-number": .double(1e300)], sid: sid).status == 400)
        #expect(await h.call("show-package", ["name": .double(9.3e18)], sid: sid).status == 404)
    }

    /// A 200 KB `filter` reached SQLite as a LIKE pattern "too complex": a 500 on every list. A filter
    /// is never longer than a name may be; at that length it still answers.
    @Test func aFilterLongerThanAnyNameIsRefusedNamingIt() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let huge = JSONValue.string(String(repeating: "x", count: 200_000))
        for command in ["show-hosts", "show-packages", "show-administrators", "show-simple-gateways", "show-gateways-and-servers"] {
            let reply = await h.call(command, ["filter": huge], sid: sid)
            #expect(Self.isInvalid(reply, field: "filter"), "\(command): \(reply.status) \(reply.body)")
        }
        let longest = JSONValue.string(String(repeating: "x", count: Limits.nameBytesMax))
        #expect(await h.call("show-hosts", ["filter": longest], sid: sid).status == 200)
    }

    /// offset near 2^63 made `offset + limit` overflow in three listings.
    @Test func offsetsNearInt64MaxAreRefused() async throws {
        let h = try await Harness()
        let sid = try await h.login(extra: ["read-only": true])
        for offset: JSONValue in [.int(.max), .int(.max - 1), .string("9223372036854775807"), .int(Limits.pageOffsetMax + 1)] {
            for command in ["show-revisions", "show-changes", "show-hosts", "show-sessions", "show-tasks"] {
                #expect(Self.isInvalid(await h.call(command, ["offset": offset], sid: sid), field: "offset"), "\(command) \(offset)")
            }
            #expect(Self.isInvalid(await h.call("show-access-rulebase", ["name": "Network", "offset": offset], sid: sid), field: "offset"))
        }
        let far = await h.call("show-revisions", ["offset": .int(Limits.pageOffsetMax), "limit": 500], sid: sid)
        #expect(far.status == 200 && far.body["objects"] == [] && far.body["total"] == 1)
        let rulebase = await h.call("show-access-rulebase", ["name": "Network", "offset": .int(Limits.pageOffsetMax), "limit": 500], sid: sid)
        #expect(rulebase.status == 200 && rulebase.body["rulebase"] == [])
        #expect(await h.call("show-changes", ["offset": .int(Limits.pageOffsetMax)], sid: sid).status == 200)
    }

    /// limit and offset of the wrong type are refused naming the field, not replaced by the default.
    @Test func pagingParametersOfTheWrongTypeAreRefused() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        let wrong: [JSONValue] = ["ten", "", " 5", "5 ", .double(10.5), .double(10), true, false, nil, [5], ["n": 5], -1, "-1"]
        for command in ["show-hosts", "show-objects", "show-revisions", "show-changes", "show-sessions", "show-tasks", "show-gateways-and-servers"] {
            for value in wrong {
                #expect(Self.isInvalid(await h.call(command, ["limit": value], sid: sid), field: "limit"), "\(command) limit \(value)")
                #expect(Self.isInvalid(await h.call(command, ["offset": value], sid: sid), field: "offset"), "\(command) offset \(value)")
            }
            #expect(Self.isInvalid(await h.call(command, ["limit": 501], sid: sid), field: "limit"))
            #expect(await h.call(command, ["limit": "5", "offset": "0"], sid: sid).status == 200, "\(command)")
        }
        #expect(Self.isInvalid(await h.call("show-access-rulebase", ["name": "Network", "limit": "all"], sid: sid), field: "limit"))
        #expect(await h.call("show-access-rulebase", ["name": "Network", "limit": 0], sid: sid).status == 200)
        #expect(Self.isInvalid(await h.call("show-revisions", ["number": "latest"], sid: sid), field: "number"))
        #expect(Self.isInvalid(await h.call("show-revisions", ["number": .double(1e300)], sid: sid), field: "number"))
        #expect(await h.call("show-revisions", ["number": "1"], sid: sid).status == 200)
        #expect(
            Self.isInvalid(
                await h.call("show-logs", ["new-query": ["max-logs-per-request": "many"]], sid: sid),
                field: "new-query.max-logs-per-request"))
        #expect(
            Self.isInvalid(
                await h.call("login", ["user": "admin", "password": "adminpw", "session-timeout": "long"], sid: nil),
                field: "session-timeout"))
        #expect(
            Self.isInvalid(
                await h.call("add-service-tcp", ["name": "s", "port": "80", "session-timeout": .double(60.5)], sid: sid),
                field: "session-timeout"))
    }

    /// A port with spaces was accepted and published, and the next verify-policy trapped (item 9).
    @Test func aServicePortWithSpacesIsRefusedAndAStoredOneFailsVerifyNamingIt() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        for port in [" 80", "80 ", ">80 "] {
            #expect(Self.isInvalid(await h.call("add-service-tcp", ["name": "web", "port": .string(port)], sid: sid), field: "port"))
        }
        try await h.ok("add-service-tcp", ["name": "web", "port": "80"], sid: sid)
        #expect(Self.isInvalid(await h.call("set-service-tcp", ["name": "web", "port": ">80 "], sid: sid), field: "port"))
        try await h.ok("add-simple-gateway", ["name": "gw-1", "ip-address": "192.0.2.1"], sid: sid)
        try await h.ok("add-access-rule", ["layer": "Network", "position": 1, "name": "r", "service": ["web"], "action": "Accept"], sid: sid)
        _ = try await h.publish(sid: sid)
        // A revision from elsewhere (an older server, a peer) that stored a bad port: verify names it.
        let service = try #require(h.store.reader.objects(named: "web").first)
        var poisoned = service
        poisoned.fields["port"] = ">80 "
        let head = try #require(try h.store.head())
        try h.store.append(
            Revision(
                after: head, epoch: .init(term: 1, server: "primary"), publishedAtMilliseconds: h.clock.now,
                author: "peer", sessionUID: "", sessionName: "", changes: [.upsert(poisoned)]))
        let task = try await h.ok("verify-policy", ["policy-package": "Standard"], sid: sid)
        let shown = try await h.ok("show-task", ["task-id": task["task-id"]!, "details-level": "full"], sid: sid)["tasks"]![0]!
        #expect(shown["status"] == "failed")
        #expect(shown["comments"]?.stringValue?.contains("[web]") == true && shown["comments"]?.stringValue?.contains("invalid port") == true)
        let install = await h.call("install-policy", ["policy-package": "Standard"], sid: sid)
        #expect(install.status == 400 && install.body["code"] == "err_policy_compile")
    }

    /// A group that contains itself through `groups` was accepted (item 10).
    @Test func groupCyclesThroughGroupsAreRefused() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-group", ["name": "a"], sid: sid)
        #expect(Self.isInvalid(await h.call("set-group", ["name": "a", "groups": ["a"]], sid: sid), field: "groups"))
        try await h.ok("add-group", ["name": "b", "groups": ["a"]], sid: sid)
        #expect(Self.isInvalid(await h.call("set-group", ["name": "a", "groups": ["b"]], sid: sid), field: "groups"))
        #expect(Self.isInvalid(await h.call("set-group", ["name": "b", "members": ["a"]], sid: sid), field: "members"))
        #expect(try await h.ok("show-group", ["name": "a"], sid: sid)["members"]?.arrayValue?.count == 1)
    }

    /// Item 19: a one-character name of 120 KB was stored; filters matched as SQL patterns; `1.2.3.4::`
    /// and `+1::` were IPv6 addresses.
    @Test func namesFiltersAndAddressesAreTakenLiterally() async throws {
        let h = try await Harness()
        let sid = try await h.login(extra: ["session-name": .string("s" + String(repeating: "\u{301}", count: 60_000))])
        let heavy = "a" + String(repeating: "\u{301}", count: 60_000)
        #expect(Self.isInvalid(await h.call("add-host", ["name": .string(heavy), "ip-address": "192.0.2.1"], sid: sid), field: "name"))
        #expect(
            Self.isInvalid(
                await h.call("add-host", ["name": "h", "ip-address": "192.0.2.1", "comments": .string(heavy)], sid: sid),
                field: "comments"))
        #expect(try await h.ok("show-session", sid: sid)["name"]?.stringValue?.utf8.count ?? .max <= Limits.nameBytesMax)
        for address in ["1.2.3.4::", "+1::", "01.2.3.4"] {
            #expect(Self.isInvalid(await h.call("add-host", ["name": "h", "ip-address": .string(address)], sid: sid), field: "ip-address"))
        }
        for name in ["100%", "a_b", "axb", #"back\slash"#] {
            try await h.ok("add-host", ["name": .string(name), "ip-address": "192.0.2.1"], sid: sid)
        }
        _ = try await h.publish(sid: sid)
        func names(_ filter: String) async throws -> [String] {
            try await h.ok("show-hosts", ["filter": .string(filter)], sid: sid)["objects"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        }
        #expect(try await names("%") == ["100%"])
        #expect(try await names("_") == ["a_b"])
        #expect(try await names(#"\"#) == [#"back\slash"#])
    }

    /// Item 20: set-access-rule with another layer left the rule listed in both layers.
    @Test func setAccessRuleWithAnotherLayerMovesItOut() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-access-layer", ["name": "Other"], sid: sid)
        let rule = try await h.ok("add-access-rule", ["layer": "Network", "position": 1, "name": "r"], sid: sid)
        try await h.ok("set-access-rule", ["uid": rule["uid"]!, "layer": "Other", "new-position": "top"], sid: sid)
        _ = try await h.publish(sid: sid)
        func names(_ layer: String) async throws -> [String] {
            try await h.ok("show-access-rulebase", ["name": .string(layer)], sid: sid)["rulebase"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
        }
        #expect(try await names("Network") == ["Cleanup rule"])
        #expect(try await names("Other") == ["r", "Cleanup rule"])
        let shown = try await h.ok("show-access-rule", ["uid": rule["uid"]!], sid: sid)
        let other = try await h.ok("show-access-layer", ["name": "Other"], sid: sid)
        #expect(shown["rule-number"] == 1 && shown["layer"] == other["uid"])
    }

    /// A gateway (a peer) sends log records; their times are rendered as ISO 8601 text. Int64's ends trapped.
    @Test func logTimesFromAGatewayAtInt64sEndsRender() async throws {
        let h = try await Harness()
        let sid = try await h.login(extra: ["read-only": true])
        let records = [Int64.min, .max, -1].enumerated().map { index, time in
            SequencedLogRecord(
                sequence: UInt64(index + 1),
                record: PolicyLogRecord(
                    timeMilliseconds: time, gatewayName: "gw", ruleUID: "r", ruleNumber: .max, ruleName: "r", action: .drop, source: "", destination: "",
                    proto: "tcp", destinationPort: .max, origin: "nftables", policyRevision: .max, hitCount: .max))
        }
        try h.logs.append(records, receivedFrom: "gw-1", receivedAtMilliseconds: .min)
        let page = try await h.ok("show-logs", ["new-query": ["time-frame": "all-time"]], sid: sid)
        #expect(page["logs-count"] == 3)
        let custom = await h.call("show-logs", ["new-query": ["time-frame": "custom", "custom-start": .int(.min), "custom-end": .int(.max)]], sid: sid)
        #expect(custom.status == 200 && custom.body["logs-count"] == 3)
    }
}
