import ManagementModel
import ManagementService
import Testing

@testable import ManagementClient

/// `rampart view`'s screen as a pure function: both pages, the rates between two snapshots, the
/// width and height bounds, and hostile names that must not reach the terminal as commands.
@Suite("rampart view: rendering")
struct LiveViewRenderingTests {
    static let now: Int64 = 1_796_587_412_000

    static func report(peerName: String = "mgmt-b") -> HAStatusReport {
        var report = HAStatusReport(
            servers: [
                HAStatusReport.Server(
                    name: peerName, ipAddress: "192.0.2.2", haState: "standby", syncState: "Ok", syncStatus: "lagging",
                    syncDetail: "lagging: 3 revision(s) behind",
                    knownHead: 9, lagRevisions: 3, lagSeconds: 7, connected: true, lastContactMillisecondsAgo: 120,
                    lastSuccessfulSync: HAStatusReport.Timestamp(milliseconds: now - 7_000))
            ], successfullySynced: false)
        report.thisServer = "mgmt-a"
        report.role = "primary"
        report.mode = "active"
        report.activeServer = "mgmt-a"
        report.epoch = HAStatusReport.EpochText(term: 4, server: "mgmt-a")
        report.head = HAStatusReport.Head(number: 12, hash: "ab")
        report.writesEnabled = true
        report.replicationMode = "async"
        report.syncStatus = "degraded"
        return report
    }

    static func snapshot(
        report: HAStatusReport = report(), publishes: Int64 = 10, publishNanoseconds: Int64 = 100_000_000, now: Int64 = now,
        gateways: [MonitoringFacts.Gateway] = [MonitoringFacts.Gateway(name: "gw1", state: "ok")],
        events: [RecentEvents.Entry] = []
    ) -> LiveViewSnapshot {
        LiveViewSnapshot(
            ha: report, modeSinceMilliseconds: now - 3_725_000, sessions: 2, locks: 5, gateways: gateways,
            clusterMembers: [MonitoringFacts.ClusterMember(cluster: "c1", member: "c1-m1", state: "ACTIVE")],
            clockOffsetsMilliseconds: ["mgmt-b": -1_250], pendingBytes: ["mgmt-b": 3_200], publishesTotal: publishes,
            publishNanosecondsTotal: publishNanoseconds, events: events,
            nowMilliseconds: now)
    }

    static let resources = NodeResources(
        cpuTotalTicks: 2_000, cpuBusyTicks: 700, memoryTotalBytes: 4 << 30, memoryAvailableBytes: 3 << 30, diskTotalBytes: 100 << 30,
        diskAvailableBytes: 25 << 30)

    /// Two snapshots two seconds apart: 4 publishes of 30 ms each between them, CPU busy half the time.
    static func frame(_ current: LiveViewSnapshot = snapshot(publishes: 14, publishNanoseconds: 220_000_000, now: now + 2_000)) -> LiveViewFrame {
        LiveViewFrame(
            snapshot: current, previous: snapshot(), resources: resources,
            previousResources: NodeResources(cpuTotalTicks: 1_800, cpuBusyTicks: 600))
    }

    @Test("the HA page: this server's mode, epoch and time held; the peer's lag (revisions, seconds, bytes pending), last sync and clock; rates")
    func haPage() {
        let screen = LiveView.render(Self.frame(), page: .ha, width: 200, height: 60).joined(separator: "\n")
        #expect(screen.contains("rampart view: mgmt-a   [HA] Gateways"))
        #expect(screen.contains("mgmt-a: active (primary), epoch 4/mgmt-a, held 1h 2m, writes enabled"), "\(screen)")
        #expect(screen.contains("publishes 2.0/s (latency 30.0 ms, 14 since start), sessions 2, locked objects 5"), "\(screen)")
        #expect(screen.contains("node: cpu 50.0%   memory 1.0 GiB used of 4.0 GiB (25%)   disk 25.0 GiB free of 100.0 GiB (75% used)"), "\(screen)")
        let peer = screen.split(separator: "\n").first { $0.hasPrefix("  mgmt-b ") }.map(String.init) ?? ""
        for field in ["standby", "lagging", " 3 ", " 7 ", " 3.1 KiB ", "-1.250 s", LiveView.clock(Self.now - 7_000)] {
            #expect(peer.contains(field), "\(field) in \(peer)")
        }
        #expect(!screen.contains("gw1"), "gateways are on the other page")
    }

