import ArgumentParser
import Foundation
import ManagementClient
import ManagementModel
import ManagementService
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

struct ViewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "view",
        abstract: "A live dashboard of this server (the role of cpview): HA, peers, gateways, the last events, CPU, memory and disk.",
        discussion: """
            Page HA: this server's mode, epoch and how long it has held it; each peer's mode, lag, last sync, clock offset; publishes per second and their latency; sessions and locked objects. Page Gateways: gateways and cluster members with their states. Both: the last 10 events and the node's CPU, memory and disk. Redrawn every --interval seconds; Tab switches pages, q quits.

            Without a terminal (stdout not a tty), or with --once, it prints one plain-text snapshot (rates over one interval) and exits; --json prints the snapshot as JSON. It talks to the local server through DIR/rampart.sock.
            """)

    @Option(name: .long, help: "The server's data directory.")
    var data: String
    @Flag(name: .long, help: "Print one plain-text snapshot and exit.")
    var once = false
    @Flag(name: .long, help: "Print one snapshot as JSON and exit.")
    var json = false
    @Option(name: .long, help: "Seconds between refreshes (0.2 to 60).")
    var interval: Double = 1

    func validate() throws {
        guard interval >= 0.2, interval <= 60 else { throw ValidationError("--interval must be between 0.2 and 60 seconds") }
    }

    func run() async throws {
        guard json || once || isatty(STDOUT_FILENO) == 0 else { return try await LiveTerminalLoop(dataDirectory: data, interval: interval).run() }
        let (data, json, interval) = (data, json, interval)
        try await LocalOperator.withRootSession(dataDirectory: data) { transport, sid in
            let source = LiveViewSource(dataDirectory: data, transport: transport, sid: sid)
            let first = try await source.sample()
            try await Task.sleep(for: .seconds(interval))
            let second = try await source.sample()
            let frame = LiveViewFrame(snapshot: second.snapshot, previous: first.snapshot, resources: second.resources, previousResources: first.resources)
            if json { return print(Self.json(second.reply, frame).canonicalString) }
            print(LiveView.render(frame, page: .ha, width: Int(Int32.max), height: Int(Int32.max)).joined(separator: "\n"))
        }
    }

    /// The server's snapshot as it came, with the figures this view derived and the node's resources.
    static func json(_ reply: JSONValue, _ frame: LiveViewFrame) -> JSONValue {
        var object = reply.objectValue ?? [:]
        let figures = frame.figures
        let resources = frame.resources
        var view: [String: JSONValue] = [:]
        view["publishes-per-second"] = figures.publishesPerSecond.map(JSONValue.double)
        view["publish-latency-ms"] = figures.publishLatencyMilliseconds.map(JSONValue.double)
        view["cpu-percent"] = figures.cpuPercent.map(JSONValue.double)
        view["memory-total-bytes"] = resources.memoryTotalBytes.map { .int(Int64(clamping: $0)) }
        view["memory-available-bytes"] = resources.memoryAvailableBytes.map { .int(Int64(clamping: $0)) }
        view["disk-total-bytes"] = resources.diskTotalBytes.map { .int(Int64(clamping: $0)) }
        view["disk-available-bytes"] = resources.diskAvailableBytes.map { .int(Int64(clamping: $0)) }
        object["node"] = .object(view)
        return .object(object)
    }
}

/// One reading: the server's snapshot (and its JSON as it came) and this machine's resources.
struct LiveViewSample: Sendable {
    let reply: JSONValue
    let snapshot: LiveViewSnapshot
    let resources: NodeResources
}

struct LiveViewSource: Sendable {
    let dataDirectory: String
    let transport: MgmtTransport
    let sid: String

    func sample() async throws -> LiveViewSample {
        let reply = try await LocalOperator.call(transport, "show-live-view", [:], sid: sid)
        return LiveViewSample(reply: reply, snapshot: try LiveViewSnapshot(json: reply), resources: NodeResources.read(dataDirectory: dataDirectory))
    }
}

/// The terminal shell around `LiveView.render`: raw keys, the alternate screen, a redraw every interval,
/// on a key and on a resize; the terminal is restored on every way out (q, ^C, SIGINT, SIGTERM, SIGHUP, an error).
/// A server that stops answering after the first screen is said so on the screen and asked again every
/// interval (a restart, a promotion), keeping the last figures in view.
struct LiveTerminalLoop {
    let dataDirectory: String
    let interval: Double

    /// How long one wait for a key lasts: the loop's reaction time.
    static let keyWaitMilliseconds: Int32 = 100

    /// What is on the screen.
    struct Screen {
        var page = LiveViewPage.ha
        var latest: LiveViewSample?
        var previous: LiveViewSample?
        var notice: String?
    }

    func run() async throws {
        // Handlers first: a signal after the alternate screen appears must end the view, never be lost.
        let signals = TerminalSignals()
        defer { signals.cancel() }
        let terminal = try RawTerminal()
        defer { terminal.restore() }
        var screen = Screen()
        while !signals.stopRequested {
            do {
                let quit = try await LocalOperator.withRootSession(dataDirectory: dataDirectory) { transport, sid in
                    try await watch(LiveViewSource(dataDirectory: dataDirectory, transport: transport, sid: sid), terminal, signals, &screen)
                }
                if quit { return }
            } catch  where screen.latest != nil {
                screen.notice = "the server is not answering, asking again every \(interval) s: \(error)"
                screen.previous = nil
                if keys(until: ContinuousClock.now + .seconds(interval), terminal, signals, &screen) { return }
            }
        }
    }

