import Foundation
import ManagementService
import Store
import TrustCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The exclusive lock on a data directory (`DIR/rampart.lock`, flock): a running server holds it
/// for its lifetime, and every restore holds it while it works, so neither can start under the
/// other. The kernel releases it when the process dies, kill -9 included: no stale lock to clear.
public final class NodeLock: @unchecked Sendable {
    public static let fileName = DataDirectoryLayout.lock
    private let fd: Int32

    private init(fd: Int32) { self.fd = fd }
    deinit { close(fd) }

    /// Takes the lock, or returns nil when another process holds it.
    public static func tryAcquire(dataDirectory: URL) throws -> NodeLock? {
        let path = dataDirectory.appendingPathComponent(fileName).path
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw OperationsError("lock-failed", "cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return NodeLock(fd: fd)
    }
}

/// Probes that tell whether something is alive, used to refuse a restore that would hurt it.
public enum LivenessProbe {
    /// True when a server answers on the data directory's operator socket.
    public static func socketAnswers(dataDirectory: URL) -> Bool {
        let path = dataDirectory.appendingPathComponent(DataDirectoryLayout.socket).path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }

    /// True when a TCP connection to `address` ("host:port", IPv4 or a name) opens within the timeout.
    public static func tcpAnswers(_ address: String, timeoutMilliseconds: Int = OperationsLimits.peerProbeTimeoutMilliseconds) -> Bool {
        tcpConnect(address, timeoutMilliseconds: timeoutMilliseconds) == .ok
    }

    /// A real TCP connect to `address` ("host:port", IPv4 or a name): ok at the first address of the
    /// name that accepts, else the last address's failure (refused, timeout, or another error in words).
    public static func tcpConnect(_ address: String, timeoutMilliseconds: Int) -> TCPConnectResult {
        guard let colon = address.lastIndex(of: ":"), let port = UInt16(address[address.index(after: colon)...]) else {
            return .failed("not host:port")
        }
        let host = String(address[..<colon]).trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var results: UnsafeMutablePointer<addrinfo>?
        let resolved = getaddrinfo(host, String(port), &hints, &results)
        guard resolved == 0, let first = results else { return .failed("the name does not resolve: \(String(cString: gai_strerror(resolved)))") }
        defer { freeaddrinfo(results) }
        var outcome = TCPConnectResult.failed("no address")
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            outcome = connectWithTimeout(current.pointee, timeoutMilliseconds: timeoutMilliseconds)
            if outcome == .ok { return .ok }
            entry = current.pointee.ai_next
        }
        return outcome
    }

    static func connectWithTimeout(_ info: addrinfo, timeoutMilliseconds: Int) -> TCPConnectResult {
        let fd = socket(info.ai_family, info.ai_socktype, info.ai_protocol)
        guard fd >= 0 else { return failure(errno) }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if connect(fd, info.ai_addr, info.ai_addrlen) == 0 { return .ok }
        guard errno == EINPROGRESS else { return failure(errno) }
        var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&poller, 1, Int32(timeoutMilliseconds)) == 1 else { return .timeout }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 else { return failure(errno) }
        return error == 0 ? .ok : failure(error)
    }

    static func failure(_ code: Int32) -> TCPConnectResult {
        switch code {
        case ECONNREFUSED: .refused
        case ETIMEDOUT: .timeout
        default: .failed(String(cString: strerror(code)))
        }
    }
}

/// The target directory of a restore or import, locked, and what opening it created there: a failed
/// operation removes exactly that again (the directory it made, or the lock file it added to one that
/// existed), never anything that was there before.
public final class TargetDirectory: @unchecked Sendable {
    public let url: URL
    /// Nil when another process (a server, another restore) holds the lock.
    public let lock: NodeLock?
    private let createdDirectory: Bool
    private let createdLockFile: Bool

    private init(url: URL, lock: NodeLock?, createdDirectory: Bool, createdLockFile: Bool) {
        self.url = url
        self.lock = lock
        self.createdDirectory = createdDirectory
        self.createdLockFile = createdLockFile
    }

    /// Creates the directory when missing and takes its lock.
    public static func open(_ url: URL) throws -> TargetDirectory {
        let createdDirectory = !FileManager.default.fileExists(atPath: url.path)
        try DurableFile.ensureDirectory(url, mode: 0o700)
        let createdLockFile = !FileManager.default.fileExists(atPath: url.appendingPathComponent(NodeLock.fileName).path)
        let lock = try NodeLock.tryAcquire(dataDirectory: url)
        return TargetDirectory(url: url, lock: lock, createdDirectory: createdDirectory, createdLockFile: createdLockFile && lock != nil)
    }

    /// Runs `work`; when it throws, removes what `open` created, then rethrows.
    public func undoingOnFailure<T>(_ work: () throws -> T) throws -> T {
        do { return try work() } catch {
            undo()
            throw error
        }
    }

    /// The lock file goes while the lock is still held (no other process can have taken it), then the
    /// directory when this operation made it (everything in it is its own).
    private func undo() {
        if createdLockFile { unlink(url.appendingPathComponent(NodeLock.fileName).path) }
        if createdDirectory { try? FileManager.default.removeItem(at: url) }
    }
}

/// Which servers of an HA group answer on their SIC port now: a restore or import that would make a
/// second primary of a group is refused while any does.
public enum GroupProbe {
    /// "name (address)" of every server in `servers` whose SIC address accepts a connection.
    public static func answering(_ servers: [DatabaseFacts.ManagementServer]) -> [String] {
        servers.compactMap { server in
            guard let address = server.sicAddress, LivenessProbe.tcpAnswers(address) else { return nil }
            return "\(server.name) (\(address))"
        }
    }
}
