import ArgumentParser

@main
struct Rampart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rampart",
        abstract: "Rampart: a security management server with Management High Availability.",
        discussion: """
        Start a server:            rampart server --data ./mgmt1
        Run API commands:          rampart mgmt login -u admin --password-file ./mgmt1/initial-admin-password --data ./mgmt1 -s s.json
                                   rampart mgmt add-host name=web-1 ip-address=192.0.2.10 -s s.json
        Run the HA simulator:      rampart sim --seeds 1000
        Measure:                   rampart bench api --json
        """,
        subcommands: [ServerCommand.self, MgmtCommand.self, SICCommand.self, SimCommand.self, BenchCommand.self])
}

