import Foundation

/// Password hashing is injected: the model stays pure, TrustCore supplies PBKDF2.
public struct PasswordFunctions: Sendable {
    public let hash: @Sendable (String) -> String
    public let verify: @Sendable (String, String) -> Bool
    /// Turns a one-time activation key for the named node into the record kept in the database
    /// (a verifier derived from it, and an expiry); throws a `ManagementError` for an unusable key.
    public let activationKeyRecord: @Sendable (_ key: String, _ nodeName: String) throws -> JSONValue

    public init(
        hash: @escaping @Sendable (String) -> String, verify: @escaping @Sendable (String, String) -> Bool,
        activationKeyRecord: @escaping @Sendable (String, String) throws -> JSONValue = { _, _ in
            throw ManagementError.invalid("one-time-password", "this server cannot accept activation keys")
        }
    ) {
        self.hash = hash
        self.verify = verify
        self.activationKeyRecord = activationKeyRecord
    }
}

/// Turns request parameters into normalized field values: aliases resolved, references turned into
/// uids, every value checked against its field's kind. Errors name the field and the reason.
public struct Normalizer {
    public let reader: any ObjectReader
    public let passwords: PasswordFunctions

    public init(reader: any ObjectReader, passwords: PasswordFunctions) {
        self.reader = reader
        self.passwords = passwords
    }

    /// Normalized values of the fields present in `params`. `existing` is the object being changed
    /// (for `set`), so list edits ({"add": […]}) and family-dependent aliases apply to it.
    public func normalize(_ type: ObjectType, _ params: [String: JSONValue], existing: ManagedObject?) throws -> [String: JSONValue] {
        let schema = Schema.of(type)
        // Internal fields (activation-key records, SIC state…) come only from the server itself.
        for key in params.keys.sorted() where ManagedObject.internalFields.contains(key) && key != "password-hash" && !schema.ignoredKeys.contains(key) {
            throw ManagementError.unknownParameter(key)
        }
        let resolved = try resolveAliases(type, params, existing: existing)
        var out: [String: JSONValue] = [:]
        for key in resolved.keys.sorted() {
            if schema.ignoredKeys.contains(key) { continue }
            if ManagedObject.internalFields.contains(key), params[key] == nil {
                out[key] = resolved[key]
                continue
            }
            guard let spec = schema.field(key) else { throw ManagementError.unknownParameter(key) }
            out[key] = try convert(spec, resolved[key]!, existing: existing?.fields[key])
        }
        return out
    }

    // MARK: aliases

    func resolveAliases(_ type: ObjectType, _ params: [String: JSONValue], existing: ManagedObject?) throws -> [String: JSONValue] {
        var p = params
        func moveByFamily(_ alias: String, v4: String, v6: String) throws {
            guard let value = p.removeValue(forKey: alias) else { return }
            guard let text = value.scalarText, let address = IPAddress.parse(text) else {
                throw ManagementError.invalid(alias, "'\(value.scalarText ?? "")' is not an IPv4 or IPv6 address")
            }
            p[address.family == 4 ? v4 : v6] = .string(address.text)
        }
        switch type {
        case .host:
            try moveByFamily("ip-address", v4: "ipv4-address", v6: "ipv6-address")
        case .network:
            try moveByFamily("subnet", v4: "subnet4", v6: "subnet6")
            if let mask = p.removeValue(forKey: "subnet-mask") {
                guard let text = mask.scalarText, let length = IPAddress.maskLength(subnetMask: text) else {
                    throw ManagementError.invalid("subnet-mask", "'\(mask.scalarText ?? "")' is not a contiguous IPv4 mask")
                }
                p["mask-length4"] = .int(Int64(length))
            }
            if let length = p.removeValue(forKey: "mask-length") {
                let isV6 = p["subnet6"] != nil || (p["subnet4"] == nil && existing?.fields["subnet6"] != nil && existing?.fields["subnet4"] == nil)
                p[isV6 ? "mask-length6" : "mask-length4"] = length
            }
        case .addressRange:
            try moveByFamily("ip-address-first", v4: "ipv4-address-first", v6: "ipv6-address-first")
            try moveByFamily("ip-address-last", v4: "ipv4-address-last", v6: "ipv6-address-last")
        case .checkpointHost, .simpleGateway:
            try moveByFamily("ip-address", v4: "ipv4-address", v6: "ipv6-address")
            if let key = p.removeValue(forKey: "one-time-password") {
                guard let text = key.stringValue, Limits.fits(text, characters: 128), text.count >= 8 else {
                    throw ManagementError.invalid("one-time-password", "the activation key must be 8 to 128 characters")
                }
                let nodeName = params["new-name"]?.scalarText ?? params["name"]?.scalarText ?? existing?.name ?? ""
                p[ManagedObject.activationKeyField] = try passwords.activationKeyRecord(text, nodeName)
                p[ManagedObject.sicStateField] = .string("uninitialized")
            }
        case .simpleCluster:
            try moveByFamily("ip-address", v4: "ipv4-address", v6: "ipv6-address")
            if let mode = p["cluster-mode"] { p["cluster-mode"] = try clusterMode(mode) }
            if let interfaces = p["interfaces"] { p["interfaces"] = try clusterInterfaces(interfaces) }
            if let members = p["members"] {
                p["members"] = try clusterMembers(members, clusterInterfaces: p["interfaces"] ?? existing?.fields["interfaces"])
            }
            if let settings = p["cluster-settings"] {
                p["cluster-settings"] = try ClusterSettings.parse(settings, over: ClusterSettings(stored: existing?.fields["cluster-settings"])).json
            }
        case .smartTask:
            try normalizeSmartTask(&p, existing: existing)
        case .repositoryScript:
            try normalizeRepositoryScript(&p)
        case .package:
            if let targets = p["installation-targets"] { p["installation-targets"] = try installationTargets(targets, existing: existing) }
        case .administrator:
            if let password = p.removeValue(forKey: "password") {
                guard let text = password.stringValue, !text.isEmpty, Limits.fits(text, characters: Limits.stringLengthMax) else {
                    throw ManagementError.invalid("password", "the password must be a non-empty string of at most \(Limits.stringLengthMax) characters")
                }
                p["password-hash"] = .string(passwords.hash(text))
            }
            if let profile = p["permissions-profile"]?.stringValue {
                let aliases = ["super user": "super-user", "read write all": "read-write", "read only all": "read-only"]
                p["permissions-profile"] = .string(aliases[profile.lowercased()] ?? profile)
            }
        default:
            break
        }
        return p
    }

