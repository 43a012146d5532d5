import Foundation
import Store
import TrustCore

/// Node-local settings (never synchronized), DIR/node.json: where this server listens, and its
/// backup schedule. The server writes it once its listeners are bound, so `api-port` is the real
/// port even when 0 was asked for. The one reader of the file: the server, the operations tools, the
/// CLI's clients, demo and bench.
public struct NodeSettings: Codable, Sendable, Equatable {
    public var serverName: String
    public var listen: String
    public var apiPort: Int
    public var sicPort: Int?
    /// Scheduled backups of this node (`rampart backup schedule`); kept when the server rewrites the file.
    public var backupSchedule: BackupSchedule?
    enum CodingKeys: String, CodingKey {
        case serverName = "server-name"
        case listen
        case apiPort = "api-port"
        case sicPort = "sic-port"
        case backupSchedule = "backup-schedule"
    }

    public init(serverName: String, listen: String, apiPort: Int, sicPort: Int?, backupSchedule: BackupSchedule? = nil) {
        self.serverName = serverName
        self.listen = listen
        self.apiPort = apiPort
        self.sicPort = sicPort
        self.backupSchedule = backupSchedule
    }

    /// No node.json in the directory: no server has run there yet.
    public struct Missing: Error, CustomStringConvertible {
        public let dataDirectory: String
        public var description: String {
            "No node.json in \(dataDirectory): is a Rampart server running with --data \(dataDirectory)?"
        }
    }

    public static func file(dataDirectory: String) -> URL {
        URL(fileURLWithPath: dataDirectory).appendingPathComponent(DataDirectoryLayout.nodeSettings)
    }

    public func write(dataDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(self), to: Self.file(dataDirectory: dataDirectory), mode: 0o600)
    }

    /// The settings, or nil when the file does not exist; throws when it is not a node.json.
    public static func load(dataDirectory: String) throws -> NodeSettings? {
        guard let data = FileManager.default.contents(atPath: file(dataDirectory: dataDirectory).path) else { return nil }
        return try JSONDecoder().decode(NodeSettings.self, from: data)
    }

    /// The settings; throws `Missing` when the file does not exist.
    public static func read(dataDirectory: String) throws -> NodeSettings {
        guard let settings = try load(dataDirectory: dataDirectory) else { throw Missing(dataDirectory: dataDirectory) }
        return settings
    }
}
