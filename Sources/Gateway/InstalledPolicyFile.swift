import Foundation
import ManagementModel
import TrustCore

public enum InstalledPolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    case tooLarge(path: String, bytes: Int)
    case unreadable(path: String, reason: String)
    case unsupportedFormat(path: String, version: Int)
    /// A policy that fails `CompiledPolicy.validationErrors`.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .tooLarge(let path, let bytes):
            return "\(path) is \(bytes) bytes, more than the \(InstalledPolicyFile.sizeBytesMax) an installed policy may have"
        case .unreadable(let path, let reason): return "\(path) is not a readable installed policy: \(reason)"
        case .unsupportedFormat(let path, let version):
            return "\(path) has policy format \(version); this gateway knows format \(CompiledPolicy.currentFormatVersion)"
        case .invalid(let path, let reason): return "\(path): the policy is not usable: \(reason)"
        }
    }
}

/// The gateway's durable record of the policy it enforces: DIR/installed-policy.json, the
/// `CompiledPolicy` as JSON (with its revision and epoch). Replaced by write-temp, fsync, rename, so
/// after a crash it holds either the previous policy or the new one, never a mix.
public enum InstalledPolicyFile {
    public static let fileName = "installed-policy.json"
    public static let sizeBytesMax = 64 << 20

    /// The policy in force before the last install, kept for a cluster's rollback (install-on-all-cluster-members-or-fail).
    public static let previousFileName = "installed-policy.previous.json"

    public static func url(dataDirectory: URL) -> URL { dataDirectory.appendingPathComponent(fileName) }
    static func previousURL(dataDirectory: URL) -> URL { dataDirectory.appendingPathComponent(previousFileName) }

    /// The installed policy, or nil when none was ever installed.
    public static func load(dataDirectory: URL) throws -> CompiledPolicy? {
        try load(url(dataDirectory: dataDirectory))
    }

    /// The policy of `file` (checked as a received one), or nil when there is none.
    static func load(_ file: URL) throws -> CompiledPolicy? {
        guard let handle = try? FileHandle(forReadingFrom: file) else {
            if FileManager.default.fileExists(atPath: file.path) { throw InstalledPolicyError.unreadable(path: file.path, reason: "cannot open it") }
            return nil
        }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: sizeBytesMax + 1) ?? Data()
        guard data.count <= sizeBytesMax else { throw InstalledPolicyError.tooLarge(path: file.path, bytes: data.count) }
        struct Header: Decodable { var formatVersion: Int }
        do {
            let version = try JSONDecoder().decode(Header.self, from: data).formatVersion
            guard version == CompiledPolicy.currentFormatVersion else { throw InstalledPolicyError.unsupportedFormat(path: file.path, version: version) }
            let policy = try JSONDecoder().decode(CompiledPolicy.self, from: data)
            if let problem = policy.validationErrors.first { throw InstalledPolicyError.invalid(path: file.path, reason: problem) }
            return policy
        } catch let error as InstalledPolicyError {
            throw error
        } catch {
            throw InstalledPolicyError.unreadable(path: file.path, reason: "\(error)")
        }
    }

    /// Stores `policy` in place of the installed one; an unusable policy is refused and nothing changes.
    public static func save(_ policy: CompiledPolicy, dataDirectory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try save(policy, encoded: Array(try encoder.encode(policy)), dataDirectory: dataDirectory)
    }

    /// Stores the policy's JSON exactly as received (`encoded`, which must decode to `policy`), so a
    /// gateway never serializes a pushed policy a second time.
    public static func save(_ policy: CompiledPolicy, encoded: [UInt8], dataDirectory: URL) throws {
        let file = url(dataDirectory: dataDirectory)
        if let problem = policy.validationErrors.first { throw InstalledPolicyError.invalid(path: file.path, reason: problem) }
        guard encoded.count <= sizeBytesMax else { throw InstalledPolicyError.tooLarge(path: file.path, bytes: encoded.count) }
        try keepAsPrevious(file, dataDirectory: dataDirectory)
        try DurableFile.write(encoded, to: file, mode: 0o644)
    }

    /// The installed policy's bytes become the previous policy (durably, before the new one replaces it).
    static func keepAsPrevious(_ file: URL, dataDirectory: URL) throws {
        let previous = previousURL(dataDirectory: dataDirectory)
        guard let data = FileManager.default.contents(atPath: file.path) else {
            // Nothing installed before: a rollback returns to the initial policy.
            if FileManager.default.fileExists(atPath: previous.path) { try FileManager.default.removeItem(at: previous) }
            return
        }
        guard data.count <= sizeBytesMax else { throw InstalledPolicyError.tooLarge(path: file.path, bytes: data.count) }
        try DurableFile.write(data, to: previous, mode: 0o644)
    }

    /// Puts the previous policy back as the installed one and returns it; nil when there was none
    /// (the installed policy is removed: the initial policy applies).
    public static func rollBack(dataDirectory: URL) throws -> CompiledPolicy? {
        let file = url(dataDirectory: dataDirectory)
        let previous = previousURL(dataDirectory: dataDirectory)
        guard let policy = try load(previous) else {
            if FileManager.default.fileExists(atPath: file.path) { try FileManager.default.removeItem(at: file) }
            try DurableFile.syncDirectory(dataDirectory.path)
            return nil
        }
        guard let data = FileManager.default.contents(atPath: previous.path) else {
            throw InstalledPolicyError.unreadable(path: previous.path, reason: "vanished")
        }
        try DurableFile.write(data, to: file, mode: 0o644)
        return policy
    }
}

extension InstalledPolicyStorage {
    /// DIR/installed-policy.json (`InstalledPolicyFile`: checked, then written as the bytes the server
    /// sent, by write-temp, fsync, rename).
    public static func file(in directory: URL) -> InstalledPolicyStorage {
        InstalledPolicyStorage(
            load: { try InstalledPolicyFile.load(dataDirectory: directory) },
            save: { policy, bytes in try InstalledPolicyFile.save(policy, encoded: Array(bytes), dataDirectory: directory) },
            rollBack: { try InstalledPolicyFile.rollBack(dataDirectory: directory) })
    }
}
