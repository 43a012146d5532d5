import Foundation
import HACore
import SimulationKit
import Testing

// A small scenario language over `SimulatedCluster`, in the spirit of etcd raft's testdata scripts:
//
//     scenario("old active with divergent revisions enters collision") {
//         isolate("A"); publish(3, on: "A"); promote("B", force: true); heal(); settle()
//         expect(.collision(divergent: 3), on: "A")
//     }
//
// The group starts with "A" active and every standby synchronized. The network delivers every message
// on the next tick unless a step changes it. All invariants are checked after every step, as in the
// random simulation; a scenario also fails if any of them broke.

/// One step of a scenario.
struct ScenarioStep {
    let describe: String
    let run: (ScenarioRun) -> Void
}

/// What a scenario can assert about one server.
enum Expectation: CustomStringConvertible {
    case active
    case standby
    case writesEnabled
    case writesDisabled
    /// A standby verified by the active and holding exactly the active's journal.
    case synchronized
    case collision(divergent: UInt64)
    case head(UInt64)
    case epochTerm(UInt64)
    /// The server's view of a peer has this status kind ("synchronized", "collision", ...).
    case status(of: ServerID, kind: String)

    var description: String {
        switch self {
        case .active: "active"
        case .standby: "standby"
        case .writesEnabled: "writes enabled"
        case .writesDisabled: "writes disabled"
        case .synchronized: "synchronized with the active"
        case .collision(let divergent): "collision with \(divergent) divergent revisions"
        case .head(let number): "head #\(number)"
        case .epochTerm(let term): "epoch term \(term)"
        case .status(let peer, let kind): "sees \(peer) as \(kind)"
        }
    }
}

final class ScenarioRun {
    let name: String
    let cluster: SimulatedCluster
    let sourceLocation: SourceLocation
    /// The reason of the last administrator command on each server (nil: it was down).
    var lastReason: [ServerID: HAReason?] = [:]

    init(name: String, cluster: SimulatedCluster, sourceLocation: SourceLocation) {
        self.name = name
        self.cluster = cluster
        self.sourceLocation = sourceLocation
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String, at location: SourceLocation) {
        if !condition { Issue.record("[\(name)] \(message())", sourceLocation: location) }
    }

    func holds(_ expectation: Expectation, on id: ServerID) -> (Bool, String) {
        guard let core = cluster.core(id) else { return (false, "\(id) is down") }
        let status = core.status
        let seen =
            "\(id): \(status.role.rawValue) in \(status.epoch), writes \(status.writesEnabled), head \(status.head), link \(status.link.map { "\($0)" } ?? "-"), divergent \(status.divergentRevisions)"
        switch expectation {
        case .active: return (core.role == .active, seen)
        case .standby: return (core.role == .standby, seen)
        case .writesEnabled: return (core.writesEnabled && cluster.writesEnabled(id), seen)
        case .writesDisabled: return (!core.writesEnabled && !cluster.writesEnabled(id), seen)
        case .synchronized:
            guard let active = cluster.core(core.epoch.server) else { return (false, seen + "; its active is down") }
            return (core.followsActiveVerified && core.journal.head == active.journal.head, seen + "; active head \(active.journal.head)")
        case .collision(let divergent): return (core.collision?.divergentRevisions == divergent, seen)
        case .head(let number): return (core.journal.head.number == number, seen)
        case .epochTerm(let term): return (core.epoch.term == term, seen)
        case .status(let peer, let kind):
            let view = status.peers.first { $0.serverID == peer }
            return (view?.status.kind == kind, "\(id) sees \(peer) as \(view?.status.description ?? "unknown")")
        }
    }
}

@resultBuilder
enum ScenarioBuilder {
    static func buildExpression(_ step: ScenarioStep) -> [ScenarioStep] { [step] }
    static func buildExpression(_ steps: [ScenarioStep]) -> [ScenarioStep] { steps }
    static func buildBlock(_ parts: [ScenarioStep]...) -> [ScenarioStep] { parts.flatMap { $0 } }
}

