import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The fault-injecting proxy itself, against a tiny echo server on loopback. Waits are generous upper
/// bounds for a loaded machine; no test asserts that something was fast.
@Suite("TCPProxy: pass, delay, cut, blackhole, refuse, stop")
struct TCPProxyTests {
    static let eventuallySeconds = 30.0

    @Test("pass forwards both ways and counts bytes")
    func pass() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(targetPort: echo.port)
        defer { proxy.stop() }
        let client = try LoopbackClient(port: proxy.port)
        defer { client.close() }
        try client.send("hello")
        #expect(client.receive(count: 5) == "hello")
        #expect(eventually { proxy.counters.bytesToTarget == 5 && proxy.counters.bytesToClient == 5 })
        #expect(proxy.counters.accepted == 1)
    }

    @Test("delay forwards every byte, in order")
    func delay() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(targetPort: echo.port, mode: .delay(milliseconds: 30))
        defer { proxy.stop() }
        let client = try LoopbackClient(port: proxy.port)
        defer { client.close() }
        // Larger than one chunk, so it crosses the proxy in several delayed pieces.
        let message = String((0..<200_000).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement()! })
        try client.send(message)
        #expect(client.receive(count: message.utf8.count) == message)
        #expect(proxy.counters.bytesToTarget == message.utf8.count)
    }

    @Test("cut closes current connections; new ones still work")
    func cut() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(targetPort: echo.port)
        defer { proxy.stop() }
        let first = try LoopbackClient(port: proxy.port)
        defer { first.close() }
        try first.send("one")
        #expect(first.receive(count: 3) == "one")
        proxy.cut()
        #expect(first.receivesEndOfStream(), "the client must see its connection closed")
        #expect(eventually { echo.connectionsOpen == 0 }, "the target must see its connection closed")
        #expect(proxy.counters.cut == 1)

        let second = try LoopbackClient(port: proxy.port)
        defer { second.close() }
        try second.send("two")
        #expect(second.receive(count: 3) == "two")
        #expect(proxy.counters.accepted == 2)
    }

    @Test("blackhole starves current and new connections without closing them; pass resumes them")
    func blackhole() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(targetPort: echo.port)
        defer { proxy.stop() }
        let old = try LoopbackClient(port: proxy.port)
        defer { old.close() }
        try old.send("a")
        #expect(old.receive(count: 1) == "a")

        proxy.setMode(.blackhole)
        try old.send("b")
        let new = try LoopbackClient(port: proxy.port)
        defer { new.close() }
        try new.send("c")
        #expect(eventually { proxy.counters.accepted == 2 }, "a new connection is accepted in blackhole mode")
        // Nothing arrives while the link is a black hole (a short look: absence, not speed, is asserted).
        #expect(old.receive(count: 1, seconds: 0.5) == nil)
        #expect(new.receive(count: 1, seconds: 0.5) == nil)
        #expect(proxy.counters.bytesToTarget == 1 && proxy.openConnections == 2)

        proxy.setMode(.pass)
        #expect(old.receive(count: 1) == "b")
        #expect(new.receive(count: 1) == "c")
    }

    @Test("refuse closes new connections at once; current ones carry on")
    func refuse() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(targetPort: echo.port)
        defer { proxy.stop() }
        let old = try LoopbackClient(port: proxy.port)
        defer { old.close() }
        try old.send("x")
        #expect(old.receive(count: 1) == "x")

        proxy.setMode(.refuse)
        let refused = try LoopbackClient(port: proxy.port)
        defer { refused.close() }
        #expect(refused.receivesEndOfStream())
        #expect(proxy.counters.refused == 1 && proxy.counters.accepted == 1)
        try old.send("y")
        #expect(old.receive(count: 1) == "y")

        proxy.setMode(.pass)
        let later = try LoopbackClient(port: proxy.port)
        defer { later.close() }
        try later.send("z")
        #expect(later.receive(count: 1) == "z")
    }

    @Test("stop closes everything and ends every thread")
    func stop() throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(targetPort: echo.port)
        let clients = try (0..<3).map { _ in try LoopbackClient(port: proxy.port) }
        defer { for client in clients { client.close() } }
        for client in clients {
            try client.send("s")
            #expect(client.receive(count: 1) == "s")
        }
        proxy.setMode(.blackhole)  // pumps idle in their slices: stop must still end them
        #expect(proxy.threadsRunning == 1 + 2 * clients.count)
        proxy.stop()
        #expect(proxy.threadsRunning == 0)
        #expect(proxy.openConnections == 0)
        for client in clients { #expect(client.receivesEndOfStream()) }
        #expect(!Network.accepts(port: proxy.port))
        proxy.stop()  // a second stop is harmless
    }

    /// Polls `condition` until it holds, at most `seconds`.
    func eventually(seconds: Double = eventuallySeconds, _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

/// close(2), callable from types that have a close() of their own.
func closeDescriptor(_ fd: Int32) { close(fd) }

/// A blocking TCP client on loopback with bounded reads.
final class LoopbackClient: Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(Network.streamSocketType), 0)
        guard fd >= 0 else { throw E2EFailure("socket() failed: errno \(errno)") }
        var address = Network.loopback(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let error = errno
            closeDescriptor(fd)
            throw E2EFailure("connect to 127.0.0.1:\(port) failed: errno \(error)")
        }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard TCPProxy.sendAll(fd, bytes, bytes.count) else { throw E2EFailure("send failed: errno \(errno)") }
    }

    /// Exactly `count` bytes as text, or nil when the stream ends or `seconds` pass first.
    func receive(count: Int, seconds: Double = TCPProxyTests.eventuallySeconds) -> String? {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < count, ContinuousClock.now < deadline {
            guard TCPProxy.waitReadable(fd) else { continue }
            let read = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min($0.count, count - bytes.count), 0) }
            guard read > 0 else { return nil }
            bytes += buffer[0..<read]
        }
        return bytes.count == count ? String(decoding: bytes, as: UTF8.self) : nil
    }

    /// Whether the peer closes the connection (end of stream or reset) within `seconds`.
    func receivesEndOfStream(seconds: Double = TCPProxyTests.eventuallySeconds) -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        var byte: UInt8 = 0
        while ContinuousClock.now < deadline {
            guard TCPProxy.waitReadable(fd) else { continue }
            let read = recv(fd, &byte, 1, 0)
            if read <= 0 { return true }
        }
        return false
    }

    func close() { closeDescriptor(fd) }
}

