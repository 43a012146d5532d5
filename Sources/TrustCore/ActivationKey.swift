import Crypto
import Foundation

/// One-time activation keys (Check Point's SIC one-time password): the secret an administrator gives a
/// new node so that it can enrol.
///
/// Neither side stores or sends the secret. Both derive a *verifier key* from it:
///
///     salt        = SHA-256("rampart-sic-activation-key-v1" 0x00 nodeName)
///     stretched   = PBKDF2-HMAC-SHA256(secret, salt, iterations, 32 bytes)
///     verifierKey = HKDF-SHA256(stretched, salt, info: "rampart-sic-enrolment", 32 bytes)
///
/// The server stores only `verifierKey` (in `ActivationKeyRecord`); each side proves knowledge of it with
/// an HMAC over the enrolment transcript (`EnrolmentProof`). The salt comes from the node name, which
/// both sides know before they talk (the node is started with the name of its management object), so
/// there is no round trip for it; PBKDF2 makes a captured proof or a leaked record slow to attack when an
/// administrator chose a weak key. Verifying a proof costs the server one HMAC, not a PBKDF2.
public enum ActivationKey {
    /// A new random key for the node named `nodeName`: the secret, to show the administrator once, and
    /// the record to store.
    public static func generate(
        nodeName: String, now: Date, lifetimeSeconds: Int = TrustLimits.activationKeyLifetimeSeconds,
        iterations: Int = TrustLimits.activationKeyIterations
    ) throws -> (secret: String, record: ActivationKeyRecord) {
        let secret = SecureRandom.password(length: TrustLimits.activationKeyGeneratedLength)
        let record = try record(
            secret: secret, nodeName: nodeName, now: now, lifetimeSeconds: lifetimeSeconds, iterations: iterations)
        return (secret, record)
    }

    /// The record of a key the administrator chose (`one-time-password` in the API): printable,
    /// `TrustLimits.activationKeyLengthMin...Max` characters.
    public static func record(
        secret: String, nodeName: String, now: Date, lifetimeSeconds: Int = TrustLimits.activationKeyLifetimeSeconds,
        iterations: Int = TrustLimits.activationKeyIterations
    ) throws -> ActivationKeyRecord {
        try checkSecret(secret)
        try InternalCA.checkPrintable(nodeName, field: "node name", lengthMax: TrustLimits.commonNameLengthMax)
        guard lifetimeSeconds > 0, lifetimeSeconds <= TrustLimits.activationKeyLifetimeSecondsMax else {
            throw TrustError(
                .invalidArgument,
                "activation key lifetime must be 1...\(TrustLimits.activationKeyLifetimeSecondsMax) seconds")
        }
        try checkIterations(iterations)
        let created = milliseconds(now)
        return ActivationKeyRecord(
            nodeName: nodeName, iterations: iterations,
            verifierKey: Data(verifierKey(secret: secret, nodeName: nodeName, iterations: iterations)),
            createdAtMilliseconds: created, expiresAtMilliseconds: created + Int64(lifetimeSeconds) * 1000,
            usedAtMilliseconds: nil)
    }

    /// The verifier key both sides derive (see the type's description). Slow by design (PBKDF2).
    public static func verifierKey(
        secret: String, nodeName: String, iterations: Int = TrustLimits.activationKeyIterations
    ) -> [UInt8] {
        precondition(iterations >= 1 && iterations <= TrustLimits.passwordHashIterationsMax, "iterations out of range")
        let salt = [UInt8](SHA256.hash(data: Array("rampart-sic-activation-key-v1".utf8) + [0] + Array(nodeName.utf8)))
        let stretched = PasswordHasher.derive(secret, salt: salt, iterations: iterations, byteCount: 32)
        let key = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: stretched), salt: salt,
            info: Array("rampart-sic-enrolment".utf8), outputByteCount: 32)
        return key.withUnsafeBytes { [UInt8]($0) }
    }

    static func checkSecret(_ secret: String) throws {
        try InternalCA.checkPrintable(secret, field: "activation key", lengthMax: TrustLimits.activationKeyLengthMax)
        guard secret.count >= TrustLimits.activationKeyLengthMin else {
            throw TrustError(
                .invalidArgument, "activation key must be at least \(TrustLimits.activationKeyLengthMin) characters")
        }
    }

    static func checkIterations(_ iterations: Int) throws {
        guard iterations >= 1, iterations <= TrustLimits.passwordHashIterationsMax else {
            throw TrustError(
                .invalidArgument, "activation key iterations must be 1...\(TrustLimits.passwordHashIterationsMax)")
        }
    }
}

/// Why an activation key proof was not accepted.
public enum ActivationKeyError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The proof was not made with this key: mistyped, or someone guessing.
    case wrongKey
    /// The key's lifetime is over.
    case expired(expiresAt: Date)
    /// The key was already used to enrol (keys are single-use).
    case alreadyUsed(usedAt: Date)

    /// A stable machine-readable name.
    public var code: String {
        switch self {
        case .wrongKey: "wrong-key"
        case .expired: "key-expired"
        case .alreadyUsed: "key-used"
        }
    }

    public var description: String {
        switch self {
        case .wrongKey:
            return "the activation key is wrong: check it was typed exactly as shown, for this node's name"
        case .expired(let date):
            return "the activation key expired at \(date); reset SIC for this node to get a new one"
        case .alreadyUsed(let date):
            return
                "the activation key was already used at \(date) (keys are single-use); reset SIC for this node to get a new one"
        }
    }
}

