import Crypto
import Foundation
import ManagementModel
import TrustCore
import _CryptoExtras

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One file to put into an archive.
public struct ArchiveInput: Sendable {
    public var name: String
    /// Where it is restored to, relative to the data directory.
    public var path: String
    public var kind: ArchiveManifest.Part.Kind
    public var mode: UInt32
    /// The file to read (for a database: a consistent copy made beforehand).
    public var source: URL

    public init(name: String, path: String, kind: ArchiveManifest.Part.Kind, mode: UInt32, source: URL) {
        self.name = name
        self.path = path
        self.kind = kind
        self.mode = mode
        self.source = source
    }
}

/// What `ArchiveFile.verify` found.
public struct ArchiveReport: Sendable {
    public var manifest: ArchiveManifest
    public var fileSize: UInt64
    /// False for an encrypted archive verified without its passphrase: only the stored bytes were
    /// checked, not what they decrypt to.
    public var contentsChecked: Bool
}

/// The archive file of backups and snapshots. Layout (format version 1; integers big-endian):
///
///     header    16 bytes  "RAMPART-ARCHIVE1"
///     parts     each part's stored bytes, back to back, at the offsets the manifest gives
///     manifest  JSON (`ArchiveManifest`), at most `OperationsLimits.manifestBytesMax`
///     footer    64 bytes: manifest offset (8) | manifest length (8) | SHA-256 of the manifest (32) | "RAMPART-ARCHEND1"
///
/// The footer comes last, so a file cut short anywhere has none and is refused as truncated. The
/// file is written under a temporary name, fsynced and only then renamed to its final name: a crash
/// (kill -9) mid-write never leaves a file with a final name.
///
/// Encrypted parts: AES-256-GCM over chunks of `chunk-bytes` plaintext, each stored as ciphertext
/// plus its 16-byte tag; nonce = part index (4 bytes) + chunk index (8 bytes); the additional data is
/// the archive id and a last-chunk flag, so chunks cannot be reordered, moved between parts or cut
/// off. The key is scrypt(passphrase, salt) with a fresh random salt per archive, so a key and
/// nonce pair never repeats.
public enum ArchiveFile {
    static let header = Array("RAMPART-ARCHIVE1".utf8)
    static let trailerMagic = Array("RAMPART-ARCHEND1".utf8)
    static let footerBytes = 64
    static let tagBytes = 16
    /// Temporary files of archives being written carry this in their name (never listed, never restored).
    public static let partialMarker = ".partial-"

    // MARK: writing

