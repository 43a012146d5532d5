import FuzzDriver
import NIOCore

@testable import PeerTransport

/// The SIC frame decoder on a peer's bytes: frames are parsed off the front until more bytes are
/// needed or the stream is refused (bad magic, version, type or length); it must never trap.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSICFrame(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    var buffer = ByteBuffer(bytes: UnsafeBufferPointer(start: data, count: count))
    while let frame = try? PeerFrameDecoder.parse(&buffer, frameBytesMax: 1 << 16) {
        _ = frame.payload.readableBytes
    }
    return 0
}

runFuzzer(fuzzSICFrame)
