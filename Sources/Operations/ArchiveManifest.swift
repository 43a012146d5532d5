import Foundation

/// This build's release name, written into every archive and export.
public enum RampartRelease {
    public static let version = "0.9.0"
}

/// The table of contents of a backup or snapshot archive (see `ArchiveFile` for the layout). It
/// is stored in the clear, so `backup list` and `verify` can read it without the passphrase; the
/// contents it describes are checked against it on every restore.
public struct ArchiveManifest: Codable, Sendable, Equatable {
    public static let formatName = "rampart-archive"
    public static let formatVersion = 1

    public enum Kind: String, Codable, Sendable { case backup, snapshot }

    public struct Head: Codable, Sendable, Equatable {
        public var number: UInt64
        public var hash: String
        public init(number: UInt64, hash: String) {
            self.number = number
            self.hash = hash
        }
    }

    /// One stored file. `size`/`sha256` describe its content; `storedSize`/`storedSHA256` the bytes
    /// in the archive (they differ when encrypted), so corruption is found without the passphrase.
    public struct Part: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable { case sqlite, file }
        public var name: String
        /// Where it goes, relative to the data directory.
        public var path: String
        public var kind: Kind
        public var mode: UInt32
        public var offset: UInt64
        public var size: UInt64
        public var sha256: String
        public var storedSize: UInt64
        public var storedSHA256: String
        enum CodingKeys: String, CodingKey {
            case name, path, kind, mode, offset, size, sha256
            case storedSize = "stored-size"
            case storedSHA256 = "stored-sha256"
        }
    }

    public struct Encryption: Codable, Sendable, Equatable {
        public var algorithm: String
        public var kdf: String
        public var kdfRounds: Int
        public var kdfBlockSize: Int
        public var kdfParallelism: Int
        public var salt: String
        public var chunkBytes: Int
        /// HMAC-SHA256 of a fixed text under the derived key: tells a wrong passphrase apart from damage.
        public var keyCheck: String
        enum CodingKeys: String, CodingKey {
            case algorithm, kdf
            case kdfRounds = "kdf-rounds"
            case kdfBlockSize = "kdf-block-size"
            case kdfParallelism = "kdf-parallelism"
            case
                salt
            case chunkBytes = "chunk-bytes"
            case keyCheck = "key-check"
        }
    }

    public var format = Self.formatName
    public var formatVersion = Self.formatVersion
    public var kind: Kind
    public var archiveID: String
    public var createdAt: String
    public var createdAtMilliseconds: Int64
    public var server: String
    public var rampartVersion: String
    /// The management database's migrations, in order.
    public var schema: [String]
    public var head: Head?
    public var epochTerm: UInt64?
    public var objectCount: Int
    /// The other management servers the database records (its HA group), by name.
    public var groupPeers: [String]
    public var includesLogs: Bool
    public var encryption: Encryption?
    public var parts: [Part]

    enum CodingKeys: String, CodingKey {
        case format
        case formatVersion = "format-version"
        case kind
        case archiveID = "archive-id"
        case createdAt = "created-at"
        case
            createdAtMilliseconds = "created-at-ms"
        case server
        case rampartVersion = "rampart-version"
        case schema, head
        case
            epochTerm = "epoch-term"
        case objectCount = "object-count"
        case groupPeers = "group-peers"
        case includesLogs = "includes-logs"
        case
            encryption, parts
    }

    public init(
        kind: Kind, archiveID: String, createdAtMilliseconds: Int64, server: String, schema: [String], head: Head?,
        epochTerm: UInt64?, objectCount: Int, groupPeers: [String], includesLogs: Bool
    ) {
        self.kind = kind
        self.archiveID = archiveID
        self.createdAtMilliseconds = createdAtMilliseconds
        self.createdAt = Self.iso8601(createdAtMilliseconds)
        self.server = server
        self.rampartVersion = RampartRelease.version
        self.schema = schema
        self.head = head
        self.epochTerm = epochTerm
        self.objectCount = objectCount
        self.groupPeers = groupPeers
        self.includesLogs = includesLogs
        self.encryption = nil
        self.parts = []
    }

    public static func iso8601(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    var encoded: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try! encoder.encode(self))  // plain strings and numbers: encoding cannot fail
    }

    /// What this build can restore; nil when compatible, else why not.
    public func incompatibility(knownSchema: [String]) -> String? {
        guard format == Self.formatName else { return "format '\(format)' is not \(Self.formatName)" }
        guard formatVersion <= Self.formatVersion else {
            return
                "archive format version \(formatVersion) is newer than this Rampart's (\(Self.formatVersion)); use Rampart \(rampartVersion) or later, or move the data with `rampart migrate`"
        }
        if let unknown = schema.first(where: { !knownSchema.contains($0) }) {
            return
                "its database schema has migration '\(unknown)', which this Rampart (\(RampartRelease.version)) does not know: it was made by a newer Rampart (\(rampartVersion)); move the data with `rampart migrate export`/`import` instead"
        }
        return nil
    }
}
