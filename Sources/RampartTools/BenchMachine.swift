import Foundation
import ManagementModel
import Synchronization

/// How busy the whole machine was while a figure was measured, from /proc: the share of CPU time spent
/// working and the share stolen by the hypervisor, between the previous figure (or the start) and
/// this one, and the load average when it was taken. Every process counts, the benchmark's own too:
/// on a 2-core machine a run that shares it with a build is not a quiet run.
enum BenchMachine {
    private static let lastCPUTimes = Mutex<[UInt64]?>(nil)

    /// Starts the first figure's window: call when the benchmark starts.
    static func start() {
        let now = cpuTimes()
        lastCPUTimes.withLock { $0 = now }
    }

    /// The machine since the previous call, as the `machine` field of a figure (nil off Linux).
    static func sinceLastFigure() -> JSONValue? {
        guard let now = cpuTimes() else { return nil }
        let before = lastCPUTimes.withLock { last in
            defer { last = now }
            return last
        }
        guard let before, before.count == now.count else { return nil }
        let spent = zip(now, before).map { $0 &- $1 }
        let total = Double(spent.reduce(0, +))
        guard total > 0 else { return nil }
        // /proc/stat's cpu line: user nice system idle iowait irq softirq steal ...
        let idle = Double(spent[3] + (spent.count > 4 ? spent[4] : 0))
        let steal = spent.count > 7 ? Double(spent[7]) : 0
        var fields: [String: JSONValue] = [
            "cpu_busy_percent": .double(((total - idle) / total * 1000).rounded() / 10),
            "cpu_steal_percent": .double((steal / total * 1000).rounded() / 10),
        ]
        if let load = loadAverage() { fields["load_average_1m"] = .double(load) }
        return .object(fields)
    }

    static func cpuTimes() -> [UInt64]? {
        guard let text = procFile("/proc/stat"), let line = text.split(separator: "\n").first, line.hasPrefix("cpu ") else { return nil }
        return line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
    }

    static func loadAverage() -> Double? {
        procFile("/proc/loadavg")?.split(separator: " ").first.flatMap { Double($0) }
    }

    /// A /proc file read to its end (they report a size of 0, so whole-file reads that trust the size get nothing).
    static func procFile(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
    }
}
