import ArgumentParser
import Gateway
import PeerTransport
import RampartServer
import RampartTools

@main
struct Rampart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rampart",
        abstract: "Rampart: a security management server with Management High Availability.",
        discussion: """
            Start a server:  rampart server --data ./mgmt1
            Log in:          rampart mgmt login -u admin --data ./mgmt1 -s s.json \\
                               --password-file ./mgmt1/initial-admin-password
            Change:          rampart mgmt add-host name=web ip-address=192.0.2.1 -s s.json
            Publish:         rampart mgmt publish -s s.json
            Trust a peer:    rampart sic status --data ./mgmt1
            HA simulator:    rampart sim --seeds 1000
            Run a gateway:   rampart gateway --data ./gw-1 --name gw-1 --management 127.0.0.1:18191 \\
                               --activation-key-file KEYFILE
            Measure:         rampart bench api --json
            Test a packet:   rampart gateway test-packet --data ./gw1 src=10.1.0.5 dst=10.2.0.10 proto=tcp dport=443
            """,
        subcommands: [
            ServerCommand.self, MgmtCommand.self, SICCommand.self, HACommand.self, ViewCommand.self, TimeCommand.self, BackupCommand.self,
            SnapshotCommand.self, MigrateCommand.self, DemoCommand.self, SimCommand.self, BenchCommand.self, GatewayCommand.self,
            ClusterCommand.self, SmartTaskCommand.self,
        ])

    /// Logging first: whatever any command logs has its control characters escaped (`EscapingLogHandler`).
    static func main() async {
        EscapingLogHandler.bootstrap()
        await main(nil)
    }
}

/// `HOST:PORT` options (`--join`, `--server`, `--advertise-sic`).
extension SICAddress: ExpressibleByArgument {}

/// Runs a command's work. An error that says the operator's input is wrong (a flag, a file, a
/// directory) is a usage error, as a bad flag is: the command's usage follows it, exit status 64.
func withUsageErrors<T>(_ work: () async throws -> T) async throws -> T {
    do {
        return try await work()
    } catch let error as ServerStartError where error.isUsage {
        throw ValidationError(error.description)
    } catch let error as AgentStartError where error.isUsage {
        throw ValidationError(error.description)
    } catch let error as NodeEnrolment.Failure where error.isUsage {
        throw ValidationError(error.description)
    } catch let error as ToolFailure where error.isUsage {
        throw ValidationError(error.description)
    }
}
