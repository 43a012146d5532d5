import NIOCore

/// What a frame carries. The transport owns `ready` and `error`; users send `enrolment` frames on
/// enrolment connections and `message` frames on verified peer connections.
public enum PeerFrameType: UInt8, Sendable, Equatable, CaseIterable {
    /// Server to client, once: the server verified the client (or accepted it for enrolment) and the
    /// channel is usable. Needed because in TLS 1.3 the client finishes its handshake before the server
    /// has checked the client's certificate. Consumed by the transport.
    case ready = 1
    /// Either way, last frame before closing: UTF-8 text saying why. Consumed by the transport, which
    /// surfaces it as `PeerTransportError.Code.closedByPeer`.
    case error = 2
    /// An enrolment protocol message: the only type allowed on a connection without a client certificate.
    case enrolment = 3
    /// An application message (sync, gateway) on a connection whose peer was verified.
    case message = 4

    /// Whether users may send this type (the transport sends the others itself).
    var isUserType: Bool { self == .enrolment || self == .message }
}

/// One frame: a type and an opaque payload of at most `PeerLimits.frameBytesMax` bytes.
///
/// On the wire: `"RMP"`, a version byte, the type byte, the payload length as a big-endian `UInt32`, then
/// the payload.
public struct PeerFrame: Sendable, Equatable {
    /// The first three bytes of every frame, "RMP": a quick, clear refusal of anything that is not Rampart.
    public static let magic: [UInt8] = Array("RMP".utf8)
    /// The frame protocol version this build speaks (the fourth byte).
    public static let version: UInt8 = 1
    /// Bytes before the payload: magic (3), version (1), type (1), length (4).
    public static let headerBytes = 9

    public var type: PeerFrameType
    public var payload: ByteBuffer

    public init(type: PeerFrameType, payload: ByteBuffer) {
        self.type = type
        self.payload = payload
    }

    /// A frame whose payload is a copy of `bytes`.
    public init(type: PeerFrameType, bytes: some Sequence<UInt8>) {
        self.init(type: type, payload: ByteBuffer(bytes: bytes))
    }

    /// The payload as bytes.
    public var payloadBytes: [UInt8] { Array(payload.readableBytesView) }
}

/// The largest payload a connection reads now. It starts small and grows once the peer is verified
/// (`PeerSessionHandler` raises it); the decoder reads it for every frame. Confined to the channel's
/// event loop.
final class PeerInboundFrameBound {
    var bytesMax: Int

    init(bytesMax: Int) { self.bytesMax = bytesMax }
}

/// Decodes frames, refusing a bad magic, another version, an unknown type or a too-long payload as soon
/// as the header bytes that show it have arrived (a too-long payload is refused before it is read).
struct PeerFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = PeerFrame

    let bound: PeerInboundFrameBound

    init(bound: PeerInboundFrameBound) { self.bound = bound }

    /// A decoder with a fixed limit.
    init(frameBytesMax: Int) { self.bound = PeerInboundFrameBound(bytesMax: frameBytesMax) }

    /// Parses one frame from the front of `buffer`, or returns nil when more bytes are needed.
    static func parse(_ buffer: inout ByteBuffer, frameBytesMax: Int) throws -> PeerFrame? {
        let start = buffer.readerIndex
        let available = buffer.readableBytes
        for index in 0..<min(available, PeerFrame.magic.count) {
            guard buffer.getInteger(at: start + index, as: UInt8.self) == PeerFrame.magic[index] else {
                throw PeerTransportError(
                    .badMagic,
                    "received bytes that are not a Rampart frame (bad magic): the sender is not a Rampart SIC peer")
            }
        }
        if available >= 4, let version = buffer.getInteger(at: start + 3, as: UInt8.self), version != PeerFrame.version {
            throw PeerTransportError(
                .unsupportedVersion,
                "received frame protocol version \(version), this node speaks version \(PeerFrame.version); upgrade the older node"
            )
        }
        if available >= 5, let raw = buffer.getInteger(at: start + 4, as: UInt8.self),
            PeerFrameType(rawValue: raw) == nil
        {
            throw PeerTransportError(.unknownFrameType, "received a frame of unknown type \(raw)")
        }
        guard available >= PeerFrame.headerBytes,
            let rawType = buffer.getInteger(at: start + 4, as: UInt8.self),
            let type = PeerFrameType(rawValue: rawType),
            let length = buffer.getInteger(at: start + 5, endianness: .big, as: UInt32.self)
        else { return nil }
        guard UInt64(length) <= UInt64(frameBytesMax) else {
            throw PeerTransportError(
                .frameTooLarge, "received the header of a frame of \(length) bytes; the limit is \(frameBytesMax) bytes"
            )
        }
        guard available - PeerFrame.headerBytes >= Int(length),
            let payload = buffer.getSlice(at: start + PeerFrame.headerBytes, length: Int(length))
        else { return nil }
        buffer.moveReaderIndex(forwardBy: PeerFrame.headerBytes + Int(length))
        return PeerFrame(type: type, payload: payload)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.parse(&buffer, frameBytesMax: bound.bytesMax) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        // A partial frame at EOF is dropped: the connection is gone and the peer learns nothing from an error.
        try decode(context: context, buffer: &buffer)
    }
}

/// Encodes frames; refuses (never truncates) a payload over the limit.
struct PeerFrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = PeerFrame

    let frameBytesMax: Int

    static func write(_ frame: PeerFrame, into out: inout ByteBuffer, frameBytesMax: Int) throws {
        let length = frame.payload.readableBytes
        guard length <= frameBytesMax, length <= Int(UInt32.max) else {
            throw PeerTransportError(
                .frameTooLarge, "a frame of \(length) bytes exceeds the limit of \(frameBytesMax) bytes")
        }
        out.reserveCapacity(minimumWritableBytes: PeerFrame.headerBytes + length)
        out.writeBytes(PeerFrame.magic)
        out.writeInteger(PeerFrame.version)
        out.writeInteger(frame.type.rawValue)
        out.writeInteger(UInt32(length), endianness: .big)
        var payload = frame.payload
        out.writeBuffer(&payload)
    }

    func encode(data: PeerFrame, out: inout ByteBuffer) throws {
        try Self.write(data, into: &out, frameBytesMax: frameBytesMax)
    }
}
