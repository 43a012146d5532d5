import Foundation
import Testing

@testable import ManagementModel

@Suite("Objects: validation names the field and the reason")
struct ObjectRulesTests {
    @Test func hostTakesEitherAddressFamilyThroughIPAddress() throws {
        let world = World()
        let v4 = try world.add(.host, ["name": "h4", "ip-address": "192.0.2.10"])
        #expect(v4["ipv4-address"] == "192.0.2.10")
        let v6 = try world.add(.host, ["name": "h6", "ip-address": "2001:DB8:0:0:0:0:0:1"])
        #expect(v6["ipv6-address"] == "2001:db8::1")
    }

    @Test func badAddressIsRefusedNamingTheField() {
        let world = World()
        do {
            try world.add(.host, ["name": "bad", "ip-address": "300.1.1.1"])
            Issue.record("accepted a bad address")
        } catch let error as ManagementError {
            #expect(error.code == "generic_err_invalid_parameter")
            #expect(error.message.contains("ip-address"))
        } catch { Issue.record("\(error)") }
        #expect(world.reader.objects(named: "bad").isEmpty)
    }

    @Test func hostWithoutAddressIsRefused() {
        #expect(code { try World().add(.host, ["name": "h"]) } == "generic_err_missing_required_parameters")
    }

    @Test func namesAreUnique() throws {
        let world = World()
        try world.add(.host, ["name": "h", "ip-address": "192.0.2.1"])
        #expect(code { try world.add(.network, ["name": "h", "subnet": "10.0.0.0", "mask-length": 8]) } == "generic_err_object_field_not_unique")
    }

    @Test func unknownParameterIsRefused() {
        #expect(code { try World().add(.host, ["name": "h", "ip-address": "192.0.2.1", "colour": "red"]) } == "generic_err_invalid_parameter_name")
    }

    @Test func networksAcceptMaskLengthOrSubnetMaskAndIPv6() throws {
        let world = World()
        let a = try world.add(.network, ["name": "a", "subnet": "10.1.0.0", "subnet-mask": "255.255.0.0"])
        #expect(a["mask-length4"] == .int(16))
        let b = try world.add(.network, ["name": "b", "subnet": "2001:db8::", "mask-length": "32"])
        #expect(b["subnet6"] == "2001:db8::" && b["mask-length6"] == .int(32))
        #expect(code { try world.add(.network, ["name": "c", "subnet": "10.1.0.1", "mask-length": 16]) } == "generic_err_invalid_parameter")
        #expect(code { try world.add(.network, ["name": "d", "subnet": "10.0.0.0", "subnet-mask": "255.0.255.0"]) } == "generic_err_invalid_parameter")
    }

