import Testing

@testable import ManagementModel

/// The model's parsers and conversions on values from a request, a peer or the database
/// (issue 18, items 9, 10, 19, 20 and the sweep of item 11): refused or reported, never a trap.
@Suite("Hostile values in the model")
struct HostileModelTests {
    // MARK: ports (item 9)

    static let validPorts: [(String, ClosedRange<Int>)] = [
        ("80", 80...80), ("1", 1...1), ("65535", 65535...65535), ("1000-2000", 1000...2000), ("22-22", 22...22),
        (">1024", 1025...65535), ("<1024", 1...1023), (">65534", 65535...65535), ("<2", 1...1), ("00080", 80...80),
    ]
    static let invalidPorts = [
        " 80", "80 ", ">80 ", "> 80", " >80", "<80 ", "80- 90", "80 -90", "\t80", "80\n", "+80", "-80", "0", "65536", "99999",
        "100000", ">65535", "<1", "2000-1000", "1-2-3", "1-", "-1", ">", "<", "", ">>80", "80,81", "eighty", "٨٠", "0x50", "1e2",
        String(repeating: "9", count: 40),
    ]

    @Test func portSpecsParseStrictly() {
        for (text, range) in Self.validPorts { #expect(PortSpec.range(text) == range, "\(text)") }
        for text in Self.invalidPorts {
            #expect(PortSpec.range(text) == nil, "\(text.debugDescription)")
            #expect(!PortSpec.isValid(text), "\(text.debugDescription)")
        }
    }

    @Test func servicePortsWithSpacesAreRefusedAtTheBoundary() {
        let world = World()
        for port in [" 80", "80 ", ">80 ", "<80\t"] {
            #expect(code { try world.add(.serviceTCP, ["name": "s", "port": .string(port)]) } == "generic_err_invalid_parameter", "\(port)")
        }
        #expect(code { try world.add(.serviceUDP, ["name": "s", "port": "53", "source-port": " 53"]) } == "generic_err_invalid_parameter")
    }

    /// A port stored before this check (or by a peer, an import) is a compile error naming the
    /// service, on verify and on install: never a trap.
    @Test func aStoredBadPortIsACompileErrorNamingTheService() throws {
        for port in [" 80", "80 ", ">80 ", "<80 ", "1000 - 2000", "abc", "", "70000", "2000-1000"] {
            let world = World()
            let service = try world.add(.serviceTCP, ["name": "web", "port": "80"])
            try world.add(.accessRule, ["layer": .string(world.layer.name), "position": 1, "name": "r", "service": ["web"], "action": "Accept"])
            world.reader.objects[service.uid]?.fields["port"] = .string(port)
            let target = PolicyTarget(uid: "gw", name: "gw")
            let problems = PolicyVerifier.verify(package: "Standard", targets: [target], reader: world.reader)
            let error = problems.first { $0.severity == .error }
            #expect(error?.code == "unsupported-object", "\(port)")
            #expect(error?.message.contains("[web]") == true && error?.message.contains("invalid port") == true, "\(port)")
            #expect(throws: ManagementError.self) {
                try PolicyCompiler.compile(
                    package: "Standard", target: target, reader: world.reader, revision: 1, revisionHash: "h",
                    epochTerm: 1, epochServer: "s", nowMilliseconds: 0)
            }
        }
    }

    // MARK: group cycles through `groups` (item 10)

    static func isCycle(_ body: () throws -> Any, field: String = "groups") -> Bool {
        do {
            _ = try body()
            return false
        } catch let error as ManagementError {
            return error.code == "generic_err_invalid_parameter" && error.message.contains("[\(field)]") && error.message.contains("cycle")
        } catch { return false }
    }

    @Test func groupsThatContainThemselvesThroughGroupsAreRefused() throws {
        let world = World()
        try world.add(.group, ["name": "a"])
        #expect(Self.isCycle { try world.set(.group, ["name": "a", "groups": ["a"]]) })
        try world.add(.group, ["name": "b", "groups": ["a"]])  // b in a
        #expect(Self.isCycle { try world.set(.group, ["name": "a", "groups": ["b"]]) })  // a in b in a
        try world.add(.group, ["name": "c", "members": ["a"]])  // a in c
        #expect(Self.isCycle { try world.add(.group, ["name": "d", "members": ["c"], "groups": ["b"]]) })  // d in b in a in c in d
        #expect(Self.isCycle { try world.set(.group, ["name": "c", "groups": ["b"]]) })  // c in b in a in c
        // The members path refuses the same cycles with the same error.
        #expect(Self.isCycle({ try world.set(.group, ["name": "b", "members": ["c"]]) }, field: "members"))
        try world.add(.serviceGroup, ["name": "sg"])
        #expect(Self.isCycle { try world.set(.serviceGroup, ["name": "sg", "groups": ["sg"]]) })
        try world.add(.serviceGroup, ["name": "sg2", "groups": ["sg"]])
        #expect(Self.isCycle { try world.set(.serviceGroup, ["name": "sg", "groups": ["sg2"]]) })
        // Nothing of the refused commands stayed.
        #expect(world.reader.objects(named: "a").first?.uids("members") == world.reader.objects(named: "b").map(\.uid))
    }

