/// Check Point's `equals` (CHECKPOINT-API.md §2.3): true exactly when `set-<type>` with these
/// parameters would change nothing. Parameters are normalized as `set` would, then only the keys
/// given are compared: lists as sets, nested objects on the sub-keys given.
public struct Equality {
    public let planner: Planner

    public init(planner: Planner) { self.planner = planner }

    static let ignored: Set<String> = [
        "name", "uid", "layer", "details-level", "ignore-warnings", "ignore-errors", "position", "new-position",
        "search-entire-rulebase", "one-time-password", "rule-number",
    ]

    public func equals(_ object: ManagedObject, params: [String: JSONValue]) throws -> Bool {
        if object.type == .accessSection { return true }
        var given = params.filter { !Equality.ignored.contains($0.key) }
        if let newName = given.removeValue(forKey: "new-name"), newName.scalarText != object.name { return false }
        if let password = given.removeValue(forKey: "password") {
            guard let text = password.stringValue, let stored = object.fields["password-hash"]?.stringValue,
                planner.normalizer.passwords.verify(text, stored)
            else { return false }
        }
        let normalized = try planner.normalizer.normalize(object.type, given, existing: object)
        for key in normalized.keys.sorted() {
            let current: JSONValue
            if key == "groups" {
                current = .array(
                    planner.reader.referrers(of: object.uid)
                        .filter { ($0.type == .group || $0.type == .serviceGroup) && $0.uids("members").contains(object.uid) }
                        .map { .string($0.uid) })
            } else if object.type == .simpleCluster, key == "members" {
                current = .array(
                    object.uids("members").compactMap { planner.reader.object(uid: $0) }.map { member in
                        var fields = member.fields.filter { !ManagedObject.internalFields.contains($0.key) }
                        fields["name"] = .string(member.name)
                        return .object(fields)
                    })
            } else {
                current = object.fields[key] ?? .null
            }
            var wanted = normalized[key]!
            if object.type == .simpleCluster, key == "members", let items = wanted.arrayValue {
                // A one-time password cannot be compared (only a verifier is kept): it never makes a difference.
                wanted = .array(items.map { .object(($0.objectValue ?? [:]).filter { !ManagedObject.internalFields.contains($0.key) }) })
            }
            if !Equality.same(wanted, current) { return false }
        }
        return true
    }

    static func same(_ wanted: JSONValue, _ current: JSONValue) -> Bool {
        switch (wanted, current) {
        case (.array(let a), .array(let b)) where !a.isEmpty && a.allSatisfy({ $0["name"]?.stringValue != nil }):
            // Named items (interfaces, cluster members): the same names, each equal on the sub-keys given.
            guard a.count == b.count else { return false }
            return a.allSatisfy { item in b.contains { $0["name"] == item["name"] && same(item, $0) } }
        case (.array(let a), .array(let b)):
            return Set(a.map(\.canonicalString)) == Set(b.map(\.canonicalString))
        case (.object(let a), .object(let b)):
            return a.allSatisfy { key, value in b[key].map { same(value, $0) } ?? false }
        case (.string(let a), .string(let b)):
            return a == b
        default:
            if let a = wanted.scalarText, let b = current.scalarText { return a == b }
            return wanted == current
        }
    }
}
