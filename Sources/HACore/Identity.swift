/// A management server's stable name within its HA group ("primary", "secondary", "A").
///
/// Ordered by name so that every list the core produces (peers, messages) has one deterministic order.
public struct ServerID: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    public let name: String

    public init(_ name: String) {
        precondition(!name.isEmpty, "a server needs a non-empty name")
        self.name = name
    }

    public init(stringLiteral value: String) { self.init(value) }

    /// The owner of `Epoch.initial`: no server has ever been active.
    public static let nobody = ServerID(unchecked: "")

    private init(unchecked name: String) { self.name = name }

    public static func < (lhs: ServerID, rhs: ServerID) -> Bool { lhs.name < rhs.name }
    public var description: String { name.isEmpty ? "nobody" : name }
}

/// The fencing token of management HA: `(term, server)`, ordered lexicographically.
///
/// Every promotion creates a new epoch whose `server` is the promoted server, so an epoch names the only
/// server that may ever take writes in it. A server persists an epoch before it acts in it, and refuses
/// anything sent in a lower one.
public struct Epoch: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var term: UInt64
    public var server: ServerID

    public init(term: UInt64, server: ServerID) {
        self.term = term
        self.server = server
    }

    /// Before any promotion: nobody is active.
    public static let initial = Epoch(term: 0, server: .nobody)

    /// The highest term a peer's message may carry. Terms grow by one a promotion, so no real group
    /// gets near it; a message above it is broken or hostile, and adopting it would leave no room
    /// for the next promotion.
    public static let termMax: UInt64 = 1 << 62

    /// The epoch a promotion of `server` creates after this one.
    public func next(for server: ServerID) -> Epoch { Epoch(term: term + 1, server: server) }

    public static func < (lhs: Epoch, rhs: Epoch) -> Bool {
        // The names only when the terms tie (a tuple of both compared, and copied, them every time).
        lhs.term != rhs.term ? lhs.term < rhs.term : lhs.server < rhs.server
    }

    public var description: String { "\(term)/\(server)" }
}

/// `(number, hash)` of the last revision a server holds. Number 0 with an empty hash is the empty journal.
public struct RevisionHead: Hashable, Sendable, CustomStringConvertible {
    public var number: UInt64
    /// Lowercase hex of the revision's hash (SHA-256 in the product; HACore only compares it).
    public var hash: String

    public init(number: UInt64, hash: String) {
        self.number = number
        self.hash = hash
    }

    public static let empty = RevisionHead(number: 0, hash: "")

    public var description: String {
        number == 0 ? "#0" : "#\(number):\(hash.prefix(8))"
    }
}

/// One published change set as HA replicates it.
///
/// HACore checks numbering, the epoch and that `previousHash` links to the previous revision's `hash`.
/// It never looks inside `payload` (the foundation's serialized revision: author, time, changes) and it
/// does not compute hashes: the runtime verifies that `hash` matches the content when it applies it.
public struct ReplicatedRevision: Hashable, Sendable {
    public var number: UInt64
    /// The epoch of the active that published it. Together with `number` it names the revision uniquely,
    /// because only one server is ever active in an epoch.
    public var epoch: Epoch
    public var previousHash: String
    public var hash: String
    public var payload: RevisionPayload

    public init(number: UInt64, epoch: Epoch, previousHash: String, hash: String, payload: [UInt8]) {
        self.init(number: number, epoch: epoch, previousHash: previousHash, hash: hash, payload: .bytes(payload))
    }

    public init(number: UInt64, epoch: Epoch, previousHash: String, hash: String, payload: RevisionPayload) {
        self.number = number
        self.epoch = epoch
        self.previousHash = previousHash
        self.hash = hash
        self.payload = payload
    }

    public var head: RevisionHead { RevisionHead(number: number, hash: hash) }

    /// The same revision carrying `bytes`, its payload as the journal on disk holds it.
    public func withPayload(_ bytes: [UInt8]) -> ReplicatedRevision {
        var loaded = self
        loaded.payload = .bytes(bytes)
        return loaded
    }
}

/// A revision's payload as the core passes it on: the bytes, as a commit or a peer's message brings
/// them, or only their size, for a revision the core's journal lists. The journal keeps no payloads
/// (memory would grow with every publish, forever); the driver reads them from the storage's journal
/// when a revision leaves the server (`HAStorage.loadPayloads`).
public enum RevisionPayload: Hashable, Sendable {
    case bytes([UInt8])
    case stored(byteCount: Int)

    public var byteCount: Int {
        switch self {
        case .bytes(let bytes): bytes.count
        case .stored(let byteCount): byteCount
        }
    }

    /// The bytes, or nil when only the size is known here.
    public var bytes: [UInt8]? {
        if case .bytes(let bytes) = self { return bytes }
        return nil
    }
}

/// A run of consecutive journal revisions published in one epoch: revisions `firstNumber...lastNumber`.
///
/// Two journals agree exactly as far as their spans agree, because a revision is named by its number and
/// epoch. Exchanging spans (a few per promotion) finds where two journals diverge in one message.
public struct EpochSpan: Hashable, Sendable, CustomStringConvertible {
    public var epoch: Epoch
    public var firstNumber: UInt64
    public var lastNumber: UInt64

    public init(epoch: Epoch, firstNumber: UInt64, lastNumber: UInt64) {
        precondition(firstNumber >= 1 && firstNumber <= lastNumber, "an epoch span holds at least one revision")
        self.epoch = epoch
        self.firstNumber = firstNumber
        self.lastNumber = lastNumber
    }

    public var description: String { "\(epoch):\(firstNumber)-\(lastNumber)" }
}
