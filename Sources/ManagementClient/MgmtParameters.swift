import ManagementModel

/// Turns mgmt_cli-style `key=value` arguments into the JSON body of a Web API call, and renders
/// replies as JSON or as readable text. Pure: no I/O, so every rule is easy to test.
public enum MgmtParameters {
    /// A bad argument, with a message that names it.
    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    /// Bounds on what one command line may build: a mistyped index such as `members.99999=x` must
    /// fail with a message, not allocate, and no argument list should be able to nest without end.
    public static let argumentsMax = 10_000
    public static let keyLengthMax = 512
    public static let keyDepthMax = 16
    public static let listIndexMax = 100_000

    /// Builds the request body.
    ///
    /// - `name=web` → `{"name": "web"}`; `true`/`false` become JSON booleans, every other value stays
    ///   a string (the server reads numbers given as strings, as Check Point's does).
    /// - Dotted keys nest: `nat-settings.auto-rule=true` → `{"nat-settings": {"auto-rule": true}}`.
    /// - Numeric components make lists, counted from 1 without gaps: `members.1=a members.2=b` →
    ///   `{"members": ["a", "b"]}`, and `interfaces.1.name=eth0` → `{"interfaces": [{"name": "eth0"}]}`.
    /// - A secret (a key in `MgmtSecrets.keys`, at any depth) is refused as `key=value`; it comes from
    ///   `key-file=FILE`, `key-file=-` (a prompt) or `key-env=VARIABLE`, read with `readSecret`.
    public static func body(
        from arguments: [String],
        readSecret: (MgmtSecrets.Source, String) throws(Failure) -> String = { _, key throws(Failure) in
            throw Failure(description: "\(key) cannot be read here")
        }
    ) throws(Failure) -> [String: JSONValue] {
        guard arguments.count <= argumentsMax else {
            throw Failure(description: "too many arguments (\(arguments.count)); at most \(argumentsMax)")
        }
        var root = Node.Branch()
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "=") else {
                throw Failure(description: "argument '\(argument)' is not key=value (example: name=web-1, members.1=web-1)")
            }
            var key = String(argument[..<equals])
            var value = String(argument[argument.index(after: equals)...])
            guard !key.isEmpty else { throw Failure(description: "argument '\(argument)' has no key before '='") }
            guard key.utf8.count <= keyLengthMax else {
                throw Failure(description: "the key of argument '\(argument.prefix(40))…' is longer than \(keyLengthMax) bytes")
            }
            var path = key.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            if let last = path.last, MgmtSecrets.keys.contains(last) {
                throw Failure(description: MgmtSecrets.refusal(fullKey: key, key: last))
            }
            if let last = path.last, let sourced = MgmtSecrets.sourced(key: last, value: value) {
                path[path.count - 1] = sourced.key
                key = path.joined(separator: ".")
                value = try readSecret(sourced.source, key)
            }
            guard !path.contains(where: \.isEmpty) else {
                throw Failure(description: "argument '\(argument)': key '\(key)' has an empty part between dots")
            }
            guard path.count <= keyDepthMax else {
                throw Failure(description: "argument '\(argument)': key '\(key)' nests deeper than \(keyDepthMax) levels")
            }
            try root.insert(path: path[...], value: value, argument: argument)
        }
        guard case .object(let fields) = try Node.branch(root).json(key: nil) else {
            // The root holds keys such as "1" only if the user wrote `1=x`; a body must be an object.
            throw Failure(description: "the arguments build a list, not an object: a top-level key cannot be a number")
        }
        return fields
    }

    static func scalar(_ text: String) -> JSONValue {
        switch text {
        case "true": return .bool(true)
        case "false": return .bool(false)
        default: return .string(text)
        }
    }

    /// One argument tree: leaves are values, branches are objects or (when every key is a number) lists.
    indirect enum Node {
        case leaf(String, argument: String)
        case branch(Branch)

        struct Branch {
            var children: [String: Node] = [:]
            /// The first argument that created this branch, to name it in a conflict.
            var argument = ""

            mutating func insert(path: ArraySlice<String>, value: String, argument: String) throws(Failure) {
                guard let key = path.first else { return }
                let rest = path.dropFirst()
                if self.argument.isEmpty { self.argument = argument }
                if rest.isEmpty {
                    switch children[key] {
                    case nil: children[key] = .leaf(value, argument: argument)
                    case .leaf(_, let earlier)?:
                        throw Failure(description: "argument '\(argument)' sets a key already given by '\(earlier)'")
                    case .branch(let branch)?:
                        throw Failure(description: "argument '\(argument)' gives a value to a key that '\(branch.argument)' uses as an object or list")
                    }
                    return
                }
                var child: Branch
                switch children[key] {
                case nil: child = Branch()
                case .branch(let existing)?: child = existing
                case .leaf(_, let earlier)?:
                    throw Failure(description: "argument '\(argument)' uses as an object or list a key that '\(earlier)' gives a value")
                }
                try child.insert(path: rest, value: value, argument: argument)
                children[key] = .branch(child)
            }
        }

        func json(key: String?) throws(Failure) -> JSONValue {
            switch self {
            case .leaf(let text, _): return MgmtParameters.scalar(text)
            case .branch(let branch):
                let indexes = branch.children.keys.map(MgmtParameters.listIndex)
                if indexes.allSatisfy({ $0 == nil }) {
                    var fields: [String: JSONValue] = [:]
                    for (name, child) in branch.children { fields[name] = try child.json(key: name) }
                    return .object(fields)
                }
                let label = key ?? "the top level"
                guard indexes.allSatisfy({ $0 != nil }) else {
                    throw Failure(description: "'\(label)' mixes numbered items and named keys (near argument '\(branch.argument)')")
                }
                let sorted = indexes.compactMap { $0 }.sorted()
                for (position, index) in sorted.enumerated() where index != position + 1 {
                    throw Failure(description: "'\(label).\(index)' is given without '\(label).\(position + 1)': list items are numbered from 1 without gaps")
                }
                var items: [JSONValue] = []
                items.reserveCapacity(sorted.count)
                // `listIndex` reads only canonical numbers, so String(index) is the key it came from.
                for index in sorted {
                    guard let child = branch.children[String(index)] else { continue }
                    items.append(try child.json(key: "\(label).\(index)"))
                }
                return .array(items)
            }
        }
    }

    /// A list position: a decimal number from 1 without leading zeros (so `01` stays a name).
    static func listIndex(_ key: String) -> Int? {
        guard let first = key.utf8.first, first != UInt8(ascii: "0"), key.utf8.count <= 6,
            key.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            let index = Int(key), index <= listIndexMax
        else { return nil }
        return index
    }
}

