import Foundation

/// A JSON document as a value. Objects keep no order; `canonicalBytes` sorts keys so the
/// same value always encodes to the same bytes (the revision hash depends on it).
public enum JSONValue: Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let fields) = self { return fields[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }
    public var objectValue: [String: JSONValue]? {
        if case .object(let o) = self { return o }
        return nil
    }
    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    /// Booleans as Check Point clients send them: JSON booleans, or the strings "true"/"false".
    public var boolValue: Bool? {
        switch self {
        case .bool(let b): return b
        case .string(let s):
            switch s.lowercased() {
            case "true": return true
            case "false": return false
            default: return nil
            }
        default: return nil
        }
    }

    /// A boolean parameter as clients send it (`true`/`false`, or those words as text), or a 400
    /// naming the field: never read as the default (`"read-only": 1` must not open a read-write session).
    public func boolean(_ field: String) throws -> Bool {
        guard let value = boolValue else { throw ManagementError.invalid(field, "expected true or false") }
        return value
    }

    /// Integers as clients send them: JSON integers, or strings of decimal digits (Ansible sends
    /// `position: "3"`, `rampart mgmt` sends every value as a string). Nothing else is an integer:
    /// not a fraction, an exponent form, a boolean or text with spaces.
    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .string(let s): return Int64(s)
        default: return nil
        }
    }

    /// An integer parameter in `range`; otherwise `generic_err_invalid_parameter` naming `field`.
    public func integer(_ field: String, in range: ClosedRange<Int64>) throws -> Int64 {
        guard let value = intValue, range.contains(value) else {
            throw ManagementError.invalid(field, "expected an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// Text for scalars (numbers become their decimal form; a Double beyond Int64 its shortest form).
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .double(let d): return Int64(exactly: d).map { String($0) } ?? String(d)
        case .bool(let b): return b ? "true" : "false"
        default: return nil
        }
    }
}

// MARK: - Encoding

extension JSONValue {
    /// Compact JSON with sorted object keys: the canonical form hashed into revisions.
    public var canonicalBytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    public var canonicalString: String { String(decoding: canonicalBytes, as: UTF8.self) }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: Array("null".utf8))
        case .bool(let b): out.append(contentsOf: Array((b ? "true" : "false").utf8))
        case .int(let i): out.append(contentsOf: Array(String(i).utf8))
        case .double(let d):
            out.append(contentsOf: Array((d.isFinite ? String(d) : "null").utf8))
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                item.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (index, key) in fields.keys.sorted().enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(key, into: &out)
                out.append(UInt8(ascii: ":"))
                fields[key]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Runs of bytes that need no escape are copied whole: most strings (names, hashes, base64) are one run.
    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            var runStart = 0
            for (index, byte) in bytes.enumerated() where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<index]))
                writeEscape(byte, into: &out)
                runStart = index + 1
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...]))
        }
        out.append(UInt8(ascii: "\""))
    }

    static func writeEscape(_ byte: UInt8, into out: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): out.append(contentsOf: [0x5C, 0x5C])
        case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        default:
            let hex = String(byte, radix: 16)
            out.append(contentsOf: Array(("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8))
        }
    }
}

// MARK: - Decoding

public struct JSONParseError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

extension JSONValue {
    /// Parses JSON text, strictly by RFC 8259: anything else is refused (leading zeros, `+1`, `.5`,
    /// `1.`, NaN, unknown escapes, lone or broken surrogates, raw control characters, invalid UTF-8, a
    /// byte order mark, text after the value), and so are duplicate keys and numbers beyond a Double.
    /// Depth is bounded so a hostile body cannot exhaust the stack. Never traps: every input either
    /// parses or throws (Tests/ManagementModelTests/JSONParserTests runs a corpus of hostile forms).
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = Limits.jsonDepthMax) throws -> JSONValue {
        var parser = JSONParser(bytes: Array(bytes), maxDepth: maxDepth)
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    public static func parse(_ text: String) throws -> JSONValue { try parse(Array(text.utf8)) }
}

struct JSONParser {
    let bytes: [UInt8]
    let maxDepth: Int
    var index = 0

    init(bytes: [UInt8], maxDepth: Int) {
        self.bytes = bytes
        self.maxDepth = maxDepth
    }

