/// The core's view of this server's revision journal: a snapshot point (`base`) and the revisions after it.
///
/// The runtime loads it from the store at start (`HAStateMachine.init`) and the core keeps it current from
/// its own decisions (revisions committed, applied, truncated after an export, snapshots installed). The
/// core holds it in memory because every delta-sync, collision and promotion decision depends on it, so
/// it holds per revision only what those decisions read: its hash and its payload's size (the epoch is
/// in `spans`). The payloads stay in the store's journal; revisions read from here carry
/// `RevisionPayload.stored`, and the driver reads the bytes when one leaves the server.
public struct Journal: Hashable, Sendable {
    /// What the journal keeps of one revision after the base: 48 bytes for a SHA-256 hash, where the
    /// hex string took about 140 (a heap object of its own), for every revision of a long journal.
    struct Entry: Hashable, Sendable {
        var hash: CompactHash
        var payloadByteCount: Int
    }

    /// The last revision covered by an installed full-sync snapshot; `.empty` when there was none.
    public private(set) var base: RevisionHead
    /// Revisions `base.number + 1 ... head.number`, in order.
    private var entries: [Entry]
    /// The head's hash as given (read on every step; decoding it from its entry would allocate).
    private var headHash: String
    /// Epoch spans covering revisions `1 ... head.number` (including those under `base`).
    public private(set) var spans: [EpochSpan]

    public static let empty = Journal()

    public init() {
        base = .empty
        entries = []
        headHash = RevisionHead.empty.hash
        spans = []
    }

    /// A journal as the store holds it: `base` with the spans that cover it, then `revisions` after it.
    public init(base: RevisionHead, baseSpans: [EpochSpan], revisions: [ReplicatedRevision]) {
        precondition(base.number == (baseSpans.last?.lastNumber ?? 0), "base spans must end at the base")
        self.base = base
        self.entries = []
        self.headHash = base.hash
        self.spans = baseSpans
        for revision in revisions { append(revision) }
    }

    public var head: RevisionHead { RevisionHead(number: base.number + UInt64(entries.count), hash: headHash) }

    /// How many revisions are held individually (after the base).
    public var revisionCount: Int { entries.count }

    /// The hash of revision `number`, or nil when this journal does not hold it individually.
    public func hash(at number: UInt64) -> String? {
        if number == base.number { return base.hash }
        guard number > base.number, number <= head.number else { return nil }
        if number == head.number { return headHash }
        return entries[Int(number - base.number - 1)].hash.string
    }

    /// True when revision `head.number` here has `head.hash`; nil when it lies under the snapshot base.
    public func contains(_ other: RevisionHead) -> Bool? {
        if other.number < base.number { return nil }
        if other.number == base.number { return base.hash == other.hash }
        guard other.number <= head.number else { return false }
        if other.number == head.number { return headHash == other.hash }
        // Compared compactly: decoding the held hash would allocate a string per question.
        return entries[Int(other.number - base.number - 1)].hash == CompactHash(other.hash)
    }

    /// The head as of revision `number` (which must be held individually or be the base).
    public func headAt(_ number: UInt64) -> RevisionHead {
        guard let hash = hash(at: number) else { preconditionFailure("revision \(number) is not held individually") }
        return RevisionHead(number: number, hash: hash)
    }

    /// The epoch revision `number` was written in, from the spans; nil beyond the head.
    public func epoch(at number: UInt64) -> Epoch? {
        let index = firstSpanIndex(endingAtOrAfter: number)
        guard number >= 1, index < spans.count, spans[index].firstNumber <= number else { return nil }
        return spans[index].epoch
    }

    /// Revision `number` (payload `.stored`), or nil when it is not held individually.
    public func revision(_ number: UInt64) -> ReplicatedRevision? {
        guard number > base.number, number <= head.number else { return nil }
        return revisions(after: number - 1, limit: 1).first
    }

    /// Every revision held individually, oldest first (payloads `.stored`).
    public var revisions: [ReplicatedRevision] { revisions(after: base.number, limit: entries.count) }