    /// Writes `inputs` under `manifest` to `destination` (0600), encrypted when `passphrase` is given.
    /// Returns the manifest as written (parts and encryption filled in).
    public static func write(_ manifest: ArchiveManifest, inputs: [ArchiveInput], passphrase: [UInt8]?, to destination: URL) throws -> ArchiveManifest {
        precondition(inputs.count <= OperationsLimits.partsMax, "more archive parts than OperationsLimits.partsMax")
        var manifest = manifest
        var key: SymmetricKey?
        if let passphrase {
            let encryption = try newEncryption(passphrase: passphrase, archiveID: manifest.archiveID)
            manifest.encryption = encryption.parameters
            key = encryption.key
        }
        let directory = destination.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent("." + destination.lastPathComponent + partialMarker + SecureRandom.token(byteCount: 6))
        let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw OperationsError("write-failed", "cannot create \(temporary.path): \(String(cString: strerror(errno)))") }
        let output = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        var renamed = false
        defer {
            try? output.close()
            if !renamed { unlink(temporary.path) }
        }
        try output.write(contentsOf: header)
        var offset = UInt64(header.count)
        var flusher = PacedFlush(output)
        for (index, input) in inputs.enumerated() {
            var part = try writePart(input, index: index, key: key, archiveID: manifest.archiveID, to: output, flusher: &flusher)
            part.offset = offset
            offset += part.storedSize
            manifest.parts.append(part)
        }
        let manifestBytes = manifest.encoded
        guard manifestBytes.count <= OperationsLimits.manifestBytesMax else {
            throw OperationsError("too-many-parts", "the manifest would be \(manifestBytes.count) bytes, more than \(OperationsLimits.manifestBytesMax)")
        }
        var footer = bigEndian(offset) + bigEndian(UInt64(manifestBytes.count))
        footer += Array(SHA256.hash(data: manifestBytes)) + trailerMagic
        try output.write(contentsOf: manifestBytes + footer)
        try output.synchronize()
        guard rename(temporary.path, destination.path) == 0 else {
            throw OperationsError("write-failed", "cannot rename \(temporary.path) to \(destination.path): \(String(cString: strerror(errno)))")
        }
        renamed = true
        try DurableFile.syncDirectory(directory.path)
        return manifest
    }

    static func writePart(
        _ input: ArchiveInput, index: Int, key: SymmetricKey?, archiveID: String, to output: FileHandle,
        flusher: inout PacedFlush
    ) throws -> ArchiveManifest.Part {
        let size = try fileSize(input.source)
        let reader = try FileHandle(forReadingFrom: input.source)
        defer { try? reader.close() }
        var plainHash = SHA256()
        var storedHash = SHA256()
        var storedSize: UInt64 = 0
        var remaining = size
        let chunkBytes = key == nil ? OperationsLimits.copyBufferBytes : OperationsLimits.encryptionChunkBytes
        var chunkIndex: UInt64 = 0
        repeat {
            let wanted = Int(min(UInt64(chunkBytes), remaining))
            let chunk = try reader.read(upToCount: wanted) ?? Data()
            guard chunk.count == wanted else {
                throw OperationsError("source-changed", "\(input.source.path) changed size while it was archived")
            }
            remaining -= UInt64(wanted)
            plainHash.update(data: chunk)
            var stored = chunk
            if let key {
                let sealed = try AES.GCM.seal(
                    chunk, using: key, nonce: nonce(part: index, chunk: chunkIndex),
                    authenticating: additionalData(archiveID: archiveID, last: remaining == 0))
                stored = sealed.ciphertext + sealed.tag
                storedHash.update(data: stored)
            }
            storedSize += UInt64(stored.count)
            try output.write(contentsOf: stored)
            try flusher.wrote(stored.count)
            chunkIndex += 1
        } while remaining > 0
        // Unencrypted, the stored bytes are the content: one digest serves both.
        let plainDigest = Hex.encode(plainHash.finalize())
        return ArchiveManifest.Part(
            name: input.name, path: input.path, kind: input.kind, mode: input.mode, offset: 0, size: size,
            sha256: plainDigest, storedSize: storedSize, storedSHA256: key == nil ? plainDigest : Hex.encode(storedHash.finalize()))
    }

    // MARK: reading

    /// Reads and checks the manifest: header, footer, manifest checksum, part layout. Fast (the
    /// parts are not read): `backup list` uses it.
    public static func readManifest(_ url: URL) throws -> (manifest: ArchiveManifest, fileSize: UInt64) {
        let path = url.path
        let size = try fileSize(url)
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        let head = [UInt8](try handle.read(upToCount: header.count) ?? Data())
        guard head == header else {
            throw header.starts(with: head) ? OperationsError.truncated(path, "it ends inside the header") : OperationsError.notAnArchive(path)
        }
        guard size >= UInt64(header.count + footerBytes) else { throw OperationsError.truncated(path, "it ends before the end marker") }
        try handle.seek(toOffset: size - UInt64(footerBytes))
        let footer = [UInt8](try handle.read(upToCount: footerBytes) ?? Data())
        guard footer.count == footerBytes, Array(footer[48...]) == trailerMagic else {
            throw OperationsError.truncated(path, "the end marker is missing")
        }
        let manifestOffset = readBigEndian(footer[0..<8])
        let manifestLength = readBigEndian(footer[8..<16])
        // The footer's numbers come from the file: compared without sums that could overflow.
        let manifestEnd = size - UInt64(footerBytes)  // size >= header + footer, checked above
        guard manifestLength <= UInt64(OperationsLimits.manifestBytesMax), manifestLength <= manifestEnd - UInt64(header.count),
            manifestOffset == manifestEnd - manifestLength
        else {
            throw OperationsError.corrupt(path, "the manifest's position in the footer does not fit the file")
        }
        try handle.seek(toOffset: manifestOffset)
        let manifestBytes = [UInt8](try handle.read(upToCount: Int(manifestLength)) ?? Data())
        guard Array(SHA256.hash(data: manifestBytes)) == Array(footer[16..<48]) else {
            throw OperationsError.corrupt(path, "the manifest does not match its checksum")
        }
        guard let manifest = try? JSONDecoder().decode(ArchiveManifest.self, from: Data(manifestBytes)) else {
            throw OperationsError.incompatible(path, "the manifest cannot be read (a different or newer format)")
        }
        guard manifest.parts.count <= OperationsLimits.partsMax else { throw OperationsError.corrupt(path, "too many parts") }
        if let encryption = manifest.encryption, !OperationsLimits.encryptionChunkBytesRange.contains(encryption.chunkBytes) {
            throw OperationsError.corrupt(path, "the encryption chunk size \(encryption.chunkBytes) is out of range")
        }
        var expected = UInt64(header.count)
        for part in manifest.parts {
            // The name becomes a file in a staging directory, the path one in the data directory, the mode its permissions.
            guard part.offset == expected, isSafeRelativePath(part.path), isSafeRelativePath(part.name), !part.name.contains("/"),
                part.mode & ~0o777 == 0
            else {
                throw OperationsError.corrupt(path, "part \(part.name.prefix(64)) is out of place or names an unsafe path or mode")
            }
            let (next, overflow) = expected.addingReportingOverflow(part.storedSize)
            guard !overflow, next <= manifestOffset else { throw OperationsError.corrupt(path, "part \(part.name) is larger than the archive") }
            expected = next
        }
        guard expected == manifestOffset else { throw OperationsError.corrupt(path, "the parts do not fill the archive") }
        return (manifest, size)
    }

    /// Reads every part and checks it against the manifest; with `extractTo`, also writes each part's
    /// content there under its name (0600). An encrypted archive needs `passphrase` to be extracted;
    /// without one only its stored bytes are checked. Throws the first problem found.
    public static func verify(_ url: URL, passphrase: [UInt8]?, knownSchema: [String], extractTo directory: URL? = nil) throws -> ArchiveReport {
        let path = url.path
        let (manifest, size) = try readManifest(url)
        if let problem = manifest.incompatibility(knownSchema: knownSchema) { throw OperationsError.incompatible(path, problem) }
        var key: SymmetricKey?
        if let encryption = manifest.encryption {
            if let passphrase {
                key = try openKey(encryption, passphrase: passphrase, archiveID: manifest.archiveID, path: path)
            } else if directory != nil {
                throw OperationsError.passphraseRequired(path)
            }
        }
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        for (index, part) in manifest.parts.enumerated() {
            try handle.seek(toOffset: part.offset)
            let output = try directory.map { try createExtracted($0.appendingPathComponent(part.name)) }
            defer { try? output?.close() }
            try readPart(part, index: index, manifest: manifest, key: key, from: handle, into: output, path: path)
            try output?.synchronize()
        }
        return ArchiveReport(manifest: manifest, fileSize: size, contentsChecked: manifest.encryption == nil || key != nil)
    }

    static func readPart(
        _ part: ArchiveManifest.Part, index: Int, manifest: ArchiveManifest, key: SymmetricKey?,
        from handle: FileHandle, into output: FileHandle?, path: String
    ) throws {
        var plainHash = SHA256()
        var storedHash = SHA256()
        var remaining = part.storedSize
        let encrypted = manifest.encryption != nil
        // chunk-bytes was checked by readManifest (OperationsLimits.encryptionChunkBytesRange): positive, bounded.
        let chunkStored = UInt64(manifest.encryption.map { $0.chunkBytes + tagBytes } ?? OperationsLimits.copyBufferBytes)
        var chunkIndex: UInt64 = 0
        var plainSize: UInt64 = 0
        repeat {
            let wanted = Int(min(chunkStored, remaining))
            let stored = try handle.read(upToCount: wanted) ?? Data()
            guard stored.count == wanted else { throw OperationsError.truncated(path, "part \(part.name) ends early") }
            remaining -= UInt64(wanted)
            if encrypted {
                storedHash.update(data: stored)
                guard let key else {
                    chunkIndex += 1
                    continue
                }
                guard stored.count >= tagBytes,
                    let box = try? AES.GCM.SealedBox(
                        nonce: nonce(part: index, chunk: chunkIndex), ciphertext: stored.dropLast(tagBytes),
                        tag: stored.suffix(tagBytes)),
                    let plain = try? AES.GCM.open(box, using: key, authenticating: additionalData(archiveID: manifest.archiveID, last: remaining == 0))
                else {
                    throw OperationsError.corrupt(path, "part \(part.name), chunk \(chunkIndex) fails authentication (altered or damaged)")
                }
                plainHash.update(data: plain)
                plainSize += UInt64(plain.count)
                try output?.write(contentsOf: plain)
            } else {
                plainHash.update(data: stored)
                plainSize += UInt64(stored.count)
                try output?.write(contentsOf: stored)
            }
            chunkIndex += 1
        } while remaining > 0
        guard !encrypted || Hex.encode(storedHash.finalize()) == part.storedSHA256 else {
            throw OperationsError.corrupt(path, "part \(part.name) does not match its SHA-256")
        }
        if !encrypted || key != nil {
            guard plainSize == part.size, Hex.encode(plainHash.finalize()) == part.sha256 else {
                throw OperationsError.corrupt(path, "part \(part.name) does not match its content SHA-256")
            }
        }
    }

    // MARK: keys

    static func newEncryption(passphrase: [UInt8], archiveID: String) throws -> (parameters: ArchiveManifest.Encryption, key: SymmetricKey) {
        var parameters = ArchiveManifest.Encryption(
            algorithm: "AES-256-GCM", kdf: "scrypt", kdfRounds: OperationsLimits.scryptRounds, kdfBlockSize: OperationsLimits.scryptBlockSize,
            kdfParallelism: OperationsLimits.scryptParallelism, salt: Data(SecureRandom.bytes(count: 16)).base64EncodedString(),
            chunkBytes: OperationsLimits.encryptionChunkBytes, keyCheck: "")
        let key = try deriveKey(passphrase, parameters)
        parameters.keyCheck = keyCheck(key, archiveID: archiveID)
        return (parameters, key)
    }

    static func openKey(_ parameters: ArchiveManifest.Encryption, passphrase: [UInt8], archiveID: String, path: String) throws -> SymmetricKey {
        guard parameters.algorithm == "AES-256-GCM", parameters.kdf == "scrypt" else {
            throw OperationsError.incompatible(path, "encryption \(parameters.algorithm) with \(parameters.kdf) is not supported")
        }
        guard (1_024...OperationsLimits.scryptRoundsMax).contains(parameters.kdfRounds), parameters.kdfRounds.nonzeroBitCount == 1,
            (1...OperationsLimits.scryptBlockSizeMax).contains(parameters.kdfBlockSize),
            (1...OperationsLimits.scryptParallelismMax).contains(parameters.kdfParallelism),
            OperationsLimits.encryptionChunkBytesRange.contains(parameters.chunkBytes)
        else {
            throw OperationsError.corrupt(path, "the encryption parameters are out of range")
        }
        let key = try deriveKey(passphrase, parameters)
        guard keyCheck(key, archiveID: archiveID) == parameters.keyCheck else { throw OperationsError.wrongPassphrase(path) }
        return key
    }

    static func deriveKey(_ passphrase: [UInt8], _ parameters: ArchiveManifest.Encryption) throws -> SymmetricKey {
        guard let salt = Data(base64Encoded: parameters.salt), salt.count >= 16 else {
            throw OperationsError("corrupt", "the encryption salt is malformed")
        }
        return try KDF.Scrypt.deriveKey(
            from: passphrase, salt: salt, outputByteCount: 32, rounds: parameters.kdfRounds,
            blockSize: parameters.kdfBlockSize, parallelism: parameters.kdfParallelism)
    }

    static func keyCheck(_ key: SymmetricKey, archiveID: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: Array("rampart-archive key check \(archiveID)".utf8), using: key)).base64EncodedString()
    }

    static func nonce(part: Int, chunk: UInt64) throws -> AES.GCM.Nonce {
        try AES.GCM.Nonce(data: Array(bigEndian(UInt64(part)).suffix(4)) + bigEndian(chunk))
    }

    static func additionalData(archiveID: String, last: Bool) -> [UInt8] { Array(archiveID.utf8) + [last ? 1 : 0] }

    // MARK: helpers

    static func createExtracted(_ url: URL) throws -> FileHandle {
        // O_EXCL and O_NOFOLLOW: a name that exists already (or a symbolic link) is never written through.
        let fd = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw OperationsError("write-failed", "cannot create \(url.path): \(String(cString: strerror(errno)))") }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    /// A path inside the data directory: relative, no `..`, no empty or hidden-temporary components.
    static func isSafeRelativePath(_ path: String) -> Bool {
        let components = path.split(separator: "/", omittingEmptySubsequences: false)
        return !path.isEmpty && !path.hasPrefix("/") && components.allSatisfy { !$0.isEmpty && $0 != "." && $0 != ".." }
    }

    public static func fileSize(_ url: URL) throws -> UInt64 {
        var info = stat()
        guard stat(url.path, &info) == 0 else { throw OperationsError("read-failed", "cannot read \(url.path): \(String(cString: strerror(errno)))") }
        return UInt64(info.st_size)
    }

    static func bigEndian(_ value: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) } }
    static func readBigEndian(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
}

/// Flushes a large file to disk every `OperationsLimits.flushBytes` while it is written: the
/// final fsync then finds little left, so it does not hold the disk for long while the server's
/// own commits (each an fsync) wait behind it.
struct PacedFlush {
    let handle: FileHandle
    var unflushedBytes = 0
    init(_ handle: FileHandle) { self.handle = handle }

    mutating func wrote(_ count: Int) throws {
        unflushedBytes += count
        guard unflushedBytes >= OperationsLimits.flushBytes else { return }
        try handle.synchronize()
        unflushedBytes = 0
    }
}
