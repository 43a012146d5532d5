import Foundation

/// The serials of node certificates the ICA has revoked: part of the ICA state that HA synchronizes, and
/// what `SICVerifier` refuses. A value: revoking returns nothing but a changed list, which the caller
/// persists and distributes.
///
/// Bounded: at most `TrustLimits.revocationEntriesMax` entries. An entry whose certificate has expired
/// can be pruned (`removeExpired`), since verification refuses that certificate anyway.
///
/// Stored as JSON text (`jsonText`), entries sorted by serial, keys sorted: the same list always gives
/// the same bytes, so replicas can compare hashes.
public struct RevocationList: Sendable, Equatable, Codable {
    /// Why a certificate was revoked (a subset of RFC 5280's CRLReason that SIC uses).
    public enum Reason: String, Sendable, Equatable, Codable, CaseIterable {
        /// `reset-sic`: the node is enrolled again with a new key.
        case sicReset = "sic-reset"
        /// The node's key may be known to someone else.
        case keyCompromise = "key-compromise"
        /// A renewal replaced the certificate.
        case superseded = "superseded"
        /// The node was deleted.
        case nodeRemoved = "node-removed"
        /// Anything else; an administrator's decision.
        case unspecified = "unspecified"
    }

    /// One revoked certificate.
    public struct Entry: Sendable, Equatable, Codable {
        /// Lowercase hex serial, as `IssuedNodeCertificate.serial`.
        public let serial: String
        /// When it was revoked, in milliseconds since 1970.
        public let revokedAtMilliseconds: Int64
        /// Why.
        public let reason: Reason
        /// When the certificate stops being valid anyway, in milliseconds since 1970, when known.
        public let certificateNotValidAfterMilliseconds: Int64?
        /// The uid of the node the certificate was issued to, when known (lists written before it was
        /// recorded lack it): a revocation closes that node's open channels, and its status says revoked.
        public let node: String?

        /// True when the revocation ends the node's trust (not a renewal that replaced the certificate).
        public var endsTrust: Bool { reason != .superseded }
    }

    /// Entries sorted by serial, at most one per serial.
    public private(set) var entries: [Entry]

    /// An empty list.
    public init() { entries = [] }

    /// Number of revoked serials.
    public var count: Int { entries.count }

    /// The entry for `serial` (any case), if it is revoked.
    public func entry(forSerial serial: String) -> Entry? {
        let key = serial.lowercased()
        let index = insertionIndex(key)
        guard index < entries.count, entries[index].serial == key else { return nil }
        return entries[index]
    }

    /// True when `serial` (any case) is revoked.
    public func contains(serial: String) -> Bool { entry(forSerial: serial) != nil }

    /// Revokes `serial`. Returns false, changing nothing, when it was already revoked. Throws
    /// `.invalidArgument` for a serial that is not 1...40 hex bytes, or when the list is full.
    @discardableResult
    public mutating func revoke(
        serial: String, reason: Reason, node: String? = nil, certificateNotValidAfter: Date? = nil, now: Date
    ) throws -> Bool {
        let key = serial.lowercased()
        guard Self.isValidSerial(key) else {
            throw TrustError(.invalidArgument, "not a certificate serial (hex, 1...40 bytes): \(serial.prefix(90))")
        }
        guard (node?.utf8.count ?? 0) <= TrustLimits.revocationNodeLengthMax else {
            throw TrustError(.invalidArgument, "a node uid is at most \(TrustLimits.revocationNodeLengthMax) bytes")
        }
        let index = insertionIndex(key)
        if index < entries.count && entries[index].serial == key { return false }
        guard entries.count < TrustLimits.revocationEntriesMax else {
            throw TrustError(
                .invalidArgument,
                "the revocation list is full (\(TrustLimits.revocationEntriesMax) entries); remove expired entries first"
            )
        }
        entries.insert(
            Entry(
                serial: key, revokedAtMilliseconds: milliseconds(now), reason: reason,
                certificateNotValidAfterMilliseconds: certificateNotValidAfter.map(milliseconds),
                node: node),
            at: index)
        return true
    }

    /// The newest entry that ended `node`'s trust (a reset, a compromise, a removal), if any.
    public func lastTrustEnding(ofNode node: String) -> Entry? {
        entries.filter { $0.node == node && $0.endsTrust }.max { $0.revokedAtMilliseconds < $1.revokedAtMilliseconds }
    }

    /// The nodes whose trust entries in this list ended that `older` did not hold: what a change of
    /// the list must cut off at once.
    public func nodesNewlyRevoked(since older: RevocationList) -> [String] {
        let nodes = entries.filter { $0.endsTrust && !older.contains(serial: $0.serial) }.compactMap(\.node)
        return Array(Set(nodes)).sorted()
    }

    /// Drops entries whose certificate expired before `now`; returns how many.
    @discardableResult
    public mutating func removeExpired(now: Date) -> Int {
        let nowMilliseconds = milliseconds(now)
        let before = entries.count
        entries.removeAll { entry in
            guard let notAfter = entry.certificateNotValidAfterMilliseconds else { return false }
            return notAfter < nowMilliseconds
        }
        return before - entries.count
    }

    /// The list as deterministic JSON text, for storage and sync.
    public var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do {
            return String(decoding: try encoder.encode(self), as: UTF8.self)
        } catch {
            preconditionFailure("encoding a revocation list cannot fail: \(error)")
        }
    }

    /// Parses `jsonText`, checking every bound and invariant (a tampered or damaged file is refused,
    /// not half-loaded). Throws `.invalidArgument`.
    public init(jsonText: String) throws {
        guard jsonText.utf8.count <= TrustLimits.revocationListBytesMax else {
            throw TrustError(
                .invalidArgument, "revocation list is larger than \(TrustLimits.revocationListBytesMax) bytes")
        }
        let decoded: RevocationList
        do {
            decoded = try JSONDecoder().decode(RevocationList.self, from: Data(jsonText.utf8))
        } catch {
            throw TrustError(.invalidArgument, "revocation list cannot be parsed: \(error)")
        }
        guard decoded.entries.count <= TrustLimits.revocationEntriesMax else {
            throw TrustError(
                .invalidArgument, "revocation list has more than \(TrustLimits.revocationEntriesMax) entries")
        }
        for (index, entry) in decoded.entries.enumerated() {
            guard Self.isValidSerial(entry.serial) else {
                throw TrustError(
                    .invalidArgument, "revocation list holds an invalid serial: \(entry.serial.prefix(90))")
            }
            guard (entry.node?.utf8.count ?? 0) <= TrustLimits.revocationNodeLengthMax else {
                throw TrustError(.invalidArgument, "revocation list holds a node uid longer than \(TrustLimits.revocationNodeLengthMax) bytes")
            }
            guard index == 0 || decoded.entries[index - 1].serial < entry.serial else {
                throw TrustError(.invalidArgument, "revocation list entries are not sorted and unique")
            }
        }
        self = decoded
    }

    /// Lowercase hex, even length, 2...80 digits (RFC 5280 allows serials of up to 20 bytes; 40 leaves room).
    public static func isValidSerial(_ serial: String) -> Bool {
        let bytes = Array(serial.utf8)
        guard bytes.count >= 2, bytes.count <= 80, bytes.count % 2 == 0 else { return false }
        return bytes.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
        }
    }

    /// Binary search: the index of the first entry whose serial is not less than `key`.
    private func insertionIndex(_ key: String) -> Int {
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[middle].serial < key { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
