import HACore

/// Fault knobs of the simulated network (per message, per million).
public struct NetworkProfile: Hashable, Sendable {
    public var delayTicksMax: Int
    public var longDelayPerMillion: Int
    public var dropPerMillion: Int
    public var duplicatePerMillion: Int
    public var corruptChunkPerMillion: Int

    public init(delayTicksMax: Int = 1, longDelayPerMillion: Int = 0, dropPerMillion: Int = 0,
                duplicatePerMillion: Int = 0, corruptChunkPerMillion: Int = 0) {
        precondition(delayTicksMax >= 1 && delayTicksMax < SimulatedNetwork.wheelTicks / 2, "delay fits the wheel")
        self.delayTicksMax = delayTicksMax
        self.longDelayPerMillion = longDelayPerMillion
        self.dropPerMillion = dropPerMillion
        self.duplicatePerMillion = duplicatePerMillion
        self.corruptChunkPerMillion = corruptChunkPerMillion
    }

    /// Every message arrives on the next tick, once, in order.
    public static let perfect = NetworkProfile()
}

struct Packet {
    var from: Int
    var to: Int
    var message: HAMessage
    /// The receiver's incarnation when this was sent: as over TCP, a server that crashed since never
    /// receives it (its connections died with it).
    var toIncarnation: Int
}

/// A network of `serverCount` servers: messages wait in a timing wheel until their delivery tick.
/// Links can drop (a partition, maybe one-way) or clog (hold everything until unclogged).
struct SimulatedNetwork {
    static let wheelTicks = 128

    var profile: NetworkProfile
    let serverCount: Int
    var wheel: [[Packet]] = Array(repeating: [], count: SimulatedNetwork.wheelTicks)
    var dropping: [Bool]
    var clogged: [Bool]
    var held: [[Packet]]

    init(serverCount: Int, profile: NetworkProfile) {
        self.serverCount = serverCount
        self.profile = profile
        dropping = Array(repeating: false, count: serverCount * serverCount)
        clogged = dropping
        held = Array(repeating: [], count: serverCount * serverCount)
    }

    func link(_ from: Int, _ to: Int) -> Int { from * serverCount + to }

    mutating func send(_ packet: Packet, at tick: Int, random: inout SplitMix64) {
        if random.chance(perMillion: profile.dropPerMillion) { return }
        schedule(packet, at: tick, random: &random)
        if random.chance(perMillion: profile.duplicatePerMillion) { schedule(packet, at: tick, random: &random) }
    }

    mutating func schedule(_ packet: Packet, at tick: Int, random: inout SplitMix64) {
        var delay = 1 + random.below(profile.delayTicksMax)
        if random.chance(perMillion: profile.longDelayPerMillion) { delay = 1 + random.below(SimulatedNetwork.wheelTicks - 1) }
        var packet = packet
        if random.chance(perMillion: profile.corruptChunkPerMillion),
           case .snapshotChunk(let head, let index, var bytes, let checksum) = packet.message.body, !bytes.isEmpty {
            bytes[random.below(bytes.count)] ^= 0x5a
            packet.message.body = .snapshotChunk(snapshotHead: head, index: index, bytes: bytes, checksum: checksum)
        }
        wheel[(tick + delay) % SimulatedNetwork.wheelTicks].append(packet)
    }

    /// Packets due at `tick` that get through; dropped ones vanish, clogged ones are held.
    mutating func takeDue(at tick: Int) -> [Packet] {
        let slot = tick % SimulatedNetwork.wheelTicks
        guard !wheel[slot].isEmpty else { return [] }
        let due = wheel[slot]
        wheel[slot] = []
        var delivered: [Packet] = []
        delivered.reserveCapacity(due.count)
        for packet in due {
            let link = link(packet.from, packet.to)
            if dropping[link] { continue }
            if clogged[link] { held[link].append(packet); continue }
            delivered.append(packet)
        }
        return delivered
    }

    mutating func isolate(_ server: Int) {
        for other in 0..<serverCount where other != server {
            dropping[link(server, other)] = true
            dropping[link(other, server)] = true
        }
    }

    /// Every link up again; returns each pair of servers (a < b) that was cut either way: over TCP,
    /// a broken connection, now made anew.
    mutating func heal(at tick: Int, random: inout SplitMix64) -> [(a: Int, b: Int)] {
        var restored: [(a: Int, b: Int)] = []
        for a in 0..<serverCount {
            for b in (a + 1)..<serverCount where dropping[link(a, b)] || dropping[link(b, a)] { restored.append((a, b)) }
        }
        for index in dropping.indices { dropping[index] = false }
        for index in clogged.indices where clogged[index] {
            clogged[index] = false
            for packet in held[index] { schedule(packet, at: tick, random: &random) }
            held[index] = []
        }
        return restored
    }
}
