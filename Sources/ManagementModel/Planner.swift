import Foundation

/// One object change inside a session or a revision.
public enum ObjectChange: Sendable, Equatable {
    case upsert(ManagedObject)
    case delete(uid: String, type: ObjectType, name: String)

    public var uid: String {
        switch self {
        case .upsert(let object): return object.uid
        case .delete(let uid, _, _): return uid
        }
    }

    public var type: ObjectType {
        switch self {
        case .upsert(let object): return object.type
        case .delete(_, let type, _): return type
        }
    }
}

/// Who is acting, and when; uids come from the caller so the model draws no randomness.
public struct ChangeContext {
    public let administrator: String
    public let nowMilliseconds: Int64
    public let newUID: () -> String
    public init(administrator: String, nowMilliseconds: Int64, newUID: @escaping () -> String) {
        self.administrator = administrator
        self.nowMilliseconds = nowMilliseconds
        self.newUID = newUID
    }
}

/// Plans add/set/delete against a view: validates, and returns every object change the command
/// makes (an added rule also changes its layer; a host added with `groups` changes those groups).
/// The returned `primary` is the object the command is about.
public struct Planner {
    public let reader: any ObjectReader
    public let normalizer: Normalizer

    public init(reader: any ObjectReader, passwords: PasswordFunctions) {
        self.reader = reader
        self.normalizer = Normalizer(reader: reader, passwords: passwords)
    }

    public struct Plan: Sendable {
        public var primary: ManagedObject?
        public var changes: [ObjectChange]
        public init(primary: ManagedObject?, changes: [ObjectChange]) {
            self.primary = primary
            self.changes = changes
        }
    }

    // MARK: find

    /// The object a command names by `uid`, `name`, or for rules `rule-number`, within `layer` for
    /// rules and sections.
    public func find(_ type: ObjectType, _ params: [String: JSONValue]) throws -> ManagedObject {
        if let uid = params["uid"]?.stringValue {
            guard let object = reader.lookup(uid: uid), object.type == type else { throw ManagementError.notFound(uid) }
            return object
        }
        if type == .accessRule || type == .accessSection {
            let layer = try findLayer(params)
            let rulebase = Rulebase(layer: layer, reader: reader)
            if type == .accessRule, let given = params["rule-number"] {
                let number = try given.integer("rule-number", in: 1...Int64(Int32.max))
                guard let uid = rulebase.rule(number: Int(number)), let rule = reader.object(uid: uid) else {
                    throw ManagementError.notFound("rule number \(number)")
                }
                return rule
            }
            guard let name = params["name"]?.scalarText else { throw ManagementError.missing(["uid or name"]) }
            let matches = rulebase.uids.compactMap { reader.object(uid: $0) }.filter { $0.type == type && $0.name == name }
            guard matches.count <= 1 else { throw ManagementError.notUnique("name", name) }
            guard let found = matches.first else { throw ManagementError.notFound(name) }
            return found
        }
        guard let name = params["name"]?.scalarText else { throw ManagementError.missing(["uid or name"]) }
        if type == .package, let match = reader.objects(named: name).first(where: { $0.type == .package }) { return match }
        if type == .package, let match = packagesMatching(name) { return match }
        guard let found = reader.objects(named: name).first(where: { $0.type == type }) else { throw ManagementError.notFound(name) }
        return found
    }

    /// Check Point's examples write "standard" for the "Standard" package: match case-insensitively.
    func packagesMatching(_ name: String) -> ManagedObject? {
        let variants = [name.capitalized, name.lowercased(), name.uppercased()]
        return variants.lazy.compactMap { self.reader.objects(named: $0).first { $0.type == .package } }.first
    }

    public func findLayer(_ params: [String: JSONValue]) throws -> ManagedObject {
        guard let layer = params["layer"] else { throw ManagementError.missing(["layer"]) }
        let uid = try normalizer.resolve("layer", layer, allowed: [.accessLayer])
        guard let found = reader.object(uid: uid) else { throw ManagementError.notFound(uid) }
        return found
    }

    // MARK: add

