import Foundation
import ManagementModel
import TrustCore

public enum NftablesError: Error, Sendable, Equatable, CustomStringConvertible {
    /// `nft` refused or failed; the text is what it printed (its own error explains which line).
    case commandFailed(command: String, status: Int32, output: String)
    case unreadableListing(String)

    public var description: String {
        switch self {
        case .commandFailed(let command, let status, let output):
            return "\(command) failed (exit \(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines).prefix(2_000))"
        case .unreadableListing(let reason): return "cannot read the nftables counters: \(reason)"
        }
    }
}

/// `--enforce nftables`: renders the policy (`NftablesRenderer`), writes it to
/// `rulesetDirectory/nftables.rules` and loads it with `nft -f`, inside network namespace
/// `namespace` when one is given (`ip netns exec NS nft -f FILE`). `nft -f` applies the file as one
/// transaction, so on failure the previous ruleset stays in force.
public struct NftablesEnforcer: PolicyEnforcer {
    public static let rulesetFileName = "nftables.rules"

    public var name: String { "nftables" }
    public let rulesetDirectory: URL
    public let namespace: String?
    public let clusterHeartbeatPort: Int

    public init(rulesetDirectory: URL, namespace: String? = nil, clusterHeartbeatPort: Int = NftablesRenderer.clusterHeartbeatPortDefault) {
        self.rulesetDirectory = rulesetDirectory
        self.namespace = namespace
        self.clusterHeartbeatPort = clusterHeartbeatPort
    }

    public var rulesetFile: URL { rulesetDirectory.appendingPathComponent(Self.rulesetFileName) }

    /// Loads the policy; `rulesetFile` then holds what is in force (a refused candidate is left
    /// beside it as `nftables.rules.candidate` for the operator to read).
    public func apply(_ policy: CompiledPolicy) async throws {
        try await load(NftablesRenderer.render(policy, clusterHeartbeatPort: clusterHeartbeatPort))
    }

    /// Loads the initial policy (`NftablesRenderer.renderInitial`): until the first install, only the
    /// management channels pass.
    public func applyInitialPolicy() async throws {
        try await load(NftablesRenderer.renderInitial())
    }

    private func load(_ ruleset: String) async throws {
        let candidate = rulesetDirectory.appendingPathComponent(Self.rulesetFileName + ".candidate")
        try DurableFile.write(Data(ruleset.utf8), to: candidate, mode: 0o600)
        try await nft(["-f", candidate.path])
        guard rename(candidate.path, rulesetFile.path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: rulesetFile.path])
        }
    }

    /// Takes the Rampart table away (nothing is enforced afterwards); no error when it is not there.
    public func remove() async throws {
        let listed = try await CommandRunner.run(CommandRunner.inNamespace(namespace, ["nft", "list", "tables"]))
        guard listed.output.split(separator: "\n").contains("table inet \(NftablesRenderer.tableName)") else { return }
        try await nft(["delete", "table", "inet", NftablesRenderer.tableName])
    }

    /// The table as `nft -j list table inet rampart` prints it.
    public func listing() async throws -> String {
        try await nft(["-j", "list", "table", "inet", NftablesRenderer.tableName])
    }

    @discardableResult
    func nft(_ arguments: [String]) async throws -> String {
        let command = CommandRunner.inNamespace(namespace, ["nft"] + arguments)
        let result = try await CommandRunner.run(command)
        guard result.succeeded else {
            throw NftablesError.commandFailed(
                command: command.joined(separator: " "), status: result.status,
                output: result.errorOutput.isEmpty ? result.output : result.errorOutput)
        }
        return result.output
    }
}

/// Reads rule hits back from the per-rule counters of the loaded ruleset. The state (the counters
/// last seen) is a plain value; `records` is pure, `collect` does the one `nft` call.
public struct NftablesHitCollector: Sendable {
    /// Packets counted so far, by counter comment ("rampart <index> <uid>").
    public private(set) var lastPackets: [String: UInt64] = [:]

    public init() {}

    /// One counter: packets per rule, summed over the nftables rules one compiled rule became.
    public struct Counter: Sendable, Equatable {
        public var index: Int
        public var uid: String
        public var packets: UInt64
        public init(index: Int, uid: String, packets: UInt64) {
            self.index = index
            self.uid = uid
            self.packets = packets
        }
    }