    func error(_ message: String) -> JSONParseError {
        JSONParseError(description: "\(message) at byte \(index)")
    }

    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    mutating func skipWhitespace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    mutating func parseValue(depth: Int) throws -> JSONValue {
        guard depth <= maxDepth else { throw error("JSON nested deeper than \(maxDepth) levels") }
        skipWhitespace()
        guard let byte = current else { throw error("unexpected end of JSON") }
        switch byte {
        case UInt8(ascii: "{"): return try parseObject(depth: depth)
        case UInt8(ascii: "["): return try parseArray(depth: depth)
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"):
            try expect("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expect("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expect("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
        case 0xEF where index == 0: throw error("a byte order mark is not allowed")
        default: throw error("unexpected character \(Self.describe(byte))")
        }
    }

    /// A byte for an error message: printable ASCII as itself, anything else in hex.
    static func describe(_ byte: UInt8) -> String {
        (0x21...0x7E).contains(byte) ? "'\(Character(Unicode.Scalar(byte)))'" : "0x" + String(byte, radix: 16)
    }

    mutating func expect(_ word: StaticString) throws {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count,
            word.withUTF8Buffer({ $0.elementsEqual(bytes[index..<index + count]) })
        else { throw error("invalid literal") }
        index += count
    }

    mutating func parseObject(depth: Int) throws -> JSONValue {
        index += 1
        var fields: [String: JSONValue] = [:]
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
            return .object(fields)
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a key") }
            let keyStart = index
            let key = try parseString()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
            index += 1
            let value = try parseValue(depth: depth + 1)
            // Duplicate keys are refused: two readers of one request must never see different values.
            guard fields.updateValue(value, forKey: key) == nil else {
                index = keyStart
                throw error("duplicate key '\(key.prefix(40))'")
            }
            skipWhitespace()
            guard let byte = current else { throw error("unexpected end of JSON") }
            index += 1
            if byte == UInt8(ascii: ",") { continue }
            if byte == UInt8(ascii: "}") { return .object(fields) }
            index -= 1
            throw error("expected ',' or '}'")
        }
    }

    mutating func parseArray(depth: Int) throws -> JSONValue {
        index += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return .array(items)
        }
        while true {
            items.append(try parseValue(depth: depth + 1))
            skipWhitespace()
            guard let byte = current else { throw error("unexpected end of JSON") }
            index += 1
            if byte == UInt8(ascii: ",") { continue }
            if byte == UInt8(ascii: "]") { return .array(items) }
            index -= 1
            throw error("expected ',' or ']'")
        }
    }

    mutating func parseString() throws -> String {
        index += 1
        // Most strings have no escape: one scan, one String (a policy push is thousands of them).
        let start = index
        while let byte = current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\"), byte >= 0x20 { index += 1 }
        if current == UInt8(ascii: "\"") {
            index += 1
            return try validated(bytes[start..<index - 1], from: start)
        }
        var out = Array(bytes[start..<index])
        while let byte = current {
            index += 1
            switch byte {
            case UInt8(ascii: "\""): return try validated(out[...], from: start)
            case UInt8(ascii: "\\"):
                guard let escaped = current else { throw error("unexpected end of string") }
                index += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"): out.append(contentsOf: try parseUnicodeEscape().utf8)
                default:
                    index -= 1
                    throw error("invalid escape \\\(Self.describe(escaped))")
                }
            default:
                guard byte >= 0x20 else {
                    index -= 1
                    throw error("control character in string")
                }
                out.append(byte)
            }
        }
        throw error("unterminated string")
    }

    /// The string's bytes as text; JSON text is UTF-8, and invalid UTF-8 is refused, not repaired.
    func validated(_ utf8: ArraySlice<UInt8>, from start: Int) throws -> String {
        // ASCII needs no check (most keys and values are).
        if utf8.allSatisfy({ $0 < 0x80 }) { return String(decoding: utf8, as: UTF8.self) }
        guard let text = String(validating: utf8, as: UTF8.self) else {
            throw JSONParseError(description: "invalid UTF-8 in the string at byte \(start)")
        }
        return text
    }

    mutating func parseHex4() throws -> UInt32 {
        guard bytes.count - index >= 4 else { throw error("invalid \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }

    /// `\uXXXX`, or a surrogate pair `\uD8xx\uDCxx`; a lone or broken surrogate is refused.
    mutating func parseUnicodeEscape() throws -> String {
        let escapeStart = index - 2
        let first = try parseHex4()
        if (0xDC00...0xDFFF).contains(first) {
            index = escapeStart
            throw error("lone low surrogate \\u\(String(first, radix: 16))")
        }
        guard (0xD800...0xDBFF).contains(first) else {
            guard let scalar = Unicode.Scalar(first) else { throw error("invalid \\u escape") }
            return String(scalar)
        }
        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
            index = escapeStart
            throw error("high surrogate \\u\(String(first, radix: 16)) without its low surrogate")
        }
        index += 2
        let second = try parseHex4()
        guard (0xDC00...0xDFFF).contains(second) else {
            index = escapeStart
            throw error("high surrogate \\u\(String(first, radix: 16)) followed by \\u\(String(second, radix: 16)), not a low surrogate")
        }
        // Both ranges checked: the sum is within 0x10000...0x10FFFF.
        guard let scalar = Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)) else { throw error("invalid surrogate pair") }
        return String(scalar)
    }

    /// RFC 8259: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`. Integers that fit Int64 stay
    /// integers; others become a Double, which must be finite.
    mutating func parseNumber() throws -> JSONValue {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        if current == UInt8(ascii: "0") {
            index += 1
            if Self.isDigit(current) { throw error("invalid number: leading zero") }
        } else {
            try skipDigits()
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            index += 1
            try skipDigits()
            isInteger = false
        }
        if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            try skipDigits()
            isInteger = false
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if isInteger, let integer = Int64(text) { return .int(integer) }
        guard let double = Double(text), double.isFinite else {
            index = start
            throw error("number '\(text.prefix(40))' is out of range")
        }
        return .double(double)
    }

    static func isDigit(_ byte: UInt8?) -> Bool { byte.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false }

    /// One or more digits.
    mutating func skipDigits() throws {
        guard Self.isDigit(current) else { throw error("invalid number: a digit is expected") }
        while Self.isDigit(current) { index += 1 }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}

extension Dictionary where Key == String, Value == JSONValue {
    /// The boolean parameter `name`, `defaultValue` when absent; a value of another type is a 400.
    public func flag(_ name: String, default defaultValue: Bool) throws -> Bool {
        try self[name].map { try $0.boolean(name) } ?? defaultValue
    }
}
