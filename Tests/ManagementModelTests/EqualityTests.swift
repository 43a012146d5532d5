import Testing

@testable import ManagementModel

@Suite("equals: true exactly when set would change nothing")
struct EqualityTests {
    @Test func comparesOnlyGivenKeysWithAliases() throws {
        let world = World()
        try world.add(.group, ["name": "web"])
        let host = try world.add(.host, ["name": "h", "ip-address": "192.0.2.10", "color": "red", "groups": ["web"]])
        let equality = Equality(planner: world.planner)
        #expect(try equality.equals(host, params: ["name": "h", "ip-address": "192.0.2.10", "groups": ["web"], "color": "red"]))
        #expect(try !equality.equals(host, params: ["name": "h", "color": "blue"]))
        #expect(try !equality.equals(host, params: ["name": "h", "groups": []]))
    }

    @Test func listsAreSetsAndPortsAreStrings() throws {
        let world = World()
        try world.add(.host, ["name": "a", "ip-address": "192.0.2.1"])
        try world.add(.host, ["name": "b", "ip-address": "192.0.2.2"])
        let g = try world.add(.group, ["name": "g", "members": ["a", "b"]])
        let s = try world.add(.serviceTCP, ["name": "s", "port": "8080"])
        let equality = Equality(planner: world.planner)
        #expect(try equality.equals(g, params: ["name": "g", "members": ["b", "a"]]))
        #expect(try equality.equals(s, params: ["name": "s", "port": 8080]))
    }

    @Test func passwordsAreVerifiedAgainstTheHash() throws {
        let world = World()
        let admin = try world.add(.administrator, ["name": "bob", "password": "pw", "permissions-profile": "read-write"])
        let equality = Equality(planner: world.planner)
        #expect(try equality.equals(admin, params: ["name": "bob", "password": "pw", "permissions-profile": "read-write"]))
        #expect(try !equality.equals(admin, params: ["name": "bob", "password": "other"]))
    }

    @Test func rulesCompareActionsCaseInsensitively() throws {
        let world = World()
        let rule = try world.add(.accessRule, ["layer": .string(world.layer.name), "position": 1, "name": "r", "action": "Accept"])
        let equality = Equality(planner: world.planner)
        #expect(try equality.equals(rule, params: ["name": "r", "layer": .string(world.layer.name), "action": "accept", "search-entire-rulebase": false]))
        #expect(try !equality.equals(rule, params: ["name": "r", "action": "Drop"]))
    }

    /// cp_mgmt_access_rule sends `content_negate` like the other column negations.
    @Test func rulesTakeContentNegateLikeTheOtherNegations() throws {
        let world = World()
        let layer = JSONValue.string(world.layer.name)
        let rule = try world.add(.accessRule, ["layer": layer, "position": 1, "name": "r", "content-negate": true])
        #expect(rule.fields["content-negate"] == .bool(true))
        let equality = Equality(planner: world.planner)
        #expect(try equality.equals(rule, params: ["name": "r", "layer": layer, "content-negate": true, "service-negate": false]))
        #expect(try !equality.equals(rule, params: ["name": "r", "layer": layer, "content-negate": false]))
    }
}
