import ArgumentParser
import Foundation
import Gateway
import ManagementModel
import RampartTools

struct GatewayTestPacket: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-packet",
        abstract: "Show what the installed policy does with a packet, and which rule decides.",
        discussion: """
            Evaluates the policy installed on this gateway (DIR/installed-policy.json)
            with the same rules as the nftables ruleset: ordered layers, the first
            matching rule of each, the implicit cleanup rule last.

            When the deciding rule logs (track other than None), the hit goes to the
            gateway's log outbox, DIR/logs.sqlite, shipped to the management servers.

            Exit status 0 whatever the decision; 1 when no policy is installed;
            a usage error when the packet is malformed.

              rampart gateway test-packet --data ./gw1 \\
                src=10.1.0.5 dst=10.2.0.10 proto=tcp dport=443
              rampart gateway test-packet --data ./gw1 \\
                src=fd00::5 dst=fd00:2::10 proto=icmp --json
            """)

    @Option(name: .long, help: "The gateway's data directory.")
    var data: String

    @Flag(name: .long, help: "JSON output.")
    var json = false

    @Argument(help: "The packet: src=ADDRESS dst=ADDRESS proto=tcp|udp|icmp dport=PORT (no dport for icmp).")
    var fields: [String] = []

    func run() async throws {
        var values: [String: String] = [:]
        for field in fields {
            let parts = field.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, ["src", "dst", "proto", "dport"].contains(parts[0]) else {
                throw ValidationError("'\(field.prefix(64))' is not one of src=…, dst=…, proto=…, dport=…")
            }
            values[parts[0]] = parts[1]
        }
        guard let source = values["src"], let destination = values["dst"], let proto = values["proto"] else {
            let missing = ["src", "dst", "proto"].filter { values[$0] == nil }
            throw ValidationError("missing \(missing.map { "\($0)=…" }.joined(separator: ", "))")
        }
        let packet: Packet
        do {
            packet = try Packet.parse(source: source, destination: destination, proto: proto, destinationPort: values["dport"])
        } catch {
            throw ValidationError(error.description)
        }
        let result: PacketTestResult
        do {
            result = try PacketTestResult.run(
                dataDirectory: URL(fileURLWithPath: data), packet: packet,
                nowMilliseconds: Int64(Date().timeIntervalSince1970 * 1000))
        } catch {
            throw ToolFailure("\(error)")
        }
        print(json ? result.json.canonicalString : result.text)
    }
}
