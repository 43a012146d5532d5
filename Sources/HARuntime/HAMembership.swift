import Foundation
import Store
import TrustCore

/// Node-local HA membership (never synchronized), DIR/ha.json: written once a secondary has joined,
/// so a restart needs no --join and never enrols again. A directory without it is a primary's.
public struct HAMembership: Codable, Equatable, Sendable {
    public var role: String
    public var serverName: String
    public var activeServer: String
    public var joinHost: String
    public var joinSICPort: Int
    enum CodingKeys: String, CodingKey {
        case role
        case serverName = "server-name"
        case activeServer = "active-server"
        case joinHost = "join-host"
        case joinSICPort = "join-sic-port"
    }

    public init(role: String, serverName: String, activeServer: String, joinHost: String, joinSICPort: Int) {
        self.role = role
        self.serverName = serverName
        self.activeServer = activeServer
        self.joinHost = joinHost
        self.joinSICPort = joinSICPort
    }

    public static func file(_ directory: URL) -> URL { directory.appendingPathComponent(DataDirectoryLayout.haMembership) }

    public static func load(_ directory: URL) throws -> HAMembership? {
        guard let data = FileManager.default.contents(atPath: file(directory).path) else { return nil }
        return try JSONDecoder().decode(HAMembership.self, from: data)
    }

    public func save(_ directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(self), to: Self.file(directory), mode: 0o600)
    }
}
