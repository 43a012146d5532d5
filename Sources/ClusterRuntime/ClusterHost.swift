import ClusterCore
import Foundation
import Gateway
import Logging

/// The system the runtime acts on: commands (`ip`, `arping`) and link state. A protocol so tests record
/// what would run, in order, without a kernel.
public protocol ClusterHost: Sendable {
    func run(_ arguments: [String]) async -> CommandRunner.Result
    /// Whether the interface's link is up now (nil: no such interface).
    func linkUp(_ interface: InterfaceName) -> Bool?
}

/// The real system: tools on PATH, in the agent's own network namespace (the agent runs in it), and
/// /sys/class/net, which `ip netns exec` mounts for that namespace.
public struct SystemClusterHost: ClusterHost {
    public init() {}

    public func run(_ arguments: [String]) async -> CommandRunner.Result {
        do { return try await CommandRunner.run(arguments) } catch {
            return CommandRunner.Result(status: -1, output: "", errorOutput: "\(error)")
        }
    }

    public func linkUp(_ interface: InterfaceName) -> Bool? {
        let base = "/sys/class/net/\(interface.name)/"
        guard let operstate = Self.read(base + "operstate") else { return nil }
        // A veth whose peer is down says "lowerlayerdown"; a dummy or loopback says "unknown" with a carrier.
        if operstate == "up" { return true }
        if operstate == "unknown" { return Self.read(base + "carrier") == "1" }
        return false
    }

    static func read(_ path: String, upToBytes limit: Int = 64) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: limit) else { return nil }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// Carries out the core's effects on the host, in order. A failed command is reported, not thrown:
/// the core's decision stands (a member that should hold the address keeps trying on the next
/// hold), and the log says what failed.
public struct EffectExecutor: Sendable {
    let host: any ClusterHost
    let plan: ClusterPlan
    let logger: Logger

    public init(host: any ClusterHost, plan: ClusterPlan, logger: Logger) {
        self.host = host
        self.plan = plan
        self.logger = logger
    }

    /// What happened, one line per command, for the log.
    public struct Outcome: Sendable, Equatable {
        public var failures: [String] = []
    }

    public func holdVirtualAddresses() async -> Outcome {
        var outcome = Outcome()
        for (interface, virtual) in plan.virtualAddresses {
            // replace: idempotent, a held address is no error.
            let add = await host.run(["ip", "addr", "replace", virtual.cidr, "dev", interface.name])
            if !add.succeeded { outcome.failures.append("ip addr replace \(virtual.cidr) dev \(interface): \(add.errorOutput.prefix(200))") }
            // Gratuitous ARP, so neighbours send to this member's MAC at once (IPv6 neighbours learn by
            // NDP). Not awaited: arping waits a second for replies, and heartbeats must not stop meanwhile.
            guard !virtual.address.contains(":") else { continue }
            let (host, logger) = (self.host, self.logger)
            Task {
                let arp = await host.run(["arping", "-U", "-c", "1", "-I", interface.name, virtual.address])
                if !arp.succeeded {
                    logger.warning("cluster: gratuitous ARP failed", metadata: ["address": "\(virtual.address)", "error": "\(arp.errorOutput.prefix(200))"])
                }
            }
        }
        return outcome
    }

    public func releaseVirtualAddresses() async -> Outcome {
        var outcome = Outcome()
        for (interface, virtual) in plan.virtualAddresses {
            let result = await host.run(["ip", "addr", "del", virtual.cidr, "dev", interface.name])
            // Absent already: released.
            if !result.succeeded, !result.errorOutput.contains("Cannot assign") {
                outcome.failures.append("ip addr del \(virtual.cidr) dev \(interface): \(result.errorOutput.prefix(200))")
            }
        }
        return outcome
    }
}
