import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Crash-safe file replacement: after `write` returns, the file holds the new bytes and survives a power
/// loss; if the process dies during `write`, the file still holds its old content (or does not exist).
///
/// Steps: create a temporary file in the same directory with `open(O_CREAT|O_EXCL)` and the final mode
/// (so a secret is never readable by others, not even for a moment), write everything, `fsync` it,
/// `rename` it over the target, then `fsync` the directory so the rename itself is durable.
public enum DurableFile {
    /// Prefix of temporary files; `removeStaleTemporaryFiles(in:)` deletes leftovers that carry it.
    static let temporaryPrefix = ".rampart-tmp-"

    /// Atomically and durably replaces the file at `url` with `data`, with permission bits `mode`.
    public static func write(_ data: Data, to url: URL, mode: mode_t) throws {
        try write([UInt8](data), to: url, mode: mode)
    }

    /// Atomically and durably replaces the file at `url` with `bytes`, with permission bits `mode`.
    public static func write(_ bytes: [UInt8], to url: URL, mode: mode_t) throws {
        let target = url.standardizedFileURL.path
        let directory = url.standardizedFileURL.deletingLastPathComponent().path
        let name = url.lastPathComponent
        var temporaryPath = ""
        var fd: Int32 = -1
        // O_EXCL refuses to reuse a name: a stale or hostile file at the temporary path is never written
        // through. Retry a few times with fresh random names.
        for _ in 0..<8 {
            temporaryPath = directory + "/" + temporaryPrefix + name + "." + SecureRandom.token(byteCount: 9)
            fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw posixError("create temporary file for", target) }
        var closed = false
        var renamed = false
        defer {
            if !closed { _ = close(fd) }
            if !renamed { _ = unlink(temporaryPath) }
        }
        // umask may have narrowed the mode at open (never widened it); set exactly what was asked.
        guard fchmod(fd, mode) == 0 else { throw posixError("set mode of", temporaryPath) }
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = posixWrite(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw posixError("write", temporaryPath)
                }
                offset += written
            }
        }
        guard fsync(fd) == 0 else { throw posixError("fsync", temporaryPath) }
        closed = true
        guard close(fd) == 0 else { throw posixError("close", temporaryPath) }
        guard rename(temporaryPath, target) == 0 else { throw posixError("rename temporary file to", target) }
        renamed = true
        try syncDirectory(directory)
    }

    /// Creates the directory at `url` with `mode` if it does not exist (parents must exist), and makes its
    /// creation durable. An existing directory is left as it is, except that `mode` is applied to it.
    public static func ensureDirectory(_ url: URL, mode: mode_t) throws {
        let path = url.standardizedFileURL.path
        if mkdir(path, mode) == 0 {
            guard chmod(path, mode) == 0 else { throw posixError("set mode of", path) }
            try syncDirectory(url.standardizedFileURL.deletingLastPathComponent().path)
            return
        }
        guard errno == EEXIST else { throw posixError("create directory", path) }
        var info = stat()
        guard stat(path, &info) == 0 else { throw posixError("stat", path) }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw TrustError(.fileSystem, "\(path) exists and is not a directory")
        }
        if (info.st_mode & 0o7777) != mode {
            guard chmod(path, mode) == 0 else { throw posixError("set mode of", path) }
        }
    }

    /// Deletes temporary files that a crash during `write` left in `directory`. Call it at start, before
    /// anything else writes there.
    public static func removeStaleTemporaryFiles(in directory: URL) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw TrustError(.fileSystem, "cannot list \(directory.path): \(error)")
        }
        for name in names.sorted() where name.hasPrefix(temporaryPrefix) {
            let path = directory.appendingPathComponent(name).path
            if unlink(path) != 0 && errno != ENOENT { throw posixError("remove", path) }
        }
    }

    /// Flushes a directory's entries (a rename or a new file in it) to stable storage.
    public static func syncDirectory(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw posixError("open directory", path) }
        defer { _ = close(fd) }
        guard fsync(fd) == 0 else { throw posixError("fsync directory", path) }
    }

    static func posixError(_ action: String, _ path: String) -> TrustError {
        let code = errno
        return TrustError(.fileSystem, "cannot \(action) \(path): \(String(cString: strerror(code))) (errno \(code))")
    }
}

/// The C `write(2)`, named apart so that it is not shadowed by `DurableFile.write`.
private func posixWrite(_ fd: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, pointer, count)
}