    public func add(_ type: ObjectType, _ params: [String: JSONValue], context: ChangeContext) throws -> Plan {
        guard ObjectType.creatable.contains(type) else { throw ManagementError.invalid("type", "\(type.rawValue) cannot be added") }
        let name = try validName(params["name"], required: type.hasUniqueName)
        if type.hasUniqueName { try requireUniqueName(name, excluding: nil) }
        if type == .administrator, params["password"] == nil, params["password-hash"] == nil {
            throw ManagementError.missing(["password"])
        }
        var fields = defaults(type)
        var given = try normalizer.normalize(type, params, existing: nil)
        let groups = given.removeValue(forKey: "groups")
        fields.merge(given) { _, new in new }
        let meta = MetaInfo(
            creator: context.administrator, creationTimeMilliseconds: context.nowMilliseconds,
            lastModifier: context.administrator, lastModifyTimeMilliseconds: context.nowMilliseconds)
        var object = ManagedObject(uid: context.newUID(), type: type, name: name, fields: fields, meta: meta)
        var changes: [ObjectChange] = []
        if type == .accessRule || type == .accessSection {
            guard let position = params["position"] else { throw ManagementError.missing(["position"]) }
            let layer = try findLayer(params)
            object.fields[ManagedObject.layerField] = .string(layer.uid)
            changes.append(.upsert(try placed(object, in: layer, at: position, field: "position", context: context)))
        }
        if type == .accessLayer {
            var rulebase = Rulebase(entries: [])
            if try params.flag("add-default-rule", default: true) {
                let cleanup = cleanupRule(layerUID: object.uid, context: context)
                rulebase.insert(.init(uid: cleanup.uid, isSection: false), at: 0)
                changes.append(.upsert(cleanup))
            }
            object.fields[ManagedObject.rulebaseField] = rulebase.fieldValue
        }
        if type == .package, fields["access"]?.boolValue == true, object.uids("access-layers").isEmpty {
            let layerPlan = try add(.accessLayer, ["name": .string("\(name) Network")], context: context)
            object.fields["access-layers"] = .array([.string(layerPlan.primary!.uid)])
            changes += layerPlan.changes
        }
        if type == .simpleCluster {
            changes += try clusterMemberChanges(&object, specs: object.fields["members"]?.arrayValue ?? [], previousMembers: [], context: context)
            object.fields[ClusterModel.heartbeatKeyField] = .string(ClusterModel.newHeartbeatKey())
        }
        try validate(object, pending: changes)
        changes.insert(.upsert(object), at: 0)
        if let groups { changes += try membershipChanges(of: object.uid, groups: groups, planned: changes, context: context) }
        return Plan(primary: object, changes: changes)
    }

    func defaults(_ type: ObjectType) -> [String: JSONValue] {
        var fields: [String: JSONValue] = [:]
        for spec in Schema.of(type).fields { if let value = spec.defaultValue { fields[spec.name] = value } }
        return fields
    }

    public func cleanupRule(layerUID: String, context: ChangeContext) -> ManagedObject {
        var fields = defaults(.accessRule)
        fields[ManagedObject.layerField] = .string(layerUID)
        fields["track"] = .object(["type": .string(Predefined.noneTrackUID)])
        return ManagedObject(
            uid: context.newUID(), type: .accessRule, name: "Cleanup rule", fields: fields,
            meta: MetaInfo(
                creator: context.administrator, creationTimeMilliseconds: context.nowMilliseconds,
                lastModifier: context.administrator, lastModifyTimeMilliseconds: context.nowMilliseconds))
    }

    /// The layer with `object` inserted at `position` (the object itself must already carry its layer).
    func placed(_ object: ManagedObject, in layer: ManagedObject, at position: JSONValue, field: String, context: ChangeContext) throws -> ManagedObject {
        var rulebase = Rulebase(layer: layer, reader: reader)
        rulebase.remove(object.uid)
        let index = try rulebase.insertionIndex(for: position, field: field) { key in
            if rulebase.uids.contains(key) { return key }
            let matches = rulebase.uids.filter { reader.object(uid: $0)?.name == key }
            guard matches.count <= 1 else { throw ManagementError.notUnique("name", key) }
            guard let match = matches.first else { throw ManagementError.notFound(key) }
            return match
        }
        rulebase.insert(.init(uid: object.uid, isSection: object.type == .accessSection), at: index)
        var changedLayer = layer
        changedLayer.fields[ManagedObject.rulebaseField] = rulebase.fieldValue
        stamp(&changedLayer, context)
        return changedLayer
    }

