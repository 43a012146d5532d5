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

    @Test("hostile bytes (20,000 seeded mutations of real frames, split anywhere) are refused or decoded, never a trap")
    func decoderSurvivesMutations() throws {
        var all = ByteBuffer()
        for frame in [PeerFrame(type: .enrolment, bytes: [UInt8](repeating: 3, count: 40)), PeerFrame(type: .message, bytes: [1, 2])] {
            try PeerFrameEncoder.write(frame, into: &all, frameBytesMax: 1024)
        }
        let seed = Array(all.readableBytesView)
        var state: UInt64 = 18
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<20_000 {
            var bytes = seed
            for _ in 0...(next() % 6) { bytes[Int(next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: next()) }
            bytes = Array(bytes.prefix(Int(next() % UInt64(bytes.count + 1))))
            var buffer = ByteBuffer(bytes: bytes)
            // Whatever arrives: frames, "need more", or an error; the reader index never passes the end.
            while buffer.readableBytes > 0, let frame = try? PeerFrameDecoder.parse(&buffer, frameBytesMax: 64) {
                #expect(frame.payload.readableBytes <= 64)
            }
        }
    }
}
