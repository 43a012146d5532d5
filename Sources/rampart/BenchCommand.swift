import ArgumentParser
import RampartTools

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Rampart against real processes on loopback.",
        subcommands: [
            BenchAPICommand.self, BenchServiceCommand.self, BenchHACommand.self, BenchBackupCommand.self, BenchInstallCommand.self,
            BenchClusterFailoverCommand.self, BenchSoakCommand.self, BenchSmartTasksCommand.self,
        ])
}

struct BenchSmartTasksCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smarttasks",
        abstract: "What After Publish web-request SmartTasks cost a publish, against a server it starts.",
        discussion: """
            Starts `rampart server` on a temporary data directory and an HTTP receiver in this process that answers every \
            request 200 at once, then times --samples one-change publishes (the publish call alone) with 0, 1 and 10 enabled \
            After Publish tasks posting to that receiver, and with 10 tasks posting to a listener that accepts and never \
            answers. The configurations take turns in 5 blocks each, so a machine that drifts weighs on every figure alike. \
            Each figure after the first gives p50_added_percent against the first; for the answering receiver also \
            deliveries_seen and deliveries_expected (after each block it waits, bounded, for every delivery). \
            Use a release build: .build/release/rampart bench smarttasks --json
            """)

    @Flag(name: .long, help: "One JSON object per line per figure.")
    var json = false

    @Option(name: .long, help: "Publishes to time per configuration.")
    var samples = 200

    @Option(name: .long, help: "Keep the server's log in this directory.")
    var logDir: String?

    func validate() throws {
        guard (1...100_000).contains(samples) else { throw ValidationError("--samples must be 1 to 100000") }
    }

    func run() async throws {
        try await withUsageErrors { try await BenchSmartTasksRun(samples: samples, json: json, logDir: logDir).run() }
    }
}

struct BenchSoakCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "soak",
        abstract: "An HA pair and gateways under steady work for --minutes: memory, descriptors and disk must stay flat.",
        discussion: """
            Starts a primary (mgmt-a), a secondary (mgmt-b) and one agent process with --gateways gateways on loopback, then \
            for --minutes: a one-object publish every second, install-policy every 30 s, an online backup every 60 s (the \
            previous one removed), a switchover every 120 s (alternating). Every 10 s it reads each process's resident \
            memory (in all, anonymous and file-backed, as the kernel splits it), open file descriptors and data directory \
            size; the figures are the latencies and, per process, the least-squares slope of each reading after a warm-up \
            quarter (rate, per minute). Flat means a slope near 0; a leak grows anonymous memory, while file-backed memory \
            grows as code and mapped files are first touched; the disk grows by the journal, which keeps every revision. Use a release build: .build/release/rampart bench soak --minutes 30 --json
            """)

    @Flag(name: .long, help: "One JSON object per line per figure.")
    var json = false

    @Option(name: .long, help: "How long to run, in minutes (fractions allowed).")
    var minutes: Double = 30

    @Option(name: .long, help: "Gateway agents (one process) that receive every install.")
    var gateways = 3

    @Option(name: .long, help: "Keep the servers' and agents' logs in this directory.")
    var logDir: String?

    func validate() throws {
        guard minutes > 0, minutes <= 24 * 60 else { throw ValidationError("--minutes must be above 0 and at most 1440") }
        guard (1...100).contains(gateways) else { throw ValidationError("--gateways must be 1 to 100") }
    }

    func run() async throws {
        try await withUsageErrors { try await BenchSoakRun(minutes: minutes, gateways: gateways, json: json, logDir: logDir).run() }
    }
}

struct BenchAPICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Web API throughput, publish latency and server memory, against a server it starts.",
        discussion: """
            Starts `rampart server` on a temporary data directory and an ephemeral loopback port, then:
              1. creates --objects hosts through HTTPS with 1 session, publishing every 1,000;
              2. the same with 4 concurrent sessions;
              3. publishes --publish-samples one-change revisions and times each publish call;
              4. fills the database to --memory-objects hosts and reads the server's resident memory.
            Use a release build for figures worth quoting: swift build -c release && .build/release/rampart bench api --json
            """)

    @Flag(name: .long, help: "One JSON object per line per figure.")
    var json = false

    @Option(name: .long, help: "Hosts created in each throughput run.")
    var objects = 8_000

    @Option(name: .long, help: "One-change publishes to time.")
    var publishSamples = 300

    @Option(name: .long, help: "Hosts in the database when memory is read (0 skips the memory figure).")
    var memoryObjects = 100_000

    func run() async throws {
        try await withUsageErrors {
            try await BenchAPIRun(json: json, objects: objects, publishSamples: publishSamples, memoryObjects: memoryObjects).run()
        }
    }
}

