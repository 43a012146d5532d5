import Foundation
import ManagementService
import Testing

@testable import Operations

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The TCP connect `ha diagnose` reports per peer (and the restore's liveness probe uses).
@Suite("TCP connect probe: ok, refused, bad address")
struct TCPConnectProbeTests {
    /// A listening loopback socket and its port; closed by the caller.
    static func listener() throws -> (fd: Int32, port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(fd >= 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(fd, 4) == 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    @Test func listeningPortIsOkAndClosedPortIsRefused() throws {
        let (fd, port) = try Self.listener()
        #expect(LivenessProbe.tcpConnect("127.0.0.1:\(port)", timeoutMilliseconds: 2_000) == .ok)
        #expect(LivenessProbe.tcpAnswers("127.0.0.1:\(port)"))
        close(fd)
        #expect(LivenessProbe.tcpConnect("127.0.0.1:\(port)", timeoutMilliseconds: 2_000) == .refused)
        #expect(!LivenessProbe.tcpAnswers("127.0.0.1:\(port)"))
    }

    @Test func addressThatIsNotHostPortFails() {
        #expect(LivenessProbe.tcpConnect("no-port-here", timeoutMilliseconds: 100) == .failed("not host:port"))
        if case .failed = LivenessProbe.tcpConnect("name.invalid:18191", timeoutMilliseconds: 100) {
        } else {
            Issue.record("an unresolvable name is a failure in words")
        }
    }
}
