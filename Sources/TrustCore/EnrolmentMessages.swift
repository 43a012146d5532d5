import Crypto
import Foundation

/// The messages of SIC enrolment, as values with a compact binary encoding:
///
///     "RSIC" version(1) kind(1) fields...
///
/// Every variable field is a 4-byte big-endian length then its bytes, each with its own bound; integers
/// are 8-byte big-endian. Decoding refuses trailing bytes, oversized fields and unknown versions. The
/// whole message is at most `TrustLimits.enrolmentMessageBytesMax` bytes. The transport carries a message
/// as one enrolment frame.
public enum EnrolmentMessage: Sendable, Equatable {
    case request(EnrolmentRequest)
    case response(EnrolmentResponse)
    case refusal(EnrolmentRefusal)

    static let magic: [UInt8] = Array("RSIC".utf8)
    static let version: UInt8 = 1

    enum Kind: UInt8 {
        case request = 1
        case response = 2
        case refusal = 3
    }

    /// The message's bytes.
    public func encoded() -> [UInt8] {
        switch self {
        case .request(let request): request.encoded()
        case .response(let response): response.encoded()
        case .refusal(let refusal): refusal.encoded()
        }
    }

    /// Parses a message. Throws `EnrolmentError` with code `.malformedMessage`.
    public static func decode(_ bytes: [UInt8]) throws(EnrolmentError) -> EnrolmentMessage {
        guard bytes.count <= TrustLimits.enrolmentMessageBytesMax else {
            throw EnrolmentError(
                .malformedMessage, "enrolment message larger than \(TrustLimits.enrolmentMessageBytesMax) bytes")
        }
        var reader = ByteReader(bytes)
        do throws(ByteReader.Failure) {
            guard try reader.fixed(4) == magic else { throw ByteReader.Failure("not a SIC enrolment message") }
            let version = try reader.u8()
            guard version == Self.version else {
                throw ByteReader.Failure(
                    "enrolment protocol version \(version) is not supported (this node speaks \(Self.version))")
            }
            guard let kind = Kind(rawValue: try reader.u8()) else {
                throw ByteReader.Failure("unknown enrolment message kind")
            }
            let message: EnrolmentMessage
            switch kind {
            case .request: message = .request(try EnrolmentRequest(reading: &reader))
            case .response: message = .response(try EnrolmentResponse(reading: &reader))
            case .refusal: message = .refusal(try EnrolmentRefusal(reading: &reader))
            }
            guard reader.isAtEnd else { throw ByteReader.Failure("trailing bytes after the enrolment message") }
            return message
        } catch {
            throw EnrolmentError(.malformedMessage, "malformed enrolment message: \(error.reason)")
        }
    }

    static func header(_ kind: Kind) -> ByteWriter {
        var writer = ByteWriter()
        writer.raw(magic)
        writer.u8(version)
        writer.u8(kind.rawValue)
        return writer
    }
}

/// Node → server: "I am `nodeName`, here is my key (in a CSR), and proof that I hold the activation key."
public struct EnrolmentRequest: Sendable, Equatable {
    /// The name the node claims; the server looks up the pending node (and its key record) by it.
    public let nodeName: String
    /// PKCS#10 request for the node's key, DER.
    public let csrDER: [UInt8]
    /// Fresh random bytes; the server's proof covers them, so an old response cannot be replayed.
    public let nodeNonce: [UInt8]
    /// The node's clock when it made the request, for the skew check.
    public let nodeTimeMilliseconds: Int64
    /// `EnrolmentProof.client` over `transcript`.
    public let proof: [UInt8]
    /// The operator accepts a clock skew beyond the server's limit (`--force`). Sent as one byte after
    /// the proof only when set, so a request without it is the same bytes as before; the proof covers it.
    public let allowsClockSkew: Bool

    /// Creates a request; `proof` must be over the other fields' `transcript`.
    public init(
        nodeName: String, csrDER: [UInt8], nodeNonce: [UInt8], nodeTimeMilliseconds: Int64, proof: [UInt8], allowsClockSkew: Bool = false
    ) {
        self.nodeName = nodeName
        self.csrDER = csrDER
        self.nodeNonce = nodeNonce
        self.nodeTimeMilliseconds = nodeTimeMilliseconds
        self.proof = proof
        self.allowsClockSkew = allowsClockSkew
    }

