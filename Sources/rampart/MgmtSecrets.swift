import ArgumentParser
import Foundation
import ManagementModel
import TrustCore

/// Secret-bearing parameters of `rampart mgmt`: passwords, one-time activation keys, shared secrets.
/// A value on the command line is visible to every user of the machine (`ps`) and stays in shell
/// history, so `KEY=value` is refused for these keys; the value comes from a file (`KEY-file=FILE`,
/// `KEY-file=-` to type it at a prompt) or from the environment (`KEY-env=VARIABLE`).
enum MgmtSecrets {
    /// Every key whose value is a secret, at any depth (`members.1.one-time-password` too): one list.
    static let keys: Set<String> = [
        "password", "new-password", "one-time-password", "shared-secret", "pre-shared-key", "secret",
        "passphrase", "api-key", "activation-key", "password-hash", "private-key",
    ]
    static let fileSuffix = "-file"
    static let environmentSuffix = "-env"
    /// `KEY-file=-`: ask on the terminal.
    static let promptPath = "-"

    /// Where a secret's value comes from.
    enum Source: Hashable, Sendable {
        case file(String)
        case environment(String)
        case prompt
    }

    /// A secret key given through a source: `one-time-password-file=F` → ("one-time-password", .file(F)).
    static func sourced(key: String, value: String) -> (key: String, source: Source)? {
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
    static func refusal(fullKey: String, key: String) -> String {
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
    static func read(_ source: Source, key: String) throws(MgmtParameters.Failure) -> String {
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

/// `rampart sic new-key`: a strong one-time activation key in a new private file, for
/// `one-time-password-file=FILE` on the server and `--activation-key-file FILE` on the node.
struct SICNewKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "new-key",
        abstract: "Write a strong one-time activation key to a new file (mode 0600).",
        discussion: """
        The key is never printed unless you ask for it with --out - (standard output). Use it:
          rampart sic new-key --out mgmt-b.key
          rampart mgmt add-checkpoint-host name=mgmt-b ip-address=192.0.2.12 one-time-password-file=mgmt-b.key -r true --data ./mgmt1
          rampart server --data ./mgmt2 --server-name mgmt-b --join 192.0.2.11:18191 --activation-key-file mgmt-b.key
        The same for a gateway: add-simple-gateway … one-time-password-file=F, then rampart gateway … --activation-key-file F.
        An existing file is never replaced (it may hold a key in use).
        """)

    @Option(name: .long, help: ArgumentHelp("The new key file (refused if it exists); - prints the key to standard output.", valueName: "file"))
    var out: String = "activation.key"

    func run() throws {
        let key = SecureRandom.password(length: TrustLimits.activationKeyGeneratedLength)
        if out == "-" {
            print(key)
            return
        }
        try Self.writeNew(key + "\n", to: out)
        print("""
            Wrote a one-time activation key to \(out) (mode 0600; the key is not shown).
            Give it to the node's object:  rampart mgmt add-checkpoint-host name=NAME ip-address=ADDRESS one-time-password-file=\(out) -r true --data DIR
                                      (or add-simple-gateway …, set-checkpoint-host …, with one-time-password-file=\(out))
            and to the node:               --activation-key-file \(out)
            """)
    }

    /// Creates `path` with mode 0600 and writes `text`; refuses an existing file.
    static func writeNew(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST {
                throw CommandFailure("\(path) exists: it may hold a key in use; remove it or choose another --out")
            }
            throw CommandFailure("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard fchmod(fd, 0o600) == 0,
              bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count, fsync(fd) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw CommandFailure("cannot write \(path): \(reason)")
        }
    }
}