    @Test func joiningAGroupKeepsTheCommandsOtherEdits() throws {
        let world = World()
        try world.add(.group, ["name": "outer"])
        try world.add(.group, ["name": "inner"])
        let inner = try world.set(.group, ["name": "inner", "comments": "kept", "groups": ["outer"]])
        #expect(inner.fields["comments"] == "kept")
        #expect(world.reader.objects(named: "outer").first?.uids("members") == [inner.uid])
    }

    @Test func nestingThroughGroupsIsBoundedAsThroughMembers() throws {
        let world = World()
        var previous = try world.add(.group, ["name": "g0"])
        for index in 1...Limits.groupNestingDepthMax {
            previous = try world.add(.group, ["name": .string("g\(index)"), "members": [.string(previous.uid)]])
        }
        try world.add(.group, ["name": "top"])
        for (field, command) in [
            ("groups", { try world.set(.group, ["name": .string(previous.name), "groups": ["top"]]) }),
            ("members", { try world.set(.group, ["name": "top", "members": [.string(previous.uid)]]) }),
        ] {
            do {
                _ = try command()
                Issue.record("nesting deeper than the limit through \(field) was accepted")
            } catch let error as ManagementError {
                #expect(error.message.contains("[\(field)]") && error.message.contains("deeper"))
            }
        }
    }

    // MARK: addresses (item 19)

