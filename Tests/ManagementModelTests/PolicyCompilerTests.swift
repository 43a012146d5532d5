import Testing

@testable import ManagementModel

@Suite("Policy compiler")
struct PolicyCompilerTests {
    static let target = PolicyTarget(uid: "gw-1-uid", name: "gw-1")

    func compile(_ world: World, target: PolicyTarget = PolicyCompilerTests.target) throws -> CompiledPolicy {
        try PolicyCompiler.compile(
            package: "Standard", target: target, reader: world.reader, revision: 7, revisionHash: "abc",
            epochTerm: 3, epochServer: "primary", nowMilliseconds: 42)
    }

    @discardableResult
    func rule(_ world: World, _ params: [String: JSONValue]) throws -> ManagedObject {
        var all = params
        all["layer"] = .string(world.layer.name)
        if all["position"] == nil { all["position"] = ["above": "Cleanup rule"] }
        return try world.add(.accessRule, all)
    }

    /// Sets a stored field directly, for states the planner does not produce (yet): gateway uids in install-on, broken references.
    func force(_ world: World, _ object: ManagedObject, _ field: String, _ value: JSONValue) {
        world.reader.objects[object.uid]!.fields[field] = value
    }

    @Test func theDefaultPackageCompilesToItsCleanupRuleThenTheImplicitOne() throws {
        let world = World()
        let policy = try compile(world)
        #expect(policy.packageName == "Standard")
        #expect(policy.targetUID == "gw-1-uid" && policy.targetName == "gw-1")
        #expect(policy.revision == 7 && policy.revisionHash == "abc" && policy.epochTerm == 3 && policy.epochServer == "primary")
        #expect(policy.compiledAtMilliseconds == 42)
        #expect(policy.rules.map(\.name) == ["Cleanup rule", PolicyCompiler.implicitCleanupName])
        #expect(policy.rules.map(\.number) == [1, 2])
        #expect(policy.rules.map(\.action) == [.drop, .drop])
        #expect(policy.rules.last?.uid == CompiledRule.implicitCleanupUID)
        #expect(policy.rules[0].source == AddressMatch(any: true) && policy.rules[0].service == ServiceMatch(any: true))
        #expect(policy.rules.allSatisfy { $0.layer == "Standard Network" })
    }

