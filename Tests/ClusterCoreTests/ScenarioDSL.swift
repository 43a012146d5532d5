import ClusterCore
import Foundation
import SimulationKit
import Testing

// A small scenario language over `SimulatedGatewayCluster`, read as prose:
//
//     clusterScenario("kill the active member") {
//         crash(1)
//         waitUntil("member 2 is active") { $0.activeMembers == [2] }
//         expectLastChange(on: 2, .standby, .active, .activeMemberDead)
//     }
//
// The cluster (members 1, 2, 3 with priorities 100, 90, 80; interfaces eth1 and sync) starts cold and
// runs until member 1 is ACTIVE and the others STANDBY. The network delivers every heartbeat on the next
// tick (10 ms) unless a step changes it. Every invariant of the random simulation is checked after every
// step; a scenario also fails if one broke. SCENARIO_TRACE=<part of a name> prints that scenario's trace.

struct ScenarioStep {
    let describe: String
    let run: (ScenarioRun) -> Void
}

final class ScenarioRun {
    let name: String
    let cluster: SimulatedGatewayCluster
    let sourceLocation: SourceLocation
    var lastReason: [MemberID: String] = [:]
    /// Effects of the last command per member.
    var lastCommandEffects: [MemberID: [ClusterEffect]] = [:]

    init(name: String, cluster: SimulatedGatewayCluster, sourceLocation: SourceLocation) {
        self.name = name
        self.cluster = cluster
        self.sourceLocation = sourceLocation
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String, at location: SourceLocation) {
        if !condition { Issue.record("[\(name)] \(message())", sourceLocation: location) }
    }

    func describeStates() -> String {
        cluster.memberIDs.map { id in "\(id.value): \(cluster.core(id).map { "\($0.state)" } ?? "crashed")" }.joined(separator: ", ")
    }
}

@resultBuilder
enum ScenarioBuilder {
    static func buildExpression(_ step: ScenarioStep) -> [ScenarioStep] { [step] }
    static func buildExpression(_ steps: [ScenarioStep]) -> [ScenarioStep] { steps }
    static func buildBlock(_ parts: [ScenarioStep]...) -> [ScenarioStep] { parts.flatMap { $0 } }
    static func buildEither(first steps: [ScenarioStep]) -> [ScenarioStep] { steps }
    static func buildEither(second steps: [ScenarioStep]) -> [ScenarioStep] { steps }
}

/// Runs a scenario on a cluster that started cold and converged with member 1 (the highest priority)
/// active.
func clusterScenario(
    _ name: String, priorities: [UInt8] = [100, 90, 80], mode: HighAvailabilityMode = .activeUp,
    setup configure: (inout SimulatedGatewayCluster.Setup) -> Void = { _ in },
    sourceLocation: SourceLocation = #_sourceLocation, @ScenarioBuilder _ steps: () -> [ScenarioStep]
) {
    var setup = SimulatedGatewayCluster.Setup()
    setup.priorities = priorities
    setup.mode = mode
    configure(&setup)
    let cluster = SimulatedGatewayCluster(setup: setup)
    cluster.keepsLog = true
    if let wanted = ProcessInfo.processInfo.environment["SCENARIO_TRACE"], name.contains(wanted) {
        cluster.trace = { print($0) }
    }
    cluster.startAll()
    let run = ScenarioRun(name: name, cluster: cluster, sourceLocation: sourceLocation)
    var ticks = 0
    while !cluster.isConverged, ticks < 300 {
        cluster.runTick()
        ticks += 1
    }
    run.check(cluster.isConverged, "setup: the cluster did not converge: \(cluster.convergenceProblem ?? "")", at: sourceLocation)
    for step in steps() {
        step.run(run)
        if let violation = cluster.violation {
            Issue.record("[\(name)] after \(step.describe): \(violation)", sourceLocation: sourceLocation)
            return
        }
    }
}

// MARK: - Steps

func crash(_ id: MemberID) -> ScenarioStep { ScenarioStep(describe: "crash \(id)") { $0.cluster.crash(id) } }
func restart(_ id: MemberID) -> ScenarioStep { ScenarioStep(describe: "restart \(id)") { $0.cluster.restart(id) } }

func linkDown(_ id: MemberID, _ interface: InterfaceName) -> ScenarioStep {
    ScenarioStep(describe: "\(interface) of \(id) down") { $0.cluster.setLink(id, interface, up: false) }
}

