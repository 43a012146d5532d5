import Foundation
import Subprocess

/// How one action ended: success, and what to keep of it (bounded, never a secret).
public struct ActionOutcome: Sendable, Equatable {
    public var succeeded: Bool
    public var output: String

    public init(succeeded: Bool, output: String) {
        self.succeeded = succeeded
        self.output = output
    }
}

/// Runs a repository script as Check Point does: the trigger data as base64 JSON in the first argument.
/// The body is written to a 0700 file in a 0700 directory of its own (removed after); a body with a
/// `#!` line runs with its interpreter, any other with /bin/sh. The script leads a process group of
/// its own, and a time-out kills the whole group (children it started included). Standard output and
/// error are captured together, the first `outputBytesMax` bytes kept.
public struct ScriptRunner: Sendable {
    public var outputBytesMax: Int

    public init(outputBytesMax: Int = SmartTaskLimits().outputBytesMax) {
        self.outputBytesMax = outputBytesMax
    }

    public func run(_ script: SmartTaskSpec.Script, payload: String, timeoutSeconds: Int, environment extra: [String: String] = [:]) async -> ActionOutcome {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-smarttask-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("script")
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
            guard FileManager.default.createFile(atPath: file.path, contents: Data(script.body.utf8), attributes: [.posixPermissions: 0o700]) else {
                return ActionOutcome(succeeded: false, output: "cannot write the script \(script.name) to \(directory.path)")
            }
        } catch {
            return ActionOutcome(succeeded: false, output: "cannot write the script \(script.name): \(error)")
        }
        let argument = Data(payload.utf8).base64EncodedString()
        let executable: Executable = script.body.hasPrefix("#!") ? .path(.init(file.path)) : .path("/bin/sh")
        let arguments: Arguments = script.body.hasPrefix("#!") ? [argument] : [file.path, argument]
        var environment: [Environment.Key: String] = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"]
        for (key, value) in extra { environment[Environment.Key(stringLiteral: key)] = value }
        var options = PlatformOptions()
        options.processGroupID = 0
        let bytesMax = outputBytesMax
        do {
            let result = try await Subprocess.run(
                executable, arguments: arguments, environment: .custom(environment), workingDirectory: .init(directory.path),
                platformOptions: options, input: .none, output: .sequence, error: .combinedWithOutput
            ) { execution in
                try await withTaskCancellationHandler {
                    try await Self.capture(execution, timeoutSeconds: timeoutSeconds, bytesMax: bytesMax)
                } onCancel: {
                    // The engine stops: the script and its children do not outlive it.
                    try? execution.send(signal: .kill, toProcessGroup: true)
                }
            }
            let captured = result.closureResult
            let text = captured.text(bytesMax: bytesMax)
            if captured.timedOut {
                return ActionOutcome(
                    succeeded: false, output: "the script \(script.name) ran longer than its time-out of \(timeoutSeconds) s and was killed\n" + text)
            }
            switch result.terminationStatus {
            case .exited(0): return ActionOutcome(succeeded: true, output: text)
            case .exited(let code): return ActionOutcome(succeeded: false, output: "the script \(script.name) exited with \(code)\n" + text)
            case .signaled(let signal): return ActionOutcome(succeeded: false, output: "the script \(script.name) was killed by signal \(signal)\n" + text)
            }
        } catch {
            return ActionOutcome(succeeded: false, output: "the script \(script.name) could not run: \(error)")
        }
    }

    /// The script's combined output, up to `bytesMax`; on the time-out its process group is killed and
    /// what came before is kept.
    static func capture(_ execution: Execution<NoInput, SequenceOutput, CombinedErrorOutput>, timeoutSeconds: Int, bytesMax: Int) async throws -> CapturedOutput
    {
        try await withThrowingTaskGroup(of: CapturedOutput?.self) { group in
            group.addTask {
                var captured = CapturedOutput()
                for try await chunk in execution.standardOutput {
                    chunk.withUnsafeBytes { captured.append($0, bytesMax: bytesMax) }
                }
                return captured
            }
            group.addTask {
                try await Task.sleep(for: .seconds(timeoutSeconds))
                try? execution.send(signal: .kill, toProcessGroup: true)
                return nil
            }
            var captured = CapturedOutput()
            if let first = try await group.next(), let output = first {
                captured = output
                group.cancelAll()
            } else {
                // Timed out: the group is killed, so the pipe ends; keep what came before.
                captured = (try await group.next() ?? nil) ?? CapturedOutput()
                captured.timedOut = true
            }
            return captured
        }
    }
}

/// A child's output: the first bytes up to the bound, and how many more there were.
struct CapturedOutput: Sendable {
    var bytes: [UInt8] = []
    var droppedBytes = 0
    var timedOut = false

    mutating func append(_ buffer: UnsafeRawBufferPointer, bytesMax: Int) {
        let room = max(bytesMax - bytes.count, 0)
        bytes.append(contentsOf: buffer.prefix(room))
        droppedBytes += max(buffer.count - room, 0)
    }

    func text(bytesMax: Int) -> String {
        let text = String(decoding: bytes, as: UTF8.self)
        return droppedBytes > 0 ? text + "\n[output truncated at \(bytesMax) bytes; \(droppedBytes) more]" : text
    }
}
