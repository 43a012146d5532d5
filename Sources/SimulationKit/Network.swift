/// Bounds of the simulation kit.
public enum SimulationLimits {
    /// Delivery slots of a simulated network: no message is delayed this many ticks or more.
    public static let networkWheelTicks = 128
}

/// Fault knobs of a simulated network (per message, per million).
public struct NetworkProfile: Hashable, Sendable, CustomStringConvertible {
    public var delayTicksMax: Int
    public var longDelayPerMillion: Int
    public var dropPerMillion: Int
    public var duplicatePerMillion: Int
    /// A message handed to the network's corrupter, which may change it (the HA simulation flips a
    /// byte of a snapshot chunk, whose checksum must catch it; other messages pass unchanged).
    public var corruptPerMillion: Int

    public init(
        delayTicksMax: Int = 1, longDelayPerMillion: Int = 0, dropPerMillion: Int = 0,
        duplicatePerMillion: Int = 0, corruptPerMillion: Int = 0
    ) {
        precondition(delayTicksMax >= 1 && delayTicksMax < SimulationLimits.networkWheelTicks / 2, "delay fits the wheel")
        self.delayTicksMax = delayTicksMax
        self.longDelayPerMillion = longDelayPerMillion
        self.dropPerMillion = dropPerMillion
        self.duplicatePerMillion = duplicatePerMillion
        self.corruptPerMillion = corruptPerMillion
    }

    /// Every message arrives on the next tick, once, in order.
    public static let perfect = NetworkProfile()

    public var description: String {
        "delay<=\(delayTicksMax) ticks, long delays \(longDelayPerMillion)ppm, drop \(dropPerMillion)ppm, duplicate \(duplicatePerMillion)ppm, corrupt \(corruptPerMillion)ppm"
    }
}

/// Every fault a simulated network injected, counted as it happened: a run that claims to test
/// partitions proves it had some.
public struct NetworkFaultCounts: Hashable, Sendable, Codable {
    public var messagesSent = 0
    public var messagesDelivered = 0
    /// Lost at random (the profile's drop rate).
    public var dropped = 0
    public var duplicated = 0
    /// Delayed more than one tick (so later messages may overtake them).
    public var delayed = 0
    public var longDelayed = 0
    /// Changed in transit by the corrupter.
    public var corrupted = 0
    /// Delivered after a message sent later on the same link.
    public var reordered = 0
    /// Lost on a cut link (a partition, an isolation, a one-way cut).
    public var droppedAtCuts = 0
    /// Held on a clogged link until the heal.
    public var heldByClogs = 0
    /// Sent to a server that crashed before they arrived (as over TCP, never delivered).
    public var lostToCrashes = 0
    /// Link events: one-way cuts, two-way partitions of a pair, isolations of a server, clogs, heals.
    public var cuts = 0
    public var partitions = 0
    public var isolations = 0
    public var clogs = 0
    public var heals = 0

    public init() {}

    public mutating func add(_ other: NetworkFaultCounts) {
        messagesSent += other.messagesSent
        messagesDelivered += other.messagesDelivered
        dropped += other.dropped
        duplicated += other.duplicated
        delayed += other.delayed
        longDelayed += other.longDelayed
        corrupted += other.corrupted
        reordered += other.reordered
        droppedAtCuts += other.droppedAtCuts
        heldByClogs += other.heldByClogs
        lostToCrashes += other.lostToCrashes
        cuts += other.cuts
        partitions += other.partitions
        isolations += other.isolations
        clogs += other.clogs
        heals += other.heals
    }

    /// Each fault by name, in a fixed order (for printing and for tests that every one fired).
    public var faults: [(name: String, count: Int)] {
        [
            ("dropped", dropped), ("duplicated", duplicated), ("delayed", delayed), ("long-delayed", longDelayed),
            ("reordered", reordered), ("corrupted", corrupted), ("dropped-at-cuts", droppedAtCuts),
            ("held-by-clogs", heldByClogs), ("lost-to-crashes", lostToCrashes), ("cuts", cuts), ("partitions", partitions),
            ("isolations", isolations), ("clogs", clogs), ("heals", heals),
        ]
    }
}

