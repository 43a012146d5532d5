import Foundation
import HACore
import ManagementModel
import NIOCore
import PeerTransport

/// HA messages as JSON on a SIC channel (`{"type": "ha", "epoch": ..., "body": {"kind": ...}}` in a
/// `message` frame). The sender is never read from the message: it is the SIC certificate's identity.
/// Hashes, checksums and numbers travel as strings so no number loses precision; bytes as base64 in JSON, or
/// raw after a JSON header in the binary frames of `frame(_:)` (snapshot chunks and appends).
public enum HAMessageCodec {
    public static let messageType = "ha"

    public static func encode(_ message: HAMessage) -> JSONValue {
        ["type": .string(messageType), "epoch": epoch(message.epoch), "body": body(message.body)]
    }

    /// Nil for anything malformed: a peer's bad message is dropped, never half understood.
    public static func decode(_ json: JSONValue) -> HAMessage? {
        guard json["type"]?.stringValue == messageType, let epoch = json["epoch"].flatMap(epoch(_:)),
            let body = json["body"].flatMap(body(_:))
        else { return nil }
        return HAMessage(epoch: epoch, body: body)
    }

    // MARK: frames

    /// Byte 0 of a binary HA frame; a JSON frame starts with "{".
    static let binaryMarker: UInt8 = 0x01

    /// `message` as the payload of a `message` frame: its JSON, except the two messages that carry
    /// bytes, which are binary so that bytes are not base64'ed into JSON (a third larger) and parsed back
    /// out: a snapshot chunk (a megabyte of database pages) and an append (revisions of up to
    /// `PublishLimits.revisionBytesMax` bytes each, a frame's worth). The marker byte, the header's
    /// length (UInt32, big-endian), the header (the message's JSON with empty bytes; an append's
    /// revisions say their `payload-bytes`), then the bytes, in order.
    public static func frame(_ message: HAMessage) -> PeerFrame {
        let header: JSONValue
        let sections: [[UInt8]]
        switch message.body {
        case .snapshotChunk(let head, let index, let chunk, let checksum):
            header = encode(HAMessage(epoch: message.epoch, body: .snapshotChunk(snapshotHead: head, index: index, bytes: [], checksum: checksum)))
            sections = [chunk]
        case .append(let previous, let revisions, let activeHead):
            header = [
                "type": .string(messageType), "epoch": epoch(message.epoch),
                "body": [
                    "kind": "append", "previous": head(previous), "revisions": .array(revisions.map(revisionHeader(_:))),
                    "active-head": head(activeHead),
                ],
            ]
            // The driver loads every payload before a message leaves (`HADriver.withPayloads`); one
            // without its bytes would go out empty and fail the standby's hash check.
            assert(revisions.allSatisfy { $0.payload.bytes != nil }, "an append leaves with its payloads")
            sections = revisions.map { $0.payload.bytes ?? [] }
        default:
            return PeerFrame(type: .message, bytes: encode(message).canonicalBytes)
        }
        let headerBytes = header.canonicalBytes
        var payload = ByteBufferAllocator().buffer(capacity: 5 + headerBytes.count + sections.reduce(0) { $0 + $1.count })
        payload.writeInteger(binaryMarker)
        payload.writeInteger(UInt32(headerBytes.count), endianness: .big)
        payload.writeBytes(headerBytes)
        for section in sections { payload.writeBytes(section) }
        return PeerFrame(type: .message, payload: payload)
    }

    /// The HA message a frame carries, binary or JSON; nil when it carries another channel message or
    /// a malformed one.
    public static func decode(frame: PeerFrame) -> HAMessage? {
        if frame.payload.readableBytesView.first == binaryMarker { return decodeBinary(frame.payload) }
        return (try? JSONValue.parse(frame.payload.readableBytesView)).flatMap(decode)
    }