    /// A package's `installation-targets`: "all", or gateways and clusters by name or uid (stored as uids).
    func installationTargets(_ value: JSONValue, existing: ManagedObject?) throws -> JSONValue {
        if value.stringValue?.lowercased() == "all" { return .string("all") }
        let current = existing?.fields["installation-targets"].flatMap { $0.arrayValue == nil ? nil : $0 }
        return .array(try resolveList("installation-targets", value, allowed: ObjectType.installable, existing: current).map(JSONValue.string))
    }

    // MARK: values

    func convert(_ spec: FieldSpec, _ value: JSONValue, existing: JSONValue?) throws -> JSONValue {
        let field = spec.name
        switch spec.kind {
        case .text(let maxLength):
            guard let text = value.scalarText else { throw ManagementError.invalid(field, "expected a string") }
            guard Limits.fits(text, characters: maxLength) else {
                throw ManagementError.invalid(field, "longer than \(maxLength) characters or \(maxLength * Limits.utf8BytesPerCharacterMax) bytes")
            }
            return .string(text)
        case .bool:
            guard let b = value.boolValue else { throw ManagementError.invalid(field, "expected true or false") }
            return .bool(b)
        case .integer(let range):
            return .int(try value.integer(field, in: range))
        case .choice(let words):
            guard let text = value.scalarText, let word = words.first(where: { $0.lowercased() == text.lowercased() }) else {
                throw ManagementError.invalid(field, "expected one of: \(words.joined(separator: ", "))")
            }
            return .string(word)
        case .ipv4, .ipv6:
            let family = spec.kind == .ipv4 ? 4 : 6
            guard let text = value.scalarText else { throw ManagementError.invalid(field, "expected an IPv\(family) address") }
            if text.isEmpty { return .string("") }
            guard let address = IPAddress.parse(text), address.family == family else {
                throw ManagementError.invalid(field, "'\(text.prefix(64))' is not a valid IPv\(family) address")
            }
            return .string(address.text)
        case .port:
            guard let text = value.scalarText, PortSpec.isValid(text) else {
                throw ManagementError.invalid(field, "expected a port (1-65535), a range like 1000-2000, or >N / <N")
            }
            return .string(text)
        case .reference(let types):
            return .string(try resolve(field, value, allowed: types))
        case .references(let types):
            return .array(try resolveList(field, value, allowed: types, existing: existing).map(JSONValue.string))
        case .track:
            return try convertTrack(value, existing: existing)
        case .opaque:
            guard value.canonicalBytes.count <= 64 * 1024 else { throw ManagementError.invalid(field, "value larger than 64 KiB") }
            return value
        case .tags:
            let names = try listItems(field, value, existing: existing) { item in
                guard let name = item.scalarText ?? item["name"]?.stringValue, !name.isEmpty, Limits.fits(name, characters: Limits.nameLengthMax) else {
                    throw ManagementError.invalid(field, "a tag is a name of 1 to \(Limits.nameLengthMax) characters")
                }
                return name
            }
            guard names.count <= Limits.tagsMax else { throw ManagementError.invalid(field, "at most \(Limits.tagsMax) tags") }
            return .array(names.map(JSONValue.string))
        }
    }

