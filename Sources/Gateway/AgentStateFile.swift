import Foundation
import ManagementModel
import TrustCore

/// The agent's node-local state, DIR/gateway.json (0600, replaced by write-temp, fsync, rename): its
/// name, the management servers it follows (as the servers last announced them), the highest epoch it
/// has seen, and the last push it refused. The fence is durable before any install is acknowledged.
public struct AgentState: Codable, Sendable, Equatable {
    public struct Server: Codable, Sendable, Equatable, Hashable {
        public var name: String?
        public var sicAddress: String
        public init(name: String?, sicAddress: String) {
            self.name = name
            self.sicAddress = sicAddress
        }
        enum CodingKeys: String, CodingKey {
            case name
            case sicAddress = "sic-address"
        }
    }

    public var name: String
    public var servers: [Server]
    public var highestEpochTerm: UInt64?
    public var highestEpochServer: String?
    public var lastRefusal: String?

    public init(name: String, servers: [Server], highestEpoch: RevisionEpoch? = nil, lastRefusal: String? = nil) {
        self.name = name
        self.servers = servers
        self.highestEpochTerm = highestEpoch?.term
        self.highestEpochServer = highestEpoch?.server
        self.lastRefusal = lastRefusal
    }

    public var highestEpoch: RevisionEpoch? {
        get { highestEpochTerm.flatMap { term in highestEpochServer.map { RevisionEpoch(term: term, server: $0) } } }
        set {
            highestEpochTerm = newValue?.term
            highestEpochServer = newValue?.server
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, servers
        case highestEpochTerm = "highest-epoch-term"
        case highestEpochServer = "highest-epoch-server"
        case lastRefusal = "last-refusal"
    }

    public static func file(_ directory: URL) -> URL { directory.appendingPathComponent("gateway.json") }

    /// The stored state, nil when the directory has none yet. A file that does not parse is an error
    /// (never silently replaced: it holds the fence).
    public static func load(_ directory: URL) throws -> AgentState? {
        let url = file(directory)
        guard let handle = FileHandle(forReadingAtPath: url.path) else { return nil }
        defer { try? handle.close() }
        let data = try handle.read(upToCount: 1 << 20) ?? Data()
        do { return try JSONDecoder().decode(AgentState.self, from: data) } catch {
            throw AgentError("\(url.path) does not parse (\(error)); it holds this gateway's fence: restore it or remove it knowingly")
        }
    }

    public func save(_ directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try DurableFile.write(try encoder.encode(self), to: Self.file(directory), mode: 0o600)
    }
}

/// An agent failure with a message for the operator.
public struct AgentError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
