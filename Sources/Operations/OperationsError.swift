/// Why an operation was refused or failed: a stable `code` for scripts and a message that says
/// what is wrong and what to do. Whatever raised it changed nothing.
public struct OperationsError: Error, Sendable, CustomStringConvertible, Equatable {
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(message) [\(code)]" }

    // Archive problems, each named for what a user must do differently.
    static func notAnArchive(_ path: String) -> Self {
        Self("not-an-archive", "\(path) is not a Rampart backup or snapshot (no archive header)")
    }
    static func truncated(_ path: String, _ detail: String) -> Self {
        Self("truncated", "\(path) is truncated: \(detail); it was cut short (an interrupted copy or a full disk)")
    }
    static func corrupt(_ path: String, _ detail: String) -> Self {
        Self("corrupt", "\(path) is corrupt: \(detail)")
    }
    static func incompatible(_ path: String, _ detail: String) -> Self {
        Self("incompatible", "\(path) cannot be used by this Rampart: \(detail)")
    }
    static func wrongPassphrase(_ path: String) -> Self {
        Self("wrong-passphrase", "the passphrase does not open \(path) (wrong passphrase file)")
    }
    static func passphraseRequired(_ path: String) -> Self {
        Self("passphrase-required", "\(path) is encrypted: give its passphrase with --passphrase-file")
    }
}
