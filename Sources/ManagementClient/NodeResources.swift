import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// CPU, memory and disk of the machine `rampart view` runs on (the server's: the view talks to it over
/// its local socket). Read from /proc/stat, /proc/meminfo and statvfs of the data directory; a figure
/// that cannot be read is nil (not Linux, no /proc).
public struct NodeResources: Sendable, Equatable {
    /// Every CPU's ticks since boot, and those not idle (idle and iowait excluded).
    public var cpuTotalTicks: UInt64?
    public var cpuBusyTicks: UInt64?
    public var memoryTotalBytes: UInt64?
    public var memoryAvailableBytes: UInt64?
    public var diskTotalBytes: UInt64?
    public var diskAvailableBytes: UInt64?

    public init(
        cpuTotalTicks: UInt64? = nil, cpuBusyTicks: UInt64? = nil, memoryTotalBytes: UInt64? = nil, memoryAvailableBytes: UInt64? = nil,
        diskTotalBytes: UInt64? = nil, diskAvailableBytes: UInt64? = nil
    ) {
        self.cpuTotalTicks = cpuTotalTicks
        self.cpuBusyTicks = cpuBusyTicks
        self.memoryTotalBytes = memoryTotalBytes
        self.memoryAvailableBytes = memoryAvailableBytes
        self.diskTotalBytes = diskTotalBytes
        self.diskAvailableBytes = diskAvailableBytes
    }

    /// Reads the figures now; `dataDirectory` names the disk.
    public static func read(dataDirectory: String) -> NodeResources {
        var resources = NodeResources()
        if let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let cpu = cpuTicks(procStat: stat) {
            resources.cpuTotalTicks = cpu.total
            resources.cpuBusyTicks = cpu.busy
        }
        if let meminfo = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) {
            let memory = memoryBytes(meminfo: meminfo)
            resources.memoryTotalBytes = memory.total
            resources.memoryAvailableBytes = memory.available
        }
        var fs = statvfs()
        if statvfs(dataDirectory, &fs) == 0 {
            let block = UInt64(fs.f_frsize)
            resources.diskTotalBytes = UInt64(fs.f_blocks).multipliedReportingOverflow(by: block).partialValue
            resources.diskAvailableBytes = UInt64(fs.f_bavail).multipliedReportingOverflow(by: block).partialValue
        }
        return resources
    }

    /// The first line of /proc/stat: `cpu user nice system idle iowait irq softirq steal …`.
    static func cpuTicks(procStat: String) -> (total: UInt64, busy: UInt64)? {
        guard let line = procStat.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        let ticks = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) }
        guard ticks.count >= 5 else { return nil }
        let total = ticks.reduce(UInt64(0)) { $0.addingReportingOverflow($1).partialValue }
        let idle = ticks[3].addingReportingOverflow(ticks[4]).partialValue
        return (total, total >= idle ? total - idle : 0)
    }

    /// `MemTotal` and `MemAvailable` of /proc/meminfo (kB).
    static func memoryBytes(meminfo: String) -> (total: UInt64?, available: UInt64?) {
        var total: UInt64?
        var available: UInt64?
        for line in meminfo.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kilobytes = UInt64(fields[1]) else { continue }
            let bytes = kilobytes.multipliedReportingOverflow(by: 1024).partialValue
            if fields[0] == "MemTotal:" { total = bytes }
            if fields[0] == "MemAvailable:" { available = bytes }
        }
        return (total, available)
    }
}
