import ArgumentParser

/// `rampart gateway`: the agent (`run`, the default) and its tools.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "The gateway: the agent that enrols, follows every management server and enforces the installed policy; test packets against it.",
        subcommands: [GatewayRunCommand.self, GatewayTestPacket.self], defaultSubcommand: GatewayRunCommand.self)
}