func linkUp(_ id: MemberID, _ interface: InterfaceName) -> ScenarioStep {
    ScenarioStep(describe: "\(interface) of \(id) up") { $0.cluster.setLink(id, interface, up: true) }
}

/// An operator or script input on one member (admin down, a device report, a counter reset).
func command(_ input: ClusterInput, on id: MemberID) -> ScenarioStep {
    ScenarioStep(describe: "\(input) on \(id)") { run in
        let before = run.cluster.effectLog.count
        run.lastReason[id] = run.cluster.command(input, on: id)
        run.lastCommandEffects[id] = run.cluster.effectLog[before...].filter { $0.member == id }.map(\.effect)
    }
}

func adminDown(_ id: MemberID, force: Bool = false) -> ScenarioStep { command(.adminDown(force: force), on: id) }
func adminUp(_ id: MemberID) -> ScenarioStep { command(.adminUp, on: id) }

/// The `probe` device's script on `id` reports `state` from now on (every 200 ms).
func probe(_ id: MemberID, _ state: DeviceState) -> ScenarioStep {
    ScenarioStep(describe: "probe on \(id) reports \(state)") { $0.cluster.setProbe(id, state) }
}

func probeStopsReporting(_ id: MemberID) -> ScenarioStep {
    ScenarioStep(describe: "probe on \(id) stops reporting") { run in
        run.cluster.setProbe(id, run.cluster.member(id).probeState, reporting: false)
    }
}

func load(_ id: MemberID, percent: Int) -> ScenarioStep {
    ScenarioStep(describe: "load \(percent)% on \(id)") { $0.cluster.setLoad(id, percent: percent) }
}

func policy(_ id: MemberID, installed: Bool) -> ScenarioStep {
    ScenarioStep(describe: "policy \(installed ? "installed" : "removed") on \(id)") { $0.cluster.setPolicy(id, installed: installed) }
}

func partition(_ a: MemberID, _ b: MemberID) -> ScenarioStep {
    ScenarioStep(describe: "partition \(a) | \(b)") { $0.cluster.partition(a, b) }
}

func isolate(_ id: MemberID) -> ScenarioStep { ScenarioStep(describe: "isolate \(id)") { $0.cluster.isolate(id) } }

/// Heartbeats between `a` and `b` on one interface are lost both ways; every link stays up.
func silence(_ a: MemberID, _ b: MemberID, on interface: InterfaceName) -> ScenarioStep {
    ScenarioStep(describe: "silence \(a) <-> \(b) on \(interface)") { run in
        run.cluster.cut(from: a, to: b, on: interface)
        run.cluster.cut(from: b, to: a, on: interface)
    }
}

func heal() -> ScenarioStep { ScenarioStep(describe: "heal the network") { $0.cluster.healNetwork() } }

/// Lets simulated time pass.
func wait(milliseconds: Int) -> ScenarioStep {
    ScenarioStep(describe: "wait \(milliseconds) ms") { $0.cluster.run(ticks: milliseconds / 10) }
}

/// Runs until `condition` holds (at most `millisecondsMax`); fails if it never does. Records how long
/// it took in `elapsed` when given.
func waitUntil(
    _ what: String, millisecondsMax: Int = 10_000, elapsed: Elapsed? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @escaping (SimulatedGatewayCluster) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "wait until \(what)") { run in
        var ticks = 0
        while !condition(run.cluster), ticks < millisecondsMax / 10, run.cluster.violation == nil {
            run.cluster.runTick()
            ticks += 1
        }
        elapsed?.milliseconds = ticks * 10
        run.check(condition(run.cluster), "\(what) did not happen within \(millisecondsMax) ms (\(run.describeStates()))", at: sourceLocation)
    }
}

/// Runs `milliseconds` one tick at a time; `condition` must hold after every tick.
func holdsThroughout(
    _ what: String, milliseconds: Int, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @escaping (SimulatedGatewayCluster) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "\(what) for \(milliseconds) ms") { run in
        for tick in 0..<(milliseconds / 10) {
            run.cluster.runTick()
            guard condition(run.cluster) else {
                return run.check(false, "\(what) stopped holding after \(tick * 10 + 10) ms (\(run.describeStates()))", at: sourceLocation)
            }
        }
    }
}

/// A duration measured by `waitUntil`, for a later expectation.
final class Elapsed {
    var milliseconds = 0
}

// MARK: - Expectations

