import Foundation
import Store
import TrustCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The operations tools' own names inside a data directory (the others are in Store's `DataDirectoryLayout`).
extension DataDirectoryLayout {
    public static let icaCertificate = pki + "/" + PKIDirectory.FileName.icaCertificate
    public static let icaKey = pki + "/" + PKIDirectory.FileName.icaKey
    /// Present while a restore moves files into place; a server refuses to start on it.
    public static let restoreMarker = "restore-in-progress"
    public static let asidePrefix = "before-restore-"
    static let stagingPrefix = ".restore-staging-"

    /// A compact UTC time for file names: 20261125T142800.123Z.
    public static func stamp(_ milliseconds: Int64) -> String {
        var seconds = time_t(milliseconds / 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d%02d%02dT%02d%02d%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
            parts.tm_hour, parts.tm_min, parts.tm_sec, Int(milliseconds % 1000))
    }

    /// Refuses to start a server on a directory with an interrupted restore (a database moved aside
    /// and maybe not yet replaced: starting would create an empty primary).
    public static func interruptedRestore(_ dataDirectory: URL) -> String? {
        let marker = dataDirectory.appendingPathComponent(restoreMarker)
        guard let data = FileManager.default.contents(atPath: marker.path) else { return nil }
        return String(decoding: data.prefix(4_096), as: UTF8.self)
    }
}

/// A private scratch directory inside the data directory (same file system, so its files can be
/// renamed into place atomically), removed when done.
struct StagingDirectory {
    let url: URL

    init(in parent: URL) throws {
        url = parent.appendingPathComponent(DataDirectoryLayout.stagingPrefix + SecureRandom.token(byteCount: 6))
        try DurableFile.ensureDirectory(url, mode: 0o700)
    }

    func file(_ name: String) -> URL { url.appendingPathComponent(name) }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Moves staged files into a data directory. What they replace is moved to
/// `before-restore-<time>/` first, never deleted. A marker file covers the moves: a crash midway
/// leaves it, the server refuses to start, and running the same restore again completes it.
enum DirectoryCommit {
    struct Move {
        var staged: URL
        var path: String
        var mode: UInt32
    }

    /// Returns the directory that holds the replaced files (nil when nothing was replaced).
    static func commit(_ moves: [Move], into dataDirectory: URL, alsoSetAside extraPaths: [String], nowMilliseconds: Int64) throws -> URL? {
        let aside = dataDirectory.appendingPathComponent(DataDirectoryLayout.asidePrefix + DataDirectoryLayout.stamp(nowMilliseconds))
        let marker = dataDirectory.appendingPathComponent(DataDirectoryLayout.restoreMarker)
        try DurableFile.write(Array("a restore was interrupted; run it again. Files it replaced are in \(aside.path)\n".utf8), to: marker, mode: 0o600)
        var setAside = false
        var touched: Set<String> = [dataDirectory.path]
        for path in moves.map(\.path) + extraPaths {
            let current = dataDirectory.appendingPathComponent(path)
            guard FileManager.default.fileExists(atPath: current.path) else { continue }
            let target = aside.appendingPathComponent(path)
            try ensureParents(of: target, below: dataDirectory)
            try move(current, to: target)
            touched.insert(current.deletingLastPathComponent().path)
            setAside = true
        }
        for move in moves {
            let target = dataDirectory.appendingPathComponent(move.path)
            try ensureParents(of: target, below: dataDirectory)
            guard chmod(move.staged.path, mode_t(move.mode)) == 0 else {
                throw OperationsError("write-failed", "cannot set the mode of \(move.staged.path)")
            }
            try self.move(move.staged, to: target)
            touched.insert(target.deletingLastPathComponent().path)
        }
        for directory in touched.sorted() { try DurableFile.syncDirectory(directory) }
        if setAside { try DurableFile.syncDirectory(aside.path) }
        guard unlink(marker.path) == 0 else { throw OperationsError("write-failed", "cannot remove \(marker.path)") }
        try DurableFile.syncDirectory(dataDirectory.path)
        return setAside ? aside : nil
    }

    static func ensureParents(of url: URL, below root: URL) throws {
        var directories: [URL] = []
        var parent = url.deletingLastPathComponent()
        while parent.path.count > root.path.count, !FileManager.default.fileExists(atPath: parent.path) {
            directories.insert(parent, at: 0)
            parent = parent.deletingLastPathComponent()
        }
        for directory in directories { try DurableFile.ensureDirectory(directory, mode: 0o700) }
    }

    static func move(_ source: URL, to target: URL) throws {
        guard rename(source.path, target.path) == 0 else {
            throw OperationsError("write-failed", "cannot move \(source.path) to \(target.path): \(String(cString: strerror(errno)))")
        }
    }
}

/// Reads a passphrase file: its first line, bounded, never echoed anywhere.
public enum PassphraseFile {
    public static func read(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw OperationsError("passphrase-file", "--passphrase-file: cannot read \(path)")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: OperationsLimits.passphraseBytesMax + 1)) ?? Data()
        guard data.count <= OperationsLimits.passphraseBytesMax else {
            throw OperationsError("passphrase-file", "--passphrase-file: \(path) is longer than \(OperationsLimits.passphraseBytesMax) bytes")
        }
        let line = Array(data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).first ?? Data())
        let passphrase = line.last == UInt8(ascii: "\r") ? Array(line.dropLast()) : line
        guard passphrase.count >= OperationsLimits.passphraseBytesMin else {
            throw OperationsError(
                "passphrase-file", "--passphrase-file: the passphrase in \(path) is shorter than \(OperationsLimits.passphraseBytesMin) bytes")
        }
        return passphrase
    }
}
