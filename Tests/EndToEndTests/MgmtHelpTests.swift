import Foundation
import ManagementService
import Testing

/// `rampart mgmt COMMAND --help` and `rampart mgmt show-commands` come from the server's catalog.
@Suite("rampart mgmt: help from the command catalog", .endToEndSlot)
struct MgmtHelpTests {
    @Test func aCommandsHelpListsItsParameters() async throws {
        let scratch = try TemporaryDirectory()
        let help = try await CLI.run(["mgmt", "add-host", "--help"], scratch: scratch)
        #expect(help.status == 0, "\(help)")
        #expect(!help.stdout.contains("LOGGING IN"), "not the generic help: \(help.stdout)")
        let spec = try #require(CommandCatalog.spec(named: "add-host"))
        let lines = help.stdout.split(separator: "\n").map(String.init)
        for parameter in spec.parameters {
            // One line per parameter: name, type, required, description (never split over lines).
            let line = lines.first { $0.hasPrefix("  \(parameter.name) ") }
            #expect(line?.contains(parameter.type.text) == true && line?.hasSuffix(parameter.summary) == true, "\(parameter.name): \(help.stdout)")
        }
        #expect(lines.contains { $0.hasPrefix("  name ") && $0.contains("required") })
        #expect(help.stdout.contains("permission read-write"))

        let unknown = try await CLI.run(["mgmt", "add-unicorn", "--help"], scratch: scratch)
        #expect(unknown.status == 2 && unknown.stderr.contains("show-commands"), "\(unknown)")
        let generic = try await CLI.run(["mgmt", "--help"], scratch: scratch)
        #expect(generic.status == 0 && generic.stdout.contains("LOGGING IN"), "\(generic)")
    }

    @Test func showCommandsListsTheCatalog() async throws {
        let scratch = try TemporaryDirectory()
        let text = try await CLI.run(["mgmt", "show-commands"], scratch: scratch)
        #expect(text.status == 0, "\(text)")
        let names = Set(text.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) })
        #expect(Set(CommandCatalog.all.map(\.name)).isSubset(of: names))
        #expect(
            text.stdout.contains("add-administrator")
                && text.stdout.split(separator: "\n").contains { $0.hasPrefix("add-administrator ") && $0.contains("super-user") })

        let json = try await CLI.run(["mgmt", "show-commands", "--format", "json"], scratch: scratch)
        let commands = try json.json()["commands"] as? [[String: Any]] ?? []
        #expect(commands.count == CommandCatalog.all.count)
        #expect(commands.first { $0.string("name") == "export-management" }?.string("permission") == "super-user")
    }
}
