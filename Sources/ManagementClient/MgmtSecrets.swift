import Foundation
import ManagementModel

/// Secret-bearing parameters of `rampart mgmt`: passwords, one-time activation keys, shared secrets.
/// A value on the command line is visible to every user of the machine (`ps`) and stays in shell
/// history, so `KEY=value` is refused for these keys; the value comes from a file (`KEY-file=FILE`,
/// `KEY-file=-` to type it at a prompt) or from the environment (`KEY-env=VARIABLE`).
public enum MgmtSecrets {
    /// Every key whose value is a secret, at any depth (`members.1.one-time-password` too): one list.
    public static let keys: Set<String> = [
        "password", "new-password", "one-time-password", "shared-secret", "pre-shared-key", "secret",
        "passphrase", "api-key", "activation-key", "password-hash", "private-key",
    ]
    public static let fileSuffix = "-file"
    public static let environmentSuffix = "-env"
    /// `KEY-file=-`: ask on the terminal.
    public static let promptPath = "-"

    /// Where a secret's value comes from.
    public enum Source: Hashable, Sendable {
        case file(String)
        case environment(String)
        case prompt
    }

    /// A secret key given through a source: `one-time-password-file=F` → ("one-time-password", .file(F)).
    public static func sourced(key: String, value: String) -> (key: String, source: Source)? {
        if key.hasSuffix(fileSuffix), keys.contains(String(key.dropLast(fileSuffix.count))) {
            return (String(key.dropLast(fileSuffix.count)), value == promptPath ? .prompt : .file(value))
        }
        if key.hasSuffix(environmentSuffix), keys.contains(String(key.dropLast(environmentSuffix.count))) {
            return (String(key.dropLast(environmentSuffix.count)), .environment(value))
        }
        return nil
    }

    /// Why `KEY=value` is refused for a secret `key` (the last part of `fullKey`), and what to do instead.
    /// Never quotes the value.
    public static func refusal(fullKey: String, key: String) -> String {
        var text = """
            '\(fullKey)=…' is refused: a secret on the command line is visible to every user of this machine \
            (ps) and stays in the shell history. Give it from a file with \(fullKey)\(fileSuffix)=FILE, from the \
            environment with \(fullKey)\(environmentSuffix)=VARIABLE, or type it at a prompt with \(fullKey)\(fileSuffix)=-
            """
        if key == "one-time-password" || key == "activation-key" {
            text += """
                . Make a strong one-time key in a private file with `rampart sic new-key --out FILE`, then \
                \(fullKey)\(fileSuffix)=FILE here and --activation-key-file FILE on the node
                """
        }
        return text
    }

    /// Reads a secret from its source (the I/O side of `MgmtParameters.body`).
    public static func read(_ source: Source, key: String) throws(MgmtParameters.Failure) -> String {
        switch source {
        case .file(let path):
            do {
                return try MgmtFiles.readSecret(file: path, what: key)
            } catch {
                throw MgmtParameters.Failure(description: error.description)
            }
        case .environment(let name):
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw MgmtParameters.Failure(
                    description: "\(key)\(environmentSuffix)=\(name): the environment variable \(name) is not set or empty")
            }
            return value
        case .prompt:
            do {
                return try MgmtFiles.promptSecret(label: key, missingHint: "give \(key)\(fileSuffix)=FILE or \(key)\(environmentSuffix)=VARIABLE")
            } catch {
                throw MgmtParameters.Failure(description: error.description)
            }
        }
    }
}