/// Runs a scenario on a fresh group (`servers`, the first one active and everyone synchronized).
func scenario(
    _ name: String, servers: [ServerID] = ["A", "B", "C"], seed: UInt64 = 1, limits: HALimits = HALimits(),
    sourceLocation: SourceLocation = #_sourceLocation, @ScenarioBuilder _ steps: () -> [ScenarioStep]
) {
    let cluster = SimulatedCluster(servers: servers, seed: seed, limits: limits)
    cluster.keepsLog = true
    // SCENARIO_TRACE=<part of a scenario name> prints that scenario's trace, one line per event.
    if let wanted = ProcessInfo.processInfo.environment["SCENARIO_TRACE"], name.contains(wanted) {
        cluster.trace = { print($0) }
    }
    cluster.bootstrap(active: servers[0])
    cluster.run(ticks: 100)
    let run = ScenarioRun(name: name, cluster: cluster, sourceLocation: sourceLocation)
    for server in servers.dropFirst() {
        run.check(run.holds(.synchronized, on: server).0, "setup: \(server) should be synchronized", at: sourceLocation)
    }
    for step in steps() {
        step.run(run)
        if let violation = cluster.violation {
            Issue.record("[\(name)] after \(step.describe): \(violation)", sourceLocation: sourceLocation)
            return
        }
    }
}

// MARK: - Steps

/// Publishes `count` revisions on `server`, one per tick; each must be accepted.
func publish(_ count: Int, on server: ServerID, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "publish \(count) on \(server)") { run in
        for _ in 0..<count {
            run.check(
                run.cluster.publish(on: server) != nil, "publish on \(server) was refused (\(run.cluster.core(server)?.writeRefusal ?? "down"))",
                at: sourceLocation)
            run.cluster.run(ticks: 1)
        }
    }
}

/// Publishes one revision on `server` and crashes it at once (a power loss): the revision was sent to
/// the standbys, but the fsync that follows the send never ran, so the server's disk lacks it.
func publishThenCrashBeforeItsFsync(on server: ServerID, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "publish on \(server), crash before its fsync") { run in
        run.check(run.cluster.publish(on: server) != nil, "publish on \(server) was refused", at: sourceLocation)
        run.cluster.crash(server)
    }
}

/// A publish attempt that must be refused (read-only standby).
func publishRefused(on server: ServerID, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "publish refused on \(server)") { run in
        run.check(run.cluster.publish(on: server) == nil, "publish on \(server) should be refused", at: sourceLocation)
    }
}

func admin(_ command: AdminCommand, on server: ServerID) -> ScenarioStep {
    ScenarioStep(describe: "\(command) on \(server)") { run in
        run.lastReason[server] = run.cluster.admin(command, on: server)
    }
}

func promote(_ server: ServerID, force: Bool = false) -> ScenarioStep { admin(.promote(dryRun: false, force: force), on: server) }
func dryRunPromote(_ server: ServerID) -> ScenarioStep { admin(.promote(dryRun: true, force: false), on: server) }
func resolveCollision(on server: ServerID, keep side: CollisionSide) -> ScenarioStep { admin(.resolveCollision(keep: side), on: server) }

func partition(_ a: ServerID, _ b: ServerID) -> ScenarioStep { ScenarioStep(describe: "partition \(a) | \(b)") { $0.cluster.partition(a, b) } }
func cut(from: ServerID, to: ServerID) -> ScenarioStep { ScenarioStep(describe: "cut \(from) -> \(to)") { $0.cluster.cut(from: from, to: to) } }
func isolate(_ server: ServerID) -> ScenarioStep { ScenarioStep(describe: "isolate \(server)") { $0.cluster.isolate(server) } }
func heal() -> ScenarioStep { ScenarioStep(describe: "heal") { $0.cluster.heal() } }
func crash(_ server: ServerID) -> ScenarioStep { ScenarioStep(describe: "crash \(server)") { $0.cluster.crash(server) } }
func restart(_ server: ServerID) -> ScenarioStep { ScenarioStep(describe: "restart \(server)") { $0.cluster.restart(server) } }
func network(_ profile: NetworkProfile) -> ScenarioStep { ScenarioStep(describe: "network \(profile)") { $0.cluster.setNetworkProfile(profile) } }

/// Lets simulated time pass (10 ms a tick).
func wait(ticks: Int) -> ScenarioStep { ScenarioStep(describe: "wait \(ticks) ticks") { $0.cluster.run(ticks: ticks) } }

