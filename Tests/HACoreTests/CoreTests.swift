import HACore
import SimulationKit
import Testing

@Suite("HACore values")
struct CoreTests {
    let epoch1 = Epoch(term: 1, server: "A")
    let epoch2 = Epoch(term: 2, server: "B")

    func journal(_ epochs: [Epoch]) -> Journal {
        var journal = Journal()
        for (offset, epoch) in epochs.enumerated() {
            let head = journal.head
            journal.append(
                ReplicatedRevision(
                    number: UInt64(offset + 1), epoch: epoch, previousHash: head.hash,
                    hash: "\(offset + 1)-\(epoch)", payload: []))
        }
        return journal
    }

    @Test("epochs order by term, then server")
    func epochOrder() {
        #expect(Epoch.initial < epoch1)
        #expect(Epoch(term: 1, server: "A") < Epoch(term: 1, server: "B"))
        #expect(Epoch(term: 1, server: "Z") < Epoch(term: 2, server: "A"))
        #expect(epoch1.next(for: "C") == Epoch(term: 2, server: "C"))
    }

    @Test("journals keep epoch spans and find their common prefix from spans alone")
    func commonPrefix() {
        let old = journal([epoch1, epoch1, epoch1, epoch1, epoch1])
        let new = journal([epoch1, epoch1, epoch1, epoch2, epoch2, epoch2])
        #expect(old.spans == [EpochSpan(epoch: epoch1, firstNumber: 1, lastNumber: 5)])
        #expect(new.spans.count == 2)
        #expect(Journal.commonPrefixNumber(old.spans, new.spans) == 3)
        #expect(Journal.commonPrefixNumber(new.spans, old.spans) == 3)
        let prefix = journal([epoch1, epoch1])
        #expect(Journal.commonPrefixNumber(prefix.spans, old.spans) == 2)
        #expect(Journal.commonPrefixNumber([], old.spans) == 0)
        let other = journal([epoch2])
        #expect(Journal.commonPrefixNumber(other.spans, old.spans) == 0)
    }

    @Test("truncation returns what it drops and keeps spans right; a snapshot replaces the journal")
    func truncateAndSnapshot() {
        var mixed = journal([epoch1, epoch1, epoch2, epoch2])
        let dropped = mixed.truncate(after: 2)
        #expect(dropped.map(\.number) == [3, 4])
        #expect(mixed.spans == [EpochSpan(epoch: epoch1, firstNumber: 1, lastNumber: 2)])
        #expect(mixed.head.number == 2)
        let source = journal([epoch1, epoch1, epoch1])
        mixed.installSnapshot(at: source.head, spans: source.spans)
        #expect(mixed.head == source.head && mixed.revisions.isEmpty)
        #expect(mixed.contains(RevisionHead(number: 1, hash: "whatever")) == nil, "revisions under a snapshot are unknown")
        #expect(mixed.contains(source.head) == true)
        let all = mixed.truncate(after: 1)
        #expect(all.isEmpty && mixed.head == .empty, "truncating under the snapshot base drops the whole journal")
    }

    @Test("a chunk checksum changes with any one changed byte, in a whole word or in the tail, and with the length")
    func checksum() {
        var generator = SplitMix64(seed: 7)
        let chunk = (0..<4_099).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let original = snapshotChunkChecksum(chunk)
        #expect(snapshotChunkChecksum(chunk) == original, "deterministic")
        for position in [0, 7, 8, 2_048, 4_095, 4_096, 4_098] {
            var corrupted = chunk
            corrupted[position] ^= 0x20
            #expect(snapshotChunkChecksum(corrupted) != original, "a changed byte at \(position) goes unnoticed")
        }
        #expect(snapshotChunkChecksum(Array(chunk.dropLast())) != original, "a truncated chunk goes unnoticed")
        #expect(snapshotChunkChecksum([]) != snapshotChunkChecksum([0]))
    }