    /// The bytes the node's proof covers: every field but the proof, after a domain label.
    public var transcript: [UInt8] {
        Self.transcript(
            nodeName: nodeName, csrDER: csrDER, nodeNonce: nodeNonce, nodeTimeMilliseconds: nodeTimeMilliseconds,
            allowsClockSkew: allowsClockSkew)
    }

    static func transcript(
        nodeName: String, csrDER: [UInt8], nodeNonce: [UInt8], nodeTimeMilliseconds: Int64, allowsClockSkew: Bool
    ) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("rampart-sic-enrolment-v1 request".utf8) + [0])
        writeBody(
            into: &writer, nodeName: nodeName, csrDER: csrDER, nodeNonce: nodeNonce,
            nodeTimeMilliseconds: nodeTimeMilliseconds)
        if allowsClockSkew { writer.u8(Self.allowsClockSkewFlag) }
        return writer.bytes
    }

    /// The byte after the proof (and at the transcript's end) of a request that accepts a clock skew.
    static let allowsClockSkewFlag: UInt8 = 1

    private static func writeBody(
        into writer: inout ByteWriter, nodeName: String, csrDER: [UInt8], nodeNonce: [UInt8],
        nodeTimeMilliseconds: Int64
    ) {
        writer.string(nodeName)
        writer.field(csrDER)
        writer.field(nodeNonce)
        writer.i64(nodeTimeMilliseconds)
    }

    /// The encoded message.
    public func encoded() -> [UInt8] {
        var writer = EnrolmentMessage.header(.request)
        Self.writeBody(
            into: &writer, nodeName: nodeName, csrDER: csrDER, nodeNonce: nodeNonce,
            nodeTimeMilliseconds: nodeTimeMilliseconds)
        writer.field(proof)
        if allowsClockSkew { writer.u8(Self.allowsClockSkewFlag) }
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(ByteReader.Failure) {
        nodeName = try reader.string(maxBytes: TrustLimits.commonNameLengthMax * 4)
        csrDER = try reader.field(maxBytes: TrustLimits.certificateSigningRequestBytesMax)
        nodeNonce = try reader.field(exactBytes: TrustLimits.enrolmentNonceByteCount)
        nodeTimeMilliseconds = try reader.i64()
        proof = try reader.field(exactBytes: TrustLimits.enrolmentProofByteCount)
        if reader.isAtEnd {
            allowsClockSkew = false
        } else {
            guard try reader.u8() == Self.allowsClockSkewFlag else { throw ByteReader.Failure("bad clock skew flag") }
            allowsClockSkew = true
        }
    }
}

/// Server → node on success: the node's certificate, the ICA, and the server's proof that it holds the
/// activation key's record (so the node trusts this ICA without trust on first use).
public struct EnrolmentResponse: Sendable, Equatable {
    /// The identity the server gave the node (its management object's uid and name).
    public let identity: NodeIdentity
    /// The node's certificate, DER.
    public let certificateDER: [UInt8]
    /// The ICA certificate, DER: what the node will pin.
    public let icaDER: [UInt8]
    /// The ICA's revocation list as JSON text, when the server sends it.
    public let revocationJSON: String?
    /// Fresh random bytes of the server.
    public let serverNonce: [UInt8]
    /// The server's clock when it answered.
    public let serverTimeMilliseconds: Int64
    /// `EnrolmentProof.server` over `transcript(request:)`.
    public let proof: [UInt8]

    /// Creates a response; `proof` must be over `transcript(request:)`.
    public init(
        identity: NodeIdentity, certificateDER: [UInt8], icaDER: [UInt8], revocationJSON: String?,
        serverNonce: [UInt8], serverTimeMilliseconds: Int64, proof: [UInt8]
    ) {
        self.identity = identity
        self.certificateDER = certificateDER
        self.icaDER = icaDER
        self.revocationJSON = revocationJSON
        self.serverNonce = serverNonce
        self.serverTimeMilliseconds = serverTimeMilliseconds
        self.proof = proof
    }

