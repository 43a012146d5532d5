import Foundation
import ManagementModel
import ManagementService

/// What one screen of `rampart view` is drawn from: the server's snapshot, the one before it (rates
/// are taken between the two) and the machine's resources at both times.
public struct LiveViewFrame: Sendable {
    public var snapshot: LiveViewSnapshot
    public var previous: LiveViewSnapshot?
    public var resources: NodeResources
    public var previousResources: NodeResources?

    public init(snapshot: LiveViewSnapshot, previous: LiveViewSnapshot? = nil, resources: NodeResources, previousResources: NodeResources? = nil) {
        self.snapshot = snapshot
        self.previous = previous
        self.resources = resources
        self.previousResources = previousResources
    }

    /// Figures derived between the two snapshots (nil without a previous one, or when unknown).
    public struct Figures: Sendable, Equatable {
        public var publishesPerSecond: Double?
        /// Mean duration of the publishes between the two snapshots; nil when none committed.
        public var publishLatencyMilliseconds: Double?
        public var cpuPercent: Double?
    }

    public var figures: Figures {
        var figures = Figures()
        if let previous, snapshot.nowMilliseconds > previous.nowMilliseconds {
            let publishes = snapshot.publishesTotal &- previous.publishesTotal
            let seconds = Double(snapshot.nowMilliseconds &- previous.nowMilliseconds) / 1000
            figures.publishesPerSecond = publishes >= 0 ? Double(publishes) / seconds : nil
            if publishes > 0 {
                figures.publishLatencyMilliseconds = Double(snapshot.publishNanosecondsTotal &- previous.publishNanosecondsTotal) / Double(publishes) / 1e6
            }
        }
        if let total = resources.cpuTotalTicks, let busy = resources.cpuBusyTicks, let previousTotal = previousResources?.cpuTotalTicks,
            let previousBusy = previousResources?.cpuBusyTicks, total > previousTotal, busy >= previousBusy
        {
            figures.cpuPercent = min(100, Double(busy - previousBusy) / Double(total - previousTotal) * 100)
        }
        return figures
    }
}

/// The pages of `rampart view`; Tab goes to the next.
public enum LiveViewPage: String, Sendable, CaseIterable {
    case ha = "HA"
    case gateways = "Gateways"

    public var next: LiveViewPage {
        let pages = Self.allCases
        let index = pages.firstIndex(of: self) ?? 0
        return pages[(index + 1) % pages.count]
    }
}

/// The screen of `rampart view` as a pure function: a frame, a page and the terminal's size give the
/// lines to draw, each at most `width` characters, at most `height` of them. Text from the server
/// (names, event descriptions: they come from peers, gateways and administrators) has its control
/// characters escaped, so it cannot move the cursor or change the terminal.
public enum LiveView {
    /// `notice`: a line under the header (the server not answering, say); escaped like the data.
    public static func render(_ frame: LiveViewFrame, page: LiveViewPage, width: Int, height: Int, notice: String? = nil) -> [String] {
        let figures = frame.figures
        var lines = [header(frame.snapshot, page: page)] + (notice.map { ["! " + escape($0)] } ?? [])
        lines += [nodeLine(frame.resources, figures), ""]
        switch page {
        case .ha: lines += haPage(frame.snapshot, figures)
        case .gateways: lines += gatewaysPage(frame.snapshot)
        }
        lines += [""] + eventLines(frame.snapshot)
        return lines.prefix(max(height, 0)).map { truncate($0, width: width) }
    }

    static func header(_ snapshot: LiveViewSnapshot, page: LiveViewPage) -> String {
        let pages = LiveViewPage.allCases.map { $0 == page ? "[\($0.rawValue)]" : $0.rawValue }.joined(separator: " ")
        let server = escape(snapshot.ha.thisServer ?? "this server")
        return "rampart view: \(server)   \(pages)   (Tab: next page, q: quit)   \(clock(snapshot.nowMilliseconds))"
    }

    static func nodeLine(_ resources: NodeResources, _ figures: LiveViewFrame.Figures) -> String {
        let cpu = figures.cpuPercent.map { String(format: "%.1f%%", $0) } ?? "-"
        var memory = "-"
        if let total = resources.memoryTotalBytes, let available = resources.memoryAvailableBytes, total > 0, available <= total {
            memory = "\(bytes(total - available)) used of \(bytes(total)) (\(Int(Double(total - available) / Double(total) * 100))%)"
        }
        var disk = "-"
        if let total = resources.diskTotalBytes, let available = resources.diskAvailableBytes, total > 0, available <= total {
            disk = "\(bytes(available)) free of \(bytes(total)) (\(Int(Double(total - available) / Double(total) * 100))% used)"
        }
        return "node: cpu \(cpu)   memory \(memory)   disk \(disk)"
    }

