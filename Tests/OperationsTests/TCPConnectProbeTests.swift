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
    @Test func listeningPortIsOkAndClosedPortIsRefused() throws {
        let listener = Listener()
        let port = listener.port
        #expect(LivenessProbe.tcpConnect("127.0.0.1:\(port)", timeoutMilliseconds: 2_000) == .ok)
        #expect(LivenessProbe.tcpAnswers("127.0.0.1:\(port)"))
        #expect(listener.close())
        #expect(!listener.close(), "a second close closes nothing (its number may belong to another file by now)")
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
