import ArgumentParser
import RampartTools

/// `rampart demo`: a whole Management HA pair on loopback, as real processes of this executable, so
/// people can try publish, delta sync, a read-only standby and `ha status` with one command.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "A local HA demo: primary, secondary and a gateway on loopback.",
        discussion: """
            Starts two `rampart server` processes of this executable on loopback,
            with their data under DIR (default ./rampart-demo):
              DIR/mgmt-a      the primary, active; Web API on 127.0.0.1:--api-port
              DIR/mgmt-b      the secondary, standby; it joins mgmt-a with a
                              random one-time activation key
              DIR/gw-1        a gateway agent (--enforce none): enrolled with the
                              active with a random one-time key, connected to both
              DIR/<name>.log  each process's output
            It waits until `rampart ha status` says synchronized on both and the
            gateway communicates, then prints the active's API address, the admin
            password file and commands to try. Ctrl-C (SIGINT), SIGTERM, SIGHUP, or
            the end of whatever reads its output (`rampart demo | tee log`) stops
            every process it started (exit 0).
            When a server or the gateway dies (kill it to try the runbook's
            failover), the demo keeps the others running and prints the exact
            command that starts it again; type `restart NAME` (Enter) and the demo
            starts it again itself. A process that dies before the demo is ready
            ends the demo (exit 1).
            Run it again on the same DIR to start both again on their data (no new
            join). DIR must be missing, empty, or a previous demo's directory.

            --json prints one JSON object with the addresses and paths on stdout
            once synchronized; progress goes to stderr.

            Examples:
              rampart demo
              rampart demo --dir /tmp/demo --api-port 0 --json
            """)

    @Option(name: .long, help: "Directory of the demo's data directories and logs (created when missing).")
    var dir: String = "./rampart-demo"

    @Option(name: .long, help: "Web API port of the primary (0 picks a free port). The secondary's ports are picked free.")
    var apiPort: Int = 8443

    @Flag(name: .long, help: "Print one JSON object with the addresses and paths once synchronized (progress goes to stderr).")
    var json = false

    func validate() throws {
        guard (0...65535).contains(apiPort) else { throw ValidationError("--api-port must be 0 to 65535") }
    }

    func run() async throws {
        let status = try await withUsageErrors { try await DemoRun(directory: dir, apiPort: apiPort, json: json).run() }
        if status != 0 { throw ExitCode(status) }
    }
}
