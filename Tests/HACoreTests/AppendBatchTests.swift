import HACore
import Testing

// Delta sync sends revisions in `append` batches bounded by count and by payload bytes: a batch of
// large revisions must fit a SIC frame, and a revision larger than the budget still travels (alone).

@Suite("Append batches")
struct AppendBatchTests {
    static let epoch = Epoch(term: 1, server: "A")

    static func revisions(payloadSizes: [Int]) -> [ReplicatedRevision] {
        var previous = ""
        return payloadSizes.enumerated().map { offset, size in
            let number = UInt64(offset + 1)
            let revision = ReplicatedRevision(
                number: number, epoch: epoch, previousHash: previous, hash: "h\(number)",
                payload: Array(repeating: UInt8(truncatingIfNeeded: number), count: size))
            previous = revision.hash
            return revision
        }
    }

    @Test("a journal's batch stops before the byte budget, and always holds the first revision")
    func journalBatches() {
        var journal = Journal()
        for revision in Self.revisions(payloadSizes: [400, 400, 400, 5_000, 10]) { journal.append(revision) }
        #expect(journal.revisions(after: 0, limit: 64, payloadBytesMax: 1_000).map(\.number) == [1, 2])
        #expect(journal.revisions(after: 0, limit: 1, payloadBytesMax: 1_000).map(\.number) == [1], "the count still bounds")
        #expect(journal.revisions(after: 3, limit: 64, payloadBytesMax: 1_000).map(\.number) == [4], "larger than the budget: alone")
        #expect(journal.revisions(after: 4, limit: 64, payloadBytesMax: 1_000).map(\.number) == [5])
        #expect(journal.revisions(after: 5, limit: 64, payloadBytesMax: 1_000).isEmpty)
        // A limit near Int.max must not overflow the end index (it trapped).
        #expect(journal.revisions(after: 2, limit: Int.max).map(\.number) == [3, 4, 5])
        #expect(journal.revisions(after: 2, limit: Int.max, payloadBytesMax: 10_000).map(\.number) == [3, 4, 5])
        #expect(journal.revisions(after: 9, limit: Int.max).isEmpty, "past the head: nothing")
        #expect(journal.revisions(after: 0, limit: 64, payloadBytesMax: 1_200).map(\.number) == [1, 2, 3], "exactly the budget fits")
    }

    @Test("the default budget leaves room under the SIC frame limit (16 MiB) for base64 and the message around it")
    func defaultBudget() {
        let limits = HALimits()
        #expect(limits.appendBatchPayloadBytesMax == 4 << 20)
        #expect(limits.appendBatchPayloadBytesMax / 3 * 4 + 1 << 20 < 16 << 20)
    }

    @Test("an active catching a standby up sends batches within the byte budget, a large revision alone, every revision once in order")
    func activeBatchesByBytes() {
        var limits = HALimits()
        limits.appendBatchPayloadBytesMax = 1_000
        let sizes = Array(repeating: 300, count: 10) + [2_500] + Array(repeating: 300, count: 5)
        let all = Self.revisions(payloadSizes: sizes)
        let configuration = HAConfiguration(serverID: "A", peers: ["B"], limits: limits)
        var active = HAStateMachine(configuration: configuration, hardState: HAStateMachine.bootstrapActive(configuration: configuration))
        _ = active.step(.tick(now: 0))
        #expect(active.writesEnabled)
        for revision in all { _ = active.step(.revisionCommitted(revision)) }
        _ = active.step(.persistedUpTo(all[all.count - 1].head))

        // B holds revision 1 and says hello: delta sync from there, one batch at a time as B acknowledges.
        let hello = HAMessage.Hello(
            serverID: "B", head: all[0].head, durableHead: all[0].head,
            spans: [EpochSpan(epoch: Self.epoch, firstNumber: 1, lastNumber: 1)],
            softwareVersion: "0.1.0", schemaVersion: 1, wantsFullSync: false, checkpoints: [.empty])
        var output = active.step(.receive(from: "B", message: HAMessage(epoch: Self.epoch, body: .hello(hello))))
        var received: [[ReplicatedRevision]] = []
        while let batch = Self.appendedRevisions(output), let last = batch.last {
            received.append(batch)
            output = active.step(.receive(from: "B", message: HAMessage(epoch: Self.epoch, body: .ack(durableHead: last.head, head: last.head, gap: false))))
        }
        #expect(received.flatMap { $0 }.map(\.number) == Array(2...UInt64(all.count)))
        for batch in received {
            let bytes = batch.reduce(0) { $0 + $1.payload.byteCount }
            #expect(batch.count == 1 || bytes <= limits.appendBatchPayloadBytesMax, "batch of \(batch.count) revisions, \(bytes) bytes")
        }
        #expect(received.contains { $0.map(\.number) == [11] }, "the revision larger than the budget travels alone")
        #expect(received.first?.count == 3, "as many as fit: 3 x 300 bytes")
    }

    @Test("an unacknowledged append is sent again after the retransmit time, a large one only after the time the standby needs to apply it")
    func largeAppendsWaitLongerBeforeTheyAreResent() {
        let limits = HALimits()
        for (size, resendAfter) in [
            (100, limits.retransmitMilliseconds),
            (32_000_000, limits.retransmitMilliseconds + 32_000_000 / limits.retransmitAllowanceBytesPerMillisecond),
        ] {
            let all = Self.revisions(payloadSizes: [10, size])
            let configuration = HAConfiguration(serverID: "A", peers: ["B"], limits: limits)
            var active = HAStateMachine(configuration: configuration, hardState: HAStateMachine.bootstrapActive(configuration: configuration))
            _ = active.step(.tick(now: 0))
            for revision in all { _ = active.step(.revisionCommitted(revision)) }
            _ = active.step(.persistedUpTo(all[1].head))
            let hello = HAMessage.Hello(
                serverID: "B", head: all[0].head, durableHead: all[0].head,
                spans: [EpochSpan(epoch: Self.epoch, firstNumber: 1, lastNumber: 1)],
                softwareVersion: "0.1.0", schemaVersion: 1, wantsFullSync: false, checkpoints: [.empty])
            let first = active.step(.receive(from: "B", message: HAMessage(epoch: Self.epoch, body: .hello(hello))))
            #expect(Self.appendedRevisions(first)?.map(\.number) == [2])
            var resentAt: UInt64?
            // B stays silent (applying); heartbeats keep it a live peer, as its channel does.
            for now in stride(from: UInt64(50), through: resendAfter + 200, by: 50) {
                _ = active.step(.receive(from: "B", message: HAMessage(epoch: Self.epoch, body: .heartbeat(Self.heartbeat(head: all[0].head)))))
                if Self.appendedRevisions(active.step(.tick(now: now)))?.isEmpty == false, resentAt == nil { resentAt = now }
            }
            #expect(
                resentAt.map { $0 >= resendAfter && $0 <= resendAfter + 100 } == true,
                "payload \(size): resent at \(String(describing: resentAt)), due at \(resendAfter)")
        }
    }

    /// A standby's heartbeat at `head`, in sync with nothing newer.
    static func heartbeat(head: RevisionHead) -> HAMessage.Heartbeat {
        HAMessage.Heartbeat(
            head: head, durableHead: head, role: .standby, writesEnabled: false, haStopped: false, replicationMode: .async,
            expectingHello: false)
    }

    /// The revisions of the `append` in `output`, nil when it sent none.
    static func appendedRevisions(_ output: HAOutput) -> [ReplicatedRevision]? {
        for envelope in output.messages {
            if case .append(_, let revisions, _) = envelope.message.body { return revisions }
        }
        return nil
    }
}
