import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A TCP proxy on loopback that a test puts between two real processes to break their link on purpose:
/// 127.0.0.1:`port` forwards to 127.0.0.1:`targetPort`, and the test switches its behaviour while it runs.
///
/// Plain POSIX sockets and threads (the test target does not depend on NIOPosix): one accept thread, and
/// two pump threads per connection, one per direction. Every loop waits in poll() with a short timeout,
/// so a mode change, `cut()` or `stop()` is seen within `TCPProxy.sliceMilliseconds`; `cut()` and `stop()`
/// also shut the sockets down, which wakes a pump blocked in send() at once. Its threads hold it, so
/// it lives until stop(): call it (`defer { proxy.stop() }`).
final class TCPProxy: Sendable {
    enum Mode: Sendable, Equatable {
        /// Forward both ways as fast as possible.
        case pass
        /// Forward each chunk read (up to `chunkBytesMax`) after this delay: a slow link.
        case delay(milliseconds: Int)
        /// Read and forward nothing either way; connections stay open, new ones are accepted and starved.
        /// The data waits in the kernel's buffers and flows again when the mode changes (a stalled link).
        case blackhole
        /// Close new connections at once (the peer sees the connection accepted, then closed); current
        /// connections carry on.
        case refuse
    }

    struct Counters: Sendable, Equatable {
        /// Connections accepted and forwarded (not those refused).
        var accepted = 0
        /// Connections closed at once because the mode was `.refuse`, or because the target did not answer.
        var refused = 0
        /// Current connections closed by `cut()`.
        var cut = 0
        var bytesToTarget = 0
        var bytesToClient = 0
    }

    /// Longest a loop waits before it looks at the mode and the stop flag again.
    static let sliceMilliseconds: Int32 = 20
    static let chunkBytesMax = 64 * 1024
    /// stop() waits this long for the threads, which end within a slice once their sockets are shut.
    static let stopSecondsMax = 30.0

    let port: Int
    let targetPort: Int

    private let listener: Int32
    private let state: Mutex<State>
    /// Entered by every thread the proxy starts, left when it ends: stop() waits for it to be empty.
    private let threads = DispatchGroup()

    private struct State {
        var mode: Mode
        var counters = Counters()
        var stopped = false
        var nextConnectionID = 0
        var connections: [Int: ProxyConnection] = [:]
        var threadsRunning = 0
    }

    init(targetPort: Int, mode: Mode = .pass) throws {
        self.targetPort = targetPort
        state = Mutex(State(mode: mode))
        (listener, port) = try Self.listenOnLoopback()
        startThread { $0.acceptLoop() }
    }

