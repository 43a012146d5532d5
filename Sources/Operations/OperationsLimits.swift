/// Every bound of the operations tools in one place.
public enum OperationsLimits {
    /// The highest epoch term a restore or an import may raise to (HACore's `Epoch.termMax`: a term
    /// no real promotion history reaches, with room left for later promotions).
    public static let epochTermMax: UInt64 = 1 << 62
    /// An archive's manifest (JSON); a larger one is refused before it is parsed.
    public static let manifestBytesMax = 1 << 20
    /// Parts in one archive (a snapshot holds every file of a data directory).
    public static let partsMax = 4_096
    /// Encrypted parts are sealed in chunks of this many plaintext bytes (AES-GCM, one tag each).
    public static let encryptionChunkBytes = 1 << 20
    /// The chunk sizes a manifest may declare (read from the file, so checked before any use).
    public static let encryptionChunkBytesRange = 1_024...(16 << 20)
    /// Archives are flushed to disk every this many bytes while written (see `PacedFlush`).
    public static let flushBytes = 8 << 20
    /// Streaming buffer for copying and hashing.
    public static let copyBufferBytes = 1 << 20
    /// scrypt cost written into new archives: N = 2^15, r = 8, p = 1 (32 MiB, ~0.1 s per derivation).
    public static let scryptRounds = 1 << 15
    public static let scryptBlockSize = 8
    public static let scryptParallelism = 1
    /// The most a manifest may ask for (a hostile file must not make verification take minutes or GiBs).
    public static let scryptRoundsMax = 1 << 20
    public static let scryptBlockSizeMax = 16
    public static let scryptParallelismMax = 4
    /// A passphrase file: bytes read at most, and the shortest passphrase accepted.
    public static let passphraseBytesMax = 1_024
    public static let passphraseBytesMin = 12
    /// A migrate export file (JSON, parsed whole).
    public static let migrateFileBytesMax = 1 << 30
    /// Changes per revision written by `migrate import` (each revision must fit an HA sync frame).
    public static let importChangesPerRevision = 1_000
    /// Scheduled backups: how many are kept, at most.
    public static let retentionCountMax = 1_000
    /// Probing a peer management server before a restore as the new primary.
    public static let peerProbeTimeoutMilliseconds = 1_500
    /// The node-local status file of the last backup.
    public static let statusFileBytesMax = 64 * 1024
}
