import Foundation
import Testing

@testable import ManagementModel

@Suite("Revisions and the hash chain")
struct RevisionTests {
    func revision(after previous: Revision?, name: String) -> Revision {
        let object = ManagedObject(
            uid: "u-\(name)", type: .host, name: name, fields: ["ipv4-address": "192.0.2.1"],
            meta: MetaInfo(creator: "a", creationTimeMilliseconds: 1, lastModifier: "a", lastModifyTimeMilliseconds: 1))
        return Revision(
            after: previous.map { ($0.number, $0.hash) }, epoch: .init(term: 1, server: "primary"), publishedAtMilliseconds: 5,
            author: "alice", sessionUID: "s", sessionName: "n", changes: [.upsert(object), .delete(uid: "x", type: .host, name: "old")])
    }

    @Test func revisionsChainFromGenesis() {
        let first = revision(after: nil, name: "a")
        let second = revision(after: first, name: "b")
        #expect(first.number == 1 && first.previousHash == Revision.genesisHash)
        #expect(second.number == 2 && second.previousHash == first.hash)
        #expect(JournalVerifier.verify([first, second]) == nil)
    }

    @Test func hashIsStableThroughEncoding() throws {
        let first = revision(after: nil, name: "a")
        let decoded = Revision(json: try JSONValue.parse(first.json.canonicalString))!
        #expect(decoded == first)
        #expect(decoded.computedHash == first.hash)
    }

    @Test func tamperingAndGapsAreReported() {
        let first = revision(after: nil, name: "a")
        var second = revision(after: first, name: "b")
        second.author = "mallory"
        #expect(JournalVerifier.verify([first, second])?.revision == 2)
        let third = revision(after: revision(after: first, name: "b"), name: "c")
        #expect(JournalVerifier.verify([first, third])?.reason.contains("gap") == true)
    }

    @Test func canonicalEncodingSortsKeysAndEscapes() throws {
        let value: JSONValue = ["b": 1, "a": ["x\"y\n", true, nil]]
        #expect(value.canonicalString == #"{"a":["x\"y\n",true,null],"b":1}"#)
        #expect(try JSONValue.parse(value.canonicalString) == value)
        #expect(throws: JSONParseError.self) { try JSONValue.parse("{\"a\":") }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
    }

    /// Stored revisions are hashed over this encoding: every escape, at the start, middle and end of a
    /// string and side by side, and non-ASCII text, must come out byte for byte as it always has.
    @Test func canonicalEscapesAreByteExact() throws {
        let text = "\"a\\b\u{01}\t\r\nc\u{1f}é→😀\""
        let value: JSONValue = ["k": .string(text), "plain": .string(String(repeating: "x", count: 300))]
        let expected = #"{"k":"\"a\\b\u0001\t\r\nc\u001fé→😀\"","plain":""# + String(repeating: "x", count: 300) + #""}"#
        #expect(value.canonicalString == expected)
        #expect(try JSONValue.parse(value.canonicalString) == value)
        // A revision's hash, as computed when this encoding was first written: stored journals depend on it.
        #expect(revision(after: nil, name: "a\"b").hash == "2552a20312c606459881b5f0d597b7de47718c0b550b207881b0ebf4a4eda012")
    }
}

@Suite("Timestamps")
struct TimestampTests {
    @Test func iso8601MatchesFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        for milliseconds: Int64 in [0, 1_700_000_000_123, 951_782_400_000, 4_102_444_799_000, -86_400_000, 1_795_598_744_421] {
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds / 1000)))
            #expect(Renderer.iso8601(milliseconds: milliseconds) == expected)
        }
    }
}