    /// Samples and draws every interval until the operator quits (true) or a signal ends the view (false).
    func watch(_ source: LiveViewSource, _ terminal: RawTerminal, _ signals: TerminalSignals, _ screen: inout Screen) async throws -> Bool {
        while !signals.stopRequested {
            let sample = try await source.sample()
            screen.previous = screen.latest
            screen.latest = sample
            screen.notice = nil
            if keys(until: ContinuousClock.now + .seconds(interval), terminal, signals, &screen) { return true }
        }
        return false
    }

    /// Draws, then takes keys until `deadline` (Tab turns the page, a resize redraws); true when q or ^C.
    func keys(until deadline: ContinuousClock.Instant, _ terminal: RawTerminal, _ signals: TerminalSignals, _ screen: inout Screen) -> Bool {
        var dirty = true
        while ContinuousClock.now < deadline, !signals.stopRequested {
            if dirty || signals.takeResized() { terminal.draw(render(screen)) }
            dirty = false
            switch terminal.readKey(timeoutMilliseconds: Self.keyWaitMilliseconds) {
            case UInt8(ascii: "q"), UInt8(ascii: "Q"), 3, 4: return true  // q, ^C, ^D
            case 9:
                screen.page = screen.page.next
                dirty = true
            default: break
            }
        }
        return signals.stopRequested
    }

    func render(_ screen: Screen) -> [String] {
        guard let latest = screen.latest else { return [] }
        let frame = LiveViewFrame(
            snapshot: latest.snapshot, previous: screen.previous?.snapshot, resources: latest.resources, previousResources: screen.previous?.resources)
        let size = RawTerminal.size()
        return LiveView.render(frame, page: screen.page, width: size.columns, height: size.rows, notice: screen.notice)
    }
}

/// What the signal handlers tell the loop. Globals: a C signal handler captures nothing.
let terminalStopRequested = Atomic(false)
let terminalResized = Atomic(false)

/// SIGINT, SIGTERM and SIGHUP end the view (the loop restores the terminal); SIGWINCH redraws it.
/// The handlers are in place when `init` returns (plain `signal`, an atomic store each): with dispatch
/// signal sources, installed asynchronously after `SIG_IGN`, a SIGTERM sent just after the view took the
/// screen was discarded and the view ran on (CI run s34-2 under load).
final class TerminalSignals {
    private static let ending = [SIGINT, SIGTERM, SIGHUP]

    init() {
        // Touched before any handler can run: a global is initialized on first use, which no handler may do.
        terminalStopRequested.store(false, ordering: .relaxed)
        terminalResized.store(false, ordering: .relaxed)
        for number in Self.ending { signal(number) { _ in terminalStopRequested.store(true, ordering: .relaxed) } }
        signal(SIGWINCH) { _ in terminalResized.store(true, ordering: .relaxed) }
    }

    var stopRequested: Bool { terminalStopRequested.load(ordering: .relaxed) }

    /// True once after each resize.
    func takeResized() -> Bool { terminalResized.exchange(false, ordering: .relaxed) }

    func cancel() {
        for number in Self.ending + [SIGWINCH] { signal(number, SIG_DFL) }
    }
}

/// The controlling terminal in raw mode (keys one by one, no echo, ^C as a key) on the alternate
/// screen with the cursor hidden; `restore` puts back what it found.
final class RawTerminal {
    private let saved: termios

    init() throws {
        var attributes = termios()
        guard tcgetattr(STDIN_FILENO, &attributes) == 0 else { throw ValidationError("rampart view needs a terminal on stdin (or use --once)") }
        saved = attributes
        attributes.c_lflag &= ~tcflag_t(ICANON | ECHO | ISIG | IEXTEN)
        attributes.c_iflag &= ~tcflag_t(IXON | ICRNL)
        guard tcsetattr(STDIN_FILENO, TCSAFLUSH, &attributes) == 0 else { throw ValidationError("the terminal cannot be put in raw mode") }
        Self.write("\u{1B}[?1049h\u{1B}[?25l")  // alternate screen, hide cursor
    }

    func restore() {
        Self.write("\u{1B}[?25h\u{1B}[?1049l")  // show cursor, main screen
        var attributes = saved
        _ = tcsetattr(STDIN_FILENO, TCSAFLUSH, &attributes)
    }

    /// Redraws from the top left: each line cleared to its end, the rest of the screen cleared.
    func draw(_ lines: [String]) {
        Self.write("\u{1B}[H" + lines.map { $0 + "\u{1B}[K" }.joined(separator: "\r\n") + "\u{1B}[J")
    }

    /// One key, or nil when none came within the timeout.
    func readKey(timeoutMilliseconds: Int32) -> UInt8? {
        var descriptor = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, timeoutMilliseconds) == 1 else { return nil }
        var byte: UInt8 = 0
        return read(STDIN_FILENO, &byte, 1) == 1 ? byte : nil
    }

    static func size() -> (columns: Int, rows: Int) {
        var size = winsize()
        guard ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0, size.ws_row > 0 else { return (80, 24) }
        return (Int(size.ws_col), Int(size.ws_row))
    }

    static func write(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