    // MARK: set

    public func set(_ type: ObjectType, _ params: [String: JSONValue], context: ChangeContext) throws -> Plan {
        let existing = try find(type, params)
        guard !type.isPredefined else {
            throw ManagementError.noPermissions("[\(existing.name)] is predefined and cannot be changed")
        }
        var object = existing
        if let newName = params["new-name"] {
            let name = try validName(newName, required: true)
            if type.hasUniqueName, name != existing.name { try requireUniqueName(name, excluding: existing.uid) }
            object.name = name
        }
        var given = try normalizer.normalize(type, params, existing: existing)
        let groups = given.removeValue(forKey: "groups")
        object.fields.merge(given) { _, new in new }
        stamp(&object, context)
        var changes: [ObjectChange] = []
        if type == .accessRule || type == .accessSection {
            changes += try placement(of: &object, params, context: context)
        }
        if type == .simpleCluster, let specs = given["members"]?.arrayValue {
            changes += try clusterMemberChanges(&object, specs: specs, previousMembers: existing.uids("members"), context: context)
        }
        // A cluster made before heartbeat keys existed gets one at its next change.
        if type == .simpleCluster, object.fields[ClusterModel.heartbeatKeyField] == nil {
            object.fields[ClusterModel.heartbeatKeyField] = .string(ClusterModel.newHeartbeatKey())
        }
        try validate(object, pending: changes)
        changes.insert(.upsert(object), at: 0)
        if let groups { changes += try membershipChanges(of: object.uid, groups: groups, planned: changes, context: context) }
        return Plan(primary: object, changes: changes)
    }

    /// Where `set` puts a rule or section: `new-position` in its layer; and when `layer` names another
    /// layer than the one it is in, it moves there (out of the old layer's rulebase, into the new one at
    /// `new-position`, or at the bottom), so it is never listed in two layers.
    func placement(of object: inout ManagedObject, _ params: [String: JSONValue], context: ChangeContext) throws -> [ObjectChange] {
        let currentUID = object.fields[ManagedObject.layerField]?.stringValue
        let current = currentUID.flatMap { reader.object(uid: $0) }
        let target = params["layer"] == nil ? current : try findLayer(params)
        guard let target else {
            if params["new-position"] != nil { throw ManagementError.missing(["layer"]) }
            return []
        }
        guard target.uid != currentUID else {
            guard let position = params["new-position"] else { return [] }
            return [.upsert(try placed(object, in: target, at: position, field: "new-position", context: context))]
        }
        var changes: [ObjectChange] = []
        if var old = current {
            var rulebase = Rulebase(layer: old, reader: reader)
            rulebase.remove(object.uid)
            old.fields[ManagedObject.rulebaseField] = rulebase.fieldValue
            stamp(&old, context)
            changes.append(.upsert(old))
        }
        object.fields[ManagedObject.layerField] = .string(target.uid)
        changes.append(.upsert(try placed(object, in: target, at: params["new-position"] ?? "bottom", field: "new-position", context: context)))
        return changes
    }

    /// Group membership is stored on the groups; `groups` on a member edits those groups. Each group
    /// is read as the plan leaves it (`planned`: the command's changes so far), so a group that names
    /// itself keeps its other edits; a group joined is checked for cycles as `members` is.
    func membershipChanges(of uid: String, groups: JSONValue, planned: [ObjectChange], context: ChangeContext) throws -> [ObjectChange] {
        let wanted = groups.arrayValue?.compactMap(\.stringValue) ?? []
        let current = reader.referrers(of: uid).filter { $0.type == .group || $0.type == .serviceGroup }.map(\.uid)
        var changes: [ObjectChange] = []
        func lookup(_ uid: String) -> ManagedObject? {
            guard let change = (planned + changes).last(where: { $0.uid == uid }) else { return reader.object(uid: uid) }
            if case .upsert(let object) = change { return object }
            return nil
        }
        for groupUID in (Set(wanted).symmetricDifference(current)).sorted() {
            guard var group = lookup(groupUID) else { continue }
            var members = group.uids("members")
            if wanted.contains(groupUID) { members.append(uid) } else { members.removeAll { $0 == uid } }
            group.fields["members"] = .array(members.map(JSONValue.string))
            stamp(&group, context)
            if wanted.contains(groupUID) { try requireNoCycle(group, field: "groups", lookup: lookup) }
            changes.append(.upsert(group))
        }
        return changes
    }

