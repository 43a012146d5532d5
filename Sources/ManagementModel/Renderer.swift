import Foundation

public enum DetailsLevel: String, Sendable {
    case uid, standard, full

    public static func parse(_ value: JSONValue?) throws -> DetailsLevel {
        guard let value else { return .standard }
        guard let text = value.stringValue, let level = DetailsLevel(rawValue: text.lowercased()) else {
            throw ManagementError.invalid("details-level", "expected uid, standard or full")
        }
        return level
    }
}

/// Renders objects the way Check Point's API shows them: references as small objects (or bare
/// uids at details-level uid), timestamps as {posix, iso-8601}, internal fields hidden.
public struct Renderer {
    public let reader: any ObjectReader
    public let domain: JSONValue

    public static let defaultDomain: JSONValue = .object([
        "uid": .string("41e821a0-3720-11e3-aa6e-0800200c9fde"), "name": .string("SMC User"), "domain-type": .string("domain"),
    ])

    public init(reader: any ObjectReader, domain: JSONValue = Renderer.defaultDomain) {
        self.reader = reader
        self.domain = domain
    }

    public static func timestamp(_ milliseconds: Int64) -> JSONValue {
        let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return .object(["posix": .int(milliseconds), "iso-8601": .string(formatter.string(from: date))])
    }

    /// A reference as Check Point shows it inside another object.
    public func reference(_ uid: String, level: DetailsLevel) -> JSONValue {
        guard level != .uid else { return .string(uid) }
        guard let object = reader.lookup(uid: uid) else { return .object(["uid": .string(uid), "name": .string(""), "type": .string("")]) }
        return summary(object)
    }

    public func summary(_ object: ManagedObject) -> JSONValue {
        var fields: [String: JSONValue] = ["uid": .string(object.uid), "name": .string(object.name),
                                           "type": .string(object.type.rawValue), "domain": domain]
        if let color = object.fields["color"] { fields["color"] = color }
        return .object(fields)
    }

    /// The whole object. `lock` is the lock text for the viewer (unlocked, locked by current/other session).
    public func render(_ object: ManagedObject, level: DetailsLevel, lock: String = "unlocked", extra: [String: JSONValue] = [:]) -> JSONValue {
        guard level != .uid else { return .string(object.uid) }
        let refLevel: DetailsLevel = .standard
        var out: [String: JSONValue] = ["uid": .string(object.uid), "name": .string(object.name),
                                        "type": .string(object.type.rawValue), "domain": domain, "read-only": .bool(false)]
        let schema = Schema.of(object.type)
        for key in object.fields.keys.sorted() where !ManagedObject.internalFields.contains(key) {
            let value = object.fields[key]!
            switch schema.field(key)?.kind {
            case .reference?: out[key] = value.stringValue.map { reference($0, level: refLevel) } ?? value
            case .references?: out[key] = .array(object.uids(key).map { reference($0, level: refLevel) })
            case .track?:
                var track = value.objectValue ?? [:]
                if let type = track["type"]?.stringValue { track["type"] = reference(type, level: refLevel) }
                out[key] = .object(track)
            case .tags?: out[key] = .array((value.arrayValue ?? []).map { .object(["name": $0, "type": .string("tag")]) })
            default: out[key] = value
            }
        }
        addDerived(object, into: &out)
        out["meta-info"] = .object([
            "lock": .string(lock), "validation-state": .string("ok"),
            "creation-time": Renderer.timestamp(object.meta.creationTimeMilliseconds), "creator": .string(object.meta.creator),
            "last-modify-time": Renderer.timestamp(object.meta.lastModifyTimeMilliseconds), "last-modifier": .string(object.meta.lastModifier),
        ])
        out["icon"] = .string(icon(object.type))
        out["available-actions"] = .object(["edit": .string("true"), "delete": .string("true"), "clone": .string("true")])
        out.merge(extra) { _, new in new }
        return .object(out)
    }

    func addDerived(_ object: ManagedObject, into out: inout [String: JSONValue]) {
        switch object.type {
        case .host, .network, .addressRange, .group, .serviceTCP, .serviceUDP, .serviceGroup:
            let groups = reader.referrers(of: object.uid).filter { ($0.type == .group || $0.type == .serviceGroup) && $0.uids("members").contains(object.uid) }
            out["groups"] = .array(groups.map { summary($0) })
        default: break
        }
        if object.type == .network, let length = object.fields["mask-length4"]?.intValue {
            out["subnet-mask"] = .string(IPAddress.subnetMask(lengthV4: Int(length)))
        }
        if object.type == .accessRule || object.type == .accessSection,
           let layerUID = object.fields[ManagedObject.layerField]?.stringValue {
            out["layer"] = .string(layerUID)
        }
        if object.type == .administrator {
            out["authentication-method"] = object.fields["authentication-method"] ?? .string("check point password")
        }
    }

    func icon(_ type: ObjectType) -> String {
        switch type {
        case .host: return "Objects/host"
        case .network: return "NetworkObjects/network"
        case .group, .serviceGroup: return "General/group"
        case .accessRule: return "Blades/Firewall"
        default: return "General/globalsNa"
        }
    }
}
