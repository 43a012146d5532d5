import HACore
import Testing

// The journal keeps a SHA-256 hex hash in 32 bytes and any other hash as given: every hash it hands
// back, and every comparison it makes, must be exactly the text it was given.
@Suite("Journal hashes") struct JournalHashTests {
    /// 64 lowercase hex digits, as the store writes a SHA-256 hash (drawn from `text`, not hashed).
    static func sha256Hex(_ text: String) -> String {
        var state: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 { state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        let digits = Array("0123456789abcdef")
        var hex = ""
        for _ in 0..<64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            hex.append(digits[Int(truncatingIfNeeded: state >> 60)])
        }
        return hex
    }

    /// A journal of `hashes`, one revision each, linked in order.
    static func journal(_ hashes: [String]) -> Journal {
        var journal = Journal()
        var previous = RevisionHead.empty.hash
        for (offset, hash) in hashes.enumerated() {
            journal.append(
                ReplicatedRevision(
                    number: UInt64(offset + 1), epoch: Epoch(term: 1, server: "A"), previousHash: previous, hash: hash, payload: [1, 2, 3]))
            previous = hash
        }
        return journal
    }

    @Test("every hash comes back as given, SHA-256 hex or not")
    func roundTrip() {
        let hashes = [
            Self.sha256Hex("one"), Self.sha256Hex("two").uppercased(), String(Self.sha256Hex("three").dropLast()), Self.sha256Hex("four") + "0",
            "h5", "", "g" + String(Self.sha256Hex("six").dropFirst()), Self.sha256Hex("seven"),
        ]
        let journal = Self.journal(hashes)
        for (offset, hash) in hashes.enumerated() {
            #expect(journal.hash(at: UInt64(offset + 1)) == hash)
            #expect(journal.contains(RevisionHead(number: UInt64(offset + 1), hash: hash)) == true)
        }
        #expect(journal.revisions.map(\.hash) == hashes)
        #expect(journal.revisions.map(\.previousHash) == [RevisionHead.empty.hash] + hashes.dropLast())
        #expect(journal.head == RevisionHead(number: 8, hash: hashes[7]))
    }

    @Test("a hash differing in one digit or in case is another hash")
    func comparisons() {
        let first = Self.sha256Hex("one")
        let journal = Self.journal([first, Self.sha256Hex("two")])
        var changed = Array(first.utf8)
        changed[63] = changed[63] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
        #expect(journal.contains(RevisionHead(number: 1, hash: String(decoding: changed, as: UTF8.self))) == false)
        #expect(journal.contains(RevisionHead(number: 1, hash: first.uppercased())) == false)
        #expect(journal.contains(RevisionHead(number: 3, hash: first)) == false, "beyond the head")
    }

    @Test("truncating and installing a snapshot keep the head's hash")
    func headAfterChanges() {
        let hashes = (1...5).map { Self.sha256Hex("r\($0)") }
        var journal = Self.journal(hashes)
        _ = journal.truncate(after: 3)
        #expect(journal.head == RevisionHead(number: 3, hash: hashes[2]))
        _ = journal.truncate(after: 0)
        #expect(journal.head == .empty)
        journal.installSnapshot(
            at: RevisionHead(number: 5, hash: hashes[4]), spans: [EpochSpan(epoch: Epoch(term: 1, server: "A"), firstNumber: 1, lastNumber: 5)])
        #expect(journal.head == RevisionHead(number: 5, hash: hashes[4]))
    }
}
