import ArgumentParser

struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "The gateway: enforce installed policy, test packets against it.",
        subcommands: [GatewayTestPacket.self])
}