func expect(_ id: MemberID, _ state: MemberState, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect \(id) \(state)") { run in
        let actual = run.cluster.core(id)?.state
        run.check(actual == state, "expected \(id) \(state); got \(actual.map { "\($0)" } ?? "crashed") (\(run.describeStates()))", at: sourceLocation)
    }
}

/// Exactly these members are active, and exactly they hold the virtual address.
func expectActive(_ ids: [MemberID], sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect active \(ids)") { run in
        let holders = run.cluster.members.filter(\.holdsVirtualAddress).map(\.id)
        run.check(
            run.cluster.activeMembers == ids && holders == ids,
            "expected active \(ids); active \(run.cluster.activeMembers), holding the address \(holders)", at: sourceLocation)
    }
}

/// The last state change of `id` went `from` -> `to` with `code`, and its prose contains `text`.
func expectLastChange(
    on id: MemberID, _ from: MemberState, _ to: MemberState, _ code: EventCode, saying text: String = "",
    sourceLocation: SourceLocation = #_sourceLocation
) -> ScenarioStep {
    ScenarioStep(describe: "expect last change on \(id) \(from) -> \(to)") { run in
        guard let change = run.cluster.transitions.last(where: { $0.member == id })?.change else {
            return run.check(false, "\(id) never changed state", at: sourceLocation)
        }
        run.check(
            change.from == from && change.to == to && change.eventCode == code && (text.isEmpty || change.description.contains(text)),
            "expected \(id)'s last change \(from) -> \(to) (\(code)) saying \"\(text)\"; got \(change)", at: sourceLocation)
        let shown = run.cluster.core(id)?.status.lastStateChange
        run.check(shown == nil || shown == change, "\(id)'s status shows \(shown.map { "\($0)" } ?? "nothing") as its last change", at: sourceLocation)
    }
}

/// `id` went through `from` -> `to` (with `code`) at some time so far.
func expectChanged(on id: MemberID, _ from: MemberState, _ to: MemberState, _ code: EventCode, sourceLocation: SourceLocation = #_sourceLocation)
    -> ScenarioStep
{
    ScenarioStep(describe: "expect \(id) went \(from) -> \(to)") { run in
        let found = run.cluster.transitions.contains { $0.member == id && $0.change.from == from && $0.change.to == to && $0.change.eventCode == code }
        run.check(
            found, "expected \(id) to go \(from) -> \(to) (\(code)); its changes: \(run.cluster.transitions.filter { $0.member == id }.map(\.change))",
            at: sourceLocation)
    }
}

/// The last command on `id` was refused with `code`.
func expectRefused(on id: MemberID, _ code: String, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect refused \(code) on \(id)") { run in
        let effects = run.lastCommandEffects[id] ?? []
        run.check(
            effects.contains(.commandRefused(code: code)), "expected \(code) on \(id); got \(effects), reason \(run.lastReason[id] ?? "")",
            at: sourceLocation)
    }
}

/// What `rampart cluster state` on `id` would show satisfies `condition`.
func expectStatus(
    on id: MemberID, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: @escaping (ClusterStatus) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "expect status on \(id): \(what)") { run in
        guard let status = run.cluster.core(id)?.status else { return run.check(false, "\(id) is crashed", at: sourceLocation) }
        run.check(condition(status), "expected \(id)'s status: \(what); got \(status)", at: sourceLocation)
    }
}

/// `id` carried out an effect matching `matches` since the scenario's setup.
func expectEffect(
    on id: MemberID, _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ matches: @escaping (ClusterEffect) -> Bool
) -> ScenarioStep {
    ScenarioStep(describe: "expect \(id) effect \(what)") { run in
        let found = run.cluster.effectLog.contains { $0.member == id && matches($0.effect) }
        run.check(found, "expected \(id) to \(what)", at: sourceLocation)
    }
}

func expectElapsed(_ elapsed: Elapsed, atMost milliseconds: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect \(what) within \(milliseconds) ms") { run in
        run.check(elapsed.milliseconds <= milliseconds, "\(what) took \(elapsed.milliseconds) ms, more than \(milliseconds) ms", at: sourceLocation)
    }
}

func expectElapsed(_ elapsed: Elapsed, atLeast milliseconds: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) -> ScenarioStep {
    ScenarioStep(describe: "expect \(what) after at least \(milliseconds) ms") { run in
        run.check(elapsed.milliseconds >= milliseconds, "\(what) took only \(elapsed.milliseconds) ms, less than \(milliseconds) ms", at: sourceLocation)
    }
}
