import Foundation
import Testing

@testable import rampart

#if canImport(Glibc)
    import Glibc
#endif

/// `rampart view` ends on SIGINT, SIGTERM and SIGHUP and restores the terminal. Its handlers were
/// dispatch signal sources: `SIG_IGN` at once, the source registered later on another thread, so a
/// SIGTERM sent just after the view took the screen was discarded and the view ran on (CI run s34-2,
/// `LiveViewEndToEndTests`). Now a signal sent the moment `TerminalSignals()` returns is seen.
@Suite("rampart view: its signal handlers", .serialized)
struct TerminalSignalsTests {
    @Test("SIGTERM, SIGINT and SIGHUP sent right after the handlers are set end the view; SIGWINCH asks for one redraw")
    func aSignalRightAfterTheHandlersAreSetIsSeen() async throws {
        for number in [SIGTERM, SIGINT, SIGHUP] {
            let signals = TerminalSignals()
            #expect(!signals.stopRequested)
            // To the process, as `kill` from a shell: a thread that does not block it runs the handler.
            kill(getpid(), number)
            #expect(try await pollUntil(seconds: 10) { signals.stopRequested }, "signal \(number) was not seen")
            signals.cancel()
        }
        let signals = TerminalSignals()
        kill(getpid(), SIGWINCH)
        #expect(try await pollUntil(seconds: 10) { signals.takeResized() })
        #expect(!signals.takeResized() && !signals.stopRequested)
        signals.cancel()
    }
}