    /// Strict: the header must be a chunk or an append whose byte fields are empty, and the bytes after
    /// it must be exactly what the header accounts for (nothing missing, nothing left over). The sizes
    /// come from a peer: each is checked against what is left before it is read, so a header cannot
    /// make this allocate more than the frame holds.
    static func decodeBinary(_ payload: ByteBuffer) -> HAMessage? {
        var payload = payload
        guard payload.readInteger(as: UInt8.self) == binaryMarker, let length = payload.readInteger(endianness: .big, as: UInt32.self),
            let header = payload.readSlice(length: Int(length)), let json = try? JSONValue.parse(header.readableBytesView),
            let message = decode(json)
        else { return nil }
        switch message.body {
        case .snapshotChunk(let head, let index, let empty, let checksum):
            guard empty.isEmpty else { return nil }
            return HAMessage(
                epoch: message.epoch, body: .snapshotChunk(snapshotHead: head, index: index, bytes: Array(payload.readableBytesView), checksum: checksum))
        case .append(let previous, let revisions, let activeHead):
            guard let items = json["body"]?["revisions"]?.arrayValue, items.count == revisions.count else { return nil }
            var filled: [ReplicatedRevision] = []
            filled.reserveCapacity(revisions.count)
            for (item, revision) in zip(items, revisions) {
                guard revision.payload.bytes?.isEmpty == true, let count = item["payload-bytes"].flatMap(uint), count <= UInt64(payload.readableBytes),
                    let bytes = payload.readBytes(length: Int(count))
                else { return nil }
                filled.append(
                    ReplicatedRevision(
                        number: revision.number, epoch: revision.epoch, previousHash: revision.previousHash,
                        hash: revision.hash, payload: bytes))
            }
            guard payload.readableBytes == 0 else { return nil }
            return HAMessage(epoch: message.epoch, body: .append(previous: previous, revisions: filled, activeHead: activeHead))
        default:
            return nil
        }
    }

    // MARK: pieces

    static func epoch(_ value: Epoch) -> JSONValue { ["term": uint(value.term), "server": .string(value.server.name)] }
    static func epoch(_ json: JSONValue) -> Epoch? {
        guard let term = json["term"].flatMap(uint), let server = json["server"]?.stringValue else { return nil }
        if server.isEmpty { return term == 0 ? .initial : nil }
        return Epoch(term: term, server: ServerID(server))
    }

    static func head(_ value: RevisionHead) -> JSONValue { ["number": uint(value.number), "hash": .string(value.hash)] }
    static func head(_ json: JSONValue) -> RevisionHead? {
        guard let number = json["number"].flatMap(uint), let hash = json["hash"]?.stringValue else { return nil }
        return RevisionHead(number: number, hash: hash)
    }

    static func spans(_ values: [EpochSpan]) -> JSONValue {
        .array(values.map { ["epoch": epoch($0.epoch), "first": uint($0.firstNumber), "last": uint($0.lastNumber)] })
    }
    static func spans(_ json: JSONValue) -> [EpochSpan]? {
        guard let items = json.arrayValue else { return nil }
        var result: [EpochSpan] = []
        for item in items {
            guard let epoch = item["epoch"].flatMap(epoch(_:)), let first = item["first"].flatMap(uint),
                let last = item["last"].flatMap(uint), first >= 1, first <= last
            else { return nil }
            result.append(EpochSpan(epoch: epoch, firstNumber: first, lastNumber: last))
        }
        return result
    }

    static func revision(_ value: ReplicatedRevision) -> JSONValue {
        [
            "number": uint(value.number), "epoch": epoch(value.epoch), "previous-hash": .string(value.previousHash),
            "hash": .string(value.hash), "payload": bytes(value.payload.bytes ?? []),
        ]
    }
    /// A revision in a binary append's header: its payload follows the header, `payload-bytes` long.
    static func revisionHeader(_ value: ReplicatedRevision) -> JSONValue {
        [
            "number": uint(value.number), "epoch": epoch(value.epoch), "previous-hash": .string(value.previousHash),
            "hash": .string(value.hash), "payload": "", "payload-bytes": uint(UInt64(value.payload.bytes?.count ?? 0)),
        ]
    }
    static func revision(_ json: JSONValue) -> ReplicatedRevision? {
        guard let number = json["number"].flatMap(uint), let epoch = json["epoch"].flatMap(epoch(_:)),
            let previous = json["previous-hash"]?.stringValue, let hash = json["hash"]?.stringValue,
            let payload = json["payload"].flatMap(bytes(_:))
        else { return nil }
        return ReplicatedRevision(number: number, epoch: epoch, previousHash: previous, hash: hash, payload: payload)
    }

