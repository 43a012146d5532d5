import Foundation
import Testing

@testable import ManagementModel

/// The request parser is RFC 8259-strict and never traps: a corpus of valid and invalid forms, then
/// seeded mutations of valid documents (each input either parses or throws; what parses re-encodes
/// and parses back to the same value).
@Suite("JSON parser: strict and total")
struct JSONParserTests {
    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// Valid JSON and the value it must give.
    static let accepted: [(String, JSONValue)] = [
        ("0", .int(0)), ("-0", .int(0)), ("1", .int(1)), ("-1", .int(-1)), ("10", .int(10)),
        ("9223372036854775807", .int(.max)), ("-9223372036854775808", .int(.min)),
        ("9223372036854775808", .double(9_223_372_036_854_775_808)), ("1.5", .double(1.5)), ("-1.5e10", .double(-1.5e10)),
        ("1E+2", .double(100)), ("1e-2", .double(0.01)), ("0.0", .double(0)), ("1e308", .double(1e308)), ("1e-400", .double(0)),
        (#""a""#, "a"), (#""""#, ""), (#""\u0041""#, "A"), (#""\u00e9""#, "é"), (#""\uD83D\uDE00""#, "😀"),
        (#""\uDBFF\uDFFF""#, .string(String(Unicode.Scalar(0x10FFFF)!))), (#""\/""#, "/"),
        (#""\b\f\n\r\t\"\\""#, "\u{8}\u{C}\n\r\t\"\\"), (#""\u0000""#, "\u{0}"), ("\"é€😀\"", "é€😀"), ("\"\u{7F}\"", "\u{7F}"),
        ("[]", []), ("{}", [:]), (" [1 , 2 ]\n", [1, 2]), ("\t{\"a\":{\"b\":[true,false,null]}}\r\n", ["a": ["b": [true, false, nil]]]),
        ("true", true), ("false", false), ("null", nil),
    ]

    /// Text that is not JSON, or that Rampart refuses on purpose (duplicate keys, numbers beyond a
    /// Double, lone surrogates), each with why.
    static let rejected: [(String, String)] = [
        ("01", "leading zero"), ("-01", "leading zero"), ("00", "leading zero"), (".5", "no integer part"), ("+1", "plus sign"),
        ("1.", "no fraction digits"), ("1.e5", "no fraction digits"), ("-", "sign alone"), ("--1", "two signs"), ("1e", "no exponent"),
        ("1e+", "no exponent digits"), ("0x10", "hex"), ("1_000", "underscore"), ("NaN", "NaN"), ("Infinity", "Infinity"),
        ("-Infinity", "-Infinity"), ("1e400", "beyond Double"), ("-1e400", "beyond Double"), ("[1e999]", "beyond Double"),
        (#""\q""#, "unknown escape"), (#""\x41""#, "\\x escape"), (#""\u004""#, "short \\u"), (#""\u+041""#, "sign in \\u"),
        (#""\u-041""#, "sign in \\u"), (#""\u 041""#, "space in \\u"), (#""\uD800""#, "lone high surrogate"),
        (#""\uD800\u0041""#, "broken surrogate pair"), (#""\ud800\u0041""#, "broken surrogate pair, lower case"),
        (#""\uDC00""#, "lone low surrogate"), (#""\uD800\uD800""#, "two high surrogates"), (#""\uD800x""#, "high surrogate then text"),
        (#""\uDBFF\uE000""#, "high surrogate then non-surrogate"), (#""\uD800\"#, "cut after a surrogate"),
        ("\"a\nb\"", "raw newline"), ("\"a\tb\"", "raw tab"), ("\"\u{1}\"", "raw control character"), ("\"abc", "unterminated"),
        ("\"\\", "unterminated escape"), ("'a'", "single quotes"),
        ("", "empty"), (" ", "blank"), ("[", "open array"), ("]", "close alone"), ("{", "open object"), ("[1,]", "trailing comma"),
        ("[,1]", "leading comma"), ("{\"a\":1,}", "trailing comma"), ("{\"a\"}", "key without value"), ("{a:1}", "bare key"),
        ("{\"a\":1 \"b\":2}", "missing comma"), ("[1 2]", "missing comma"), ("{\"a\":1,\"a\":2}", "duplicate key"),
        ("{1:2}", "number key"), ("1 2", "two values"), ("{} x", "trailing garbage"), ("[] []", "two documents"),
        ("\u{FEFF}{}", "byte order mark"), ("tru", "cut literal"), ("True", "capitalized literal"), ("nul", "cut literal"),
        ("null x", "trailing garbage"), ("truex", "literal with garbage"), ("undefined", "not a literal"), ("/* c */ {}", "comment"),
        ("{}\u{0}", "NUL after the value"), ("\u{B}[]", "vertical tab is not whitespace"), ("\u{C}[]", "form feed is not whitespace"),
        ("\u{A0}[]", "no-break space is not whitespace"),
    ]

    @Test func acceptsValidJSON() throws {
        for (text, value) in Self.accepted {
            #expect(try JSONValue.parse(text) == value, "\(text)")
        }
    }

    @Test func refusesWhatIsNotJSON() {
        for (text, why) in Self.rejected {
            #expect(throws: JSONParseError.self, "\(why): \(text.debugDescription)") { try JSONValue.parse(text) }
        }
    }

    /// The request of issue 18 that stopped the server: a high surrogate followed by a plain escape.
    @Test func brokenSurrogatePairIsAnErrorNamingIt() {
        #expect { try JSONValue.parse(#"{"user":"\ud800\u0041","password":"x"}"#) } throws: { error in
            "\(error)".contains("surrogate")
        }
    }

    @Test func refusesInvalidUTF8() {
        let forms: [[UInt8]] = [
            [0x22, 0xFF, 0x22], [0x22, 0xC0, 0xAF, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22],
            [0x22, 0x80, 0x22], [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22], [0x22, 0x5C, 0x6E, 0xFE, 0x22],  // "\n" then 0xFE
        ]
        for form in forms { #expect(throws: JSONParseError.self, "\(form)") { try JSONValue.parse(form) } }
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0xEF, 0xBB, 0xBF, 0x7B, 0x7D]) }  // UTF-8 BOM, then {}
    }

    @Test func depthIsBoundedWithoutExhaustingTheStack() throws {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
        let objects = String(repeating: "{\"a\":", count: 50_000) + "1" + String(repeating: "}", count: 50_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(objects) }
        let allowed = String(repeating: "[", count: Limits.jsonDepthMax + 1) + String(repeating: "]", count: Limits.jsonDepthMax + 1)
        _ = try JSONValue.parse(allowed)
        let tooDeep = "[" + allowed + "]"
        #expect(throws: JSONParseError.self) { try JSONValue.parse(tooDeep) }
    }

    @Test func hugeNumbersAreDoublesOrRefused() throws {
        #expect(try JSONValue.parse(String(repeating: "9", count: 300)) == .double(Double(String(repeating: "9", count: 300))!))
        #expect(throws: JSONParseError.self) { try JSONValue.parse(String(repeating: "9", count: 400)) }
        #expect(throws: JSONParseError.self) { try JSONValue.parse("1e" + String(repeating: "9", count: 30)) }
        #expect(try JSONValue.parse("1e-" + String(repeating: "9", count: 30)) == .double(0))
    }

    /// Numbers beyond Int64 never trap where integers and text are read from them (issue 18:
    /// `show-host {"name": 1e300}` and friends stopped the server).
    @Test func numbersBeyondInt64ConvertWithoutTrapping() throws {
        for text in ["1e300", "1e19", "-1e19", "9223372036854775808", "-9223372036854775809", "1.5", "-0.0", "4.9e-324"] {
            let value = try JSONValue.parse(text)
            #expect(value.intValue == nil, "\(text)")
            #expect(value.scalarText != nil, "\(text)")
        }
        #expect(try JSONValue.parse("1e300").scalarText == "1e+300")
        #expect(try JSONValue.parse("1e2").scalarText == "100")
        #expect(JSONValue.string(" 5").intValue == nil && JSONValue.string("5").intValue == 5 && JSONValue.bool(true).intValue == nil)
    }

    /// Every string the canonical encoder writes parses back to itself (revisions are re-read and
    /// re-hashed from it), control characters and every plane included.
    @Test func canonicalEncodingRoundTrips() throws {
        var text = ""
        for scalar in (0..<0x80).compactMap(Unicode.Scalar.init) { text.unicodeScalars.append(scalar) }
        text += "é€😀\u{10FFFF}\u{FFFD}\u{2028}"
        let value: JSONValue = [
            "s": .string(text), "n": [1, -1, .double(1.5), .double(1e300), .double(0.1), .double(-0.0), .int(.max), .int(.min)], "b": [true, false, nil],
        ]
        #expect(try JSONValue.parse(value.canonicalBytes) == value)
    }

    /// Seeded mutations of valid documents: nothing traps, and whatever parses survives a round trip.
    @Test func mutatedDocumentsNeverTrap() throws {
        let seeds = [
            #"{"user":"admin","password":"x","session-timeout":600,"read-only":false}"#,
            #"{"name":"h\u00e9","ip-address":"192.0.2.1","groups":["a","b"],"nat-settings":{"auto-rule":true}}"#,
            #"[1,-2.5e-3,"\ud83d\ude00",null,{"a":[[]]},"\\\/\"\n"]"#,
        ].map(Self.bytes)
        let alphabet = Array(#"{}[]",:\/-+.eE0123456789abcdefuntrlsx "#.utf8) + [0x00, 0x0A, 0x7F, 0x80, 0xBF, 0xC3, 0xE2, 0xED, 0xF0, 0xFF]
        var random = SeededRandom(seed: 18)
        var parsed = 0
        for round in 0..<20_000 {
            var input = seeds[round % seeds.count]
            for _ in 0...random.below(4) {
                let position = random.below(input.count + 1)
                switch random.below(3) {
                case 0: input.insert(alphabet[random.below(alphabet.count)], at: position)
                case 1: if position < input.count { input.remove(at: position) }
                default: if position < input.count { input[position] = alphabet[random.below(alphabet.count)] }
                }
            }
            guard let value = try? JSONValue.parse(input) else { continue }
            parsed += 1
            #expect(try JSONValue.parse(value.canonicalBytes) == value, "round \(round): \(String(decoding: input, as: UTF8.self))")
        }
        #expect(parsed > 100)
        for _ in 0..<5_000 {
            let noise = (0..<random.below(64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = try? JSONValue.parse(noise)
        }
    }
}

/// SplitMix64: one seed reproduces a run.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }
}
