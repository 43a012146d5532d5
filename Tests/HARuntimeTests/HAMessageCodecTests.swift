import HACore
import ManagementModel
import PeerTransport
import Testing
@testable import HARuntime

@Suite("HARuntime: HA messages on the SIC channel")
struct HAMessageCodecTests {
    static let head = RevisionHead(number: 12, hash: "ab")
    static let epoch = Epoch(term: UInt64.max, server: "primary")
    static let spans = [EpochSpan(epoch: Epoch(term: 1, server: "primary"), firstNumber: 1, lastNumber: 12)]
    static let revision = ReplicatedRevision(number: 13, epoch: epoch, previousHash: "ab", hash: "cd", payload: [0, 1, 255])

    static let bodies: [HAMessage.Body] = [
        .hello(HAMessage.Hello(serverID: "secondary", head: head, durableHead: .empty, spans: spans, softwareVersion: "0.1.0",
                               schemaVersion: 1, wantsFullSync: true, checkpoints: [head, .empty])),
        .append(previous: head, revisions: [revision], activeHead: revision.head),
        .ack(durableHead: head, head: head, gap: true),
        .heartbeat(HAMessage.Heartbeat(head: head, durableHead: head, role: .active, writesEnabled: true, haStopped: false,
                                       replicationMode: .sync(timeoutMilliseconds: 500), expectingHello: true)),
        .snapshotOffer(snapshotHead: head, chunkCount: 3, spans: spans),
        .snapshotChunk(snapshotHead: head, index: 2, bytes: [9, 8, 7], checksum: UInt64.max - 1),
        .snapshotAck(snapshotHead: head, nextIndex: 1, resend: true),
        .snapshotDone(snapshotHead: head),
        .switchoverRequest(switchoverID: 5),
        .handover(switchoverID: 5, finalHead: head),
        .switchoverAbort(switchoverID: 5, reason: .switchoverTimedOut),
        .epochAnnouncement(head: head),
        .promotionPoll,
        .pollReply(durableHead: head, spans: spans),
        .collision(commonNumber: 4, divergentCount: 2, activeHead: head),
        .discardUnsyncedTail(after: 6),
        .forkProbe(numbers: [3, 4, UInt64.max]),
        .forkProbeReply(head: head, heads: [head, .empty]),
    ]

    @Test(arguments: bodies) func everyMessageSurvivesTheWire(body: HAMessage.Body) throws {
        let message = HAMessage(epoch: Self.epoch, body: body)
        let frame = HAMessageCodec.frame(message)
        #expect(HAMessageCodec.decode(frame: frame) == message)
        let isChunk = if case .snapshotChunk = body { true } else { false }
        // Only chunks (database pages) travel as binary; everything else stays readable JSON.
        #expect((frame.payload.readableBytesView.first == UInt8(ascii: "{")) == !isChunk)
    }

    @Test func aChunkTravelsAsItsBytesAndAMalformedFrameIsDropped() throws {
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let message = HAMessage(epoch: Self.epoch, body: .snapshotChunk(snapshotHead: Self.head, index: 7, bytes: bytes, checksum: snapshotChunkChecksum(bytes)))
        let frame = HAMessageCodec.frame(message)
        #expect(frame.payload.readableBytes < bytes.count + 300, "no base64: \(frame.payload.readableBytes) bytes on the wire")
        #expect(HAMessageCodec.decode(frame: frame) == message)
        var truncated = frame.payload
        truncated.moveWriterIndex(to: 10)
        #expect(HAMessageCodec.decode(frame: PeerFrame(type: .message, payload: truncated)) == nil)
        #expect(HAMessageCodec.decode(frame: PeerFrame(type: .message, bytes: Array(#"{"type":"ping"}"#.utf8))) == nil)
    }

    @Test func aSwitchoverAbortKeepsItsWireCodeAndAnUnknownCodeStillAborts() throws {
        let abort = HAMessageCodec.encode(HAMessage(epoch: Self.epoch, body: .switchoverAbort(switchoverID: 5, reason: .standbyNotSynchronized)))
        #expect(abort["body"]?["reason-code"]?.stringValue == "standby-not-synchronized")
        let fromNewerPeer: JSONValue = ["type": "ha", "epoch": ["term": "1", "server": "a"],
                                        "body": ["kind": "switchover-abort", "switchover-id": "5", "reason-code": "no-such-code\u{1b}[2J"]]
        #expect(HAMessageCodec.decode(fromNewerPeer)?.body == .switchoverAbort(switchoverID: 5, reason: .unknown))
    }

    @Test func theInitialEpochTravelsAndMalformedMessagesAreDropped() throws {
        let message = HAMessage(epoch: .initial, body: .promotionPoll)
        #expect(HAMessageCodec.decode(HAMessageCodec.encode(message)) == message)
        #expect(HAMessageCodec.decode(["type": "ha", "epoch": ["term": "1", "server": ""], "body": ["kind": "promotion-poll"]]) == nil)
        #expect(HAMessageCodec.decode(["type": "ha", "epoch": ["term": "1", "server": "a"], "body": ["kind": "ack"]]) == nil)
        #expect(HAMessageCodec.decode(["type": "ping"]) == nil)
    }
}
