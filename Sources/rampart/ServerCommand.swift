import ArgumentParser
import Foundation
import HARuntime
import Logging
import ManagementModel
import ManagementService
import NIOCore
import NIOPosix
import PeerTransport
import RampartServer
import ServiceLifecycle
import SmartTasks
import UnixSignals

struct ServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run a Rampart management server on a data directory.",
        discussion: """
            The first start on an empty directory initialises a primary server: the management database
            (rampart.sqlite), the Internal CA and the API's HTTPS certificate (pki/), and the first
            administrator `admin`, whose random password is written to DIR/initial-admin-password (0600)
            unless --admin-password-file gives one. Later starts verify the revision journal's hash chain
            and refuse to run on a broken one.

            The Web API listens with HTTPS on --listen:--api-port (POST /web_api/<command>, Check Point
            conventions); local operator commands use DIR/rampart.sock. GET /metrics (Prometheus) and
            /health/{active,standby,synchronized} need no login, there and on --metrics-listen (plain
            HTTP). SIGTERM or SIGINT stops the server gracefully: requests in flight, a publish
            included, finish first.

            Example:
              rampart server --data ./mgmt1 --api-port 8443
            """)

    @Option(name: .long, help: "Data directory (created when missing).")
    var data: String

    @Option(name: .long, help: "HTTPS port of the Web API (0 picks a free port; node.json tells which).")
    var apiPort: Int = 8443

    @Option(name: .long, help: "SIC port: enrolment and mutual-TLS channels between servers (0 picks a free port).")
    var sicPort: Int = 18191

    @Option(name: .long, help: "Address the Web API and the SIC port bind to.")
    var listen: String = "127.0.0.1"

    @Option(name: .long, help: "On first start: file holding the password of `admin` (else a random one is generated).")
    var adminPasswordFile: String?

    @Option(name: .long, help: "This server's name (a host name); used in certificates and revisions.")
    var serverName: String = "primary"

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "First start of a secondary: the active server's SIC address, HOST:PORT (enrol, then synchronize).")
    var join: SICAddress?

    @Option(name: .long, help: "With --join: file holding the one-time activation key given to this server's checkpoint-host object.")
    var activationKeyFile: String?

    @Flag(name: .long, help: "With --join: enrol even when this clock and the active's differ by more than its --clock-problem-ms.")
    var force = false

    @Option(
        name: .long,
        help:
            "The SIC address the other management servers use to reach this one, HOST:PORT (default: --listen and the SIC port; set it behind NAT or a proxy).")
    var advertiseSIC: SICAddress?

    @Option(
        name: .long,
        help:
            "Threads that carry the network and run requests (1 to \(Self.eventLoopsMax); default: half the cores, at least 1). On a small machine, handing a publish between threads costs more than running TLS on several."
    )
    var eventLoops: Int?

    @Option(
        name: .long,
        help:
            "Also serve GET /metrics and /health/{active,standby,synchronized} over plain HTTP on ADDR:PORT, for scrapers without the Internal CA (they are always on the HTTPS API port too)."
    )
    var metricsListen: SICAddress?

    @Option(name: .long, help: "A peer server's or gateway's clock offset beyond this many milliseconds is a warning (ha status, rampart time).")
    var clockWarningMs: Int64 = ClockThresholds.warningMillisecondsDefault

    @Option(
        name: .long,
        help: "A peer server's or gateway's clock offset beyond this many milliseconds is a problem: ha promote and enrolment refuse unless --force.")
    var clockProblemMs: Int64 = ClockThresholds.problemMillisecondsDefault

    @Option(name: .long, help: "SmartTasks: attempts per delivery before it is a dead letter (1 to 100).")
    var smarttaskAttempts: Int = SmartTaskLimits().attemptsMax

    @Option(
        name: .long,
        help: "SmartTasks: milliseconds before a failed delivery's second attempt; each later one doubles it (100 to 3600000).")
    var smarttaskRetryBaseMs: Int64 = SmartTaskLimits().retryDelayBaseMilliseconds

    @Option(
        name: .long,
        help:
            "The SMTP relay send-mail SmartTasks go through, HOST:PORT (plain SMTP, no authentication: a local MTA or a relay on a trusted network). Without it send-mail tasks fail, saying so."
    )
    var smtpRelay: String?

    @Option(
        name: .long,
        help:
            "Seconds show-task answers for a finished task (60 to 86400; at most \(Limits.tasksKeptMax) tasks are kept). Each publish makes one: a server publishing every second holds an hour of them by default."
    )
    var taskRetentionSeconds: Int = Limits.taskRetentionSeconds

    static let eventLoopsMax = 64
    static var defaultEventLoops: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }

    func validate() throws {
        guard (0...65535).contains(apiPort) else { throw ValidationError("--api-port must be 0 to 65535") }
        guard (0...65535).contains(sicPort) else { throw ValidationError("--sic-port must be 0 to 65535") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("--log-level: unknown level '\(logLevel)'") }
        if let eventLoops, !(1...Self.eventLoopsMax).contains(eventLoops) { throw ValidationError("--event-loops must be 1 to \(Self.eventLoopsMax)") }
        if apiPort == sicPort, apiPort != 0 { throw ValidationError("--api-port and --sic-port must differ (both are \(apiPort))") }
        if let metricsListen, [apiPort, sicPort].contains(metricsListen.port) {
            throw ValidationError("--metrics-listen needs a port of its own (\(metricsListen.port) is the API or SIC port)")
        }
        if ClockThresholds(warningMilliseconds: clockWarningMs, problemMilliseconds: clockProblemMs) == nil {
            throw ValidationError(
                "--clock-warning-ms must be above 0 and at most --clock-problem-ms (at most \(PeerFacts.clockOffsetMillisecondsMax))")
        }
        guard Limits.taskRetentionSecondsRange.contains(taskRetentionSeconds) else {
            throw ValidationError(
                "--task-retention-seconds must be \(Limits.taskRetentionSecondsRange.lowerBound) to \(Limits.taskRetentionSecondsRange.upperBound)")
        }
        guard (1...100).contains(smarttaskAttempts) else { throw ValidationError("--smarttask-attempts must be 1 to 100") }
        guard (100...3_600_000).contains(smarttaskRetryBaseMs) else { throw ValidationError("--smarttask-retry-base-ms must be 100 to 3600000") }
        if let smtpRelay, MailRelayAddress.parse(smtpRelay) == nil {
            throw ValidationError("--smtp-relay: expected HOST:PORT (such as 127.0.0.1:25), got '\(smtpRelay.prefix(64))'")
        }
        if join != nil, activationKeyFile == nil { throw ValidationError("--join needs --activation-key-file") }
        if force, join == nil { throw ValidationError("--force goes with --join (it accepts a clock skew at enrolment)") }
        if join != nil, adminPasswordFile != nil {
            throw ValidationError("a secondary has no administrator of its own: --admin-password-file does not go with --join")
        }
    }

    func run() async throws {
        // Tasks run on NIO's event loops, where the sockets are: a request or an HA message no longer
        // crosses to another thread pool and back (about 0.3 ms of a publish's 1.3 ms on two cores).
        // Blocking work of seconds (backups, snapshot copies) is handed to a dispatch queue (`offloaded`).
        NIOSingletons.groupLoopCountSuggestion = eventLoops ?? Self.defaultEventLoops
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        umask(0o077)  // every file and socket this server creates is private to its user
        var logger = Logger(label: "rampart")
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        var configuration = ServerConfiguration(
            dataDirectory: URL(fileURLWithPath: data), apiPort: apiPort, sicPort: sicPort, listen: listen,
            serverName: serverName, adminPasswordFile: adminPasswordFile, join: join,
            activationKeyFile: activationKeyFile, advertiseSIC: advertiseSIC, logger: logger)
        configuration.metricsListen = metricsListen
        configuration.enrolmentAllowsClockSkew = force
        configuration.smtpRelay = smtpRelay.flatMap(MailRelayAddress.parse)
        configuration.clockThresholds = ClockThresholds(warningMilliseconds: clockWarningMs, problemMilliseconds: clockProblemMs) ?? .standard
        configuration.taskRetentionSeconds = taskRetentionSeconds
        // The service on an event loop of the sockets too: on its own thread every request paid a hop
        // there and back (publish → visible on the standby p50 +0.3 ms, sync mode +0.6 ms).
        configuration.serviceExecutor = MultiThreadedEventLoopGroup.singleton.next().executor
        configuration.smartTaskLimits.attemptsMax = smarttaskAttempts
        configuration.smartTaskLimits.retryDelayBaseMilliseconds = smarttaskRetryBaseMs
        configuration.smartTaskLimits.retryDelayMaxMilliseconds = max(configuration.smartTaskLimits.retryDelayMaxMilliseconds, smarttaskRetryBaseMs)
        try await withUsageErrors {
            try await RampartNode.prepare(configuration).run(gracefulShutdownSignals: [.sigterm, .sigint])
        }
        logger.info("server stopped")
    }
}
