import Foundation
import NIOCore
import Synchronization

/// A server's TCP ports, bound before it creates or changes anything in its data directory: a port in
/// use must stop the first start while the directory is still as it was (absent or empty), and stop a
/// joining secondary before it spends its one-time key.
///
/// Each port is bound (not listened on) with SO_REUSEADDR, as the real listeners bind it: the bind
/// fails exactly when another process listens there, and the listener's own bind later succeeds beside
/// it. The sockets are held until `release`.
final class PortReservation: Sendable {
    /// A port to check, and the command-line flag that chose it (named in the error).
    struct Port {
        let flag: String
        let port: Int
        /// The flag that chose the host (named when it is not an address of this machine).
        var hostFlag = "--listen"
    }

    private let descriptors = Mutex<[Int32]>([])

    private init() {}

    deinit { release() }

    /// Binds every port on `host` (port 0: any free one, nothing to check); throws a `ServerStartError`
    /// naming the first that cannot be bound, its flag and what to do.
    static func reserve(_ ports: [Port], host: String) throws -> PortReservation {
        let reservation = PortReservation()
        for port in ports where port.port != 0 {
            let descriptor = try bind(port, host: host)
            reservation.descriptors.withLock { $0.append(descriptor) }
        }
        return reservation
    }

    /// Holds `other`'s sockets too (released with these).
    func absorb(_ other: PortReservation) {
        let taken = other.descriptors.withLock { descriptors in
            defer { descriptors = [] }
            return descriptors
        }
        descriptors.withLock { $0 += taken }
    }

    /// Closes the sockets (idempotent).
    func release() {
        let open = descriptors.withLock { descriptors in
            defer { descriptors = [] }
            return descriptors
        }
        for descriptor in open { _ = close(descriptor) }
    }

    private static func bind(_ port: Port, host: String) throws -> Int32 {
        let address: SocketAddress
        do {
            address = try SocketAddress.makeAddressResolvingHost(host, port: port.port)
        } catch {
            throw ServerStartError.failure("\(port.hostFlag) \(host): not an address of this machine (\(error)); choose one with \(port.hostFlag)")
        }
        let fd = socket(Int32(address.protocol.rawValue), Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ServerStartError.failure("cannot create a socket: \(String(cString: strerror(errno)))") }
        var reuse: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let bound = address.withSockAddr { pointer, size in Glibc.bind(fd, pointer, socklen_t(size)) }
        guard bound == 0 else {
            let code = errno
            close(fd)
            throw ServerStartError.failure(message(port, host: host, errno: code))
        }
        return fd
    }

    static func message(_ port: Port, host: String, errno code: Int32) -> String {
        let endpoint = host.contains(":") ? "[\(host)]:\(port.port)" : "\(host):\(port.port)"
        switch code {
        case EADDRINUSE:
            return "\(port.flag) \(port.port) is in use: another process listens on \(endpoint); choose another with \(port.flag)"
        case EACCES:
            return "\(port.flag) \(port.port): permission denied binding \(endpoint) (ports below 1024 need privileges); choose another with \(port.flag)"
        case EADDRNOTAVAIL:
            return "--listen \(host): this machine has no such address (cannot bind \(endpoint)); choose one of its addresses with --listen"
        default:
            return "\(port.flag) \(port.port): cannot bind \(endpoint): \(String(cString: strerror(code)))"
        }
    }
}
