/// The machine's cumulative CPU time counters (the aggregate `cpu` line of /proc/stat, in clock ticks).
public struct CPUTimes: Hashable, Sendable {
    public var totalTicks: UInt64
    /// idle + iowait: time the CPUs did nothing for anyone.
    public var idleTicks: UInt64

    public init(totalTicks: UInt64, idleTicks: UInt64) {
        self.totalTicks = totalTicks
        self.idleTicks = idleTicks
    }

    /// The aggregate `cpu` line of /proc/stat's text; nil when it is missing or not numbers. Fields:
    /// user nice system idle iowait irq softirq steal (guest time is already in user and nice).
    public static func parse(procStat text: String) -> CPUTimes? {
        guard let line = text.split(separator: "\n", maxSplits: 64).first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let fields = line.split(separator: " ").dropFirst().prefix(8)
        var values: [UInt64] = []
        for field in fields {
            guard let value = UInt64(field) else { return nil }
            values.append(value)
        }
        guard values.count >= 4 else { return nil }
        var total: UInt64 = 0
        for value in values {
            let (sum, overflow) = total.addingReportingOverflow(value)
            guard !overflow else { return nil }
            total = sum
        }
        let iowait = values.count > 4 ? values[4] : 0
        let (idle, overflow) = values[3].addingReportingOverflow(iowait)
        guard !overflow else { return nil }
        return CPUTimes(totalTicks: total, idleTicks: idle)
    }
}

/// Turns successive counter samples into a busy percentage: the share of the ticks between two
/// samples that were not idle. The first sample, a counter that went backwards and an interval without
/// ticks give no figure (nil), never a made-up one.
public struct CPULoadSampler: Sendable {
    var previous: CPUTimes?

    public init() {}

    public mutating func percent(after sample: CPUTimes) -> Int? {
        defer { previous = sample }
        guard let previous, sample.totalTicks > previous.totalTicks, sample.idleTicks >= previous.idleTicks else { return nil }
        let total = sample.totalTicks - previous.totalTicks
        let idle = min(sample.idleTicks - previous.idleTicks, total)
        return Int((Double(total - idle) * 100 / Double(total)).rounded())
    }
}
