import HACore
import SimulationKit
import Testing

// Issue 18, item 11, for the HA core: a peer's message is untrusted input. Whatever a peer sends,
// in any state, the core answers or ignores it and never traps (a trap stops the whole server).
// Messages here are what the codec can decode (non-negative counts, well-formed spans and epochs),
// with values chosen to hit edges: zero, one, the journal's head ± 1, the 64-bit extremes.

struct HostileValues {
    var random: SplitMix64
    let journal: Journal

    mutating func number() -> UInt64 {
        switch random.below(8) {
        case 0: 0
        case 1: 1
        case 2: journal.head.number
        case 3: journal.head.number &+ 1
        case 4: journal.head.number &- 1
        case 5: UInt64.max
        case 6: UInt64.max - 1
        default: random.next() % 200
        }
    }

    mutating func count() -> Int {
        switch random.below(6) {
        case 0: 0
        case 1: 1
        case 2: Int.max
        case 3: Int.max - 1
        default: random.below(10)
        }
    }

    mutating func head() -> RevisionHead {
        let number = number()
        if random.below(2) == 0, let hash = journal.hash(at: number) { return RevisionHead(number: number, hash: hash) }
        return RevisionHead(number: number, hash: random.below(3) == 0 ? "" : "h\(random.next() % 50)")
    }

    mutating func epoch(near current: Epoch) -> Epoch {
        switch random.below(5) {
        case 0: .initial
        case 1: Epoch(term: current.term &+ 1, server: "B")
        case 2: Epoch(term: UInt64.max, server: "Z")
        default: current
        }
    }

    mutating func spans(near current: Epoch) -> [EpochSpan] {
        if random.below(3) == 0 { return journal.spans }
        var spans: [EpochSpan] = []
        for _ in 0..<random.below(4) {
            let first = max(1, number() % (UInt64.max - 10))
            spans.append(EpochSpan(epoch: epoch(near: current), firstNumber: first, lastNumber: first + number() % 5))
        }
        return spans
    }

    mutating func revision(near current: Epoch) -> ReplicatedRevision {
        let previous = head()
        return ReplicatedRevision(
            number: previous.number &+ 1, epoch: epoch(near: current), previousHash: previous.hash,
            hash: "r\(random.next() % 99)", payload: [])
    }

    mutating func body(near current: Epoch) -> HAMessage.Body {
        switch random.below(18) {
        case 0:
            let checkpoints = (0..<random.below(6)).map { _ in head() }
            return .hello(
                HAMessage.Hello(
                    serverID: "B", head: head(), durableHead: head(), spans: spans(near: current),
                    softwareVersion: "x", schemaVersion: random.below(4) == 0 ? 9 : 1,
                    wantsFullSync: random.below(4) == 0, checkpoints: checkpoints))
        case 1: return .append(previous: head(), revisions: (0..<random.below(4)).map { _ in revision(near: current) }, activeHead: head())
        case 2: return .ack(durableHead: head(), head: head(), gap: random.below(2) == 0)
        case 3:
            return .heartbeat(
                HAMessage.Heartbeat(
                    head: head(), durableHead: head(), role: random.below(2) == 0 ? .active : .standby,
                    writesEnabled: random.below(2) == 0, haStopped: random.below(4) == 0,
                    replicationMode: random.below(2) == 0 ? .async : .sync(timeoutMilliseconds: number()),
                    expectingHello: random.below(2) == 0))
        case 4: return .snapshotOffer(snapshotHead: head(), chunkCount: count(), spans: spans(near: current))
        case 5: return .snapshotChunk(snapshotHead: head(), index: count(), bytes: [1, 2, 3], checksum: number())
        case 6: return .snapshotAck(snapshotHead: head(), nextIndex: count(), resend: random.below(2) == 0)
        case 7: return .snapshotDone(snapshotHead: head())
        case 8: return .switchoverRequest(switchoverID: number())
        case 9: return .handover(switchoverID: number(), finalHead: head())
        case 10: return .switchoverAbort(switchoverID: number(), reason: .unknown)
        case 11: return .epochAnnouncement(head: head())
        case 12: return .promotionPoll
        case 13: return .pollReply(durableHead: head(), spans: spans(near: current))
        case 14: return .collision(commonNumber: number(), divergentCount: number(), activeHead: head())
        case 15: return .discardUnsyncedTail(after: number(), epoch: random.below(2) == 0 ? nil : epoch(near: current))
        case 16: return .forkProbe(numbers: (0..<random.below(70)).map { _ in number() })
        default: return .forkProbeReply(head: head(), heads: (0..<random.below(70)).map { _ in head() })
        }
    }
}

@Suite("Hostile peer messages")
struct HostilePeerTests {
    /// A running group's cores (active A, standbys B and C) after some publishes, as starting points.
    static func cores(seed: UInt64) -> [HAStateMachine] {
        let cluster = SimulatedCluster(servers: ["A", "B", "C"], seed: seed)
        cluster.bootstrap(active: "A")
        cluster.run(ticks: 50)
        for _ in 0..<20 {
            cluster.publish(on: "A")
            cluster.run(ticks: 1)
        }
        cluster.run(ticks: 20)
        return ["A", "B", "C"].compactMap { cluster.core($0) }
    }

    @Test("no message a peer can send traps the core, in any role", arguments: [UInt64(1), 2, 3, 4])
    func noTrap(seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var stepped = 0
        for start in Self.cores(seed: seed) {
            var core = start
            var values = HostileValues(random: SplitMix64(seed: random.next()), journal: core.journal)
            var now = core.nowMilliseconds
            for _ in 0..<3_000 {
                let sender: ServerID = core.serverID == "B" ? "A" : "B"
                let message = HAMessage(epoch: values.epoch(near: core.epoch), body: values.body(near: core.epoch))
                _ = core.step(.receive(from: sender, message: message))
                if values.random.below(10) == 0 {
                    now += UInt64(values.random.below(400))
                    _ = core.step(.tick(now: now))
                }
                if values.random.below(50) == 0 { _ = core.step(.admin(.promote(dryRun: values.random.below(2) == 0, force: true))) }
                stepped += 1
            }
        }
        #expect(stepped == 9_000)
    }
}
