import Testing

@testable import ManagementModel

@Suite("Access rules, sections and positions")
struct RulebaseTests {
    @Test func newLayerHasACleanupRule() {
        let world = World()
        #expect(world.ruleNames() == ["Cleanup rule"])
    }

    @Test func positionsFollowTheCheckPointGrammar() throws {
        let world = World()
        let layer: JSONValue = .string(world.layer.name)
        try world.add(.accessRule, ["layer": layer, "position": "top", "name": "a"])
        try world.add(.accessRule, ["layer": layer, "position": "bottom", "name": "z"])
        try world.add(.accessRule, ["layer": layer, "position": 2, "name": "b"])
        try world.add(.accessRule, ["layer": layer, "position": ["above": "z"], "name": "y"])
        try world.add(.accessRule, ["layer": layer, "position": ["below": "a"], "name": "a2"])
        #expect(world.ruleNames() == ["a", "a2", "b", "Cleanup rule", "y", "z"])
        #expect(code { try world.add(.accessRule, ["layer": layer, "position": 99, "name": "x"]) } == "err_rulebase_invalid_operation")
        #expect(code { try world.add(.accessRule, ["layer": layer, "name": "x"]) } == "generic_err_missing_required_parameters")
    }

    @Test func sectionsGroupRulesAndBelowASectionMeansItsTop() throws {
        let world = World()
        let layer: JSONValue = .string(world.layer.name)
        try world.add(.accessSection, ["layer": layer, "position": "top", "name": "Admin"])
        try world.add(.accessRule, ["layer": layer, "position": ["below": "Admin"], "name": "ssh"])
        try world.add(.accessSection, ["layer": layer, "position": ["above": "Cleanup rule"], "name": "Tail"])
        try world.add(.accessRule, ["layer": layer, "position": ["bottom": "Admin"], "name": "web"])
        let rulebase = Rulebase(layer: world.reader.object(uid: world.layer.uid)!, reader: world.reader)
        #expect(world.ruleNames() == ["Admin", "ssh", "web", "Tail", "Cleanup rule"])
        let section = world.reader.objects(named: "Admin").first!.uid
        #expect(rulebase.section(of: world.reader.objects(named: "web").first!.uid) == section)
        #expect(rulebase.ruleNumber(of: world.reader.objects(named: "Cleanup rule").first!.uid) == 3)
    }

    @Test func moveWithNewPosition() throws {
        let world = World()
        let layer: JSONValue = .string(world.layer.name)
        try world.add(.accessRule, ["layer": layer, "position": 1, "name": "first"])
        try world.set(.accessRule, ["layer": layer, "name": "first", "new-position": "bottom"])
        #expect(world.ruleNames() == ["Cleanup rule", "first"])
    }

    @Test func ruleFieldsResolveAnyActionsAndTracks() throws {
        let world = World()
        try world.add(.host, ["name": "h", "ip-address": "192.0.2.1"])
        try world.add(.serviceTCP, ["name": "https", "port": "443"])
        let rule = try world.add(
            .accessRule,
            [
                "layer": .string(world.layer.name), "position": 1, "name": "r", "source": ["h"],
                "service": "https", "action": "accept", "track": ["type": "log"],
            ])
        #expect(rule["action"] == .string(Predefined.acceptUID))
        #expect(rule["destination"] == [.string(Predefined.anyUID)])
        #expect(rule["track"]?["type"] == .string(Predefined.logTrackUID))
        #expect(code { try world.add(.accessRule, ["layer": .string(world.layer.name), "position": 1, "action": "Allow"]) } == "generic_err_object_not_found")
        #expect(
            code { try world.add(.accessRule, ["layer": .string(world.layer.name), "position": 1, "source": ["https"]]) } == "generic_err_object_type_wrong")
    }

    @Test func deletingARuleTakesItOutOfItsLayer() throws {
        let world = World()
        try world.add(.accessRule, ["layer": .string(world.layer.name), "position": 1, "name": "r"])
        try world.delete(.accessRule, ["layer": .string(world.layer.name), "name": "r"])
        #expect(world.ruleNames() == ["Cleanup rule"])
    }

    @Test func ruleNumbersFindRules() throws {
        let world = World()
        try world.add(.accessRule, ["layer": .string(world.layer.name), "position": 1, "name": "r"])
        let found = try world.planner.find(.accessRule, ["layer": .string(world.layer.name), "rule-number": "1"])
        #expect(found.name == "r")
    }
}