    static let validV4 = ["0.0.0.0", "255.255.255.255", "192.0.2.1", "10.0.0.10", "1.2.3.4", "100.64.0.0"]
    static let invalidV4 = [
        "256.1.1.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1.02.3.4", "00.0.0.0", "1.2.3.010", "1.2.3.4 ", " 1.2.3.4", "1..2.3",
        ".1.2.3.4", "1.2.3.4.", "+1.2.3.4", "1.2.3.-4", "0x1.2.3.4", "1.2.3.\u{664}", "", "1234.1.1.1", "1.2.3.4/24", "1.2.3.4\n",
    ]
    static let validV6: [(String, String)] = [
        ("::", "::"), ("::1", "::1"), ("1::", "1::"), ("2001:db8::1", "2001:db8::1"), ("2001:DB8::1", "2001:db8::1"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("::ffff:192.0.2.1", "::ffff:c000:201"), ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
        ("1::1.2.3.4", "1::102:304"), ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"), ("0000:0000::0001", "::1"), ("fe80::1", "fe80::1"),
        ("::0.0.0.0", "::"),
    ]
    static let invalidV6 = [
        "1.2.3.4::", "+1::", "::+1", "1::-1", "::-0", ":::", "1:::2", "1::2::3", ":1::", "1::2:", ":1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7", "12345::", "g::", "::1.2.3", "::1.2.3.4:5", "1.2.3.4::5", "1.2.3.4:1::", "::01.2.3.4", "fe80::1%eth0",
        "1:2:3:4:5:6:7:1.2.3.4", "::ffff:1.2.3.4.5", " ::1", "::1 ", "[::1]", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "0x1::", "1::\u{661}",
        String(repeating: "1:", count: 30) + ":",
    ]

    @Test func addressesParseStrictly() {
        for text in Self.validV4 { #expect(IPAddress.parse(text)?.text == text, "\(text)") }
        for text in Self.invalidV4 { #expect(IPAddress.parse(text) == nil, "\(text.debugDescription)") }
        for (text, canonical) in Self.validV6 { #expect(IPAddress.parse(text)?.text == canonical, "\(text)") }
        for text in Self.invalidV6 { #expect(IPAddress.parse(text) == nil, "\(text.debugDescription)") }
    }

    @Test func hostsRefuseMalformedAddresses() {
        let world = World()
        for address in ["1.2.3.4::", "+1::", "01.2.3.4"] {
            #expect(code { try world.add(.host, ["name": "h", "ip-address": .string(address)]) } == "generic_err_invalid_parameter", "\(address)")
            #expect(code { try world.add(.host, ["name": "h", "ipv6-address": .string(address)]) } == "generic_err_invalid_parameter", "\(address)")
        }
    }

    // MARK: text in bytes as well as characters (item 19)

    @Test func namesAndCommentsAreBoundedInBytes() throws {
        let world = World()
        let heavy = "a" + String(repeating: "\u{301}", count: 60_000)  // one character, 120 KB
        #expect(heavy.count == 1)
        #expect(code { try world.add(.host, ["name": .string(heavy), "ip-address": "192.0.2.1"]) } == "generic_err_invalid_parameter")
        #expect(code { try world.add(.host, ["name": "h", "ip-address": "192.0.2.1", "comments": .string(heavy)]) } == "generic_err_invalid_parameter")
        #expect(code { try world.add(.host, ["name": "h", "ip-address": "192.0.2.1", "tags": [.string(heavy)]]) } == "generic_err_invalid_parameter")
        #expect(
            code { try world.add(.administrator, ["name": "x", "password": .string(heavy + String(repeating: "\u{301}", count: 60_000))]) }
                == "generic_err_invalid_parameter")
        // Up to 4 bytes a character is within bounds: 128 characters of any script.
        try world.add(.host, ["name": .string(String(repeating: "😀", count: Limits.nameLengthMax)), "ip-address": "192.0.2.2"])
        try world.add(.host, ["name": "h3", "ip-address": "192.0.2.3", "comments": .string(String(repeating: "é", count: Limits.commentsLengthMax))])
        #expect(
            code { try world.add(.host, ["name": .string(String(repeating: "é", count: Limits.nameLengthMax + 1)), "ip-address": "192.0.2.4"]) }
                == "generic_err_invalid_parameter")
        #expect(Limits.truncated(heavy, characters: Limits.nameLengthMax).utf8.count <= Limits.nameBytesMax)
        #expect(Limits.truncated("abc", characters: 2) == "ab")
    }

    // MARK: stored values read back (item 11)

    @Test func storedRevisionsWithNegativeNumbersDoNotDecode() throws {
        let good = Revision(
            after: nil, epoch: .init(term: 1, server: "s"), publishedAtMilliseconds: 1, author: "a", sessionUID: "",
            sessionName: "", changes: [])
        guard case .object(var fields) = good.json else {
            Issue.record("a revision is an object")
            return
        }
        fields["number"] = -1
        #expect(Revision(json: .object(fields)) == nil)
        fields["number"] = 1
        fields["epoch"] = ["term": -5, "server": "s"]
        #expect(Revision(json: .object(fields)) == nil)
        let huge = Revision(
            after: (UInt64(Int64.max), "h"), epoch: .init(term: .max, server: "s"), publishedAtMilliseconds: 1, author: "a",
            sessionUID: "", sessionName: "", changes: [])
        #expect(huge.hashedBody["number"] == .int(.max) && huge.hashedBody["epoch"]?["term"] == .int(.max))
        #expect(RevisionEpoch(term: .max, server: "s").json["term"] == .int(.max))
    }

    @Test func extremeTimesAndMaskLengthsRenderWithoutTrapping() {
        #expect(Renderer.iso8601(milliseconds: .min).hasPrefix("1-01-01T00:00:00"))
        #expect(Renderer.iso8601(milliseconds: .max) == "9999-12-31T23:59:59Z")
        #expect(Renderer.iso8601(milliseconds: 0) == "1970-01-01T00:00:00Z")
        #expect(IPAddress.subnetMask(lengthV4: 99) == "255.255.255.255" && IPAddress.subnetMask(lengthV4: -5) == "0.0.0.0")
        let world = World()
        let network = try? world.add(.network, ["name": "n", "subnet": "10.0.0.0", "mask-length": 8])
        world.reader.objects[network?.uid ?? ""]?.fields["mask-length4"] = .int(99)
        let reader = world.reader
        _ = Renderer(reader: reader).render(reader.objects[network?.uid ?? ""]!, level: .full)
        #expect(code { try world.set(.network, ["name": "n", "comments": "x"]) } == "generic_err_invalid_parameter")
        world.reader.objects[network?.uid ?? ""]?.fields["mask-length4"] = .int(-1)
        #expect(code { try world.set(.network, ["name": "n", "comments": "x"]) } == "generic_err_invalid_parameter")
    }

    // MARK: a rule's layer (item 20)

    @Test func setAccessRuleWithAnotherLayerMovesTheRule() throws {
        let world = World()
        let other = try world.add(.accessLayer, ["name": "Other"])
        let rule = try world.add(.accessRule, ["layer": .string(world.layer.name), "position": 1, "name": "r"])
        let moved = try world.set(.accessRule, ["uid": .string(rule.uid), "layer": "Other"])
        #expect(moved.fields[ManagedObject.layerField] == .string(other.uid))
        #expect(world.ruleNames() == ["Cleanup rule"])
        #expect(world.ruleNames(other) == ["Cleanup rule", "r"])
        try world.set(.accessRule, ["uid": .string(rule.uid), "layer": .string(world.layer.uid), "new-position": 1])
        #expect(world.ruleNames() == ["r", "Cleanup rule"])
        #expect(world.ruleNames(other) == ["Cleanup rule"])
        // Without `layer`, new-position moves it within the layer it is in.
        try world.set(.accessRule, ["uid": .string(rule.uid), "new-position": "bottom"])
        #expect(world.ruleNames() == ["Cleanup rule", "r"])
        // A layer that does not exist changes nothing.
        #expect(code { try world.set(.accessRule, ["uid": .string(rule.uid), "layer": "Nowhere"]) } == "generic_err_object_not_found")
        try world.delete(.accessRule, ["uid": .string(rule.uid)])
        #expect(world.ruleNames() == ["Cleanup rule"] && world.ruleNames(other) == ["Cleanup rule"])
    }
}