    /// Up to `limit` revisions after `number` (which must not lie under the base), payloads `.stored`.
    public func revisions(after number: UInt64, limit: Int) -> [ReplicatedRevision] {
        precondition(number >= base.number, "revisions under the snapshot base are not held individually")
        let start = Int(number - base.number)
        let end = start + min(entries.count - start, max(limit, 0))
        guard start < end else { return [] }
        var result: [ReplicatedRevision] = []
        result.reserveCapacity(end - start)
        // Spans are in order: find the first revision's, then walk on with the numbers.
        var span = firstSpanIndex(endingAtOrAfter: number + 1)
        var previousHash = hash(at: number) ?? ""
        for index in start..<end {
            let revisionNumber = base.number + UInt64(index) + 1
            while spans[span].lastNumber < revisionNumber { span += 1 }
            let entry = entries[index]
            let hash = entry.hash.string
            result.append(
                ReplicatedRevision(
                    number: revisionNumber, epoch: spans[span].epoch, previousHash: previousHash, hash: hash,
                    payload: .stored(byteCount: entry.payloadByteCount)))
            previousHash = hash
        }
        return result
    }

    /// The index of the first span whose last revision is `number` or later (binary search).
    private func firstSpanIndex(endingAtOrAfter number: UInt64) -> Int {
        var low = 0
        var high = spans.count
        while low < high {
            let middle = low + (high - low) / 2
            if spans[middle].lastNumber < number { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Up to `limit` revisions after `number` whose payloads add up to at most `payloadBytesMax`, but
    /// never none when there is one: the first always comes, however large.
    public func revisions(after number: UInt64, limit: Int, payloadBytesMax: Int) -> [ReplicatedRevision] {
        precondition(number >= base.number, "revisions under the snapshot base are not held individually")
        let start = Int(number - base.number)
        let end = start + min(entries.count - start, max(limit, 0))
        var bytes = 0
        var count = 0
        for index in start..<max(start, end) {
            bytes += entries[index].payloadByteCount
            if index > start, bytes > payloadBytesMax { break }
            count += 1
        }
        return revisions(after: number, limit: count)
    }

    /// Heads before `head`, newest first, ever further apart (`head` - 1, - 2, - 4, ...), ending with the
    /// base: a peer finds the last one it shares in a few dozen entries, however long the journal.
    public var checkpoints: [RevisionHead] {
        var result: [RevisionHead] = []
        var distance: UInt64 = 1
        while head.number - base.number > distance {
            result.append(headAt(head.number - distance))
            distance *= 2
        }
        if head.number > base.number { result.append(base) }
        return result
    }

    /// The epoch of the last revision, or nil for an empty journal.
    public var lastEpoch: Epoch? { spans.last?.epoch }

    public mutating func append(_ revision: ReplicatedRevision) {
        let current = head
        precondition(revision.number == current.number + 1, "revisions are numbered contiguously")
        precondition(revision.previousHash == current.hash, "revision \(revision.number) does not link to the head")
        if let last = spans.last {
            precondition(revision.epoch >= last.epoch, "epochs never go backwards inside a journal")
        }
        entries.append(Entry(hash: CompactHash(revision.hash), payloadByteCount: revision.payload.byteCount))
        headHash = revision.hash
        if let last = spans.indices.last, spans[last].epoch == revision.epoch {
            spans[last].lastNumber = revision.number
        } else {
            spans.append(EpochSpan(epoch: revision.epoch, firstNumber: revision.number, lastNumber: revision.number))
        }
    }

    /// Forgets all but the last `keep` revisions held individually: the revision before them becomes the
    /// base, as after installing a snapshot there (the spans still cover every revision). What lies
    /// under the base stays in the store; the core treats it as it treats a snapshot's revisions.
    public mutating func compact(keepingLast keep: Int) {
        let forget = entries.count - max(keep, 0)
        guard forget > 0 else { return }
        base = headAt(base.number + UInt64(forget))
        entries.removeFirst(forget)
    }

    /// Holding more than `max` revisions individually, forgets the older half of `max` (at least one is
    /// kept): amortized, one compaction per `max` / 2 appends. True when it compacted.
    @discardableResult
    public mutating func compactIfLonger(than max: Int) -> Bool {
        guard entries.count > max else { return false }
        compact(keepingLast: Swift.max(max / 2, 1))
        return true
    }

    /// Removes and returns every revision after `number` (payloads `.stored`). Callers export them first: the core only
    /// truncates revisions that an administrator chose to give up, after `exportDivergent`.
    /// Truncating below the base drops the whole journal (a full sync follows), unless `hashAtNumber`
    /// gives revision `number`'s hash (the base was one `compact` made: the store still holds what lies
    /// under it): then revision `number` becomes the base.
    public mutating func truncate(after number: UInt64, hashAtNumber: String? = nil) -> [ReplicatedRevision] {
        guard number >= base.number else {
            let removed = revisions
            guard let hashAtNumber else {
                self = Journal()
                return removed
            }
            base = RevisionHead(number: number, hash: hashAtNumber)
            entries = []
            headHash = hashAtNumber
            spans = spans(upTo: number)
            return removed
        }
        guard number < head.number else { return [] }
        let keep = Int(number - base.number)
        let removed = revisions(after: number, limit: entries.count - keep)
        entries.removeSubrange(keep...)
        headHash = entries.last?.hash.string ?? base.hash
        while let last = spans.last, last.firstNumber > number { spans.removeLast() }
        if let last = spans.indices.last, spans[last].lastNumber > number { spans[last].lastNumber = number }
        return removed
    }

    /// Replaces the journal by a full-sync snapshot taken at `snapshotHead`.
    public mutating func installSnapshot(at snapshotHead: RevisionHead, spans snapshotSpans: [EpochSpan]) {
        precondition(snapshotHead.number == (snapshotSpans.last?.lastNumber ?? 0), "snapshot spans end at its head")
        base = snapshotHead
        entries = []
        headHash = snapshotHead.hash
        spans = snapshotSpans
    }

    /// The number of the last revision two journals share, found from their epoch spans alone.
    ///
    /// Spans are compared in order: equal spans mean equal revisions; the first span that differs in
    /// epoch ends the common prefix before it, one that differs only in length ends it at the shorter end.
    public static func commonPrefixNumber(_ first: [EpochSpan], _ second: [EpochSpan]) -> UInt64 {
        var common: UInt64 = 0
        for index in 0..<min(first.count, second.count) {
            let a = first[index]
            let b = second[index]
            guard a.epoch == b.epoch, a.firstNumber == b.firstNumber else { return common }
            common = min(a.lastNumber, b.lastNumber)
            if a.lastNumber != b.lastNumber { return common }
        }
        return common
    }

    /// Spans covering revisions `1 ... number` only.
    public func spans(upTo number: UInt64) -> [EpochSpan] {
        var result: [EpochSpan] = []
        for span in spans where span.firstNumber <= number {
            var clipped = span
            clipped.lastNumber = min(span.lastNumber, number)
            result.append(clipped)
        }
        return result
    }
}

/// A revision hash held compactly: a SHA-256 digest in lowercase hex (what the store writes) as its 32
/// bytes, any other text as given. `string` gives back exactly the text it was made from.
enum CompactHash: Hashable, Sendable {
    case sha256(UInt64, UInt64, UInt64, UInt64)
    case text(String)

    init(_ hash: String) {
        // Only 64 digits can be a digest: any other length is text without reading a byte of it.
        guard hash.utf8.count == 64 else {
            self = .text(hash)
            return
        }
        var words: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        var digits = 0
        for byte in hash.utf8 {
            guard digits < 64, let value = Self.value(ofLowercaseHexDigit: byte) else {
                self = .text(hash)
                return
            }
            switch digits / 16 {
            case 0: words.0 = words.0 << 4 | UInt64(value)
            case 1: words.1 = words.1 << 4 | UInt64(value)
            case 2: words.2 = words.2 << 4 | UInt64(value)
            default: words.3 = words.3 << 4 | UInt64(value)
            }
            digits += 1
        }
        self = digits == 64 ? .sha256(words.0, words.1, words.2, words.3) : .text(hash)
    }

    var string: String {
        switch self {
        case .text(let text): return text
        case .sha256(let a, let b, let c, let d):
            return String(unsafeUninitializedCapacity: 64) { buffer in
                Self.writeHex(a, into: buffer, at: 0)
                Self.writeHex(b, into: buffer, at: 16)
                Self.writeHex(c, into: buffer, at: 32)
                Self.writeHex(d, into: buffer, at: 48)
                return 64
            }
        }
    }

    static func writeHex(_ word: UInt64, into buffer: UnsafeMutableBufferPointer<UInt8>, at start: Int) {
        for digit in 0..<16 {
            buffer[start + digit] = hexDigits[Int(truncatingIfNeeded: (word >> UInt64(60 - 4 * digit)) & 0xf)]
        }
    }

    static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    static func value(ofLowercaseHexDigit byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
