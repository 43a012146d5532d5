import HACore
import ManagementModel
import ManagementService
import PeerTransport
import Testing

@testable import HARuntime

/// The largest revision a publish accepts (`PublishLimits.revisionBytesMax`) reaches the standbys: its
/// HA append message, with the largest envelope, fits one frame between the group's servers, and the standby reads it back.
@Suite("HARuntime: the largest revision fits one SIC frame")
struct RevisionFrameTests {
    @Test func theLargestRevisionAPublishAcceptsFitsOneFrame() throws {
        #expect(PublishLimits.haFrameBytesMax == PeerLimits.default.groupFrameBytesMax)
        // Every figure at its widest: the longest server names, the largest numbers, full hashes.
        let server = ServerID(String(repeating: "m", count: Limits.nameBytesMax))
        let epoch = Epoch(term: UInt64.max, server: server)
        let hash = String(repeating: "f", count: 64)
        let head = RevisionHead(number: UInt64.max, hash: hash)
        let revision = ReplicatedRevision(
            number: UInt64.max, epoch: epoch, previousHash: hash, hash: hash,
            payload: [UInt8](repeating: UInt8(ascii: "x"), count: PublishLimits.revisionBytesMax))
        let message = HAMessage(epoch: epoch, body: .append(previous: head, revisions: [revision], activeHead: head))
        let frame = HAMessageCodec.frame(message)
        #expect(
            frame.payload.readableBytes <= PeerLimits.default.groupFrameBytesMax,
            "an append of \(PublishLimits.revisionBytesMax) bytes takes \(frame.payload.readableBytes) of \(PeerLimits.default.groupFrameBytesMax)")
        #expect(HAMessageCodec.decode(frame: frame) == message)
    }
}