    @Test func addressRangeMustBeOrdered() throws {
        let world = World()
        try world.add(.addressRange, ["name": "r", "ip-address-first": "10.0.0.1", "ip-address-last": "10.0.0.9"])
        #expect(
            code { try world.add(.addressRange, ["name": "r2", "ip-address-first": "10.0.0.9", "ip-address-last": "10.0.0.1"]) }
                == "generic_err_invalid_parameter")
    }

    @Test func servicePortsFollowCheckPointSyntax() throws {
        let world = World()
        for (index, port) in ["80", "1000-2000", ">1024", "<1024"].enumerated() {
            try world.add(.serviceTCP, ["name": .string("s\(index)"), "port": .string(port)])
        }
        for port in ["0", "70000", "20-10", "abc", ">65535"] {
            #expect(code { try world.add(.serviceUDP, ["name": "u", "port": .string(port)]) } == "generic_err_invalid_parameter", "port \(port)")
        }
    }

    @Test func nestedGroupsWorkAndCyclesAreRefused() throws {
        let world = World()
        try world.add(.host, ["name": "h", "ip-address": "192.0.2.1"])
        try world.add(.group, ["name": "inner", "members": ["h"]])
        try world.add(.group, ["name": "outer", "members": ["inner"]])
        #expect(code { try world.set(.group, ["name": "inner", "members": ["outer"]]) } == "generic_err_invalid_parameter")
        #expect(code { try world.set(.group, ["name": "inner", "members": ["inner"]]) } == "generic_err_invalid_parameter")
    }

    @Test func groupMembersMustBeNetworkObjects() throws {
        let world = World()
        try world.add(.serviceTCP, ["name": "web", "port": "80"])
        #expect(code { try world.add(.group, ["name": "g", "members": ["web"]]) } == "generic_err_object_type_wrong")
        #expect(code { try world.add(.group, ["name": "g", "members": ["ghost"]]) } == "generic_err_object_not_found")
    }

    @Test func groupsOnAMemberEditTheGroups() throws {
        let world = World()
        let g = try world.add(.group, ["name": "g"])
        let h = try world.add(.host, ["name": "h", "ip-address": "192.0.2.1", "groups": ["g"]])
        #expect(world.reader.object(uid: g.uid)!.uids("members") == [h.uid])
        try world.set(.host, ["name": "h", "groups": []])
        #expect(world.reader.object(uid: g.uid)!.uids("members").isEmpty)
    }

    @Test func listFieldsAcceptAddAndRemove() throws {
        let world = World()
        try world.add(.host, ["name": "a", "ip-address": "192.0.2.1"])
        try world.add(.host, ["name": "b", "ip-address": "192.0.2.2"])
        try world.add(.group, ["name": "g", "members": ["a"]])
        var g = try world.set(.group, ["name": "g", "members": ["add": ["b"]]])
        #expect(g.uids("members").count == 2)
        g = try world.set(.group, ["name": "g", "members": ["remove": ["a"]]])
        #expect(g.uids("members").map { world.reader.object(uid: $0)!.name } == ["b"])
    }

    @Test func referencedObjectCannotBeDeletedAndErrorListsUsers() throws {
        let world = World()
        try world.add(.host, ["name": "h", "ip-address": "192.0.2.1"])
        try world.add(.group, ["name": "g", "members": ["h"]])
        do {
            try world.delete(.host, ["name": "h"])
            Issue.record("deleted a used object")
        } catch let error as ManagementError {
            #expect(error.code == "generic_err_object_deletion")
            #expect(error.message.contains("g (group)"))
        }
        try world.delete(.group, ["name": "g"])
        try world.delete(.host, ["name": "h"])
        #expect(world.reader.objects(named: "h").isEmpty)
    }

    @Test func commonFieldsAndMetaInfo() throws {
        let world = World()
        let h = try world.add(.host, ["name": "h", "ip-address": "192.0.2.1", "color": "Dark Green", "comments": "web", "tags": ["prod", "web"]])
        #expect(h["color"] == "dark green")
        #expect(h["tags"] == ["prod", "web"])
        #expect(h.meta.creator == "alice")
        #expect(code { try world.add(.host, ["name": "h2", "ip-address": "192.0.2.1", "color": "mauve"]) } == "generic_err_invalid_parameter")
        let long = String(repeating: "x", count: Limits.nameLengthMax + 1)
        #expect(code { try world.add(.host, ["name": .string(long), "ip-address": "192.0.2.1"]) } == "generic_err_invalid_parameter")
    }

    @Test func administratorsKeepOnlyAPasswordHash() throws {
        let world = World()
        let admin = try world.add(.administrator, ["name": "bob", "password": "s3cret", "permissions-profile": "Read Only All"])
        #expect(admin["permissions-profile"] == "read-only")
        #expect(admin["password-hash"] == "plain:s3cret")
        #expect(admin["password"] == nil)
        let rendered = Renderer(reader: world.reader).render(admin, level: .full)
        #expect(!rendered.canonicalString.contains("s3cret"))
        #expect(code { try world.add(.administrator, ["name": "eve"]) } == "generic_err_missing_required_parameters")
    }
}