    @Test("the gateways page: gateways and cluster members with their states; events on both pages, newest first")
    func gatewaysPage() {
        let events = (1...12).map { number in
            RecentEvents.Entry(
                sequence: UInt64(number), atMilliseconds: Self.now, kind: "revision-published", text: "event \(number)", needsAttention: number == 12)
        }
        let frame = Self.frame(Self.snapshot(events: events))
        let lines = LiveView.render(frame, page: .gateways, width: 200, height: 60)
        let screen = lines.joined(separator: "\n")
        #expect(screen.contains("HA [Gateways]"))
        #expect(lines.contains { $0.hasPrefix("  gw1 ") && $0.hasSuffix("ok") }, "\(screen)")
        #expect(lines.contains { $0.contains("c1") && $0.contains("c1-m1") && $0.hasSuffix("ACTIVE") }, "\(screen)")
        #expect(!screen.contains("PEERS"))
        let shown = lines.filter { $0.contains(" event ") }
        #expect(shown.count == 10, "the last 10 events")
        #expect(shown.first?.hasSuffix("! event 12") == true, "newest first, marked when it needs attention: \(shown)")
        #expect(shown.last?.hasSuffix("event 3") == true)
        #expect(LiveView.render(frame, page: .ha, width: 200, height: 60).contains { $0.hasSuffix("event 12") })
    }

    @Test("every line fits the width and the screen fits the height")
    func truncation() {
        let lines = LiveView.render(Self.frame(), page: .ha, width: 30, height: 8)
        #expect(lines.count == 8)
        #expect(lines.allSatisfy { $0.count <= 30 })
        #expect(lines[0].hasSuffix("…"))
        #expect(LiveView.render(Self.frame(), page: .ha, width: 0, height: 0).isEmpty)
        #expect(LiveView.truncate("abc", width: 3) == "abc")
        #expect(LiveView.truncate("abcd", width: 3) == "ab…")
    }

    @Test("a hostile peer name, gateway name or event text cannot send escape sequences to the terminal")
    func hostileNamesAreEscaped() {
        let hostile = "evil\u{1B}[2J\u{1B}]0;owned\u{07}\r\n\u{202E}x\u{9B}"
        var report = Self.report(peerName: hostile)
        report.lastError = "bad\u{1B}[31m"
        let events = [RecentEvents.Entry(sequence: 1, atMilliseconds: Self.now, kind: "k", text: "text \(hostile)", needsAttention: false)]
        let snapshot = Self.snapshot(report: report, gateways: [MonitoringFacts.Gateway(name: hostile, state: hostile)], events: events)
        for page in LiveViewPage.allCases {
            let lines = LiveView.render(LiveViewFrame(snapshot: snapshot, resources: Self.resources), page: page, width: 500, height: 100)
            for line in lines {
                #expect(
                    !line.unicodeScalars.contains { $0.properties.generalCategory == .control || $0.properties.generalCategory == .format },
                    "\(line.debugDescription)")
            }
            #expect(lines.contains { $0.contains("evil\\u{1B}[2J\\u{1B}]0;owned\\u{7}\\u{D}\\u{A}\\u{202E}x\\u{9B}") })
        }
    }

    @Test("a notice (the server not answering) shows under the header, escaped")
    func notice() {
        let lines = LiveView.render(Self.frame(), page: .gateways, width: 200, height: 60, notice: "the server is not answering: \u{1B}[2J")
        #expect(lines[1] == "! the server is not answering: \\u{1B}[2J")
        #expect(LiveView.render(Self.frame(), page: .gateways, width: 200, height: 60)[1].hasPrefix("node: "))
    }

    @Test("without a previous snapshot the rates are unknown, not invented; a counter that went back gives none")
    func ratesNeedTwoSnapshots() {
        let single = LiveViewFrame(snapshot: Self.snapshot(), resources: Self.resources)
        #expect(single.figures == LiveViewFrame.Figures())
        #expect(LiveView.render(single, page: .ha, width: 200, height: 60).contains { $0.contains("publishes - (latency -, 10 since start)") })
        let restarted = LiveViewFrame(snapshot: Self.snapshot(publishes: 1, now: Self.now + 1_000), previous: Self.snapshot(), resources: Self.resources)
        #expect(restarted.figures.publishesPerSecond == nil)
        #expect(restarted.figures.publishLatencyMilliseconds == nil)
    }

    @Test("a server without HA says so")
    func withoutHA() {
        let frame = LiveViewFrame(snapshot: Self.snapshot(report: .notConfigured), resources: NodeResources())
        let screen = LiveView.render(frame, page: .ha, width: 200, height: 60).joined(separator: "\n")
        #expect(screen.contains("HA is not running on this server."))
        #expect(screen.contains("node: cpu -   memory -   disk -"))
    }

    @Test("/proc/stat and /proc/meminfo parse; a malformed file gives no figure")
    func procFiles() {
        let cpu = NodeResources.cpuTicks(procStat: "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n")
        #expect(cpu?.total == 1_000)
        #expect(cpu?.busy == 150)
        #expect(NodeResources.cpuTicks(procStat: "garbage") == nil)
        #expect(NodeResources.cpuTicks(procStat: "cpu  1 2") == nil)
        let memory = NodeResources.memoryBytes(meminfo: "MemTotal:       4096 kB\nMemFree: 1 kB\nMemAvailable:   1024 kB\n")
        #expect(memory.total == 4 << 20)
        #expect(memory.available == 1 << 20)
        #expect(NodeResources.memoryBytes(meminfo: "MemTotal: lots").total == nil)
    }
}
