import Crypto

/// The fencing token of Management HA: (term, server), ordered lexicographically.
public struct RevisionEpoch: Sendable, Equatable, Comparable, Hashable {
    public var term: UInt64
    public var server: String
    public init(term: UInt64, server: String) {
        self.term = term
        self.server = server
    }
    public static func < (lhs: Self, rhs: Self) -> Bool { (lhs.term, lhs.server) < (rhs.term, rhs.server) }
}

/// One published change set. `hash` is SHA-256 over the canonical JSON of every other field, and
/// `previousHash` chains it to the revision before (all zeros for revision 1).
public struct Revision: Sendable, Equatable {
    public static let genesisHash = String(repeating: "0", count: 64)

    public var number: UInt64
    public var epoch: RevisionEpoch
    public var publishedAtMilliseconds: Int64
    public var author: String
    public var sessionUID: String
    public var sessionName: String
    public var changes: [ObjectChange]
    public var previousHash: String
    public var hash: String

    /// Builds the next revision after `previous` (nil: this is revision 1) and computes its hash.
    public init(
        after previous: (number: UInt64, hash: String)?, epoch: RevisionEpoch, publishedAtMilliseconds: Int64,
        author: String, sessionUID: String, sessionName: String, changes: [ObjectChange]
    ) {
        self.number = (previous?.number ?? 0) + 1
        self.epoch = epoch
        self.publishedAtMilliseconds = publishedAtMilliseconds
        self.author = author
        self.sessionUID = sessionUID
        self.sessionName = sessionName
        self.changes = changes
        self.previousHash = previous?.hash ?? Revision.genesisHash
        self.hash = ""
        self.hash = computedHash
    }

    /// The fields the hash covers, canonically encoded. A number or term beyond Int64 (the journal
    /// refuses to store one) is encoded as Int64.max rather than trapping.
    public var hashedBody: JSONValue {
        .object([
            "number": .int(Int64(clamping: number)),
            "epoch": .object(["term": .int(Int64(clamping: epoch.term)), "server": .string(epoch.server)]),
            "published-at": .int(publishedAtMilliseconds),
            "author": .string(author),
            "session-uid": .string(sessionUID),
            "session-name": .string(sessionName),
            "previous-hash": .string(previousHash),
            "changes": .array(changes.map(Revision.encode)),
        ])
    }

    public var computedHash: String {
        Hex.encode(SHA256.hash(data: hashedBody.canonicalBytes))
    }

    /// The whole revision, hash included: what the journal stores and peers receive.
    public var json: JSONValue {
        guard case .object(var fields) = hashedBody else { preconditionFailure("revision body is an object") }
        fields["hash"] = .string(hash)
        return .object(fields)
    }

    /// Decodes a stored revision. The hash is taken as stored; `verify` checks it.
    public init?(json: JSONValue) {
        guard let number = json["number"]?.intValue.flatMap(UInt64.init(exactly:)),
            let term = json["epoch"]?["term"]?.intValue.flatMap(UInt64.init(exactly:)),
            let server = json["epoch"]?["server"]?.stringValue, let at = json["published-at"]?.intValue,
            let author = json["author"]?.stringValue, let previous = json["previous-hash"]?.stringValue,
            let hash = json["hash"]?.stringValue, let items = json["changes"]?.arrayValue
        else { return nil }
        var changes: [ObjectChange] = []
        for item in items {
            guard let change = Revision.decode(item) else { return nil }
            changes.append(change)
        }
        self.number = number
        self.epoch = RevisionEpoch(term: term, server: server)
        self.publishedAtMilliseconds = at
        self.author = author
        self.sessionUID = json["session-uid"]?.stringValue ?? ""
        self.sessionName = json["session-name"]?.stringValue ?? ""
        self.changes = changes
        self.previousHash = previous
        self.hash = hash
    }

    public static func encode(_ change: ObjectChange) -> JSONValue {
        switch change {
        case .upsert(let object): return .object(["op": .string("upsert"), "object": object.json])
        case .delete(let uid, let type, let name):
            return .object(["op": .string("delete"), "uid": .string(uid), "type": .string(type.rawValue), "name": .string(name)])
        }
    }

    public static func decode(_ item: JSONValue) -> ObjectChange? {
        switch item["op"]?.stringValue {
        case "upsert": return item["object"].flatMap(ManagedObject.init(json:)).map(ObjectChange.upsert)
        case "delete":
            guard let uid = item["uid"]?.stringValue, let type = item["type"]?.stringValue.flatMap(ObjectType.init(rawValue:)) else { return nil }
            return .delete(uid: uid, type: type, name: item["name"]?.stringValue ?? "")
        default: return nil
        }
    }
}

/// Why a journal does not verify.
public struct JournalBreak: Error, Sendable, Equatable, CustomStringConvertible {
    public let revision: UInt64
    public let reason: String
    public init(revision: UInt64, reason: String) {
        self.revision = revision
        self.reason = reason
    }
    public var description: String { "journal broken at revision \(revision): \(reason)" }
}

public enum JournalVerifier {
    /// Checks numbering, chaining and every hash of revisions given in order.
    public static func verify(_ revisions: some Sequence<Revision>) -> JournalBreak? {
        var expected: (number: UInt64, hash: String) = (1, Revision.genesisHash)
        for revision in revisions {
            guard let problem = check(revision, expectedNumber: expected.number, expectedPrevious: expected.hash) else {
                expected = (revision.number + 1, revision.hash)
                continue
            }
            return problem
        }
        return nil
    }

    public static func check(_ revision: Revision, expectedNumber: UInt64, expectedPrevious: String) -> JournalBreak? {
        if let problem = checkLinks(revision, expectedNumber: expectedNumber, expectedPrevious: expectedPrevious) { return problem }
        if revision.computedHash != revision.hash {
            return JournalBreak(revision: revision.number, reason: "content does not match its hash (modified after publish)")
        }
        return nil
    }

    /// Numbering and chaining only (the content hash is `check`'s part).
    public static func checkLinks(_ revision: Revision, expectedNumber: UInt64, expectedPrevious: String) -> JournalBreak? {
        if revision.number != expectedNumber {
            return JournalBreak(revision: expectedNumber, reason: "expected revision \(expectedNumber), found \(revision.number) (a gap)")
        }
        if revision.previousHash != expectedPrevious {
            return JournalBreak(revision: revision.number, reason: "previous-hash does not match the hash of revision \(revision.number &- 1)")
        }
        return nil
    }
}

public enum Hex {
    static let digits = Array("0123456789abcdef".utf8)
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
