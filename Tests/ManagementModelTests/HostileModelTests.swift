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
                try PolicyCompiler.compile(package: "Standard", target: target, reader: world.reader, revision: 1, revisionHash: "h",
                                           epochTerm: 1, epochServer: "s", nowMilliseconds: 0)
            }
        }
    }

    // MARK: group cycles through `groups` (item 10)

    static func isCycle(_ body: () throws -> Any, field: String = "groups") -> Bool {
        do { _ = try body(); return false } catch let error as ManagementError {
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
        for (field, command) in [("groups", { try world.set(.group, ["name": .string(previous.name), "groups": ["top"]]) }),
                                 ("members", { try world.set(.group, ["name": "top", "members": [.string(previous.uid)]]) })] {
            do {
                _ = try command()
                Issue.record("nesting deeper than the limit through \(field) was accepted")
            } catch let error as ManagementError {
                #expect(error.message.contains("[\(field)]") && error.message.contains("deeper"))
            }
        }
    }
}
