import Foundation
import FuzzDriver
import HACore
import HARuntime
import PeerTransport

/// The HA message codec on a peer's frame payload (JSON, or the binary chunk/append form): a
/// message is decoded whole or dropped (nil), never trapped on; what decodes encodes again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHAMessage(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let frame = PeerFrame(type: .message, bytes: UnsafeBufferPointer(start: data, count: count))
    if let message = HAMessageCodec.decode(frame: frame) {
        _ = HAMessageCodec.encode(message).canonicalBytes
    }
    return 0
}

/// RAMPART_FUZZ_WRITE_SEEDS=DIR: write one frame payload of every message kind there (how
/// Fuzz/corpus/ha-message was made), then fuzz as usual.
@_cdecl("LLVMFuzzerInitialize")
public func writeHAMessageSeeds(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["RAMPART_FUZZ_WRITE_SEEDS"] else { return 0 }
    let head = RevisionHead(number: 12, hash: "ab")
    let epoch = Epoch(term: 3, server: "primary")
    let spans = [EpochSpan(epoch: Epoch(term: 1, server: "primary"), firstNumber: 1, lastNumber: 12)]
    let revision = ReplicatedRevision(number: 13, epoch: epoch, previousHash: "ab", hash: "cd", payload: Array(#"{"number":13}"#.utf8))
    let bodies: [HAMessage.Body] = [
        .hello(
            HAMessage.Hello(
                serverID: "secondary", head: head, durableHead: .empty, spans: spans, softwareVersion: "0.1.0",
                schemaVersion: 1, wantsFullSync: true, checkpoints: [head, .empty])),
        .append(previous: head, revisions: [revision, revision], activeHead: revision.head),
        .ack(durableHead: head, head: head, gap: true),
        .heartbeat(
            HAMessage.Heartbeat(
                head: head, durableHead: head, role: .active, writesEnabled: true, haStopped: false,
                replicationMode: .sync(timeoutMilliseconds: 500), expectingHello: true)),
        .snapshotOffer(snapshotHead: head, chunkCount: 3, spans: spans),
        .snapshotChunk(snapshotHead: head, index: 2, bytes: [9, 8, 7], checksum: 77),
        .snapshotAck(snapshotHead: head, nextIndex: 1, resend: true),
        .snapshotDone(snapshotHead: head),
        .switchoverRequest(switchoverID: 5),
        .handover(switchoverID: 5, finalHead: head),
        .switchoverAbort(switchoverID: 5, reason: .switchoverTimedOut),
        .epochAnnouncement(head: head),
        .promotionPoll,
        .pollReply(durableHead: head, spans: spans),
        .collision(commonNumber: 4, divergentCount: 2, activeHead: head),
        .discardUnsyncedTail(after: 6, epoch: nil), .discardUnsyncedTail(after: 6, epoch: Epoch(term: 3, server: "B")),
        .forkProbe(numbers: [3, 4, 12]),
        .forkProbeReply(head: head, heads: [head, .empty]),
    ]
    for (index, body) in bodies.enumerated() {
        let payload = HAMessageCodec.frame(HAMessage(epoch: epoch, body: body)).payload
        try? Data(payload.readableBytesView).write(to: URL(fileURLWithPath: directory).appendingPathComponent("message-\(index).bin"))
    }
    return 0
}

runFuzzer(fuzzHAMessage)