    /// The counters of one listing, and the table's handle: every load creates the table anew with a
    /// new handle and counters from zero, so a changed handle means "count from zero".
    public struct Reading: Sendable, Equatable {
        public var tableHandle: Int
        public var counters: [Counter]
        public init(tableHandle: Int, counters: [Counter]) {
            self.tableHandle = tableHandle
            self.counters = counters
        }
    }

    /// The table handle last read.
    public private(set) var lastTableHandle: Int?

    /// Nesting of an `nft -j` listing (a rule's expressions with sets of ranges are about a dozen deep).
    static let listingDepthMax = 64

    /// The counters in an `nft -j list table inet rampart` listing. Read with the project's strict
    /// parser: numbers that are not non-negative integers, and sums beyond UInt64, never trap.
    public static func reading(fromListing json: String) throws -> Reading {
        guard let root = try? JSONValue.parse(Array(json.utf8), maxDepth: listingDepthMax), let items = root["nftables"]?.arrayValue else {
            throw NftablesError.unreadableListing("not an nft -j listing")
        }
        guard let table = items.lazy.compactMap({ $0["table"] }).first, case .int(let handle)? = table["handle"] else {
            throw NftablesError.unreadableListing("the listing has no table")
        }
        var packets: [String: UInt64] = [:]
        var order: [String] = []
        for item in items {
            guard let rule = item["rule"], let comment = rule["comment"]?.stringValue,
                comment.hasPrefix(NftablesRenderer.commentPrefix), let expressions = rule["expr"]?.arrayValue
            else { continue }
            for expression in expressions {
                guard case .int(let value)? = expression["counter"]?["packets"], let count = UInt64(exactly: value) else { continue }
                let sum = packets[comment] ?? 0
                if packets[comment] == nil { order.append(comment) }
                let (total, overflow) = sum.addingReportingOverflow(count)
                packets[comment] = overflow ? .max : total
            }
        }
        let counters = order.compactMap { comment -> Counter? in
            let parts = comment.dropFirst(NftablesRenderer.commentPrefix.count).split(separator: " ")
            guard parts.count == 2, let index = Int(parts[0]), let count = packets[comment] else { return nil }
            return Counter(index: index, uid: String(parts[1]), packets: count)
        }
        return Reading(tableHandle: Int(handle), counters: counters)
    }

    /// Log records for the counters that grew since the last reading, for rules that log.
    public mutating func records(from reading: Reading, policy: CompiledPolicy, gatewayName: String, nowMilliseconds: Int64) -> [PolicyLogRecord] {
        if reading.tableHandle != lastTableHandle { lastPackets = [:] }
        lastTableHandle = reading.tableHandle
        var out: [PolicyLogRecord] = []
        var seen: [String: UInt64] = [:]
        for counter in reading.counters {
            let key = "\(counter.index) \(counter.uid)"
            seen[key] = counter.packets
            let increase = counter.packets - min(counter.packets, lastPackets[key] ?? 0)
            guard increase > 0, policy.rules.indices.contains(counter.index) else { continue }
            let rule = policy.rules[counter.index]
            guard rule.uid == counter.uid, rule.log else { continue }
            out.append(
                PolicyLogRecord(
                    timeMilliseconds: nowMilliseconds, gatewayName: gatewayName, ruleUID: rule.uid, ruleNumber: rule.number,
                    ruleName: rule.name, action: rule.action, source: "", destination: "", proto: "", destinationPort: nil,
                    origin: "nftables", policyRevision: policy.revision, hitCount: Int(clamping: increase)))
        }
        lastPackets = seen
        return out
    }

    /// Reads the counters through `enforcer` and returns the new hits as log records.
    public mutating func collect(from enforcer: NftablesEnforcer, policy: CompiledPolicy, gatewayName: String, nowMilliseconds: Int64) async throws
        -> [PolicyLogRecord]
    {
        let reading = try Self.reading(fromListing: try await enforcer.listing())
        return records(from: reading, policy: policy, gatewayName: gatewayName, nowMilliseconds: nowMilliseconds)
    }
}