    // MARK: delete

    public func delete(_ type: ObjectType, _ params: [String: JSONValue], context: ChangeContext) throws -> Plan {
        let object = try find(type, params)
        var cascade: [ManagedObject] = [object]
        if type == .accessLayer {
            cascade += object.uids(ManagedObject.rulebaseField).compactMap { reader.object(uid: $0) }
        }
        if type == .simpleCluster {
            cascade += object.uids("members").compactMap { reader.object(uid: $0) }.filter { $0.type == .clusterMember }
        }
        let deleted = Set(cascade.map(\.uid))
        let users = cascade.flatMap { reader.referrers(of: $0.uid) }.filter { !deleted.contains($0.uid) }
        if let blocking = uniqueByUID(users).nilIfEmpty {
            let list = blocking.map { "\($0.name) (\($0.type.rawValue))" }.joined(separator: ", ")
            throw ManagementError(
                code: "generic_err_object_deletion",
                message: "Cannot delete [\(object.name)]: it is used by \(list)", httpStatus: 400,
                details: ["used-by": .array(blocking.map { .object(["uid": .string($0.uid), "name": .string($0.name), "type": .string($0.type.rawValue)]) })])
        }
        var changes = cascade.map { ObjectChange.delete(uid: $0.uid, type: $0.type, name: $0.name) }
        if type == .accessRule || type == .accessSection, let layerUID = object.fields[ManagedObject.layerField]?.stringValue,
            var layer = reader.object(uid: layerUID)
        {
            var rulebase = Rulebase(layer: layer, reader: reader)
            rulebase.remove(object.uid)
            layer.fields[ManagedObject.rulebaseField] = rulebase.fieldValue
            stamp(&layer, context)
            changes.append(.upsert(layer))
        }
        return Plan(primary: object, changes: changes)
    }

    func uniqueByUID(_ objects: [ManagedObject]) -> [ManagedObject] {
        var seen = Set<String>()
        return objects.filter { seen.insert($0.uid).inserted }.sorted { $0.name < $1.name }
    }

    // MARK: validation

    func validName(_ value: JSONValue?, required: Bool) throws -> String {
        guard let value else {
            if required { throw ManagementError.missing(["name"]) }
            return ""
        }
        guard let name = value.scalarText else { throw ManagementError.invalid("name", "expected a string") }
        guard Limits.fits(name, characters: Limits.nameLengthMax) else {
            throw ManagementError.invalid("name", "longer than \(Limits.nameLengthMax) characters or \(Limits.nameBytesMax) bytes")
        }
        guard !name.unicodeScalars.contains(where: { $0.value < 0x20 }) else { throw ManagementError.invalid("name", "contains a control character") }
        if required, name.trimmingCharacters(in: .whitespaces).isEmpty { throw ManagementError.invalid("name", "must not be empty") }
        return name
    }

    func requireUniqueName(_ name: String, excluding uid: String?) throws {
        let clash = reader.objects(named: name).contains { $0.type.hasUniqueName && $0.uid != uid }
        if clash || Predefined.all.contains(where: { $0.name == name }) { throw ManagementError.notUnique("name", name) }
    }

    /// Whole-object rules that no single field can check.
    public func validate(_ object: ManagedObject, pending: [ObjectChange] = []) throws {
        let f = object.fields
        func has(_ key: String) -> Bool { !(f[key]?.stringValue ?? "").isEmpty }
        switch object.type {
        case .host:
            guard has("ipv4-address") || has("ipv6-address") else { throw ManagementError.missing(["ip-address (or ipv4-address / ipv6-address)"]) }
        case .network:
            try validateNetwork(f)
        case .addressRange:
            try validateRange(f, family: 4, has: has)
            try validateRange(f, family: 6, has: has)
            guard has("ipv4-address-first") || has("ipv6-address-first") else {
                throw ManagementError.missing(["ip-address-first", "ip-address-last"])
            }
        case .group, .serviceGroup:
            try requireNoCycle(object, field: "members") { reader.object(uid: $0) }
        case .serviceTCP, .serviceUDP:
            guard has("port") else { throw ManagementError.missing(["port"]) }
        case .smartTask:
            _ = try SmartTaskDefinition(object)
        case .repositoryScript:
            _ = try RepositoryScript(object)
        default:
            break
        }
    }

