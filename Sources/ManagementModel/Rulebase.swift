/// A layer's rulebase is one ordered list of section headers and rules (stored as uids in the
/// layer's internal `rulebase` field). A rule belongs to the last section header above it, so
/// rule numbers, section edges and positions all derive from this one list.
public struct Rulebase: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let uid: String
        public let isSection: Bool
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public init(layer: ManagedObject, reader: any ObjectReader) {
        entries = layer.uids(ManagedObject.rulebaseField).map { uid in
            Entry(uid: uid, isSection: reader.object(uid: uid)?.type == .accessSection)
        }
    }

    public var uids: [String] { entries.map(\.uid) }
    public var ruleCount: Int { entries.filter { !$0.isSection }.count }

    /// 1-based rule number of a rule uid.
    public func ruleNumber(of uid: String) -> Int? {
        var number = 0
        for entry in entries where !entry.isSection {
            number += 1
            if entry.uid == uid { return number }
        }
        return nil
    }

    /// The uid of rule number n.
    public func rule(number: Int) -> String? {
        var count = 0
        for entry in entries where !entry.isSection {
            count += 1
            if count == number { return entry.uid }
        }
        return nil
    }

    /// The section a rule sits in, if any.
    public func section(of uid: String) -> String? {
        var current: String?
        for entry in entries {
            if entry.isSection { current = entry.uid } else if entry.uid == uid { return current }
        }
        return nil
    }

    /// Index just past the last rule of the section starting at `sectionIndex`.
    func endOfSection(at sectionIndex: Int) -> Int {
        var index = sectionIndex + 1
        while index < entries.count, !entries[index].isSection { index += 1 }
        return index
    }

    /// Where a new entry goes for a position in Check Point's grammar: a number, "top", "bottom",
    /// or {"top"|"bottom"|"above"|"below": rule-or-section}. `locate` turns a name or uid into an
    /// entry uid of this layer.
    public func insertionIndex(for position: JSONValue, field: String, locate: (String) throws -> String) throws -> Int {
        if let word = position.stringValue?.lowercased(), word == "top" || word == "bottom" {
            return word == "top" ? 0 : entries.count
        }
        if let number = position.intValue {
            let total = ruleCount
            guard number >= 1, number <= Int64(total) + 1 else {
                throw ManagementError.rulebase("[\(field)] \(number) is out of range: the layer has \(total) rules (use 1 to \(total + 1))")
            }
            if number == Int64(total) + 1 { return entries.count }
            // 1...total: rule `number` exists (checked anyway, the rulebase is read from the database).
            guard let uid = rule(number: Int(number)), let index = entries.firstIndex(where: { $0.uid == uid }) else {
                throw ManagementError.notFound("rule number \(number)")
            }
            return index
        }
        guard let relation = position.objectValue, relation.count == 1, let (kind, target) = relation.first,
            let targetName = target.stringValue ?? target["uid"]?.stringValue ?? target["name"]?.stringValue
        else {
            throw ManagementError.invalid(field, "expected a rule number, \"top\", \"bottom\", or {\"above\"|\"below\"|\"top\"|\"bottom\": rule or section}")
        }
        let targetUID = try locate(targetName)
        guard let index = entries.firstIndex(where: { $0.uid == targetUID }) else { throw ManagementError.notFound(targetName) }
        let isSection = entries[index].isSection
        switch kind {
        case "above": return index
        case "below": return isSection ? index + 1 : index + 1
        case "top":
            guard isSection else { throw ManagementError.invalid(field, "[\(targetName)] is not a section") }
            return index + 1
        case "bottom":
            guard isSection else { throw ManagementError.invalid(field, "[\(targetName)] is not a section") }
            return endOfSection(at: index)
        default:
            throw ManagementError.invalid(field, "unknown relative position '\(kind)'; use above, below, top or bottom")
        }
    }

    public mutating func insert(_ entry: Entry, at index: Int) { entries.insert(entry, at: index) }
    public mutating func remove(_ uid: String) { entries.removeAll { $0.uid == uid } }

    public var fieldValue: JSONValue { .array(entries.map { .string($0.uid) }) }
}

extension ManagedObject {
    /// Internal fields: kept with the object, never accepted from or shown to clients directly.
    public static let rulebaseField = "rulebase"
    public static let layerField = "layer"
    public static let activationKeyField = "activation-key"
    public static let sicStateField = "sic-state"
    public static let sicNameField = "sic-name"
    public static let sicSerialField = "sic-serial"
    /// A management server's SIC and Web API addresses ("host:port"), as it last announced them: how the
    /// other servers of its HA group reach it. Synchronized with the database, set only by the server.
    public static let haSICAddressField = "ha-sic-address"
    public static let haAPIAddressField = "ha-api-address"
    /// True on the checkpoint-host object of the server that was installed as the primary.
    public static let haPrimaryField = "ha-primary"
    public static let internalFields: Set<String> = [
        rulebaseField, layerField, "password-hash", activationKeyField, sicStateField, sicNameField, sicSerialField,
        haSICAddressField, haAPIAddressField, haPrimaryField, ClusterModel.heartbeatKeyField, smartTaskSecretField,
    ]
}
