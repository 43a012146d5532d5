import Foundation
import Testing

@testable import Operations

/// node.json has one reader and one writer: the server, the operations tools, rampart mgmt, demo and bench.
@Suite("Operations: node.json")
struct NodeSettingsTests {
    @Test("missing, written, read back with the keys operators and older Rampart read")
    func roundTrip() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("node-settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        #expect(try NodeSettings.load(dataDirectory: directory.path) == nil)
        let missing = #expect(throws: NodeSettings.Missing.self) { try NodeSettings.read(dataDirectory: directory.path) }
        #expect(missing?.description == "No node.json in \(directory.path): is a Rampart server running with --data \(directory.path)?")

        let settings = NodeSettings(serverName: "mgmt-a", listen: "127.0.0.1", apiPort: 8443, sicPort: 18191)
        try settings.write(dataDirectory: directory.path)
        #expect(try NodeSettings.read(dataDirectory: directory.path) == settings)
        let data = try Data(contentsOf: directory.appendingPathComponent("node.json"))
        let fields = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(fields.keys) == ["server-name", "listen", "api-port", "sic-port"])

        try Data("{\"listen\": 1}".utf8).write(to: directory.appendingPathComponent("node.json"))
        #expect(throws: DecodingError.self) { try NodeSettings.load(dataDirectory: directory.path) }
    }
}