/// Echoes every byte back on every connection, one thread per connection.
final class EchoServer: Sendable {
    let port: Int
    private let listener: Int32
    private let state = Mutex((stopped: false, open: [Int32](), threads: 0))
    private let threads = DispatchGroup()

    init() throws {
        let fd = socket(AF_INET, Int32(Network.streamSocketType), 0)
        var address = Network.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard fd >= 0, ok, listen(fd, 64) == 0 else { throw E2EFailure("echo server: cannot listen: errno \(errno)") }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        start { $0.acceptLoop() }
    }

    var connectionsOpen: Int { state.withLock { $0.open.count } }

    func stop() {
        let open = state.withLock { state in
            state.stopped = true
            return state.open
        }
        shutdown(listener, Int32(SHUT_RDWR))
        for fd in open { shutdown(fd, Int32(SHUT_RDWR)) }
        _ = threads.wait(timeout: .now() + 30)
        closeDescriptor(listener)
    }

    private var stopped: Bool { state.withLock { $0.stopped } }

    private func start(_ body: @escaping @Sendable (EchoServer) -> Void) {
        threads.enter()
        Thread { [self] in
            body(self)
            threads.leave()
        }.start()
    }

    private func acceptLoop() {
        while !stopped {
            guard TCPProxy.waitReadable(listener) else { continue }
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else { continue }
            state.withLock { $0.open.append(fd) }
            start { $0.echo(fd) }
        }
    }

    private func echo(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !stopped {
            guard TCPProxy.waitReadable(fd) else { continue }
            let read = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard read > 0, TCPProxy.sendAll(fd, buffer, read) else { break }
        }
        state.withLock { $0.open.removeAll { $0 == fd } }
        closeDescriptor(fd)
    }
}