    @Test func objectsResolveToMergedRangesAndGroupsRecursively() throws {
        let world = World()
        try world.add(.host, ["name": "web", "ip-address": "10.1.0.10"])
        try world.add(.host, ["name": "web6", "ipv4-address": "10.1.0.11", "ipv6-address": "2001:db8::11"])
        try world.add(.network, ["name": "lan", "subnet": "192.168.7.0", "mask-length": 24])
        try world.add(.network, ["name": "lan6", "subnet": "2001:db8:1::", "mask-length": 48])
        try world.add(.addressRange, ["name": "pool", "ip-address-first": "10.1.0.12", "ip-address-last": "10.1.0.20"])
        try world.add(.group, ["name": "inner", "members": ["pool", "lan6"]])
        try world.add(.group, ["name": "outer", "members": ["inner", "web", "web6"]])
        try rule(world, ["name": "r", "source": ["lan"], "destination": ["outer"], "action": "Accept"])
        let compiled = try compile(world).rules[0]
        #expect(compiled.source == AddressMatch(any: false, ranges: [AddressRange(first: "192.168.7.0", last: "192.168.7.255")]))
        // web, web6's IPv4 address and the pool touch, so they merge into one range.
        #expect(
            compiled.destination.ranges == [
                AddressRange(first: "10.1.0.10", last: "10.1.0.20"),
                AddressRange(first: "2001:db8::11", last: "2001:db8::11"),
                AddressRange(first: "2001:db8:1::", last: "2001:db8:1:ffff:ffff:ffff:ffff:ffff"),
            ])
        #expect(compiled.action == .accept)
    }

    @Test func servicesBecomeProtocolAndPortRanges() throws {
        let world = World()
        try world.add(.serviceTCP, ["name": "web", "port": "80"])
        try world.add(.serviceTCP, ["name": "alt", "port": "8000-8100"])
        try world.add(.serviceTCP, ["name": "high", "port": ">60000"])
        try world.add(.serviceUDP, ["name": "dns", "port": "53"])
        try world.add(.serviceGroup, ["name": "inner", "members": ["alt", "dns"]])
        try world.add(.serviceGroup, ["name": "outer", "members": ["inner", "web"]])
        try rule(world, ["name": "r", "service": ["outer", "high"], "action": "Accept"])
        #expect(
            try compile(world).rules[0].service.entries == [
                ServiceEntry(proto: "tcp", portFirst: 80, portLast: 80),
                ServiceEntry(proto: "tcp", portFirst: 8000, portLast: 8100),
                ServiceEntry(proto: "tcp", portFirst: 60001, portLast: 65535),
                ServiceEntry(proto: "udp", portFirst: 53, portLast: 53),
            ])
    }

    @Test func sectionsFlattenDisabledRulesDropOutAndNumbersStay() throws {
        let world = World()
        let layer: JSONValue = .string(world.layer.name)
        try world.add(.accessSection, ["layer": layer, "position": "top", "name": "Admin"])
        try world.add(.accessRule, ["layer": layer, "position": ["bottom": "Admin"], "name": "a", "action": "Accept"])
        try world.add(.accessRule, ["layer": layer, "position": ["bottom": "Admin"], "name": "b", "enabled": false])
        try world.add(.accessRule, ["layer": layer, "position": ["bottom": "Admin"], "name": "c", "action": "Reject", "track": "Log"])
        let rules = try compile(world).rules
        // The section starts at the top, so the Cleanup rule is its first rule and "bottom" is after it.
        #expect(rules.map(\.name) == ["Cleanup rule", "a", "c", PolicyCompiler.implicitCleanupName])
        #expect(rules.map(\.number) == [1, 2, 4, 5])
        #expect(rules.map(\.action) == [.drop, .accept, .reject, .drop])
        #expect(rules.map(\.log) == [false, false, true, false])
    }

    @Test func installOnSelectsRulesForTheTarget() throws {
        let world = World()
        let mine = try rule(world, ["name": "mine", "action": "Accept"])
        let theirs = try rule(world, ["name": "theirs", "action": "Accept"])
        force(world, mine, "install-on", [.string(Self.target.uid)])
        force(world, theirs, "install-on", ["other-gateway-uid"])
        #expect(try compile(world).rules.map(\.name) == ["mine", "Cleanup rule", PolicyCompiler.implicitCleanupName])
        let other = try compile(world, target: PolicyTarget(uid: "other-gateway-uid", name: "gw-2"))
        #expect(other.rules.map(\.name) == ["theirs", "Cleanup rule", PolicyCompiler.implicitCleanupName])
        #expect(other.rules.map(\.number) == [2, 3, 4])
    }

    @Test func aRuleInstalledOnAClusterReachesItsMembers() throws {
        let world = World()
        let clustered = try rule(world, ["name": "clustered", "action": "Accept"])
        force(world, clustered, "install-on", ["cluster-uid"])
        let member = PolicyTarget(uid: "member-uid", name: "member-1", alsoNamedBy: ["cluster-uid"])
        #expect(try compile(world, target: member).rules.map(\.name) == ["clustered", "Cleanup rule", PolicyCompiler.implicitCleanupName])
        #expect(try compile(world).rules.map(\.name) == ["Cleanup rule", PolicyCompiler.implicitCleanupName], "not on other gateways")
    }

    @Test func negationAndTheLayersImplicitCleanupAction() throws {
        let world = World()
        try world.add(.host, ["name": "h", "ip-address": "10.0.0.1"])
        try rule(world, ["name": "r", "source": ["h"], "source-negate": true, "service-negate": true, "action": "Accept"])
        try world.delete(.accessRule, ["layer": .string(world.layer.name), "name": "Cleanup rule"])
        try world.set(.accessLayer, ["name": .string(world.layer.name), "implicit-cleanup-action": "accept"])
        let rules = try compile(world).rules
        #expect(rules[0].source == AddressMatch(any: false, negate: true, ranges: [AddressRange(first: "10.0.0.1", last: "10.0.0.1")]))
        #expect(rules[0].service == ServiceMatch(any: true, negate: true))
        #expect(
            rules.last
                == CompiledRule(
                    number: 2, uid: CompiledRule.implicitCleanupUID, name: PolicyCompiler.implicitCleanupName,
                    layer: "Standard Network", action: .accept, source: AddressMatch(any: true),
                    destination: AddressMatch(any: true), service: ServiceMatch(any: true), log: false))
    }

    @Test func orderedLayersEachEndWithTheirOwnCleanup() throws {
        let world = World()
        let second = try world.add(.accessLayer, ["name": "Second", "implicit-cleanup-action": "accept"])
        try world.set(.package, ["name": "Standard", "access-layers": [.string(world.layer.uid), .string(second.uid)]])
        try world.add(.accessRule, ["layer": "Second", "position": "top", "name": "s1", "action": "Drop"])
        let rules = try compile(world).rules
        #expect(rules.map(\.layer) == ["Standard Network", "Standard Network", "Second", "Second", "Second"])
        #expect(rules.map(\.number) == [1, 2, 1, 2, 3])
    }

    @Test func userInteractionActionsAreClearErrors() throws {
        let world = World()
        try rule(world, ["name": "ask", "action": "Ask"])
        let error = try #require(throws: ManagementError.self) { try compile(world) }
        #expect(error.code == "err_policy_compile")
        #expect(error.message.contains("rule 1 [ask]") && error.message.contains("[Ask]"))
        #expect(error.details["errors"]?.arrayValue?.count == 1)
    }

    @Test func inlineLayersAreInlinedUnderTheirParentRule() throws {
        let world = World()
        try world.add(.network, ["name": "lan", "subnet": "10.0.0.0", "mask-length": 24])
        try world.add(.serviceTCP, ["name": "https", "port": "443"])
        let sub = try world.add(.accessLayer, ["name": "Sub"])
        try world.add(.accessRule, ["layer": "Sub", "position": "top", "name": "web", "service": "https", "action": "Accept", "track": "Log"])
        try rule(world, ["name": "to-lan", "destination": ["lan"], "action": "Apply Layer", "inline-layer": "Sub"])
        let rules = try compile(world).rules
        #expect(
            rules.map(\.name) == [
                "to-lan / web", "to-lan / Cleanup rule", "to-lan / \(PolicyCompiler.implicitCleanupName)",
                "Cleanup rule", PolicyCompiler.implicitCleanupName,
            ])
        #expect(rules.map(\.number) == [1, 1, 1, 2, 3])
        #expect(rules.allSatisfy { $0.layer == "Standard Network" })
        let lan = AddressMatch(any: false, ranges: [AddressRange(first: "10.0.0.0", last: "10.0.0.255")])
        #expect(rules[0].destination == lan && rules[0].service.entries == [ServiceEntry(proto: "tcp", portFirst: 443, portLast: 443)])
        #expect(rules[0].action == .accept && rules[0].log && rules[1].destination == lan && rules[1].action == .drop)

        // A layer inlined into itself is refused, naming the rule.
        let loop = try world.add(.accessRule, ["layer": "Sub", "position": "top", "name": "loop", "action": "Apply Layer", "inline-layer": "Sub"])
        world.reader.objects[loop.uid]!.fields["inline-layer"] = .string(sub.uid)
        let problems = PolicyVerifier.verify(package: "Standard", targets: [Self.target], reader: world.reader)
        #expect(problems.filter { $0.severity == .error }.map(\.message) == ["rule 1 [loop] of layer [Sub]: inline layer [Sub] contains itself"])
    }

    @Test func cellIntersections() {
        func cell(_ pairs: [(String, String)], negate: Bool = false) -> AddressMatch {
            AddressMatch(any: false, negate: negate, ranges: pairs.map { AddressRange(first: $0.0, last: $0.1) })
        }
        let lan = cell([("10.0.0.0", "10.0.0.255")])
        #expect(lan.intersected(with: AddressMatch(any: true)) == lan)
        #expect(lan.intersected(with: .nothing).matchesNothing)
        #expect(lan.intersected(with: cell([("10.0.0.128", "10.0.1.255"), ("::1", "::1")])) == cell([("10.0.0.128", "10.0.0.255")]))
        #expect(
            cell([("10.0.0.128", "10.0.1.255")]).intersected(with: cell([("10.0.0.0", "10.0.0.255")], negate: true))
                == cell([("10.0.1.0", "10.0.1.255")]))
        #expect(
            cell([("10.0.0.0", "10.0.0.9")], negate: true).intersected(with: cell([("10.0.0.5", "10.0.0.20")], negate: true))
                == cell([("10.0.0.0", "10.0.0.20")], negate: true))
        #expect(cell([("10.0.0.1", "10.0.0.1")]).intersected(with: cell([("10.0.0.2", "10.0.0.2")])).matchesNothing)
        let low = ServiceMatch(any: false, entries: [ServiceEntry(proto: "tcp", portFirst: 1, portLast: 1024)])
        let notSSH = ServiceMatch(any: false, negate: true, entries: [ServiceEntry(proto: "tcp", portFirst: 22, portLast: 22)])
        #expect(
            low.intersected(with: notSSH).entries == [
                ServiceEntry(proto: "tcp", portFirst: 1, portLast: 21), ServiceEntry(proto: "tcp", portFirst: 23, portLast: 1024),
            ])
        #expect(notSSH.intersected(with: ServiceMatch(any: true)) == notSSH)
    }

    @Test func verifyReportsMissingPackagesTargetsAndReferences() throws {
        let world = World()
        #expect(PolicyVerifier.verify(package: "Nope", targets: [Self.target], reader: world.reader).map(\.code) == ["unknown-package"])
        #expect(PolicyVerifier.verify(package: "standard", targets: [], reader: world.reader).map(\.code) == ["no-targets"])
        let host = try world.add(.host, ["name": "h", "ip-address": "10.0.0.1"])
        let r = try rule(world, ["name": "r", "destination": ["h"], "action": "Accept"])
        world.reader.objects[host.uid] = nil
        let problems = PolicyVerifier.verify(package: "Standard", targets: [Self.target], reader: world.reader)
        #expect(problems.map(\.code) == ["unresolved-reference"])
        #expect(problems.first?.ruleUID == r.uid && problems.first?.ruleNumber == 1)
        #expect(PolicyVerifier.hasErrors(problems))
    }

    @Test func groupCyclesAreGuarded() throws {
        let world = World()
        try world.add(.host, ["name": "h", "ip-address": "10.0.0.1"])
        let a = try world.add(.group, ["name": "a", "members": ["h"]])
        let b = try world.add(.group, ["name": "b", "members": ["a"]])
        force(world, a, "members", [.string(b.uid), .string(world.reader.objects(named: "h")[0].uid)])
        try rule(world, ["name": "r", "source": ["a"], "action": "Accept"])
        #expect(try compile(world).rules[0].source.ranges == [AddressRange(first: "10.0.0.1", last: "10.0.0.1")])
    }

    @Test func rulesCoveredByAnEarlierRuleAreWarnings() throws {
        let world = World()
        try world.add(.network, ["name": "lan", "subnet": "10.0.0.0", "mask-length": 8])
        try world.add(.host, ["name": "h", "ip-address": "10.2.3.4"])
        try world.add(.serviceTCP, ["name": "web", "port": "80"])
        try world.add(.serviceTCP, ["name": "ports", "port": "1-1024"])
        try rule(world, ["name": "wide", "source": ["lan"], "service": ["ports"], "action": "Accept"])
        try rule(world, ["name": "narrow", "source": ["h"], "service": ["web"], "action": "Drop"])
        try rule(world, ["name": "other", "destination": ["h"], "action": "Drop"])
        let problems = PolicyVerifier.verify(package: "Standard", targets: [Self.target], reader: world.reader)
        #expect(problems.map(\.code) == ["shadowed-rule"])
        #expect(problems.first?.severity == .warning && problems.first?.ruleNumber == 2)
        #expect(!PolicyVerifier.hasErrors(problems))
        // Warnings do not stop a compile.
        #expect(try compile(world).rules.count == 5)
    }

    @Test func addressArithmetic() {
        let (first, last) = IPAddress.parse("2001:db8::1234")!.network(length: 64)
        #expect(first.text == "2001:db8::" && last.text == "2001:db8::ffff:ffff:ffff:ffff")
        #expect(IPAddress.parse("0.0.0.0")!.network(length: 0).last.text == "255.255.255.255")
        #expect(IPAddress.parse("::")!.network(length: 0).last.text == "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        #expect(IPAddress.parse("10.0.0.255")!.successor?.text == "10.0.1.0")
        #expect(IPAddress.parse("::ffff:ffff:ffff:ffff")!.successor?.text == "0:0:0:1::")
        #expect(IPAddress.parse("255.255.255.255")!.successor == nil)
        #expect(
            AddressRange.merged([
                AddressRange(first: "10.0.0.5", last: "10.0.0.9"), AddressRange(first: "10.0.0.1", last: "10.0.0.6"),
                AddressRange(first: "::1", last: "::1"),
            ])
                == [AddressRange(first: "10.0.0.1", last: "10.0.0.9"), AddressRange(first: "::1", last: "::1")])
    }
}