// MARK: - Rendering replies

public enum MgmtRendering {
    /// Pretty JSON with sorted keys and two-space indentation, ending with a newline.
    public static func json(_ value: JSONValue) -> String {
        var out = ""
        writeJSON(value, indent: 0, into: &out)
        out.append("\n")
        return out
    }

    private static func writeJSON(_ value: JSONValue, indent: Int, into out: inout String) {
        let pad = String(repeating: " ", count: indent + 2)
        switch value {
        case .array(let items) where !items.isEmpty:
            out.append("[\n")
            for (i, item) in items.enumerated() {
                out.append(pad)
                writeJSON(item, indent: indent + 2, into: &out)
                out.append(i == items.count - 1 ? "\n" : ",\n")
            }
            out.append(String(repeating: " ", count: indent) + "]")
        case .object(let fields) where !fields.isEmpty:
            out.append("{\n")
            let keys = fields.keys.sorted()
            for (i, key) in keys.enumerated() {
                out.append(pad + JSONValue.string(key).canonicalString + ": ")
                writeJSON(fields[key] ?? .null, indent: indent + 2, into: &out)
                out.append(i == keys.count - 1 ? "\n" : ",\n")
            }
            out.append(String(repeating: " ", count: indent) + "}")
        default:
            out.append(value.canonicalString)
        }
    }

    /// A YAML-like rendering for people: `key: value` lines, nested objects indented, list items
    /// after `- `. `name`, `uid` and `type` come first, the other keys in alphabetical order.
    public static func text(_ value: JSONValue) -> String {
        var lines: [String] = []
        switch value {
        case .object(let fields) where !fields.isEmpty: writeFields(fields, indent: 0, into: &lines)
        case .array(let items) where !items.isEmpty: writeItems(items, indent: 0, into: &lines)
        default: lines.append(scalarText(value))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func orderedKeys(_ fields: [String: JSONValue]) -> [String] {
        let first = ["name", "uid", "type"].filter { fields[$0] != nil }
        return first + fields.keys.filter { !first.contains($0) }.sorted()
    }

    private static func writeFields(_ fields: [String: JSONValue], indent: Int, into lines: inout [String]) {
        let pad = String(repeating: " ", count: indent)
        for key in orderedKeys(fields) {
            let label = plain(key) ? key : JSONValue.string(key).canonicalString
            switch fields[key] ?? .null {
            case .object(let nested) where !nested.isEmpty:
                lines.append("\(pad)\(label):")
                writeFields(nested, indent: indent + 2, into: &lines)
            case .array(let items) where !items.isEmpty:
                lines.append("\(pad)\(label):")
                writeItems(items, indent: indent + 2, into: &lines)
            case let other:
                lines.append("\(pad)\(label): \(scalarText(other))")
            }
        }
    }

    private static func writeItems(_ items: [JSONValue], indent: Int, into lines: inout [String]) {
        let pad = String(repeating: " ", count: indent)
        for item in items {
            var nested: [String] = []
            switch item {
            case .object(let fields) where !fields.isEmpty: writeFields(fields, indent: indent + 2, into: &nested)
            case .array(let inner) where !inner.isEmpty: writeItems(inner, indent: indent + 2, into: &nested)
            default:
                lines.append("\(pad)- \(scalarText(item))")
                continue
            }
            // The first nested line moves up beside the dash, as YAML writes list items.
            let first = nested.removeFirst()
            lines.append("\(pad)- " + first.dropFirst(indent + 2))
            lines.append(contentsOf: nested)
        }
    }

    static func scalarText(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return plain(text) ? text : value.canonicalString
        case .object: return "{}"
        case .array: return "[]"
        default: return value.canonicalString
        }
    }

    /// Whether a string reads back as itself without quotes: not empty, not a YAML keyword or number,
    /// no leading indicator character, no `: ` or ` #`, no surrounding spaces, no control characters.
    static func plain(_ text: String) -> Bool {
        guard let first = text.first, let last = text.last, first != " ", last != " " else { return false }
        if "-?:,[]{}#&*!|>'\"%@`".contains(first) { return false }
        if ["true", "false", "null", "yes", "no", "on", "off", "~"].contains(text.lowercased()) { return false }
        if Double(text) != nil { return false }
        if text.contains(": ") || text.contains(" #") || last == ":" { return false }
        return !text.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7F }
    }
}
