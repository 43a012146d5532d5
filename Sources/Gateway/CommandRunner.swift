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
    }

    public static func run(_ arguments: [String]) async throws -> Result {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-cmd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outputURL = scratch.appendingPathComponent("stdout"), errorURL = scratch.appendingPathComponent("stderr")
        FileManager.default.createFile(atPath: outputURL.path, contents: nil)
        FileManager.default.createFile(atPath: errorURL.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputURL), errorOutput = try FileHandle(forWritingTo: errorURL)
        defer {
            try? output.close()
            try? errorOutput.close()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
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