    static func mode(_ value: ReplicationMode) -> JSONValue {
        switch value {
        case .async: ["name": "async"]
        case .sync(let timeout): ["name": "sync", "timeout-ms": uint(timeout)]
        }
    }
    static func mode(_ json: JSONValue) -> ReplicationMode? {
        switch json["name"]?.stringValue {
        case "async": .async
        case "sync": json["timeout-ms"].flatMap(uint).map { .sync(timeoutMilliseconds: $0) }
        default: nil
        }
    }

    /// Unsigned 64-bit values as decimal strings: JSON numbers here are signed 64-bit.
    static func uint(_ value: UInt64) -> JSONValue { .string(String(value)) }
    static func uint(_ json: JSONValue) -> UInt64? { json.stringValue.flatMap { UInt64($0) } }
    static func int(_ json: JSONValue) -> Int? { json.intValue.flatMap { Int(exactly: $0) }.flatMap { $0 >= 0 ? $0 : nil } }
    static func bytes(_ value: [UInt8]) -> JSONValue { .string(Data(value).base64EncodedString()) }
    static func bytes(_ json: JSONValue) -> [UInt8]? { json.stringValue.flatMap { Data(base64Encoded: $0) }.map(Array.init) }

    // MARK: bodies

    static func body(_ body: HAMessage.Body) -> JSONValue {
        switch body {
        case .hello(let hello):
            return [
                "kind": "hello", "server": .string(hello.serverID.name), "head": head(hello.head), "durable-head": head(hello.durableHead),
                "spans": spans(hello.spans), "software-version": .string(hello.softwareVersion),
                "schema-version": .int(Int64(hello.schemaVersion)), "wants-full-sync": .bool(hello.wantsFullSync),
                "checkpoints": .array(hello.checkpoints.map(head(_:))),
            ]
        case .append(let previous, let revisions, let activeHead):
            return ["kind": "append", "previous": head(previous), "revisions": .array(revisions.map(revision(_:))), "active-head": head(activeHead)]
        case .ack(let durableHead, let current, let gap):
            return ["kind": "ack", "durable-head": head(durableHead), "head": head(current), "gap": .bool(gap)]
        case .heartbeat(let beat):
            return [
                "kind": "heartbeat", "head": head(beat.head), "durable-head": head(beat.durableHead), "role": .string(beat.role.rawValue),
                "writes-enabled": .bool(beat.writesEnabled), "ha-stopped": .bool(beat.haStopped), "mode": mode(beat.replicationMode),
                "expecting-hello": .bool(beat.expectingHello),
            ]
        case .snapshotOffer(let snapshotHead, let chunkCount, let offered):
            return ["kind": "snapshot-offer", "snapshot-head": head(snapshotHead), "chunk-count": .int(Int64(chunkCount)), "spans": spans(offered)]
        case .snapshotChunk(let snapshotHead, let index, let chunk, let checksum):
            return [
                "kind": "snapshot-chunk", "snapshot-head": head(snapshotHead), "index": .int(Int64(index)), "bytes": bytes(chunk), "checksum": uint(checksum),
            ]
        case .snapshotAck(let snapshotHead, let nextIndex, let resend):
            return ["kind": "snapshot-ack", "snapshot-head": head(snapshotHead), "next-index": .int(Int64(nextIndex)), "resend": .bool(resend)]
        case .snapshotDone(let snapshotHead):
            return ["kind": "snapshot-done", "snapshot-head": head(snapshotHead)]
        case .switchoverRequest(let id):
            return ["kind": "switchover-request", "switchover-id": uint(id)]
        case .handover(let id, let finalHead):
            return ["kind": "handover", "switchover-id": uint(id), "final-head": head(finalHead)]
        case .switchoverAbort(let id, let reason):
            return ["kind": "switchover-abort", "switchover-id": uint(id), "reason-code": .string(reason.rawValue)]
        case .epochAnnouncement(let announced):
            return ["kind": "epoch-announcement", "head": head(announced)]
        case .promotionPoll:
            return ["kind": "promotion-poll"]
        case .pollReply(let durableHead, let held):
            return ["kind": "poll-reply", "durable-head": head(durableHead), "spans": spans(held)]
        case .collision(let common, let divergent, let activeHead, let commonHash):
            var fields: [String: JSONValue] = [
                "kind": "collision", "common-number": uint(common), "divergent-count": uint(divergent), "active-head": head(activeHead),
            ]
            if let commonHash { fields["common-hash"] = .string(commonHash) }
            return .object(fields)
        case .discardUnsyncedTail(let number, let lostEpoch, let afterHash, let standbyHead):
            var fields: [String: JSONValue] = ["kind": "discard-unsynced-tail", "after": uint(number)]
            if let lostEpoch { fields["lost-epoch"] = epoch(lostEpoch) }
            if let afterHash { fields["after-hash"] = .string(afterHash) }
            if let standbyHead { fields["standby-head"] = head(standbyHead) }
            return .object(fields)
        case .forkProbe(let numbers):
            return ["kind": "fork-probe", "numbers": .array(numbers.map(uint))]
        case .forkProbeReply(let answeredFrom, let heads):
            return ["kind": "fork-probe-reply", "head": head(answeredFrom), "heads": .array(heads.map(head(_:)))]
        }
    }