    func convertTrack(_ value: JSONValue, existing: JSONValue?) throws -> JSONValue {
        var track = existing?.objectValue ?? ["type": .string(Predefined.noneTrackUID)]
        if let name = value.stringValue {
            track["type"] = .string(try resolve("track", .string(name), allowed: [.track]))
            return .object(track)
        }
        guard let given = value.objectValue else { throw ManagementError.invalid("track", "expected an object with a type") }
        for (key, item) in given {
            if key == "type" {
                track["type"] = .string(try resolve("track.type", item, allowed: [.track]))
            } else {
                guard ["per-session", "per-connection", "accounting", "alert", "enable-firewall-session"].contains(key) else {
                    throw ManagementError.unknownParameter("track.\(key)")
                }
                track[key] = item
            }
        }
        return .object(track)
    }

    /// A list value, or `{"add": […], "remove": […]}` applied to the existing list.
    func listItems(_ field: String, _ value: JSONValue, existing: JSONValue?, item: (JSONValue) throws -> String) throws -> [String] {
        var result: [String]
        if let edits = value.objectValue, edits["add"] != nil || edits["remove"] != nil {
            result = existing?.arrayValue?.compactMap(\.stringValue) ?? []
            for added in try listItems(field, edits["add"] ?? .array([]), existing: nil, item: item) where !result.contains(added) {
                result.append(added)
            }
            let removed = try listItems(field, edits["remove"] ?? .array([]), existing: nil, item: item)
            result.removeAll { removed.contains($0) }
            return result
        }
        let items: [JSONValue] = value.arrayValue ?? [value]
        guard items.count <= Limits.listLengthMax else { throw ManagementError.invalid(field, "more than \(Limits.listLengthMax) items") }
        result = []
        for element in items {
            let converted = try item(element)
            if !result.contains(converted) { result.append(converted) }
        }
        return result
    }

    func resolveList(_ field: String, _ value: JSONValue, allowed: [ObjectType], existing: JSONValue?) throws -> [String] {
        let uids = try listItems(field, value, existing: existing) { try resolve(field, $0, allowed: allowed) }
        // "Any" stands alone: a list that names Any and something else means Any.
        if uids.count > 1, uids.contains(Predefined.anyUID) { return [Predefined.anyUID] }
        return uids
    }

    /// A reference by uid or name (or `{"uid"|"name": …}`) to an object of one of `allowed` types.
    public func resolve(_ field: String, _ value: JSONValue, allowed: [ObjectType]) throws -> String {
        guard let key = value.stringValue ?? value["uid"]?.stringValue ?? value["name"]?.stringValue, !key.isEmpty,
            Limits.fits(key, characters: Limits.nameLengthMax)
        else {
            throw ManagementError.invalid(field, "expected an object name or uid")
        }
        if let found = reader.lookup(uid: key) { return try checked(field, found, allowed) }
        if let predefined = Predefined.named(key), allowed.contains(predefined.type) { return predefined.uid }
        let candidates = reader.objects(named: key).filter { $0.type.hasUniqueName }
        let fitting = candidates.filter { allowed.contains($0.type) }
        if fitting.count > 1 { throw ManagementError.notUnique("name", key) }
        if let only = fitting.first { return only.uid }
        if let other = candidates.first { return try checked(field, other, allowed) }
        throw ManagementError(
            code: "generic_err_object_not_found",
            message: "Requested object [\(key)] not found (in field \(field))", httpStatus: 404)
    }

    func checked(_ field: String, _ object: ManagedObject, _ allowed: [ObjectType]) throws -> String {
        guard allowed.contains(object.type) else {
            throw ManagementError.wrongType(
                field, "[\(object.name)] is a \(object.type.rawValue); expected \(allowed.map(\.rawValue).joined(separator: " or "))")
        }
        return object.uid
    }
}

/// Check Point's port syntax: "80", "1000-2000", ">1024", "<1024", ports 1 to 65535, nothing around
/// them. One parser: the API checks a service's port with it, and the policy compiler reads it back.
public enum PortSpec {
    /// The inclusive range the spec covers; nil when the text is not a port spec.
    public static func range(_ text: String) -> ClosedRange<Int>? {
        if text.hasPrefix(">") { return port(text.dropFirst()).flatMap { $0 < 65535 ? ($0 + 1)...65535 : nil } }
        if text.hasPrefix("<") { return port(text.dropFirst()).flatMap { $0 > 1 ? 1...($0 - 1) : nil } }
        let parts = text.split(separator: "-", maxSplits: 2, omittingEmptySubsequences: false)
        if parts.count == 2, let low = port(parts[0]), let high = port(parts[1]), low <= high { return low...high }
        if parts.count == 1, let single = port(parts[0]) { return single...single }
        return nil
    }

    public static func isValid(_ text: String) -> Bool { range(text) != nil }

    /// 1 to 5 ASCII digits, 1 to 65535 (no sign, no space: Int() alone would take "+80").
    static func port(_ text: Substring) -> Int? {
        guard (1...5).contains(text.utf8.count), text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let value = Int(text), (1...65535).contains(value)
        else { return nil }
        return value
    }
}
