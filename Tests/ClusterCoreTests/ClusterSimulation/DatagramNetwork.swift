// The network part of the cluster simulation, generic over the message and kept apart from the
// cluster, so that it can move onto SimulationKit's generic `SimulatedNetwork<Message>` unchanged in
// spirit: nodes, lanes (a member's monitored interfaces: one broadcast segment each), a timing wheel,
// loss, duplication, delay and reorder, and links cut one way, per lane.

/// Fault knobs of the network, per datagram.
struct DatagramProfile: Hashable, Sendable, CustomStringConvertible {
    var delayTicksMax = 1
    /// A long delay (up to half the wheel) reorders a datagram behind many later ones.
    var longDelayPerMillion = 0
    var dropPerMillion = 0
    var duplicatePerMillion = 0

    static let perfect = DatagramProfile()

    var description: String {
        "delay<=\(delayTicksMax) ticks, long delays \(longDelayPerMillion)ppm, drop \(dropPerMillion)ppm, duplicate \(duplicatePerMillion)ppm"
    }
}

struct Datagram<Message> {
    var from: Int
    var to: Int
    var lane: Int
    var message: Message
}

/// Datagrams between `nodeCount` nodes over `laneCount` lanes. A datagram waits in a timing wheel until
/// its delivery tick, and is lost if its link (from, to, lane) is cut then.
struct DatagramNetwork<Message> {
    static var wheelTicks: Int { 256 }

    var profile: DatagramProfile
    let nodeCount: Int
    let laneCount: Int
    private var wheel: [[Datagram<Message>]] = Array(repeating: [], count: DatagramNetwork.wheelTicks)
    private var cut: [Bool]

    init(nodeCount: Int, laneCount: Int, profile: DatagramProfile) {
        precondition(profile.delayTicksMax >= 1 && profile.delayTicksMax < DatagramNetwork.wheelTicks / 4, "delays fit the wheel")
        self.nodeCount = nodeCount
        self.laneCount = laneCount
        self.profile = profile
        cut = Array(repeating: false, count: nodeCount * nodeCount * laneCount)
    }

    private func link(_ from: Int, _ to: Int, _ lane: Int) -> Int { (from * nodeCount + to) * laneCount + lane }

    /// Sends to every other node on `lane` (a broadcast segment), each copy with its own fate.
    /// `extraDelayTicks` models a slow sender (a loaded member's late heartbeats).
    mutating func broadcast(from: Int, lane: Int, _ message: Message, at tick: Int, extraDelayTicks: Int = 0, random: inout SplitMix64) {
        for to in 0..<nodeCount where to != from {
            let datagram = Datagram(from: from, to: to, lane: lane, message: message)
            if random.chance(perMillion: profile.dropPerMillion) { continue }
            schedule(datagram, at: tick + extraDelayTicks, random: &random)
            if random.chance(perMillion: profile.duplicatePerMillion) { schedule(datagram, at: tick + extraDelayTicks, random: &random) }
        }
    }

    private mutating func schedule(_ datagram: Datagram<Message>, at tick: Int, random: inout SplitMix64) {
        var delay = 1 + random.below(profile.delayTicksMax)
        if random.chance(perMillion: profile.longDelayPerMillion) { delay = 1 + random.below(DatagramNetwork.wheelTicks / 2) }
        wheel[(tick + delay) % DatagramNetwork.wheelTicks].append(datagram)
    }

    /// Datagrams due at `tick` whose link is not cut.
    mutating func takeDue(at tick: Int) -> [Datagram<Message>] {
        let slot = tick % DatagramNetwork.wheelTicks
        guard !wheel[slot].isEmpty else { return [] }
        let due = wheel[slot]
        wheel[slot] = []
        return due.filter { !cut[link($0.from, $0.to, $0.lane)] }
    }

    func isCut(from: Int, to: Int, lane: Int) -> Bool { cut[link(from, to, lane)] }

    mutating func setCut(from: Int, to: Int, lane: Int, _ value: Bool) { cut[link(from, to, lane)] = value }

    /// Cuts every lane both ways between two nodes.
    mutating func partition(_ a: Int, _ b: Int) {
        for lane in 0..<laneCount {
            setCut(from: a, to: b, lane: lane, true)
            setCut(from: b, to: a, lane: lane, true)
        }
    }

    mutating func isolate(_ node: Int) {
        for other in 0..<nodeCount where other != node { partition(node, other) }
    }

    mutating func healAll() {
        for index in cut.indices { cut[index] = false }
    }

    var anyCut: Bool { cut.contains(true) }
}