/// The management service alone, in process: what a request costs without HTTP and TLS.
struct BenchServiceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "service",
        abstract: "In-process throughput of the management service (no HTTP, no TLS), on a temporary database.")

    @Flag(name: .long, help: "One JSON object per line per figure.")
    var json = false

    @Option(name: .long, help: "Hosts to create.")
    var objects = 8_000

    func run() async throws {
        try await withUsageErrors { try await BenchServiceRun(json: json, objects: objects).run() }
    }
}

/// `rampart bench ha`: Management HA measured on real processes on loopback — a primary and
/// secondaries started from this executable on temporary data directories.
///
/// Each figure is one function `(inout BenchHARun) async throws -> BenchFigure` listed in
/// `BenchHAFigures.all`; a figure asks `BenchHARun` for what it needs (a synchronized standby,
/// published hosts, a fresh secondary) and leaves the group running for the next figure.
struct BenchHACommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ha",
        abstract: "Management HA: publish latency, switchover and full sync, against servers it starts.",
        discussion: """
            Starts a primary (mgmt-a) and a secondary (mgmt-b) with `rampart server` on temporary data directories and ephemeral loopback ports, then measures, in this order:

            ha_publish_visible_async: --samples one-change publishes on the active, each until the standby committed the revision (its own CLOCK_MONOTONIC stamp, compared with the client's).

            ha_publish_sync: the same in sync replication mode, until the publish call returns (the standby holds it durably).

            ha_switchover: alternating switchovers (ha-promote on the standby), each until the new active accepted a publish; a host published on the old active just before must be on the new one.

            ha_full_sync: fills the primary to --objects hosts, starts a fresh secondary (mgmt-c, --join) and times it until it is synchronized with the primary's head.

            Children are stopped and their directories removed at the end, on error and on SIGINT/SIGTERM. Use a release build: .build/release/rampart bench ha --json
            """)

    @Flag(name: .long, help: "One JSON object per line per figure.")
    var json = false

    @Option(name: .long, help: "Hosts published on the primary before the full sync is timed.")
    var objects = 100_000

    @Option(name: .long, help: "One-change publishes to time for ha_publish_visible_async.")
    var samples = 500

    @Option(name: .long, help: "Run only this figure (repeatable); default: all, in order.")
    var figure: [String] = []

    @Option(name: .long, help: "Keep the servers' logs in this directory (default: logs are removed with the data).")
    var logDir: String?

    func validate() throws {
        guard objects >= 0, samples >= 1 else { throw ValidationError("--objects must be >= 0 and --samples >= 1") }
        let known = BenchHAFigures.names
        for name in figure where !known.contains(name) {
            throw ValidationError("unknown figure '\(name)'; known: \(known.joined(separator: ", "))")
        }
    }

    func run() async throws {
        try await withUsageErrors { try await BenchHAMeasure(json: json, objects: objects, samples: samples, figures: figure, logDir: logDir).run() }
    }
}

struct BenchBackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Backup and restore throughput, and publish latency during a running backup, against a server it starts.",
        discussion: """
            Starts a primary with `rampart server` on a temporary data directory, publishes --objects hosts (4 sessions, a publish
            every 1,000), then measures:

            publish_idle: --samples one-change publishes (add-host, then the timed publish call) with nothing else running.

            backup_create: `rampart backup create` runs back to back as child processes (--rounds at least, more until --samples
            publishes ran during them); rate = database bytes copied / the tool's own backup time (last-backup.json duration).

            publish_during_backup: publishes as above, meanwhile; only those that started and ended inside a backup count.

            backup_create_encrypted: one encrypted backup (scrypt + AES-256-GCM), same rate basis.

            backup_restore: `rampart backup restore` of the last backup into fresh directories (--rounds), timed as processes.

            Use a release build: .build-release/release/rampart bench backup --json
            """)

    @Flag(name: .long, help: "One JSON object per line per figure.") var json = false
    @Option(name: .long, help: "Hosts in the database.") var objects = 100_000
    @Option(name: .long, help: "Publishes to time, idle and during backups.") var samples = 200
    @Option(name: .long, help: "Backups and restores to time, at least.") var rounds = 3
    @Option(name: .long, help: "Keep the server's log in this directory.") var logDir: String?

    func validate() throws {
        guard objects >= 1, samples >= 1, (1...50).contains(rounds) else { throw ValidationError("--objects and --samples must be >= 1, --rounds 1 to 50") }
    }

    func run() async throws {
        try await withUsageErrors { try await BenchBackupRun(json: json, objects: objects, samples: samples, rounds: rounds, logDir: logDir).run() }
    }
}

