import ClusterCore
import Crypto
import Foundation

/// The wire form of a `ClusterHeartbeat` (one UDP datagram, CCP's role), authenticated with an
/// HMAC-SHA256 keyed per cluster. Everything a datagram carries is untrusted: `decode` checks the
/// length, the magic, the version, every enumeration and every length before it builds anything, and
/// the tag before it reads any field.
///
/// Layout (big endian): "RCHB" | version 1 | member u8 | incarnation u64 | sequence u64 |
/// interface (len u8, bytes) | state u8 | priority u8 | steadiness u8 | load u8 |
/// problems count u8, each (len u8, name bytes, state u8) | HMAC-SHA256 tag (32 bytes, over all before).
public struct HeartbeatCodec: Sendable {
    public static let magic: [UInt8] = Array("RCHB".utf8)
    public static let version: UInt8 = 1
    public static let tagBytes = 32
    /// Larger datagrams are dropped unread: a full heartbeat (20 devices of 64 bytes) stays well below.
    public static let datagramBytesMax = 2_048

    /// The key's bytes (SymmetricKey is not Sendable; it is made for each use).
    let keyBytes: [UInt8]
    var key: SymmetricKey { SymmetricKey(data: keyBytes) }

    public init(keyBytes: [UInt8]) { self.keyBytes = keyBytes }

    /// The key a cluster's members share. The policy's cluster section carries no secret yet, so it is
    /// derived from the cluster's uid: it tells one cluster's heartbeats from another's and from noise,
    /// but it is not a secret against someone who can read the management database (see README).
    public init(clusterUID: String) {
        let digest = SHA256.hash(data: Data(("rampart-cluster-heartbeat-v1|" + clusterUID).utf8))
        self.init(keyBytes: Array(digest))
    }

    static let states: [MemberState] = [.initializing, .ready, .active, .activeAttention, .standby, .down]
    static let deviceStates: [DeviceState] = [.ok, .initializing, .problem]

    public func encode(_ heartbeat: ClusterHeartbeat) -> [UInt8] {
        var bytes = Self.magic
        bytes.append(Self.version)
        bytes.append(heartbeat.member.value)
        append(heartbeat.incarnation, to: &bytes)
        append(heartbeat.sequence, to: &bytes)
        appendText(heartbeat.interface.name, to: &bytes)
        bytes.append(UInt8(Self.states.firstIndex(of: heartbeat.state) ?? 0))
        bytes.append(heartbeat.priority)
        bytes.append(UInt8(clamping: heartbeat.steadiness.rawValue))
        bytes.append(heartbeat.loadPercent)
        let problems = heartbeat.problems.prefix(Int(UInt8.max))
        bytes.append(UInt8(problems.count))
        for problem in problems {
            appendText(problem.name, to: &bytes)
            bytes.append(UInt8(Self.deviceStates.firstIndex(of: problem.state) ?? 0))
        }
        return sign(bytes)
    }

    /// `body` followed by its tag.
    public func sign(_ body: [UInt8]) -> [UInt8] {
        body + Array(HMAC<SHA256>.authenticationCode(for: body, using: key))
    }

    /// Why a datagram was dropped (counted and shown, never trusted further).
    public enum Rejection: String, Error, Sendable {
        case size, magic, version, tag, malformed
    }

    public func decode(_ datagram: [UInt8]) throws(Rejection) -> ClusterHeartbeat {
        guard datagram.count <= Self.datagramBytesMax, datagram.count > Self.magic.count + 1 + Self.tagBytes else { throw .size }
        guard datagram.prefix(Self.magic.count).elementsEqual(Self.magic) else { throw .magic }
        guard datagram[Self.magic.count] == Self.version else { throw .version }
        let bodyEnd = datagram.count - Self.tagBytes
        let body = datagram[..<bodyEnd]
        guard HMAC<SHA256>.isValidAuthenticationCode(datagram[bodyEnd...], authenticating: body, using: key) else { throw .tag }
        var reader = ByteReader(bytes: Array(body), offset: Self.magic.count + 1)
        guard let member = reader.byte(), let incarnation = reader.uint64(), let sequence = reader.uint64(),
            let interfaceText = reader.text(), let interface = InterfaceName(validating: interfaceText),
            let stateIndex = reader.byte(), let state = Self.states.element(Int(stateIndex)),
            let priority = reader.byte(), let steadinessValue = reader.byte(), let steadiness = Steadiness(rawValue: Int(steadinessValue)),
            let load = reader.byte(), load <= 100, let count = reader.byte()
        else { throw .malformed }
        var problems: [DeviceSummary] = []
        for _ in 0..<count {
            guard let name = reader.text(), let stateByte = reader.byte(), let deviceState = Self.deviceStates.element(Int(stateByte)) else {
                throw .malformed
            }
            problems.append(DeviceSummary(name: name, state: deviceState))
        }
        guard reader.atEnd else { throw .malformed }
        return ClusterHeartbeat(
            member: MemberID(member), incarnation: incarnation, sequence: sequence, interface: interface, state: state,
            priority: priority, problems: problems, steadiness: steadiness, loadPercent: load)
    }

    func append(_ value: UInt64, to bytes: inout [UInt8]) {
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }

    /// Texts longer than 255 bytes are cut at a character boundary (the core bounds names far below).
    func appendText(_ text: String, to bytes: inout [UInt8]) {
        var utf8 = Array(text.utf8)
        if utf8.count > Int(UInt8.max) { utf8 = Array(String(decoding: utf8.prefix(Int(UInt8.max)), as: UTF8.self).utf8.prefix(Int(UInt8.max))) }
        bytes.append(UInt8(utf8.count))
        bytes.append(contentsOf: utf8)
    }
}

/// Reads fields off an untrusted byte array: every read is checked, none traps.
struct ByteReader {
    let bytes: [UInt8]
    var offset: Int

    var atEnd: Bool { offset == bytes.count }

    mutating func byte() -> UInt8? {
        guard offset < bytes.count else { return nil }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint64() -> UInt64? {
        guard bytes.count - offset >= 8 else { return nil }
        var value: UInt64 = 0
        for index in offset..<(offset + 8) { value = value << 8 | UInt64(bytes[index]) }
        offset += 8
        return value
    }

    /// A length-prefixed UTF-8 text; nil when it runs past the end or is not valid UTF-8.
    mutating func text() -> String? {
        guard let length = byte(), bytes.count - offset >= Int(length) else { return nil }
        let slice = bytes[offset..<(offset + Int(length))]
        offset += Int(length)
        return String(validating: slice, as: UTF8.self)
    }
}

extension Array {
    /// The element at `index`, or nil outside the array.
    func element(_ index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