/// A message on its way.
struct Packet<Message> {
    var from: Int
    var to: Int
    var message: Message
    /// The receiver's incarnation when this was sent: as over TCP, a server that crashed since never
    /// receives it (its connections died with it).
    var toIncarnation: Int
    /// Per link, in sending order: a packet delivered after a higher one was reordered.
    var sequence: UInt64
}

/// A network of `endpointCount` endpoints that knows nothing of what it carries. Messages wait in a
/// timing wheel until their delivery tick; each may be lost, duplicated, delayed (and so reordered)
/// or corrupted, per the profile. Links can be cut (one way or both) or clogged (everything held
/// until the heal). An endpoint that crashes never receives what was sent to it before (TCP).
/// Every draw comes from the caller's seeded generator, so one seed replays a whole run.
public struct SimulatedNetwork<Message> {
    public typealias Corrupter = (inout Message, inout SplitMix64) -> Bool

    public var profile: NetworkProfile
    public let endpointCount: Int
    public private(set) var faults = NetworkFaultCounts()
    let corrupter: Corrupter?
    var wheel: [[Packet<Message>]] = Array(repeating: [], count: SimulationLimits.networkWheelTicks)
    var cut: [Bool]
    var clogged: [Bool]
    var held: [[Packet<Message>]]
    var incarnation: [Int]
    var isUp: [Bool]
    var nextSequence: [UInt64]
    var lastDeliveredSequence: [UInt64]

    /// `corrupter` may change a message chosen for corruption; it says whether it did.
    public init(endpointCount: Int, profile: NetworkProfile, corrupter: Corrupter? = nil) {
        self.endpointCount = endpointCount
        self.profile = profile
        self.corrupter = corrupter
        let links = endpointCount * endpointCount
        cut = Array(repeating: false, count: links)
        clogged = cut
        held = Array(repeating: [], count: links)
        incarnation = Array(repeating: 0, count: endpointCount)
        isUp = Array(repeating: true, count: endpointCount)
        nextSequence = Array(repeating: 0, count: links)
        lastDeliveredSequence = nextSequence
    }

    func link(_ from: Int, _ to: Int) -> Int { from * endpointCount + to }

    /// Sends `message` at `tick`: lost, or due after a delay, maybe twice.
    public mutating func send(_ message: Message, from: Int, to: Int, at tick: Int, random: inout SplitMix64) {
        faults.messagesSent += 1
        let link = link(from, to)
        nextSequence[link] += 1
        if random.chance(perMillion: profile.dropPerMillion) {
            faults.dropped += 1
            return
        }
        let packet = Packet(from: from, to: to, message: message, toIncarnation: incarnation[to], sequence: nextSequence[link])
        schedule(packet, at: tick, random: &random)
        if random.chance(perMillion: profile.duplicatePerMillion) {
            faults.duplicated += 1
            schedule(packet, at: tick, random: &random)
        }
    }

    mutating func schedule(_ packet: Packet<Message>, at tick: Int, random: inout SplitMix64) {
        var delay = 1 + random.below(profile.delayTicksMax)
        if random.chance(perMillion: profile.longDelayPerMillion) {
            delay = 1 + random.below(SimulationLimits.networkWheelTicks - 1)
            faults.longDelayed += 1
        }
        if delay > 1 { faults.delayed += 1 }
        let slot = (tick + delay) % SimulationLimits.networkWheelTicks
        // Copied for the corrupter only: a copy of every packet was a measurable share of the time.
        if random.chance(perMillion: profile.corruptPerMillion), let corrupter {
            var corrupted = packet
            if corrupter(&corrupted.message, &random) { faults.corrupted += 1 }
            wheel[slot].append(corrupted)
            return
        }
        wheel[slot].append(packet)
    }

    /// Messages due at `tick` that get through, in order: those on cut links vanish, clogged ones are
    /// held, those to a crashed (or since restarted) endpoint are lost.
    public mutating func takeDue(at tick: Int) -> [(from: Int, to: Int, message: Message)] {
        var due: [Packet<Message>] = []
        takeDue(at: tick, into: &due)
        return due.map { ($0.from, $0.to, $0.message) }
    }