    static func body(_ json: JSONValue) -> HAMessage.Body? {
        func h(_ key: String) -> RevisionHead? { json[key].flatMap(head(_:)) }
        func b(_ key: String) -> Bool? { json[key]?.boolValue }
        func u(_ key: String) -> UInt64? { json[key].flatMap(uint) }
        func i(_ key: String) -> Int? { json[key].flatMap(int) }
        /// An optional string field: absent is `.some(nil)`; present but not a string is nil (refused).
        func optionalString(_ key: String) -> String?? {
            guard let field = json[key] else { return .some(nil) }
            return field.stringValue.map { .some($0) }
        }
        /// An optional head field, as `optionalString`.
        func optionalHead(_ key: String) -> RevisionHead?? {
            guard let field = json[key] else { return .some(nil) }
            return head(field).map { .some($0) }
        }
        switch json["kind"]?.stringValue {
        case "hello":
            guard let server = json["server"]?.stringValue, !server.isEmpty, let head = h("head"), let durable = h("durable-head"),
                let spans = json["spans"].flatMap(spans(_:)), let version = json["software-version"]?.stringValue,
                let schema = json["schema-version"]?.intValue.flatMap(UInt32.init(exactly:)), let wants = b("wants-full-sync"),
                case let listed = json["checkpoints"]?.arrayValue ?? [], listed.count <= HALimits.helloCheckpointsMax
            else { return nil }
            let checkpoints = listed.compactMap(head(_:))
            guard checkpoints.count == listed.count else { return nil }
            return .hello(
                HAMessage.Hello(
                    serverID: ServerID(server), head: head, durableHead: durable, spans: spans,
                    softwareVersion: version, schemaVersion: schema, wantsFullSync: wants, checkpoints: checkpoints))
        case "append":
            guard let previous = h("previous"), let items = json["revisions"]?.arrayValue, let activeHead = h("active-head") else { return nil }
            let revisions = items.compactMap(revision(_:))
            guard revisions.count == items.count else { return nil }
            return .append(previous: previous, revisions: revisions, activeHead: activeHead)
        case "ack":
            guard let durable = h("durable-head"), let head = h("head"), let gap = b("gap") else { return nil }
            return .ack(durableHead: durable, head: head, gap: gap)
        case "heartbeat":
            guard let head = h("head"), let durable = h("durable-head"), let role = json["role"]?.stringValue.flatMap(HARole.init(rawValue:)),
                let writes = b("writes-enabled"), let stopped = b("ha-stopped"), let mode = json["mode"].flatMap(mode(_:)),
                let expecting = b("expecting-hello")
            else { return nil }
            return .heartbeat(
                HAMessage.Heartbeat(
                    head: head, durableHead: durable, role: role, writesEnabled: writes,
                    haStopped: stopped, replicationMode: mode, expectingHello: expecting))
        case "snapshot-offer":
            guard let head = h("snapshot-head"), let count = i("chunk-count"), let spans = json["spans"].flatMap(spans(_:)) else { return nil }
            return .snapshotOffer(snapshotHead: head, chunkCount: count, spans: spans)
        case "snapshot-chunk":
            guard let head = h("snapshot-head"), let index = i("index"), let chunk = json["bytes"].flatMap(bytes(_:)), let checksum = u("checksum") else {
                return nil
            }
            return .snapshotChunk(snapshotHead: head, index: index, bytes: chunk, checksum: checksum)
        case "snapshot-ack":
            guard let head = h("snapshot-head"), let next = i("next-index"), let resend = b("resend") else { return nil }
            return .snapshotAck(snapshotHead: head, nextIndex: next, resend: resend)
        case "snapshot-done":
            return h("snapshot-head").map { .snapshotDone(snapshotHead: $0) }
        case "switchover-request":
            return u("switchover-id").map { .switchoverRequest(switchoverID: $0) }
        case "handover":
            guard let id = u("switchover-id"), let head = h("final-head") else { return nil }
            return .handover(switchoverID: id, finalHead: head)
        case "switchover-abort":
            // A code this version does not know still aborts (a newer peer's): only its text is lost.
            guard let id = u("switchover-id"), let code = json["reason-code"]?.stringValue else { return nil }
            return .switchoverAbort(switchoverID: id, reason: SwitchoverAbortReason(code: code))
        case "epoch-announcement":
            return h("head").map { .epochAnnouncement(head: $0) }
        case "promotion-poll":
            return .promotionPoll
        case "poll-reply":
            guard let durable = h("durable-head"), let spans = json["spans"].flatMap(spans(_:)) else { return nil }
            return .pollReply(durableHead: durable, spans: spans)
        case "collision":
            // "common-hash" is optional (an older sender, or an active that compacted past it); present, a string.
            guard let common = u("common-number"), let divergent = u("divergent-count"), let head = h("active-head"),
                let commonHash = optionalString("common-hash")
            else { return nil }
            return .collision(commonNumber: common, divergentCount: divergent, activeHead: head, commonHash: commonHash)
        case "discard-unsynced-tail":
            // Without "lost-epoch" (an older sender): the sender's own epoch. "after-hash" and
            // "standby-head" are optional; present, a string and a head.
            guard let number = u("after"), let afterHash = optionalString("after-hash"), let standbyHead = optionalHead("standby-head")
            else { return nil }
            guard let lost = json["lost-epoch"] else {
                return .discardUnsyncedTail(after: number, epoch: nil, afterHash: afterHash, standbyHead: standbyHead)
            }
            return epoch(lost).map { .discardUnsyncedTail(after: number, epoch: $0, afterHash: afterHash, standbyHead: standbyHead) }
        case "fork-probe":
            guard let items = json["numbers"]?.arrayValue, items.count <= HALimits.forkProbeNumbersMax else { return nil }
            let numbers = items.compactMap(uint)
            return numbers.count == items.count ? .forkProbe(numbers: numbers) : nil
        case "fork-probe-reply":
            guard let answeredFrom = h("head"), let items = json["heads"]?.arrayValue, items.count <= HALimits.forkProbeNumbersMax else { return nil }
            let heads = items.compactMap(head(_:))
            return heads.count == items.count ? .forkProbeReply(head: answeredFrom, heads: heads) : nil
        default:
            return nil
        }
    }
}