    static func haPage(_ snapshot: LiveViewSnapshot, _ figures: LiveViewFrame.Figures) -> [String] {
        let ha = snapshot.ha
        guard ha.rampartHA != "not-configured" else {
            return ["HA is not running on this server.", activityLine(snapshot, figures)]
        }
        let held = snapshot.modeSinceMilliseconds.map { duration(milliseconds: snapshot.nowMilliseconds &- $0) } ?? "-"
        let epoch = ha.epoch.map { "\($0.term)/\(escape($0.server))" } ?? "-"
        let writes = ha.writesEnabled == true ? "writes enabled" : "writes refused"
        let behind = (ha.lagRevisions ?? nil).map { ", \($0) revision(s) behind" } ?? ""
        var lines = [
            "THIS SERVER",
            "  \(escape(ha.thisServer ?? "-")): \(escape(ha.mode ?? "-")) (\(escape(ha.role ?? "-"))), epoch \(epoch), held \(held), \(writes)",
            "  head #\(ha.head.map { String($0.number) } ?? "-"), replication \(escape(ha.replicationMode ?? "-")), sync \(escape(ha.syncStatus ?? "-"))\(behind)",
            "  last sync \(ha.lastSuccessfulSync.map { escape($0.iso8601) } ?? "-"), last error \(escape(ha.lastError ?? "-"))",
            activityLine(snapshot, figures),
            "",
            "PEERS (\(ha.servers.count))",
        ]
        lines += table(
            ["NAME", "MODE", "SYNC", "LAG REV", "LAG S", "PENDING", "LAST SYNC", "CLOCK", "DETAIL"],
            ha.servers.map { server in
                [
                    server.name, server.haState, server.syncStatus, server.lagRevisions.map(String.init) ?? "?", String(server.lagSeconds),
                    snapshot.pendingBytes?[server.name].map { bytes(UInt64(clamping: $0)) } ?? "-", server.lastSuccessfulSync?.iso8601 ?? "-",
                    snapshot.clockOffsetsMilliseconds[server.name].map(offset) ?? "-",
                    server.syncDetail,
                ]
            })
        if ha.servers.isEmpty { lines.append("  (no peers)") }
        return lines
    }

    static func activityLine(_ snapshot: LiveViewSnapshot, _ figures: LiveViewFrame.Figures) -> String {
        let rate = figures.publishesPerSecond.map { String(format: "%.1f/s", $0) } ?? "-"
        let latency = figures.publishLatencyMilliseconds.map { String(format: "%.1f ms", $0) } ?? "-"
        return
            "  publishes \(rate) (latency \(latency), \(snapshot.publishesTotal) since start), sessions \(snapshot.sessions), locked objects \(snapshot.locks)"
    }

    static func gatewaysPage(_ snapshot: LiveViewSnapshot) -> [String] {
        var lines = ["GATEWAYS (\(snapshot.gateways.count))"]
        lines += table(["NAME", "SIC STATE"], snapshot.gateways.map { [$0.name, $0.state] })
        if snapshot.gateways.isEmpty { lines.append("  (no gateways)") }
        lines += ["", "CLUSTER MEMBERS (\(snapshot.clusterMembers.count))"]
        lines += table(["CLUSTER", "MEMBER", "STATE"], snapshot.clusterMembers.map { [$0.cluster, $0.member, $0.state] })
        if snapshot.clusterMembers.isEmpty { lines.append("  (no cluster member reported a state)") }
        return lines
    }

    static func eventLines(_ snapshot: LiveViewSnapshot) -> [String] {
        var lines = ["LAST EVENTS"]
        for event in snapshot.events.suffix(LiveViewLimits.recentEventsMax).reversed() {
            lines.append("  \(clock(event.atMilliseconds)) \(event.needsAttention ? "!" : " ") \(escape(event.text))")
        }
        if snapshot.events.isEmpty { lines.append("  (none yet)") }
        return lines
    }

    /// Columns padded to their widest cell (cells escaped first); a header row, then one row per item.
    static func table(_ header: [String], _ rows: [[String]]) -> [String] {
        let cells = ([header] + rows).map { $0.map(escape) }
        var widths = header.map { _ in 0 }
        for row in cells { for (column, cell) in row.enumerated() where column < widths.count { widths[column] = max(widths[column], cell.count) } }
        return cells.map { row in
            "  "
                + row.enumerated().map { column, cell in cell.padding(toLength: widths[min(column, widths.count - 1)], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingTrailingSpaces()
        }
    }

    // MARK: text

    /// Control and format characters (ESC, CR, bidi overrides, C1 controls) as `\u{…}`: data never
    /// reaches the terminal as a command.
    public static func escape(_ text: String) -> String {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar.properties.generalCategory {
            case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .privateUse, .unassigned:
                escaped += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default:
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// At most `width` characters: a longer line ends in "…".
    public static func truncate(_ line: String, width: Int) -> String {
        guard width > 0 else { return "" }
        guard line.count > width else { return line }
        return String(line.prefix(width - 1)) + "…"
    }

    static func clock(_ milliseconds: Int64) -> String {
        let iso = Renderer.iso8601(milliseconds: milliseconds)
        guard let time = iso.split(separator: "T").last else { return iso }
        return String(time.prefix(8))
    }

    static func offset(_ milliseconds: Int64) -> String {
        String(format: "%+.3f s", Double(milliseconds) / 1000)
    }

    static func duration(milliseconds: Int64) -> String {
        let seconds = max(milliseconds, 0) / 1000
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3_600 { return "\(seconds / 60)m \(seconds % 60)s" }
        if seconds < 86_400 { return "\(seconds / 3_600)h \(seconds % 3_600 / 60)m" }
        return "\(seconds / 86_400)d \(seconds % 86_400 / 3_600)h"
    }

    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f", value) + " " + units[unit]
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
