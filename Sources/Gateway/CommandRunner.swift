import Foundation

/// Runs a system tool (`nft`, `ip`) found on PATH and returns its exit status and output. Output
/// goes to temporary files rather than pipes, so a large listing cannot block the child, and is
/// read up to `outputBytesMax`.
public enum CommandRunner {
    public static let outputBytesMax = 16 << 20

    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var errorOutput: String
        public var succeeded: Bool { status == 0 }

        public init(status: Int32, output: String, errorOutput: String) {
            self.status = status
            self.output = output
            self.errorOutput = errorOutput
        }
    }

    /// PATH for the tools: the caller's, then the system directories `nft` and `ip` live in (a
    /// service manager or a test runner may start us without the sbin directories).
    public static var searchPath: String {
        let given = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let present = Set(given.split(separator: ":").map(String.init))
        let extra = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"].filter { !present.contains($0) }
        return ([given].filter { !$0.isEmpty } + extra).joined(separator: ":")
    }

    public static func run(_ arguments: [String]) async throws -> Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outputURL = scratch.appendingPathComponent("stdout")
        let errorURL = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL)
        let errorOutput = try FileHandle(forWritingTo: errorURL)
        defer {
            try? output.close()
            try? errorOutput.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["PATH"] = searchPath
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = output
        process.standardError = errorOutput
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        return Result(status: status, output: read(outputURL), errorOutput: read(errorURL))
    }

    static func read(_ url: URL) -> String {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return "" }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: outputBytesMax)) ?? nil
        return String(decoding: data ?? Data(), as: UTF8.self)
    }

    /// The command prefix that runs a tool inside network namespace `namespace` (none: here).
    public static func inNamespace(_ namespace: String?, _ arguments: [String]) -> [String] {
        guard let namespace else { return arguments }
        return ["ip", "netns", "exec", namespace] + arguments
    }
}