    @Test("persist comes with the output that needs it: a promotion persists its epoch before announcing it")
    func persistBeforeSend() {
        let configuration = HAConfiguration(serverID: "B", peers: ["A", "C"])
        var standby = HAStateMachine(configuration: configuration)
        _ = standby.step(.tick(now: 5_000))
        let output = standby.step(.admin(.promote(dryRun: false, force: true)))
        #expect(output.persist?.epoch == Epoch(term: 1, server: "B"))
        #expect(output.persist?.role == .active)
        #expect(output.messages.allSatisfy { $0.message.epoch == output.persist?.epoch })
        #expect(output.effects.contains(.enableWrites(epoch: Epoch(term: 1, server: "B"), forced: true)))
        #expect(output.reason.decisions.contains { if case .forcedPromotion = $0 { true } else { false } })
        #expect(output.reason.description.contains("forced promotion"))
        // A restart from that hard state comes back active in the same epoch, but takes writes only
        // once every peer has answered in no higher epoch (one may have been promoted meanwhile).
        var restarted = HAStateMachine(configuration: configuration, hardState: output.persist!)
        let first = restarted.step(.tick(now: 6_000))
        #expect(restarted.role == .active && !restarted.writesEnabled)
        #expect(!first.effects.contains(.enableWrites(epoch: Epoch(term: 1, server: "B"), forced: false)))
        #expect(restarted.writeRefusal?.contains("waiting for A, C to answer with no higher epoch") == true)
        let fromA = restarted.step(.receive(from: "A", message: HAMessage(epoch: .initial, body: .heartbeat(Self.standbyHeartbeat))))
        #expect(!fromA.effects.contains(.enableWrites(epoch: Epoch(term: 1, server: "B"), forced: false)), "C has not answered yet")
        let fromC = restarted.step(.receive(from: "C", message: HAMessage(epoch: Epoch(term: 1, server: "B"), body: .heartbeat(Self.standbyHeartbeat))))
        #expect(fromC.effects.contains(.enableWrites(epoch: Epoch(term: 1, server: "B"), forced: false)))
        #expect(fromC.reason == .decided([.writesEnabled(.everyPeerAnswered(epoch: Epoch(term: 1, server: "B")), epoch: Epoch(term: 1, server: "B"))]))
        #expect(fromC.reason.description.contains("every peer answered in no higher epoch"))
    }

    @Test("the summary counts the steps that changed it, and says how a publish is answered now")
    func summaryChanges() {
        let configuration = HAConfiguration(serverID: "B", peers: ["A", "C"])
        var standby = HAStateMachine(configuration: configuration)
        _ = standby.step(.tick(now: 5_000))
        let before = standby.summaryChanges
        // A heartbeat of a standby in no higher epoch changes none of the summary's facts.
        _ = standby.step(.receive(from: "C", message: HAMessage(epoch: .initial, body: .heartbeat(Self.standbyHeartbeat))))
        _ = standby.step(.tick(now: 5_050))
        #expect(standby.summaryChanges == before)
        _ = standby.step(.admin(.promote(dryRun: false, force: true)))
        #expect(standby.summaryChanges == before + 1)
        #expect(standby.summary.role == .active && standby.summary.writesEnabled)
        #expect(standby.summary.publishMode == standby.publishMode && standby.summary.publishMode == .async)
        _ = standby.step(.admin(.setReplicationMode(.sync(timeoutMilliseconds: 500))))
        #expect(standby.summaryChanges == before + 2)
        #expect(standby.summary.publishMode == .sync(timeoutMilliseconds: 500))
    }

    static let standbyHeartbeat = HAMessage.Heartbeat(
        head: .empty, durableHead: .empty, role: .standby, writesEnabled: false,
        haStopped: false, replicationMode: .async, expectingHello: false)

    @Test("a server with no peers restarts writable; one with peers starts writes only after hearing them")
    func restartWithAndWithoutPeers() {
        let alone = HAConfiguration(serverID: "A", peers: [])
        var single = HAStateMachine(configuration: alone, hardState: HAStateMachine.bootstrapActive(configuration: alone))
        #expect(single.step(.tick(now: 0)).effects.contains(.enableWrites(epoch: Epoch(term: 1, server: "A"), forced: false)))
        let pair = HAConfiguration(serverID: "A", peers: ["B"])
        var fresh = HAStateMachine(configuration: pair, hardState: HAStateMachine.bootstrapActive(configuration: pair))
        let first = fresh.step(.tick(now: 0))
        #expect(fresh.writesEnabled, "the first start of a new group has nobody to wait for")
        #expect(first.persist?.takesWritesAtFirstStart == false, "persisted before writes are enabled: a restart waits")
        var restarted = HAStateMachine(configuration: pair, hardState: first.persist!)
        _ = restarted.step(.tick(now: 0))
        #expect(!restarted.writesEnabled)
        // Hearing a higher epoch instead demotes it before it ever took a write.
        let higher = restarted.step(.receive(from: "B", message: HAMessage(epoch: Epoch(term: 2, server: "B"), body: .heartbeat(Self.standbyHeartbeat))))
        #expect(restarted.role == .standby && !higher.effects.contains { if case .enableWrites = $0 { true } else { false } })
    }

    @Test("membership changes are bounded and persisted")
    func membership() {
        var core = HAStateMachine(configuration: HAConfiguration(serverID: "A", peers: ["B"]))
        let added = core.step(.admin(.addPeer("C")))
        #expect(added.persist?.peers.map(\.serverID) == ["B", "C"])
        let again = core.step(.admin(.addPeer("C")))
        #expect(again.effects == [.commandRefused(.peerExists)])
        #expect(again.reason == .decided([.peerExists("C")]))
        let removed = core.step(.admin(.removePeer("B")))
        #expect(removed.persist?.peers.map(\.serverID) == ["C"])
    }
}