    func validateNetwork(_ f: [String: JSONValue]) throws {
        var complete = false
        for family in [4, 6] {
            let subnet = f["subnet\(family)"]?.stringValue ?? ""
            let length = f["mask-length\(family)"]?.intValue
            if subnet.isEmpty && length == nil { continue }
            guard !subnet.isEmpty, let length else {
                throw ManagementError.missing([subnet.isEmpty ? "subnet\(family)" : "mask-length\(family) (or subnet-mask)"])
            }
            // Values are checked fields, or an object stored earlier (by an older version, a peer): checked again.
            guard let address = IPAddress.parse(subnet), (0...Int64(address.bitCount)).contains(length) else {
                throw ManagementError.invalid("subnet\(family)", "\(subnet.prefix(45))/\(length) is not a network of this address family")
            }
            let hostBits = address.bitCount - Int(length)
            let wide = address.wide
            let lowBits = min(hostBits, 64)
            let highBits = max(0, hostBits - 64)
            let lowMask: UInt64 = lowBits == 64 ? ~0 : (1 << UInt64(lowBits)) - 1
            let highMask: UInt64 = highBits == 64 ? ~0 : (1 << UInt64(highBits)) - 1
            guard wide.low & lowMask == 0, wide.high & highMask == 0 else {
                throw ManagementError.invalid("subnet\(family)", "\(subnet) has host bits set for mask length \(length); use the network address")
            }
            complete = true
        }
        guard complete else { throw ManagementError.missing(["subnet", "mask-length (or subnet-mask)"]) }
    }

    func validateRange(_ f: [String: JSONValue], family: Int, has: (String) -> Bool) throws {
        let first = "ipv\(family)-address-first"
        let last = "ipv\(family)-address-last"
        guard has(first) || has(last) else { return }
        guard has(first), has(last) else { throw ManagementError.missing([has(first) ? last : first]) }
        guard let low = f[first]?.stringValue.flatMap(IPAddress.parse), low.family == family else {
            throw ManagementError.invalid(first, "not an IPv\(family) address")
        }
        guard let high = f[last]?.stringValue.flatMap(IPAddress.parse), high.family == family else {
            throw ManagementError.invalid(last, "not an IPv\(family) address")
        }
        guard !(high < low) else { throw ManagementError.invalid(last, "the last address is below the first") }
    }

    /// A group must not contain itself, through any depth of nesting, nor nest too deep. `field` is the
    /// parameter that made the change (`members`, or a member's `groups`); `lookup` reads groups as the
    /// command leaves them.
    func requireNoCycle(_ group: ManagedObject, field: String, lookup: (String) -> ManagedObject?) throws {
        var stack = group.uids("members").map { ($0, 1) }
        var visited = Set<String>()
        while let (uid, depth) = stack.popLast() {
            if uid == group.uid {
                throw ManagementError.invalid(field, "group [\(group.name)] would contain itself (a cycle)")
            }
            guard depth <= Limits.groupNestingDepthMax else {
                throw ManagementError.invalid(field, "groups nested deeper than \(Limits.groupNestingDepthMax)")
            }
            guard visited.insert(uid).inserted, let member = lookup(uid),
                member.type == .group || member.type == .serviceGroup
            else { continue }
            stack += member.uids("members").map { ($0, depth + 1) }
        }
    }

    func stamp(_ object: inout ManagedObject, _ context: ChangeContext) {
        object.meta.lastModifier = context.administrator
        object.meta.lastModifyTimeMilliseconds = context.nowMilliseconds
    }
}

extension Array {
    var nilIfEmpty: [Element]? { isEmpty ? nil : self }
}
