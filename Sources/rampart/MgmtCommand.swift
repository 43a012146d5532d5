import ArgumentParser
import ManagementClient

/// `rampart mgmt`: Check Point's `mgmt_cli` for Rampart. One Web API command per run, given as
/// `key=value` arguments; it logs in (or reuses a session file), runs the command, and for a change
/// made in its own session publishes and logs out, as mgmt_cli does.
struct MgmtCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mgmt",
        abstract: "Run one Web API command, as Check Point's mgmt_cli does.",
        usage: """
            rampart mgmt <command> [key=value ...] [options]
              with one of: -u USER [--password-file F] | -r true --data DIR | -s SESSIONFILE
            """,
        discussion: """
            PARAMETERS
              Each key=value becomes a field of the JSON body of POST /web_api/<command>.
              Dotted keys nest; numbered keys make lists (from 1, without gaps):
                name=web-1 color=red              {"name":"web-1","color":"red"}
                members.1=web-1 members.2=net-a   {"members":["web-1","net-a"]}
                nat-settings.auto-rule=true       {"nat-settings":{"auto-rule":true}}
                position.above=rule-7             {"position":{"above":"rule-7"}}
                interfaces.1.name=eth0            {"interfaces":[{"name":"eth0"}]}
              true and false become JSON booleans; other values are sent as strings
              (the server reads numbers given as strings: position=1, limit=100).

            SECRETS
              A secret (password, new-password, one-time-password, shared-secret,
              api-key, ...) is refused as key=value: `ps` would show it. Give it as
                one-time-password-file=FILE    the first line of FILE
                one-time-password-env=VAR      the environment variable VAR
                one-time-password-file=-       typed at a prompt (no echo)
              `rampart sic new-key --out FILE` writes a strong one-time key to FILE.

            LOGGING IN
              -u USER         Log in as this administrator. The password comes from
                              --password-file F, else from the environment variable
                              RAMPART_PASSWORD, else from a prompt on the terminal
                              (no echo). A password is NEVER accepted as a command
                              line value (-p, --password, password=...): every user
                              of the machine could read it with `ps`.
              -r true         Log in as root, without a password, over the server's
                              local socket DIR/rampart.sock (as mgmt_cli -r true on a
                              Check Point server). Needs --data DIR and the right to
                              open the socket (it is private to the server's user).
              -s SESSIONFILE  Use the session saved by: rampart mgmt login ... -s FILE

            COMMANDS
              rampart mgmt show-commands lists every command with the permission it needs;
              rampart mgmt COMMAND --help shows that command's parameters.

            SESSIONS
              Without -s, each run logs in, runs the command, and when the command
              changes something (anything but show-*, login, logout, where-used,
              equals, publish, discard, keepalive) publishes it and waits for the
              publish; then it logs out. If the command or the publish fails, the
              change is discarded.
              With -s, changes stay in that session until you run publish (or
              discard) yourself. logout -s FILE ends the session and deletes FILE.
              The file (mode 0600) holds the sid: treat it like a password.

            REACHING THE SERVER
              HTTPS to -m HOST (default 127.0.0.1) and --port N (default 8443). With
              --data DIR, address and port come from DIR/node.json and the CA from
              DIR/pki/ica.pem. The server's certificate is always verified: against
              --ca-file, else DIR/pki/ica.pem, else the system's roots. --unsafe
              turns verification off (and prints a warning).

            OUTPUT AND EXIT STATUS
              --format text (default): a readable YAML-like rendering.
              --format json: the reply as JSON, pretty, with sorted keys.
              An error reply prints its code and message on stderr; exit status 1.
              Usage errors exit with 2. A reply with a task-id (publish,
              show-changes, install-policy...) prints the task id and, unless
              --wait false, waits while the task is "in progress", then prints the
              task; a failed task exits with 1.

            EXAMPLES
              rampart mgmt login -u admin --data ./mgmt1 -s s.json \\
                  --password-file ./mgmt1/initial-admin-password
              rampart mgmt add-host name=web-1 ip-address=192.0.2.10 -s s.json
              rampart mgmt add-group name=web members.1=web-1 -s s.json
              rampart mgmt add-access-rule layer=Network position=1 name=web-in \\
                  destination.1=web service.1=https action=Accept -s s.json
              rampart mgmt publish -s s.json
              rampart mgmt logout -s s.json
              rampart mgmt show-hosts limit=10 --format json -r true --data ./mgmt1
              RAMPART_PASSWORD=... rampart mgmt set-host name=web-1 color=red \\
                  -u admin -m mgmt.example.com --ca-file ica.pem
            """,
        // `--help` is ours: after a command it shows that command's parameters (MgmtHelp).
        helpNames: [])

    @Argument(
        help: ArgumentHelp("The Web API command: add-host, show-hosts, set-group, publish, login, logout... (show-commands lists them)", valueName: "command"))
    var command: String = ""

    @Argument(help: ArgumentHelp("Parameters of the command (see PARAMETERS below).", valueName: "key=value"))
    var parameters: [String] = []

    @Flag(name: [.customShort("h"), .customLong("help")], help: "Show this help; after a command (add-host --help), that command's parameters.")
    var help = false

    @Option(name: [.customShort("f"), .customLong("format")], help: ArgumentHelp("Output format: text or json.", valueName: "json|text"))
    var format: MgmtInvocation.OutputFormat = .text

    @Option(name: [.customShort("s"), .customLong("session-file")], help: ArgumentHelp("Session file written by `rampart mgmt login -s`.", valueName: "file"))
    var sessionFile: String?

    @Option(
        name: [.customShort("r"), .customLong("root")],
        help: ArgumentHelp("true: log in as root over DIR/rampart.sock (needs --data).", valueName: "true|false"))
    var root: Bool = false

    @Option(
        name: .customLong("data"),
        help: ArgumentHelp("The server's data directory: address from node.json, CA from pki/ica.pem, socket for -r.", valueName: "dir"))
    var dataDirectory: String?

    @Option(
        name: [.customShort("m"), .customLong("management")], help: ArgumentHelp("Server address (default: from --data, else 127.0.0.1).", valueName: "host"))
    var host: String?

    @Option(name: .customLong("port"), help: ArgumentHelp("Web API port (default: from --data, else 8443).", valueName: "n"))
    var port: Int?

    @Option(name: [.customShort("u"), .customLong("user")], help: ArgumentHelp("Administrator to log in as.", valueName: "user"))
    var user: String?

    @Option(
        name: .customLong("password-file"),
        help: ArgumentHelp("File whose first line is the password (else RAMPART_PASSWORD, else a prompt).", valueName: "file"))
    var passwordFile: String?

    @Option(name: .customLong("ca-file"), help: ArgumentHelp("PEM certificate of the CA to trust (the server's DIR/pki/ica.pem).", valueName: "pem"))
    var caFile: String?

    @Flag(name: .customLong("unsafe"), help: "Do not verify the server's certificate (unsafe: prints a warning).")
    var unsafe = false

    @Option(
        name: .customLong("wait"),
        help: ArgumentHelp("true: wait for a returned task to finish and print it; false: print the task-id only.", valueName: "true|false"))
    var wait: Bool = true

    @Option(name: .customLong("wait-timeout"), help: ArgumentHelp("Seconds to wait for a task at most.", valueName: "seconds"))
    var waitTimeoutSeconds: Int = 1800

    @Option(name: .customLong("api-version"), help: ArgumentHelp("Call /web_api/v<version>/<command> (e.g. 1.9.1).", valueName: "version"))
    var apiVersion: String?

    /// Caught only to refuse it with an explanation: a password on the command line is visible to
    /// every user through `ps`.
    @Option(name: [.customShort("p"), .customLong("password")], help: .hidden)
    var passwordOnCommandLine: String?

    func run() async throws {
        let invocation = MgmtInvocation(
            command: command, parameters: parameters, help: help, genericHelp: Self.helpMessage(), format: format,
            sessionFile: sessionFile, root: root, dataDirectory: dataDirectory, host: host, port: port, user: user,
            passwordFile: passwordFile, caFile: caFile, unsafe: unsafe, wait: wait,
            waitTimeoutSeconds: waitTimeoutSeconds, apiVersion: apiVersion, passwordOnCommandLine: passwordOnCommandLine)
        let status = try await invocation.run()
        if status != 0 { throw ExitCode(status) }
    }
}

extension MgmtInvocation.OutputFormat: ExpressibleByArgument {}