    var mode: Mode { state.withLock { $0.mode } }
    func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }
    var counters: Counters { state.withLock { $0.counters } }
    /// Threads of this proxy still running (0 once stop() has returned).
    var threadsRunning: Int { state.withLock { $0.threadsRunning } }
    var openConnections: Int { state.withLock { $0.connections.count } }

    /// Closes every current connection now (both sides see the connection end); new connections are
    /// still handled by the mode.
    func cut() {
        let current = state.withLock { state in
            state.counters.cut += state.connections.count
            return Array(state.connections.values)
        }
        for connection in current { connection.shutDown() }
    }

    /// Stops accepting, closes every connection and waits until every thread of the proxy has ended.
    /// Safe to call more than once.
    func stop() {
        let first = state.withLock { state in
            defer { state.stopped = true }
            return !state.stopped
        }
        if first {
            shutdown(listener, Int32(SHUT_RDWR))
            cut()
        }
        let finished = threads.wait(timeout: .now() + Self.stopSecondsMax) == .success
        precondition(finished, "TCPProxy threads did not end within \(Self.stopSecondsMax) s of stop()")
        if first { close(listener) }
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    // MARK: - Threads

    private func startThread(_ body: @escaping @Sendable (TCPProxy) -> Void) {
        threads.enter()
        state.withLock { $0.threadsRunning += 1 }
        let thread = Thread { [self] in
            body(self)
            state.withLock { $0.threadsRunning -= 1 }
            threads.leave()
        }
        thread.name = "TCPProxy:\(port)"
        thread.start()
    }

    private func acceptLoop() {
        while !stopped {
            guard Self.waitReadable(listener) else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            admit(client)
        }
    }

    /// A new client connection: refused, or connected to the target and pumped both ways.
    private func admit(_ client: Int32) {
        let refuse = state.withLock { $0.mode == .refuse || $0.stopped }
        guard !refuse, let target = Self.connectToTarget(targetPort) else {
            // Counted before the close: whoever sees the close may read the counter at once.
            state.withLock { $0.counters.refused += 1 }
            close(client)
            return
        }
        Self.setNoDelay(client)
        let connection = ProxyConnection(client: client, target: target)
        let id = state.withLock { state in
            state.nextConnectionID += 1
            state.connections[state.nextConnectionID] = connection
            state.counters.accepted += 1
            return state.nextConnectionID
        }
        for direction in [Direction.toTarget, .toClient] {
            startThread { proxy in
                proxy.pump(connection, direction)
                if connection.pumpEnded() { proxy.state.withLock { _ = $0.connections.removeValue(forKey: id) } }
            }
        }
    }

    enum Direction { case toTarget, toClient }

    /// Copies one direction until end of stream, an error, a cut or stop.
    private func pump(_ connection: ProxyConnection, _ direction: Direction) {
        let (from, to) = direction == .toTarget ? (connection.client, connection.target) : (connection.target, connection.client)
        var buffer = [UInt8](repeating: 0, count: Self.chunkBytesMax)
        while !connection.isShutDown, !stopped {
            if self.mode == .blackhole {
                // Neither read nor write: the peers' data stays queued, as on a stalled link.
                _ = poll(nil, 0, Self.sliceMilliseconds)
                continue
            }
            guard Self.waitReadable(from) else { continue }
            // Read after the data arrived: a mode set before the peer sent it applies to it.
            let mode = self.mode
            if mode == .blackhole { continue }
            let count = buffer.withUnsafeMutableBytes { recv(from, $0.baseAddress, $0.count, 0) }
            if count == 0 {
                // End of stream: pass the half-close on; the other direction may still carry data.
                shutdown(to, Int32(SHUT_WR))
                return
            }
            if count < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                break
            }
            if case .delay(let milliseconds) = mode, !connection.sleep(milliseconds: milliseconds) { break }
            guard Self.sendAll(to, buffer, count) else { break }
            state.withLock {
                if direction == .toTarget { $0.counters.bytesToTarget += count } else { $0.counters.bytesToClient += count }
            }
        }
        connection.shutDown()
    }

    // MARK: - Sockets

    private static func listenOnLoopback() throws -> (Int32, Int) {
        let fd = socket(AF_INET, Int32(Network.streamSocketType), 0)
        guard fd >= 0 else { throw E2EFailure("TCPProxy: socket() failed: errno \(errno)") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = Network.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0, listen(fd, 128) == 0 else {
            let error = errno
            close(fd)
            throw E2EFailure("TCPProxy: cannot listen on 127.0.0.1: errno \(error)")
        }
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    static func connectToTarget(_ port: Int) -> Int32? {
        let fd = socket(AF_INET, Int32(Network.streamSocketType), 0)
        guard fd >= 0 else { return nil }
        var address = Network.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            return nil
        }
        setNoDelay(fd)
        return fd
    }

    /// Small TLS records go out at once instead of waiting for Nagle's algorithm.
    static func setNoDelay(_ fd: Int32) {
        var yes: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Whether `fd` has data (or end of stream) within one slice.
    static func waitReadable(_ fd: Int32) -> Bool {
        var request = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&request, 1, sliceMilliseconds) > 0
    }

    static func sendAll(_ fd: Int32, _ buffer: [UInt8], _ count: Int) -> Bool {
        var sent = 0
        while sent < count {
            let result = buffer.withUnsafeBytes { send(fd, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
            if result < 0, errno == EINTR { continue }
            guard result > 0 else { return false }
            sent += result
        }
        return true
    }
}

/// One proxied connection: the client's socket and the target's. Both are closed only after both pumps
/// have ended, so shutDown() from another thread never touches a closed (or reused) descriptor.
final class ProxyConnection: Sendable {
    let client: Int32
    let target: Int32
    private let state = Mutex((shutDown: false, pumpsRunning: 2, closed: false))

    init(client: Int32, target: Int32) {
        self.client = client
        self.target = target
    }

    var isShutDown: Bool { state.withLock { $0.shutDown } }

    /// Ends the connection both ways now: the peers see it closed, blocked pumps wake up.
    func shutDown() {
        state.withLock { state in
            guard !state.closed else { return }
            state.shutDown = true
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(target, Int32(SHUT_RDWR))
        }
    }

    /// Called by each pump as it ends; the last one closes both sockets and returns true.
    func pumpEnded() -> Bool {
        state.withLock { state in
            state.pumpsRunning -= 1
            guard state.pumpsRunning == 0 else { return false }
            state.closed = true
            close(client)
            close(target)
            return true
        }
    }

    /// Sleeps in slices so a cut is not held up by a long delay; false when the connection was cut meanwhile.
    func sleep(milliseconds: Int) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(milliseconds)
        while ContinuousClock.now < deadline {
            if isShutDown { return false }
            _ = poll(nil, 0, TCPProxy.sliceMilliseconds)
        }
        return !isShutDown
    }
}