    /// The bytes the server's proof covers: a domain label, the SHA-256 of the request's transcript
    /// (binding the answer to that request, its nonce and its key), then every field but the proof.
    public func transcript(request: EnrolmentRequest) -> [UInt8] {
        var writer = ByteWriter()
        writer.raw(Array("rampart-sic-enrolment-v1 response".utf8) + [0])
        writer.raw(Array(SHA256.hash(data: request.transcript)))
        writeBody(into: &writer)
        return writer.bytes
    }

    private func writeBody(into writer: inout ByteWriter) {
        writer.string(identity.uid)
        writer.string(identity.name)
        writer.field(certificateDER)
        writer.field(icaDER)
        if let revocationJSON {
            writer.u8(1)
            writer.string(revocationJSON)
        } else {
            writer.u8(0)
        }
        writer.field(serverNonce)
        writer.i64(serverTimeMilliseconds)
    }

    /// The encoded message.
    public func encoded() -> [UInt8] {
        var writer = EnrolmentMessage.header(.response)
        writeBody(into: &writer)
        writer.field(proof)
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(ByteReader.Failure) {
        let uid = try reader.string(maxBytes: TrustLimits.nodeUIDLengthMax)
        let name = try reader.string(maxBytes: TrustLimits.commonNameLengthMax * 4)
        identity = NodeIdentity(uid: uid, name: name)
        certificateDER = try reader.field(maxBytes: TrustLimits.certificateBytesMax)
        icaDER = try reader.field(maxBytes: TrustLimits.certificateBytesMax)
        switch try reader.u8() {
        case 0: revocationJSON = nil
        case 1: revocationJSON = try reader.string(maxBytes: TrustLimits.revocationListBytesMax)
        default: throw ByteReader.Failure("bad revocation list flag")
        }
        serverNonce = try reader.field(exactBytes: TrustLimits.enrolmentNonceByteCount)
        serverTimeMilliseconds = try reader.i64()
        proof = try reader.field(exactBytes: 32)
    }
}

/// Server → node when enrolment is refused: a stable code and a message that says what to do.
/// Unauthenticated (nothing is proven yet), so the node shows it and changes nothing.
public struct EnrolmentRefusal: Sendable, Equatable, CustomStringConvertible {
    /// Why, as a stable code.
    public enum Code: String, Sendable, Equatable, CaseIterable {
        /// No node of that name is waiting for enrolment.
        case unknownNode = "unknown-node"
        /// The proof was not made with the node's activation key.
        case wrongKey = "wrong-key"
        /// The activation key expired.
        case keyExpired = "key-expired"
        /// The activation key was already used.
        case keyUsed = "key-used"
        /// The clocks of the node and the server differ too much.
        case clockSkew = "clock-skew"
        /// Too many wrong attempts: try again later.
        case throttled = "throttled"
        /// The request is unusable (bad CSR, bad key type, bad name).
        case badRequest = "bad-request"
        /// The server cannot issue certificates now (e.g. a standby, or its ICA is not valid).
        case unavailable = "unavailable"
    }

    /// Why, as a stable code.
    public let code: Code
    /// What happened and what to do, for the operator of the node.
    public let message: String

    /// Creates a refusal; the message is cut to `TrustLimits.enrolmentRefusalMessageLengthMax` bytes.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = String(
            decoding: Array(message.utf8.prefix(TrustLimits.enrolmentRefusalMessageLengthMax)), as: UTF8.self)
    }

    /// A refusal of a throttled attempt.
    public static func throttled(retryAfterMilliseconds: Int64) -> EnrolmentRefusal {
        let seconds = (retryAfterMilliseconds + 999) / 1000
        return EnrolmentRefusal(.throttled, "too many wrong activation key attempts; try again in \(seconds) seconds")
    }

    public var description: String { "\(code.rawValue): \(message)" }

    /// The encoded message.
    public func encoded() -> [UInt8] {
        var writer = EnrolmentMessage.header(.refusal)
        writer.string(code.rawValue)
        writer.string(message)
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(ByteReader.Failure) {
        let codeText = try reader.string(maxBytes: 64)
        guard let code = Code(rawValue: codeText) else { throw ByteReader.Failure("unknown refusal code \(codeText)") }
        self.code = code
        self.message = try reader.string(maxBytes: TrustLimits.enrolmentRefusalMessageLengthMax)
    }
}

