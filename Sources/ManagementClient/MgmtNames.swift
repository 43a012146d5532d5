import ManagementModel

extension MgmtRendering {
    /// For the text format: a reply that carries an `objects-dictionary` (show-access-rulebase, Check
    /// Point's form: rules name their objects by uid) shows every such uid as the object's name, and
    /// leaves the dictionary out. The JSON format keeps the reply as the server sent it. Pure.
    public static func withNames(_ reply: JSONValue) -> JSONValue {
        guard case .object(var fields) = reply, let entries = fields["objects-dictionary"]?.arrayValue else { return reply }
        var names: [String: String] = [:]
        for entry in entries {
            if let uid = entry["uid"]?.stringValue, let name = entry["name"]?.stringValue { names[uid] = name }
        }
        fields["objects-dictionary"] = nil
        return named(.object(fields), names: names)
    }

    private static func named(_ value: JSONValue, names: [String: String]) -> JSONValue {
        switch value {
        case .string(let text): return names[text].map(JSONValue.string) ?? value
        case .array(let items): return .array(items.map { named($0, names: names) })
        case .object(let fields):
            var out: [String: JSONValue] = [:]
            // An object's own uid stays a uid; what it refers to is shown by name.
            for (key, field) in fields { out[key] = key == "uid" ? field : named(field, names: names) }
            return .object(out)
        default: return value
        }
    }
}
