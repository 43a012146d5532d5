import SimulationKit
import Testing

// The simulation kit's network carries any message type (here plain strings): a gateway-cluster
// simulation can use it as the HA one does. Every fault it injects is counted.

@Suite("Simulated network")
struct SimulatedNetworkTests {
    typealias Network = SimulatedNetwork<String>

    /// Runs ticks `from...through`, returning what arrived as "from>to:message".
    static func deliveries(_ network: inout Network, from first: Int, through last: Int) -> [String] {
        (first...last).flatMap { tick in network.takeDue(at: tick).map { "\($0.from)>\($0.to):\($0.message)" } }
    }

    @Test("a perfect network delivers every message on the next tick, once, in order")
    func perfect() {
        var random = SplitMix64(seed: 1)
        var network = Network(endpointCount: 2, profile: .perfect)
        for text in ["a", "b", "c"] { network.send(text, from: 0, to: 1, at: 0, random: &random) }
        #expect(network.takeDue(at: 0).isEmpty)
        #expect(Self.deliveries(&network, from: 1, through: 1) == ["0>1:a", "0>1:b", "0>1:c"])
        #expect(network.faults.messagesSent == 3 && network.faults.messagesDelivered == 3)
        #expect(network.faults.faults.allSatisfy { $0.count == 0 })
    }

    @Test("a one-way cut drops one direction only; a heal restores it and names the pair")
    func oneWayCut() {
        var random = SplitMix64(seed: 2)
        var network = Network(endpointCount: 3, profile: .perfect)
        network.cut(from: 0, to: 1)
        network.send("lost", from: 0, to: 1, at: 0, random: &random)
        network.send("back", from: 1, to: 0, at: 0, random: &random)
        #expect(Self.deliveries(&network, from: 1, through: 1) == ["1>0:back"])
        #expect(network.isCut(from: 0, to: 1) && !network.isCut(from: 1, to: 0))
        let restored = network.heal(at: 1, random: &random)
        #expect(restored.map { [$0.a, $0.b] } == [[0, 1]])
        network.send("again", from: 0, to: 1, at: 1, random: &random)
        #expect(Self.deliveries(&network, from: 2, through: 2) == ["0>1:again"])
        #expect(network.faults.cuts == 1 && network.faults.droppedAtCuts == 1 && network.faults.heals == 1)
    }

    @Test("a clog holds messages until the heal; partitions and isolations cut both ways")
    func clogPartitionIsolate() {
        var random = SplitMix64(seed: 3)
        var network = Network(endpointCount: 3, profile: .perfect)
        network.clog(from: 0, to: 1)
        network.send("held", from: 0, to: 1, at: 0, random: &random)
        #expect(Self.deliveries(&network, from: 1, through: 5).isEmpty)
        _ = network.heal(at: 5, random: &random)
        #expect(Self.deliveries(&network, from: 6, through: 6) == ["0>1:held"])
        network.partition(1, 2)
        network.isolate(0)
        for from in 0..<3 { for to in 0..<3 where from != to { network.send("x", from: from, to: to, at: 7, random: &random) } }
        #expect(Self.deliveries(&network, from: 8, through: 8).isEmpty)
        #expect(
            network.faults.clogs == 1 && network.faults.heldByClogs == 1 && network.faults.partitions == 1
                && network.faults.isolations == 1 && network.faults.droppedAtCuts == 6)
    }

    @Test("as over TCP, what was sent to an endpoint before it crashed never reaches it, even after its restart")
    func crashLosesMessagesOnTheWay() {
        var random = SplitMix64(seed: 4)
        var network = Network(endpointCount: 2, profile: .perfect)
        network.send("before", from: 0, to: 1, at: 0, random: &random)
        network.crash(1)
        network.restart(1)
        network.send("after", from: 0, to: 1, at: 0, random: &random)
        #expect(Self.deliveries(&network, from: 1, through: 1) == ["0>1:after"])
        #expect(network.faults.lostToCrashes == 1)
    }

    @Test("loss, duplication, delay (and so reordering) and corruption follow the profile and are counted")
    func randomFaults() {
        var random = SplitMix64(seed: 5)
        var lossy = Network(endpointCount: 2, profile: NetworkProfile(dropPerMillion: 1_000_000))
        lossy.send("gone", from: 0, to: 1, at: 0, random: &random)
        #expect(Self.deliveries(&lossy, from: 1, through: 1).isEmpty && lossy.faults.dropped == 1)

        var doubled = Network(endpointCount: 2, profile: NetworkProfile(duplicatePerMillion: 1_000_000))
        doubled.send("twice", from: 0, to: 1, at: 0, random: &random)
        #expect(Self.deliveries(&doubled, from: 1, through: 1) == ["0>1:twice", "0>1:twice"] && doubled.faults.duplicated == 1)

        var slow = Network(endpointCount: 2, profile: NetworkProfile(delayTicksMax: 20))
        for number in 0..<200 { slow.send("\(number)", from: 0, to: 1, at: 0, random: &random) }
        let order = Self.deliveries(&slow, from: 1, through: 20).compactMap { Int($0.split(separator: ":")[1]) }
        #expect(order.count == 200 && order != Array(0..<200))
        #expect(slow.faults.delayed > 0 && slow.faults.reordered > 0)

        var damaging = Network(endpointCount: 2, profile: NetworkProfile(corruptPerMillion: 1_000_000)) { message, _ in
            guard message.hasPrefix("chunk") else { return false }
            message += "!"
            return true
        }
        damaging.send("chunk", from: 0, to: 1, at: 0, random: &random)
        damaging.send("hello", from: 0, to: 1, at: 0, random: &random)
        #expect(Self.deliveries(&damaging, from: 1, through: 1) == ["0>1:chunk!", "0>1:hello"] && damaging.faults.corrupted == 1)
    }
}