/// An enrolment error on the node's side, or a malformed message on either side: a stable code, a
/// message for people, and the trust failure or refusal behind it when there is one.
public struct EnrolmentError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable identifiers of enrolment failures.
    public enum Code: String, Sendable, Equatable {
        /// The bytes are not a well-formed enrolment message.
        case malformedMessage = "malformed-message"
        /// The server refused (see `refusal`).
        case refused = "refused"
        /// The server's proof is wrong: it does not hold this node's activation key record.
        case serverProofInvalid = "server-proof-invalid"
        /// The certificate or ICA in the response is not acceptable (see `trustFailure`).
        case certificateRejected = "certificate-rejected"
        /// A parameter on the node's side is unusable (name, key).
        case invalidArgument = "invalid-argument"
    }

    public let code: Code
    public let message: String
    /// The server's refusal, for `.refused`.
    public let refusal: EnrolmentRefusal?
    /// Why the certificate was rejected, for `.certificateRejected`.
    public let trustFailure: PeerTrustFailure?

    public init(
        _ code: Code, _ message: String, refusal: EnrolmentRefusal? = nil, trustFailure: PeerTrustFailure? = nil
    ) {
        self.code = code
        self.message = message
        self.refusal = refusal
        self.trustFailure = trustFailure
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// Appends big-endian fields.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    mutating func raw(_ value: [UInt8]) { bytes.append(contentsOf: value) }
    mutating func u8(_ value: UInt8) { bytes.append(value) }
    mutating func u32(_ value: UInt32) {
        for shift in stride(from: 24, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: value >> UInt32(shift)))
        }
    }
    mutating func i64(_ value: Int64) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 56, through: 0, by: -8) {
            bytes.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift)))
        }
    }
    mutating func field(_ value: [UInt8]) {
        precondition(value.count <= UInt32.max, "field too large")
        u32(UInt32(value.count))
        raw(value)
    }
    mutating func string(_ value: String) { field(Array(value.utf8)) }
}

/// Reads big-endian fields with bounds; every failure is a `Failure` with a reason.
struct ByteReader {
    struct Failure: Error {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }

    private let bytes: [UInt8]
    private var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func fixed(_ count: Int) throws(Failure) -> [UInt8] {
        guard count >= 0, bytes.count - offset >= count else { throw Failure("message ends early") }
        defer { offset += count }
        return Array(bytes[offset..<(offset + count)])
    }
    mutating func u8() throws(Failure) -> UInt8 { try fixed(1)[0] }
    mutating func u32() throws(Failure) -> UInt32 {
        try fixed(4).reduce(0) { ($0 << 8) | UInt32($1) }
    }
    mutating func i64() throws(Failure) -> Int64 {
        Int64(bitPattern: try fixed(8).reduce(0) { ($0 << 8) | UInt64($1) })
    }
    mutating func field(maxBytes: Int) throws(Failure) -> [UInt8] {
        let count = try u32()
        guard count <= maxBytes else { throw Failure("a field of \(count) bytes exceeds its limit of \(maxBytes)") }
        return try fixed(Int(count))
    }
    mutating func field(exactBytes: Int) throws(Failure) -> [UInt8] {
        let value = try field(maxBytes: exactBytes)
        guard value.count == exactBytes else {
            throw Failure("a field must be \(exactBytes) bytes, got \(value.count)")
        }
        return value
    }
    mutating func string(maxBytes: Int) throws(Failure) -> String {
        let value = try field(maxBytes: maxBytes)
        guard let text = String(validating: value, as: UTF8.self) else { throw Failure("a text field is not UTF-8") }
        return text
    }
}
