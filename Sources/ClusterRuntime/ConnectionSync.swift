import ClusterCore
import Foundation
import Gateway
import Logging
import TrustCore

/// Connection state between the members of a cluster: one conntrackd per member (the netfilter
/// project's sync daemon), FTFW over the sync interface (unicast to the one peer of a two-member
/// cluster, a multicast group for more), the others' connections kept in an external cache. The runtime calls it the way conntrackd's primary-backup.sh is called: `becameActive`
/// commits the external cache into the kernel before the virtual address moves, `becameStandby` shortens
/// the kernel's timers and asks the new active for its table, `receiveFullTable` waits for that table.
public actor ConnectionSync {
    public enum Limits {
        /// conntrackd's own default port; members live in separate namespaces or hosts.
        public static let port = 3780
        /// The group of a cluster of three or more (conntrackd's example group; a sync network carries
        /// one cluster).
        public static let multicastGroupAddress = "225.0.0.50"
        /// A joining member waits at most this long for the external cache to fill: conntrackd does not
        /// say when a resync is over, and an active member without connections sends nothing.
        public static let fullSyncWaitMilliseconds = 3_000
        public static let fullSyncPollMilliseconds = 100
        /// A daemon that exits is started again after this pause.
        public static let restartPauseMilliseconds = 1_000
        public static let stopWaitMilliseconds = 3_000
        /// A unix socket path longer than this does not fit `sun_path`.
        public static let socketPathBytesMax = 107
    }

    public let configurationPath: String
    let configuration: String
    let directory: URL
    let host: any ClusterHost
    let logger: Logger
    var daemon: Process?
    var supervisor: Task<Void, Never>?
    var stopping = false

    /// nil when this plan cannot be synchronized (no peer on the sync interface, IPv6 with several, or a data
    /// directory path conntrackd's configuration cannot carry); the reason is logged.
    public init?(plan: ClusterPlan, directory: URL, host: any ClusterHost, logger: Logger) {
        let path = directory.path
        guard let text = Self.configuration(plan: plan, directory: path) else {
            logger.warning(
                "cluster: connection sync (conntrackd) not started: it needs a peer on the sync interface (IPv4 for three or more members) and a plain data directory path"
            )
            return nil
        }
        configuration = text
        configurationPath = path + "/conntrackd.conf"
        self.directory = directory
        self.host = host
        self.logger = logger
    }

    /// conntrackd.conf for this member: FTFW from its own sync address to the peer's (or the group), every
    /// path in the data directory; the member's own addresses are ignored (heartbeats, sync traffic).
    public static func configuration(plan: ClusterPlan, directory: String) -> String? {
        let sync = plan.interfaces.first { $0.virtualAddress == nil } ?? plan.interfaces.first
        guard let sync, !sync.peers.isEmpty else { return nil }
        let peers = sync.peers.map(\.address)
        let addresses = [sync.localAddress] + peers + plan.interfaces.map(\.localAddress)
        guard addresses.allSatisfy(isAddress), directory.allSatisfy(isPathCharacter), directory.hasPrefix("/"),
            (directory + "/conntrackd.sock").utf8.count <= Limits.socketPathBytesMax
        else { return nil }
        let family = sync.localAddress.contains(":") ? "IPv6" : "IPv4"
        // Two members: FTFW (acknowledged, resent) unicast to the one peer. More: one multicast group on
        // the sync interface so the active's updates reach every standby at once, in NOTRACK mode: FTFW
        // tracks one sequence per channel, and several senders on one group make it see gaps and ask for
        // resyncs without end (seen). IPv4 only.
        let channel: String
        let mode: String
        if peers.count == 1 {
            mode = "FTFW"
            channel = """
                \tUDP {
                \t\t\(family)_address \(sync.localAddress)
                \t\t\(family)_Destination_Address \(peers[0])
                \t\tPort \(Limits.port)
                """
        } else {
            guard family == "IPv4" else { return nil }
            mode = "NOTRACK"
            channel = """
                \tMulticast {
                \t\tIPv4_address \(Limits.multicastGroupAddress)
                \t\tGroup \(Limits.port)
                \t\tIPv4_interface \(sync.localAddress)
                """
        }
        // The members' own traffic (heartbeats, this sync) is not the firewall's to carry over.
        let ignored = Set(plan.interfaces.flatMap { [$0.localAddress] + $0.peers.map(\.address) }).sorted().map {
            "\t\t\t\($0.contains(":") ? "IPv6" : "IPv4")_address \($0)"
        }
        return """
            Sync {
            \tMode \(mode) {
            \t\tDisableExternalCache Off
            \(mode == "FTFW" ? "\t\tCommitTimeout 1800\n\t\tPurgeTimeout 5\n" : "")\t}
            \(channel)
            \t\tInterface \(sync.name.name)
            \t\tSndSocketBuffer 1249280
            \t\tRcvSocketBuffer 1249280
            \t\tChecksum on
            \t}
            }
            General {
            \tHashSize 8192
            \tHashLimit 65536
            \tLogFile \(directory)/conntrackd.log
            \tSyslog off
            \tLockFile \(directory)/conntrackd.lock
            \tUNIX {
            \t\tPath \(directory)/conntrackd.sock
            \t}
            \tNetlinkBufferSize 2097152
            \tNetlinkBufferSizeMaxGrowth 8388608
            \tNetlinkOverrunResync On
            \tNetlinkEventsReliable Off
            \tFilter From Userspace {
            \t\tProtocol Accept {
            \t\t\tTCP
            \t\t\tUDP
            \t\t\tICMP
            \t\t}
            \t\tAddress Ignore {
            \t\t\tIPv4_address 127.0.0.1
            \(ignored.joined(separator: "\n"))
            \t\t}
            \t}
            }

            """
    }

    static func isAddress(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 45 && text.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" }
    }

    static func isPathCharacter(_ character: Character) -> Bool {
        character.isASCII && (character.isLetter || character.isNumber || "/._-".contains(character))
    }

    // MARK: - The daemon

    /// Writes the configuration and runs conntrackd until `stop`, starting it again when it exits.
    public func start() throws {
        try DurableFile.write(Data(configuration.utf8), to: URL(fileURLWithPath: configurationPath), mode: 0o600)
        supervisor = Task { await supervise() }
    }

    func supervise() async {
        // A previous agent killed with -9 may have left its daemon (or its lock file) behind.
        _ = await conntrackd(["-k"])
        try? await Task.sleep(for: .milliseconds(200))
        while !stopping, !Task.isCancelled {
            try? FileManager.default.removeItem(atPath: directory.path + "/conntrackd.lock")
            guard let process = launch() else { return }
            daemon = process
            let status = await exit(of: process)
            daemon = nil
            guard !stopping else { return }
            logger.warning("cluster: conntrackd exited; starting it again", metadata: ["status": "\(status)"])
            try? await Task.sleep(for: .milliseconds(Limits.restartPauseMilliseconds))
        }
    }

    func launch() -> Process? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["conntrackd", "-C", configurationPath]
        let logPath = directory.path + "/conntrackd.log"
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = FileHandle(forWritingAtPath: logPath)
        _ = try? log?.seekToEnd()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = log ?? FileHandle.nullDevice
        process.standardError = log ?? FileHandle.nullDevice
        do { try process.run() } catch {
            logger.error("cluster: conntrackd could not start", metadata: ["error": "\(error)"])
            return nil
        }
        try? log?.close()
        logger.notice("cluster: conntrackd started", metadata: ["configuration": "\(configurationPath)", "pid": "\(process.processIdentifier)"])
        return process
    }

    nonisolated func exit(of process: Process) async -> Int32 {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                process.waitUntilExit()
                continuation.resume(returning: process.terminationStatus)
            }
        }
    }

    /// Stops the daemon (`-k`, then SIGKILL if it is still there after the bound).
    public func stop() async {
        stopping = true
        supervisor?.cancel()
        guard let process = daemon else { return }
        _ = await conntrackd(["-k"])
        var waitedMilliseconds = 0
        while process.isRunning, waitedMilliseconds < Limits.stopWaitMilliseconds {
            try? await Task.sleep(for: .milliseconds(50))
            waitedMilliseconds += 50
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    @discardableResult
    func conntrackd(_ arguments: [String]) async -> CommandRunner.Result {
        let result = await host.run(["conntrackd", "-C", configurationPath] + arguments)
        if !result.succeeded, arguments != ["-k"] {
            logger.warning(
                "cluster: conntrackd command failed",
                metadata: ["arguments": "\(arguments.joined(separator: " "))", "error": "\(result.errorOutput.prefix(200))"])
        }
        return result
    }

    // MARK: - Transitions (primary-backup.sh)

    /// Before the virtual address moves here: the peer's connections into the kernel, then this
    /// member's caches rebuilt from the kernel and sent to the peer.
    public func becameActive() async {
        await conntrackd(["-c"])
        await conntrackd(["-f"])
        await conntrackd(["-R"])
        await conntrackd(["-B"])
    }

    /// After the virtual address left: the kernel's entries age out soon (the new active owns them),
    /// and the new active's table is asked for.
    public func becameStandby() async {
        await conntrackd(["-t"])
        await conntrackd(["-n"])
    }

    /// A joining member asks the active for its table and waits until the external cache holds entries,
    /// at most `fullSyncWaitMilliseconds` (an active without connections sends nothing to wait for).
    /// Returns the number of entries received.
    public func receiveFullTable() async -> Int {
        var waitedMilliseconds = 0
        var entries = 0
        // The daemon may still be starting (a restarted member): ask again until it takes the request,
        // or the peer never sends its table.
        var requested = false
        while waitedMilliseconds < Limits.fullSyncWaitMilliseconds {
            if !requested { requested = await conntrackd(["-n"]).succeeded }
            if requested {
                entries = Self.externalEntries(in: await conntrackd(["-s"]).output) ?? 0
                if entries > 0 { break }
            }
            try? await Task.sleep(for: .milliseconds(Limits.fullSyncPollMilliseconds))
            waitedMilliseconds += Limits.fullSyncPollMilliseconds
        }
        return entries
    }

    /// "current active connections" of the "cache external:" block of `conntrackd -s`.
    public static func externalEntries(in statistics: String) -> Int? {
        let lines = statistics.split(separator: "\n", omittingEmptySubsequences: false).prefix(200)
        guard let start = lines.firstIndex(where: { $0.hasPrefix("cache external:") }) else { return nil }
        for line in lines[start...].prefix(3) where line.hasPrefix("current active connections:") {
            return Int(line.dropFirst("current active connections:".count).trimmingCharacters(in: .whitespaces).prefix(18))
        }
        return nil
    }
}
