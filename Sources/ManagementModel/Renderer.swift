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
        .object(["posix": .int(milliseconds), "iso-8601": .string(iso8601(milliseconds: milliseconds))])
    }

    /// The times `iso8601` shows: years 1 to 9999. Times come from peers and gateways too; one
    /// outside is shown as the nearest end, and the arithmetic below stays far from Int64's limits.
    static let iso8601MillisecondsRange: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    /// UTC time as `2024-05-01T10:20:30Z`, computed directly (a date formatter per call costs more
    /// than the rest of a request).
    public static func iso8601(milliseconds given: Int64) -> String {
        let milliseconds = min(max(given, iso8601MillisecondsRange.lowerBound), iso8601MillisecondsRange.upperBound)
        let seconds = milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))T\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60))Z"
    }

    /// A reference as Check Point shows it inside another object.
    public func reference(_ uid: String, level: DetailsLevel) -> JSONValue {
        guard level != .uid else { return .string(uid) }
        guard let object = reader.lookup(uid: uid) else { return .object(["uid": .string(uid), "name": .string(""), "type": .string("")]) }
        return summary(object)
    }

    public func summary(_ object: ManagedObject) -> JSONValue {
        var fields: [String: JSONValue] = [
            "uid": .string(object.uid), "name": .string(object.name),
            "type": .string(object.type.rawValue), "domain": domain,
        ]
        if let color = object.fields["color"] { fields["color"] = color }
        return .object(fields)
    }

    /// The whole object. `lock` is the lock text for the viewer (unlocked, locked by current/other session).
    public func render(_ object: ManagedObject, level: DetailsLevel, lock: String = "unlocked", extra: [String: JSONValue] = [:]) -> JSONValue {
        guard level != .uid else { return .string(object.uid) }
        let refLevel: DetailsLevel = .standard
        var out: [String: JSONValue] = [
            "uid": .string(object.uid), "name": .string(object.name),
            "type": .string(object.type.rawValue), "domain": domain, "read-only": .bool(false),
        ]
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
            let layerUID = object.fields[ManagedObject.layerField]?.stringValue
        {
            out["layer"] = .string(layerUID)
        }
        if object.type == .simpleGateway || object.type == .simpleCluster || object.type == .clusterMember {
            out["sic-state"] = object.fields[ManagedObject.sicStateField] ?? .string("uninitialized")
            out["sic-name"] = object.fields[ManagedObject.sicNameField] ?? .string("")
        }
        if object.type == .simpleCluster {
            out["members"] = .array(clusterMembers(of: object).map { render($0, level: .standard) })
        }
        if object.type == .clusterMember {
            if let cluster = object.fields[ClusterModel.clusterField]?.stringValue.flatMap({ reader.object(uid: $0) }) {
                out[ClusterModel.clusterField] = summary(cluster)
                out["member-id"] = cluster.uids("members").firstIndex(of: object.uid).map { .int(Int64($0 + 1)) } ?? .null
            }
            out["ip-address"] = .string(ClusterPolicyBuilder.mainAddress(object))
        }
        if object.type == .package, case .array(let uids)? = object.fields["installation-targets"] {
            out["installation-targets"] = .array(uids.map { uid in uid.stringValue.map { reference($0, level: .standard) } ?? uid })
        }
        if object.type == .checkpointHost {
            out["sic-state"] = object.fields[ManagedObject.sicStateField] ?? .string("uninitialized")
            out["sic-name"] = object.fields[ManagedObject.sicNameField] ?? .string("")
            if case .object(var blades)? = out["management-blades"] {
                blades["secondary"] = .bool(object.fields[ManagedObject.haPrimaryField]?.boolValue != true)
                out["management-blades"] = .object(blades)
            }
            out["rampart-sic-address"] = object.fields[ManagedObject.haSICAddressField] ?? .string("")
            out["rampart-api-address"] = object.fields[ManagedObject.haAPIAddressField] ?? .string("")
        }
        if object.type == .smartTask {
            if let trigger = object.fields["trigger"]?.stringValue.flatMap(SmartTaskTrigger.named) { out["trigger"] = trigger.json }
            out["action"] = SmartTaskDefinition.renderedAction(object, renderer: self)
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

extension Renderer {
    /// A cluster's member objects, in member-id order.
    public func clusterMembers(of cluster: ManagedObject) -> [ManagedObject] {
        cluster.uids("members").compactMap { reader.object(uid: $0) }.filter { $0.type == .clusterMember }
    }
}
