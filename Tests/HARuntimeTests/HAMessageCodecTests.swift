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
        .hello(
            HAMessage.Hello(
                serverID: "secondary", head: head, durableHead: .empty, spans: spans, softwareVersion: "0.1.0",
                schemaVersion: 1, wantsFullSync: true, checkpoints: [head, .empty])),
        .append(previous: head, revisions: [revision], activeHead: revision.head),
        .ack(durableHead: head, head: head, gap: true),
        .heartbeat(
            HAMessage.Heartbeat(
                head: head, durableHead: head, role: .active, writesEnabled: true, haStopped: false,
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
        .collision(commonNumber: 4, divergentCount: 2, activeHead: head, commonHash: "c4"),
        .discardUnsyncedTail(after: 6, epoch: nil), .discardUnsyncedTail(after: 6, epoch: Epoch(term: 3, server: "B")),
        .discardUnsyncedTail(after: 6, epoch: nil, afterHash: "h6"),
        .discardUnsyncedTail(after: 6, epoch: nil, afterHash: "h6", standbyHead: RevisionHead(number: 9, hash: "h9")),
        .forkProbe(numbers: [3, 4, UInt64.max]),
        .forkProbeReply(head: head, heads: [head, .empty]),
    ]

    @Test(arguments: bodies) func everyMessageSurvivesTheWire(body: HAMessage.Body) throws {
        let message = HAMessage(epoch: Self.epoch, body: body)
        let frame = HAMessageCodec.frame(message)
        #expect(HAMessageCodec.decode(frame: frame) == message)
        let carriesBytes =
            switch body {
            case .snapshotChunk, .append: true
            default: false
            }
        // Only chunks (database pages) and appends (revisions) travel as binary; everything else stays readable JSON.
        #expect((frame.payload.readableBytesView.first == UInt8(ascii: "{")) == !carriesBytes)
    }

    /// The hash of the common revision is optional (a sender before journal compaction, or one that
    /// compacted past it, leaves it out); present, it must be a string.
    @Test func anOptionalHashThatIsNotAStringIsRefused() {
        /// `body` as the codec writes it, with `key` set to `value` in its fields.
        func decode(_ body: HAMessage.Body, setting key: String, to value: JSONValue) -> HAMessage? {
            guard case .object(var message) = HAMessageCodec.encode(HAMessage(epoch: Self.epoch, body: body)),
                case .object(var fields)? = message["body"]
            else { return nil }
            fields[key] = value
            message["body"] = .object(fields)
            return HAMessageCodec.decode(.object(message))
        }
        let collision = HAMessage.Body.collision(commonNumber: 4, divergentCount: 2, activeHead: Self.head)
        let discard = HAMessage.Body.discardUnsyncedTail(after: 6, epoch: nil)
        #expect(
            decode(collision, setting: "common-hash", to: "c4")?.body == .collision(commonNumber: 4, divergentCount: 2, activeHead: Self.head, commonHash: "c4")
        )
        #expect(decode(discard, setting: "after-hash", to: "h6")?.body == .discardUnsyncedTail(after: 6, epoch: nil, afterHash: "h6"))
        #expect(decode(collision, setting: "common-hash", to: 7) == nil)
        #expect(decode(discard, setting: "after-hash", to: ["h6"]) == nil)
        #expect(
            decode(discard, setting: "standby-head", to: ["number": "9", "hash": "h9"])?.body
                == .discardUnsyncedTail(after: 6, epoch: nil, standbyHead: RevisionHead(number: 9, hash: "h9")))
        #expect(decode(discard, setting: "standby-head", to: "h9") == nil)
    }

    @Test func aChunkTravelsAsItsBytesAndAMalformedFrameIsDropped() throws {
        let bytes = (0..<70_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let message = HAMessage(
            epoch: Self.epoch, body: .snapshotChunk(snapshotHead: Self.head, index: 7, bytes: bytes, checksum: snapshotChunkChecksum(bytes)))
        let frame = HAMessageCodec.frame(message)
        #expect(frame.payload.readableBytes < bytes.count + 300, "no base64: \(frame.payload.readableBytes) bytes on the wire")
        #expect(HAMessageCodec.decode(frame: frame) == message)
        var truncated = frame.payload
        truncated.moveWriterIndex(to: 10)
        #expect(HAMessageCodec.decode(frame: PeerFrame(type: .message, payload: truncated)) == nil)
        #expect(HAMessageCodec.decode(frame: PeerFrame(type: .message, bytes: Array(#"{"type":"ping"}"#.utf8))) == nil)
    }

    static func revision(_ number: UInt64, bytes: Int) -> ReplicatedRevision {
        ReplicatedRevision(
            number: number, epoch: epoch, previousHash: "ab", hash: "cd",
            payload: (0..<bytes).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ Int(number)) })
    }

    /// The header of a binary frame and the bytes after it, for forging malformed frames.
    static func split(_ frame: PeerFrame) throws -> (header: JSONValue, bytes: [UInt8]) {
        let bytes = frame.payloadBytes
        try #require(bytes.count >= 5 && bytes[0] == HAMessageCodec.binaryMarker)
        let length = bytes[1..<5].reduce(0) { $0 << 8 | Int($1) }
        return (try JSONValue.parse(bytes[5..<(5 + length)]), Array(bytes[(5 + length)...]))
    }

    static func forged(_ header: JSONValue, _ bytes: [UInt8]) -> PeerFrame {
        let headerBytes = header.canonicalBytes
        let length = UInt32(headerBytes.count)
        let lengthBytes = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: length >> $0) }
        return PeerFrame(type: .message, bytes: [HAMessageCodec.binaryMarker] + lengthBytes + headerBytes + bytes)
    }

    @Test func anAppendCarriesItsRevisionsAsBytesInOrder() throws {
        let revisions = [Self.revision(13, bytes: 70_000), Self.revision(14, bytes: 0), Self.revision(15, bytes: 5)]
        let message = HAMessage(epoch: Self.epoch, body: .append(previous: Self.head, revisions: revisions, activeHead: revisions[2].head))
        let frame = HAMessageCodec.frame(message)
        #expect(frame.payload.readableBytes < 70_005 + 1_000, "no base64: \(frame.payload.readableBytes) bytes on the wire")
        #expect(HAMessageCodec.decode(frame: frame) == message)
        // The JSON form (base64 payloads) is still understood.
        #expect(HAMessageCodec.decode(frame: PeerFrame(type: .message, bytes: HAMessageCodec.encode(message).canonicalBytes)) == message)
    }

    /// A peer's sizes are checked, never trusted: bytes missing or left over, a size beyond the frame or
    /// beyond 64 bits, a payload inside the header, a negative or non-decimal size: each frame is dropped.
    @Test func aMalformedBinaryAppendIsDropped() throws {
        let revisions = [Self.revision(13, bytes: 10), Self.revision(14, bytes: 20)]
        let message = HAMessage(epoch: Self.epoch, body: .append(previous: Self.head, revisions: revisions, activeHead: revisions[1].head))
        let (header, bytes) = try Self.split(HAMessageCodec.frame(message))
        #expect(HAMessageCodec.decode(frame: Self.forged(header, bytes)) == message, "the forger itself is faithful")
        #expect(HAMessageCodec.decode(frame: Self.forged(header, Array(bytes.dropLast()))) == nil, "a byte missing")
        #expect(HAMessageCodec.decode(frame: Self.forged(header, bytes + [0])) == nil, "a byte left over")
        func withFirstRevision(_ key: String, _ value: JSONValue) -> JSONValue {
            guard case .object(var fields) = header, case .object(var body) = fields["body"], var items = body["revisions"]?.arrayValue,
                case .object(var first) = items[0]
            else { return header }
            first[key] = value
            items[0] = .object(first)
            body["revisions"] = .array(items)
            fields["body"] = .object(body)
            return .object(fields)
        }
        for (key, value) in [
            ("payload-bytes", "31"), ("payload-bytes", "18446744073709551615"), ("payload-bytes", "99999999999999999999"),
            ("payload-bytes", "-1"), ("payload-bytes", "1e3"), ("payload-bytes", 10), ("payload", "AAAA"),
        ] as [(String, JSONValue)] {
            #expect(HAMessageCodec.decode(frame: Self.forged(withFirstRevision(key, value), bytes)) == nil, "\(key): \(value.canonicalString)")
        }
        guard case .object(var fields) = header else { return }
        fields["body"] = HAMessageCodec.body(.ack(durableHead: Self.head, head: Self.head, gap: false))
        #expect(HAMessageCodec.decode(frame: Self.forged(.object(fields), [])) == nil, "only chunks and appends are binary")
    }

    @Test func aSwitchoverAbortKeepsItsWireCodeAndAnUnknownCodeStillAborts() throws {
        let abort = HAMessageCodec.encode(HAMessage(epoch: Self.epoch, body: .switchoverAbort(switchoverID: 5, reason: .standbyNotSynchronized)))
        #expect(abort["body"]?["reason-code"]?.stringValue == "standby-not-synchronized")
        let fromNewerPeer: JSONValue = [
            "type": "ha", "epoch": ["term": "1", "server": "a"],
            "body": ["kind": "switchover-abort", "switchover-id": "5", "reason-code": "no-such-code\u{1b}[2J"],
        ]
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