/// `rampart bench install`: policy installation time to a fleet of real agents.
struct BenchInstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install time of a policy package to N gateway agents, against a server it starts.",
        discussion: """
            Starts a management server, publishes a package of --rules rules (each naming one of --rules / 10
            hosts and a TCP service) and --gateways simple-gateway objects, then one process running
            --gateways agents (`rampart gateway --bench-agents N`): each its own enrolment (one-time key),
            key, certificate, mutual-TLS channel, data directory and durable installed-policy file.
            Enrolment is setup, not measured. Then it runs install-policy --samples times and measures
            request → every gateway acknowledged (policy fsynced and applied), as `show-task` reports it.
            Also measured: one durable policy write (write-temp, fsync, rename) of the same size.
            Release build: swift build -c release && .build/release/rampart bench install --gateways 1000 --rules 1000 --json
            """)

    @Option(name: .long, help: "Gateway agents.")
    var gateways = 100

    @Option(name: .long, help: "Rules in the package.")
    var rules = 1_000

    @Option(name: .long, help: "Installs to time.")
    var samples = 3

    @Flag(name: .long, help: "One JSON object per line per figure.")
    var json = false

    @Option(name: .long, help: "Keep the servers' and agents' logs in this directory.")
    var logDir: String?

    func validate() throws {
        guard (1...5_000).contains(gateways) else { throw ValidationError("--gateways: 1 to 5000") }
        guard (1...10_000).contains(rules) else { throw ValidationError("--rules: 1 to 10000") }
        guard (1...100).contains(samples) else { throw ValidationError("--samples: 1 to 100") }
    }

    func run() async throws {
        try await withUsageErrors { try await BenchInstallRun(gateways: gateways, rules: rules, samples: samples, json: json, logDir: logDir).run() }
    }
}

/// `rampart bench cluster-failover`: gateway cluster failover time in a namespace lab it builds.
struct BenchClusterFailoverCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster-failover",
        abstract: "Gateway cluster failover time (kill -9 and link cut of the active member), in network namespaces it builds (root).",
        discussion: """
            Builds a bridge namespace (cluster and sync bridges), two member namespaces each running `rampart gateway --policy-file`
            (heartbeat 100 ms, dead timer --dead-timer-ms, Active Up) and a TCP listener that answers with its member name, and a client
            namespace. Then --failovers times, alternately: kill -9 of the ACTIVE agent (restarted afterwards) and `ip link set eth0
            down` (up afterwards); each until a fresh TCP connect from the client to the virtual address is answered by the new active.

            cluster_failover_kill, cluster_failover_link: kill/cut → first answered connect. cluster_flaps: failover-count changes
            beyond the one expected per failover. On a loaded machine a member's heartbeats can be late by more than 600 ms: a
            longer --dead-timer-ms keeps such a machine from failing over a live active (the figures then include it).
            Namespaces, agents and files are removed at the end, on error and on SIGINT/SIGTERM.
            Needs root, ip, arping and python3.
            """)

    @Flag(name: .long, help: "One JSON object per line per figure.") var json = false
    @Option(name: .long, help: "Failovers in all, alternately kill -9 and link cut.") var failovers = 20
    @Option(name: .long, help: "Keep the agents' logs in this directory.") var logDir: String?
    @Option(name: .customLong("dead-timer-ms"), help: "The members' dead timer; their heartbeat is 100 ms (600 to 10000).")
    var deadTimerMilliseconds: Int64 = BenchClusterLimits.deadTimerMillisecondsDefault

    func validate() throws {
        guard (2...1_000).contains(failovers) else { throw ValidationError("--failovers: 2 to 1000") }
        guard (600...10_000).contains(deadTimerMilliseconds) else { throw ValidationError("--dead-timer-ms: 600 to 10000") }
    }

    func run() async throws {
        try await withUsageErrors {
            try await BenchClusterFailoverRun(
                json: json, failovers: failovers, logDir: logDir, deadTimerMilliseconds: deadTimerMilliseconds
            ).run()
        }
    }
}