/// What the server stores about a pending activation key: no secret, only the verifier key derived from
/// it, its lifetime and whether it was used. Part of the management database (synced to standbys, so a
/// node can enrol with any server after a promotion).
public struct ActivationKeyRecord: Sendable, Equatable, Codable {
    /// The node the key is for (it salts the verifier key).
    public let nodeName: String
    /// PBKDF2 rounds used for `verifierKey`.
    public let iterations: Int
    /// HKDF(PBKDF2(secret)): what proofs are keyed with. Secret-equivalent for enrolment: never log it.
    public let verifierKey: Data
    /// When the key was made, in milliseconds since 1970.
    public let createdAtMilliseconds: Int64
    /// When it stops being accepted, in milliseconds since 1970.
    public let expiresAtMilliseconds: Int64
    /// When it was used, if it was.
    public private(set) var usedAtMilliseconds: Int64?

    /// Whether the key has been used.
    public var isUsed: Bool { usedAtMilliseconds != nil }
    /// When the key stops being accepted.
    public var expiresAt: Date { Date(timeIntervalSince1970: Double(expiresAtMilliseconds) / 1000) }

    /// Checks `proof` (the node's, `EnrolmentProof.client`) over `transcript` at `now`, changing
    /// nothing. In that order: already used, expired, wrong key. The comparison is constant-time.
    public func check(proof: [UInt8], transcript: [UInt8], now: Date) throws(ActivationKeyError) {
        if let usedAtMilliseconds {
            throw .alreadyUsed(usedAt: Date(timeIntervalSince1970: Double(usedAtMilliseconds) / 1000))
        }
        if milliseconds(now) >= expiresAtMilliseconds { throw .expired(expiresAt: expiresAt) }
        let expected = EnrolmentProof.client(verifierKey: [UInt8](verifierKey), transcript: transcript)
        guard PasswordHasher.constantTimeEqual(expected, proof) else { throw .wrongKey }
    }

    /// `check`, then marks the key used at `now` (single use).
    public mutating func redeem(proof: [UInt8], transcript: [UInt8], now: Date) throws(ActivationKeyError) {
        try check(proof: proof, transcript: transcript, now: now)
        markUsed(now: now)
    }

    /// Marks the key used at `now`. Used once the certificate was issued.
    public mutating func markUsed(now: Date) {
        precondition(usedAtMilliseconds == nil, "an activation key is used only once")
        usedAtMilliseconds = milliseconds(now)
    }

    /// The record as JSON text (keys sorted), for storage.
    public var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        do { return String(decoding: try encoder.encode(self), as: UTF8.self) } catch {
            preconditionFailure("encoding an activation key record cannot fail: \(error)")
        }
    }

    /// Parses and checks a stored record. Throws `.invalidArgument`.
    public init(jsonText: String) throws {
        guard jsonText.utf8.count <= 4096 else { throw TrustError(.invalidArgument, "activation key record too large") }
        let decoded: ActivationKeyRecord
        do {
            decoded = try JSONDecoder().decode(ActivationKeyRecord.self, from: Data(jsonText.utf8))
        } catch {
            throw TrustError(.invalidArgument, "activation key record cannot be parsed: \(error)")
        }
        guard decoded.verifierKey.count == 32, decoded.expiresAtMilliseconds > decoded.createdAtMilliseconds else {
            throw TrustError(.invalidArgument, "activation key record is damaged")
        }
        try ActivationKey.checkIterations(decoded.iterations)
        self = decoded
    }

    init(
        nodeName: String, iterations: Int, verifierKey: Data, createdAtMilliseconds: Int64,
        expiresAtMilliseconds: Int64, usedAtMilliseconds: Int64?
    ) {
        self.nodeName = nodeName
        self.iterations = iterations
        self.verifierKey = verifierKey
        self.createdAtMilliseconds = createdAtMilliseconds
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.usedAtMilliseconds = usedAtMilliseconds
    }
}

/// The HMACs by which the node and the server prove knowledge of the activation key during enrolment.
/// Each side has its own HKDF-derived key, so a proof of one side can never be reflected as the other's.
public enum EnrolmentProof {
    /// The node's proof over the request transcript (`EnrolmentRequest.transcript`).
    public static func client(verifierKey: [UInt8], transcript: [UInt8]) -> [UInt8] {
        mac(verifierKey: verifierKey, role: "client", transcript: transcript)
    }

    /// The server's proof over the response transcript (`EnrolmentResponse.transcript(request:)`).
    public static func server(verifierKey: [UInt8], transcript: [UInt8]) -> [UInt8] {
        mac(verifierKey: verifierKey, role: "server", transcript: transcript)
    }

    /// Constant-time check of a proof made with `verifierKey` by `client` or `server`.
    static func isValid(_ proof: [UInt8], expected: [UInt8]) -> Bool {
        PasswordHasher.constantTimeEqual(proof, expected)
    }

    private static func mac(verifierKey: [UInt8], role: String, transcript: [UInt8]) -> [UInt8] {
        let roleKey = HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: verifierKey), info: Array("rampart-sic-enrolment-v1 \(role)".utf8),
            outputByteCount: 32)
        return [UInt8](HMAC<SHA256>.authenticationCode(for: transcript, using: roleKey))
    }
}

func milliseconds(_ date: Date) -> Int64 {
    Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
}
