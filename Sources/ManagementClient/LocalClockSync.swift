import Foundation

/// The local clock's synchronization as `rampart time` shows it: from `chronyc tracking` when chronyd
/// answers, else from `timedatectl show` (systemd-timesyncd), else none, said plainly.
public struct LocalClockSync: Sendable, Equatable, Codable {
    /// chrony, systemd-timesyncd or none.
    public var source: String
    /// Nil when no service answers.
    public var synchronized: Bool?
    public var detail: String

    /// A command's exit status and standard output (nil: the command is not installed).
    public typealias Answer = (status: Int32, output: String)

    /// Longest text read from either tool (they print a few hundred bytes).
    static let outputBytesMax = 16_384

    /// What the tools' answers say. chronyc's "Leap status : Not synchronised" means unsynchronized;
    /// timedatectl's `NTPSynchronized=yes` means synchronized.
    public static func interpret(chrony: Answer?, timedatectl: Answer?) -> LocalClockSync {
        if let chrony, chrony.status == 0, let leap = field(chrony.output, "Leap status", separator: ":") {
            let keep = ["Reference ID", "Stratum", "System time", "Last offset", "Leap status"]
            let detail = keep.compactMap { key in field(chrony.output, key, separator: ":").map { "\(key): \($0)" } }
            return LocalClockSync(source: "chrony", synchronized: leap != "Not synchronised", detail: detail.joined(separator: "; "))
        }
        if let timedatectl, timedatectl.status == 0, let synced = field(timedatectl.output, "NTPSynchronized", separator: "=") {
            let ntp = field(timedatectl.output, "NTP", separator: "=") ?? "?"
            return LocalClockSync(
                source: "systemd-timesyncd", synchronized: synced == "yes",
                detail: "NTP service \(ntp == "yes" ? "enabled" : "disabled"), synchronized: \(synced)")
        }
        return LocalClockSync(
            source: "none", synchronized: nil,
            detail:
                "no time synchronization service answers (neither chronyd via `chronyc tracking` nor systemd-timesyncd via `timedatectl show`): "
                + "this clock is not disciplined; install and start chrony (or enable systemd-timesyncd) on every server")
    }

    /// The value of `key` in `key<separator> value` lines, trimmed; control characters dropped.
    static func field(_ text: String, _ key: String, separator: Character) -> String? {
        for line in text.split(separator: "\n") {
            guard let cut = line.firstIndex(of: separator) else { continue }
            guard line[..<cut].trimmingCharacters(in: .whitespaces) == key else { continue }
            let value = line[line.index(after: cut)...].trimmingCharacters(in: .whitespaces)
            return String(value.unicodeScalars.filter { !CharacterSet.controlCharacters.contains($0) }.prefix(200).map(Character.init))
        }
        return nil
    }

    /// Runs both tools on this machine (each with a time limit) and interprets their answers.
    public static func probe() -> LocalClockSync {
        interpret(chrony: run("chronyc", ["tracking"]), timedatectl: run("timedatectl", ["show"]))
    }

    /// Runs `tool` found on the standard system paths; nil when not installed or it could not start.
    static func run(_ tool: String, _ arguments: [String]) -> Answer? {
        guard let path = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"].map({ "\($0)/\(tool)" }).first(where: FileManager.default.isExecutableFile)
        else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return nil }
        // Neither tool should take long; one stuck on a dead daemon is stopped after 3 s.
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { process.terminate() }
        let data = output.fileHandleForReading.readDataToEndOfFile().prefix(outputBytesMax)
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