    /// `takeDue(at:)` as packets, in `delivered` (which must be empty): the slot's own buffer, filtered
    /// in place, is swapped out to the caller, and `delivered`'s (with its capacity) takes its place.
    /// Nothing lands in this slot before the next turn of the wheel (a delay is shorter than the
    /// wheel), and copying every message out, or reallocating the slot every tick, was a measurable
    /// share of the simulator's time.
    mutating func takeDue(at tick: Int, into delivered: inout [Packet<Message>]) {
        precondition(delivered.isEmpty, "the caller's buffer is handed back empty")
        let slot = tick % SimulationLimits.networkWheelTicks
        guard !wheel[slot].isEmpty else { return }
        swap(&delivered, &wheel[slot])
        var kept = 0
        for index in delivered.indices {
            let link = link(delivered[index].from, delivered[index].to)
            switch fate(link: link, to: delivered[index].to, toIncarnation: delivered[index].toIncarnation, sequence: delivered[index].sequence) {
            case .delivered:
                if kept != index { delivered.swapAt(kept, index) }
                kept += 1
            case .held: held[link].append(delivered[index])
            case .lost: break
            }
        }
        if kept < delivered.count { delivered.removeLast(delivered.count - kept) }
    }

    enum Fate { case delivered, held, lost }

    /// What becomes of a packet due now on `link` (counted): on a cut link it vanishes, on a clogged
    /// one it is held until the heal, to a crashed (or since restarted) endpoint it is lost. Given its
    /// fields rather than the packet: passing an element of the buffer copied it.
    mutating func fate(link: Int, to: Int, toIncarnation: Int, sequence: UInt64) -> Fate {
        if cut[link] {
            faults.droppedAtCuts += 1
            return .lost
        }
        if clogged[link] {
            faults.heldByClogs += 1
            return .held
        }
        guard isUp[to], incarnation[to] == toIncarnation else {
            faults.lostToCrashes += 1
            return .lost
        }
        if sequence < lastDeliveredSequence[link] {
            faults.reordered += 1
        } else {
            lastDeliveredSequence[link] = sequence
        }
        faults.messagesDelivered += 1
        return .delivered
    }

    /// Whether `from` can no longer reach `to`.
    public func isCut(from: Int, to: Int) -> Bool { cut[link(from, to)] }

    /// Whether what `from` sends to `to` is held until the heal.
    public func isClogged(from: Int, to: Int) -> Bool { clogged[link(from, to)] }

    /// Cuts one direction only: `from` can no longer reach `to`.
    public mutating func cut(from: Int, to: Int) {
        cut[link(from, to)] = true
        faults.cuts += 1
    }

    /// Cuts both directions between two endpoints.
    public mutating func partition(_ a: Int, _ b: Int) {
        cut[link(a, b)] = true
        cut[link(b, a)] = true
        faults.partitions += 1
    }

    /// Cuts every link to and from `endpoint`.
    public mutating func isolate(_ endpoint: Int) {
        for other in 0..<endpointCount where other != endpoint {
            cut[link(endpoint, other)] = true
            cut[link(other, endpoint)] = true
        }
        faults.isolations += 1
    }

    /// Holds everything `from` sends to `to` until the heal.
    public mutating func clog(from: Int, to: Int) {
        clogged[link(from, to)] = true
        faults.clogs += 1
    }

    /// Every link up again, held messages on their way; returns each pair (a < b) that was cut either
    /// way: over TCP, a broken connection, now made anew.
    public mutating func heal(at tick: Int, random: inout SplitMix64) -> [(a: Int, b: Int)] {
        faults.heals += 1
        var restored: [(a: Int, b: Int)] = []
        for a in 0..<endpointCount {
            for b in (a + 1)..<endpointCount where cut[link(a, b)] || cut[link(b, a)] { restored.append((a, b)) }
        }
        for index in cut.indices { cut[index] = false }
        for index in clogged.indices where clogged[index] {
            clogged[index] = false
            for packet in held[index] { schedule(packet, at: tick, random: &random) }
            held[index] = []
        }
        return restored
    }

    /// `endpoint` crashed: what is on its way to it is never delivered, even after a restart.
    public mutating func crash(_ endpoint: Int) {
        isUp[endpoint] = false
        incarnation[endpoint] += 1
    }

    /// `endpoint` runs again (in its new incarnation).
    public mutating func restart(_ endpoint: Int) { isUp[endpoint] = true }
}