/// Long enough for timeouts, retries and catch-up: 3 simulated seconds.
func settle() -> ScenarioStep { wait(ticks: 300) }

/// Runs until `condition` holds (at most `ticksMax` ticks); fails if it never does.
func waitUntil(
    _ what: String, ticksMax: Int = 1_000, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @escaping (SimulatedCluster) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "wait until \(what)") { run in
        var ticks = 0
        while !condition(run.cluster), ticks < ticksMax {
            run.cluster.run(ticks: 1)
            ticks += 1
        }
        run.check(condition(run.cluster), "\(what) did not happen within \(ticksMax) ticks", at: sourceLocation)
    }
}

/// Runs `ticks` ticks one at a time; `condition` must hold after every one.
func holdsThroughout(
    _ what: String, ticks: Int, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @escaping (SimulatedCluster) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "\(what) for \(ticks) ticks") { run in
        for tick in 0..<ticks {
            run.cluster.run(ticks: 1)
            guard condition(run.cluster) else {
                run.check(false, "\(what) stopped holding after \(tick + 1) ticks", at: sourceLocation)
                return
            }
        }
    }
}

// MARK: - Expectations

func expect(_ expectation: Expectation, on server: ServerID, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect \(server) \(expectation)") { run in
        let (ok, seen) = run.holds(expectation, on: server)
        run.check(ok, "expected \(server): \(expectation); got \(seen)", at: sourceLocation)
    }
}

/// The reason the last administrator command on `server` returned contains `text`.
func expectReason(on server: ServerID, contains text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect reason on \(server) contains \(text)") { run in
        let reason = run.lastReason[server].map { $0.map { "\($0)" } ?? "(\(server) was down)" } ?? "(no command)"
        run.check(reason.contains(text), "expected the reason on \(server) to contain \"\(text)\"; got \"\(reason)\"", at: sourceLocation)
    }
}

/// Some decision logged by `server` contains `text`.
func expectLogged(on server: ServerID, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect \(server) logged \(text)") { run in
        let found = run.cluster.log.contains { $0.server == server && $0.reason.description.contains(text) }
        run.check(found, "expected \(server) to have logged \"\(text)\"", at: sourceLocation)
    }
}

/// `server` carried out an effect matching `matches` (at any time so far).
func expectEffect(
    on server: ServerID, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ matches: @escaping (HAEffect) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "expect \(server) effect \(what)") { run in
        let found = run.cluster.effectLog.contains { $0.server == server && matches($0.effect) }
        run.check(found, "expected \(server) to \(what)", at: sourceLocation)
    }
}

func expectNoEffect(
    on server: ServerID, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ matches: @escaping (HAEffect) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "expect \(server) no effect \(what)") { run in
        let found = run.cluster.effectLog.contains { $0.server == server && matches($0.effect) }
        run.check(!found, "expected \(server) never to \(what)", at: sourceLocation)
    }
}

/// `server` dropped what it dropped without a collision's export or truncation.
func expectNoCollisionExport(on server: ServerID, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    expectNoEffect(on: server, "export or truncate as in a collision", sourceLocation: sourceLocation) {
        switch $0 {
        case .exportDivergent, .truncateJournal: true
        default: false
        }
    }
}

/// The status kinds `observer` reported for `peer`, in order, include `kinds` as a subsequence.
func expectStatusHistory(on observer: ServerID, of peer: ServerID, _ kinds: [String], sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect status history of \(peer) on \(observer)") { run in
        let history = run.cluster.effectLog.compactMap { entry -> String? in
            guard entry.server == observer, case .statusChanged(peer, let status) = entry.effect else { return nil }
            return status.kind
        }
        var remaining = kinds[...]
        for kind in history where kind == remaining.first { remaining.removeFirst() }
        run.check(remaining.isEmpty, "expected \(observer) to report \(peer) as \(kinds) in order; got \(history)", at: sourceLocation)
    }
}

/// Every server converged: one active in the highest epoch, everyone else synchronized with it.
func expectConverged(sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect converged") { run in
        run.check(run.cluster.isConverged, "expected every server to have converged", at: sourceLocation)
    }
}
