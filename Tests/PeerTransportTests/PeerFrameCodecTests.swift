import NIOCore
import NIOEmbedded
import Testing

@testable import PeerTransport

@Suite("Frame codec")
struct PeerFrameCodecTests {
    func encoded(_ frame: PeerFrame, limit: Int = 1024) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        try PeerFrameEncoder.write(frame, into: &buffer, frameBytesMax: limit)
        return buffer
    }

    @Test("header layout: RMP, version, type, big-endian length")
    func layout() throws {
        let buffer = try encoded(PeerFrame(type: .message, bytes: [0xAA, 0xBB]))
        #expect(Array(buffer.readableBytesView) == [0x52, 0x4D, 0x50, 1, 4, 0, 0, 0, 2, 0xAA, 0xBB])
    }

    @Test("frames split anywhere and frames back to back decode the same")
    func splitAndBatched() throws {
        let frames = [
            PeerFrame(type: .message, bytes: Array("one".utf8)),
            PeerFrame(type: .enrolment, bytes: []),
            PeerFrame(type: .message, bytes: [UInt8](repeating: 9, count: 300)),
        ]
        var all = ByteBuffer()
        for frame in frames { try PeerFrameEncoder.write(frame, into: &all, frameBytesMax: 1024) }
        for chunk in [1, 2, 7, 64, all.readableBytes] {
            let channel = EmbeddedChannel(handler: ByteToMessageHandler(PeerFrameDecoder(frameBytesMax: 1024)))
            var rest = all
            while let slice = rest.readSlice(length: min(chunk, rest.readableBytes)), slice.readableBytes > 0 {
                try channel.writeInbound(slice)
            }
            var decoded: [PeerFrame] = []
            while let frame = try channel.readInbound(as: PeerFrame.self) { decoded.append(frame) }
            #expect(decoded == frames, "chunk size \(chunk)")
            _ = try channel.finish()
        }
    }

    @Test("a bad magic is refused from the first wrong byte")
    func badMagic() throws {
        var buffer = ByteBuffer(bytes: [0x52, 0x58])
        let error = #expect(throws: PeerTransportError.self) {
            _ = try PeerFrameDecoder.parse(&buffer, frameBytesMax: 1024)
        }
        #expect(error?.code == .badMagic)
    }

    @Test("another version and an unknown type are refused")
    func versionAndType() throws {
        var version = ByteBuffer(bytes: [0x52, 0x4D, 0x50, 2])
        let versionError = #expect(throws: PeerTransportError.self) {
            _ = try PeerFrameDecoder.parse(&version, frameBytesMax: 1024)
        }
        #expect(versionError?.code == .unsupportedVersion)
        var type = ByteBuffer(bytes: [0x52, 0x4D, 0x50, 1, 200])
        let typeError = #expect(throws: PeerTransportError.self) {
            _ = try PeerFrameDecoder.parse(&type, frameBytesMax: 1024)
        }
        #expect(typeError?.code == .unknownFrameType)
    }

    @Test("a frame over the limit is refused from its header, before its payload arrives")
    func tooLarge() throws {
        var header = ByteBuffer(bytes: [0x52, 0x4D, 0x50, 1, 4, 0, 0, 4, 1])  // 1025 bytes announced
        let error = #expect(throws: PeerTransportError.self) {
            _ = try PeerFrameDecoder.parse(&header, frameBytesMax: 1024)
        }
        #expect(error?.code == .frameTooLarge)
        var atLimit = ByteBuffer(bytes: [0x52, 0x4D, 0x50, 1, 4, 0, 0, 4, 0])
        #expect(try PeerFrameDecoder.parse(&atLimit, frameBytesMax: 1024) == nil)  // waits for the payload
        let encodeError = #expect(throws: PeerTransportError.self) {
            _ = try encoded(PeerFrame(type: .message, bytes: [UInt8](repeating: 0, count: 1025)))
        }
        #expect(encodeError?.code == .frameTooLarge)
    }
}
