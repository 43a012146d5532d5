import Crypto
import Foundation
import _CryptoExtras

/// Salted, slow password hashes: PBKDF2-HMAC-SHA256 with a random 16-byte salt, stored as
/// `pbkdf2-sha256$<iterations>$<base64 salt>$<base64 hash>` (the iteration count travels with the hash, so
/// it can be raised later without breaking stored passwords; see `needsRehash`).
public enum PasswordHasher {
    /// The scheme name at the start of every encoded hash.
    public static let scheme = "pbkdf2-sha256"

    /// Hashes `password` with a fresh random salt. `iterations` defaults to
    /// `TrustLimits.passwordHashIterations`; tests may pass fewer to stay fast.
    public static func hash(_ password: String, iterations: Int = TrustLimits.passwordHashIterations) -> String {
        precondition(
            iterations >= 1 && iterations <= TrustLimits.passwordHashIterationsMax,
            "password hash iterations out of range"
        )
        let salt = SecureRandom.bytes(count: TrustLimits.passwordSaltByteCount)
        let derived = derive(password, salt: salt, iterations: iterations, byteCount: TrustLimits.passwordHashByteCount)
        return "\(scheme)$\(iterations)$\(Data(salt).base64EncodedString())$\(Data(derived).base64EncodedString())"
    }

    /// True when `password` matches `encoded`. The comparison takes the same time wherever the first
    /// differing byte is. A malformed or unsupported `encoded` string gives false, never a crash.
    public static func verify(_ password: String, against encoded: String) -> Bool {
        guard let parsed = parse(encoded) else { return false }
        let derived = derive(password, salt: parsed.salt, iterations: parsed.iterations, byteCount: parsed.hash.count)
        return constantTimeEqual(derived, parsed.hash)
    }

    /// Does the work of one `verify` with default parameters and returns false. Call it when the user
    /// does not exist, so that response time does not reveal which user names exist.
    public static func verifyUnknownUser(_ password: String) -> Bool {
        let salt = [UInt8](repeating: 0, count: TrustLimits.passwordSaltByteCount)
        let derived = derive(
            password, salt: salt, iterations: TrustLimits.passwordHashIterations,
            byteCount: TrustLimits.passwordHashByteCount
        )
        _ = constantTimeEqual(derived, derived)
        return false
    }

    /// True when `encoded` was made with weaker parameters than today's defaults (or cannot be parsed), so
    /// the caller should store a fresh hash after the next successful login.
    public static func needsRehash(_ encoded: String) -> Bool {
        guard let parsed = parse(encoded) else { return true }
        return parsed.iterations < TrustLimits.passwordHashIterations
            || parsed.salt.count < TrustLimits.passwordSaltByteCount
            || parsed.hash.count < TrustLimits.passwordHashByteCount
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEqual(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<lhs.count {
            difference |= lhs[index] ^ rhs[index]
        }
        return difference == 0
    }

    struct Parsed {
        var iterations: Int
        var salt: [UInt8]
        var hash: [UInt8]
    }

    static func parse(_ encoded: String) -> Parsed? {
        guard encoded.utf8.count <= TrustLimits.encodedPasswordHashLengthMax else { return nil }
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard fields.count == 4, fields[0] == scheme else { return nil }
        // Digits only: Int("+5") would parse, and a leading sign has no place in a stored hash.
        guard !fields[1].isEmpty, fields[1].count <= 9, fields[1].allSatisfy({ $0.isASCII && $0.isNumber }),
            let iterations = Int(fields[1]),
            iterations >= 1, iterations <= TrustLimits.passwordHashIterationsMax
        else { return nil }
        guard let salt = Data(base64Encoded: String(fields[2])), salt.count >= 8, salt.count <= 64,
            let hash = Data(base64Encoded: String(fields[3])), hash.count >= 16, hash.count <= 64
        else { return nil }
        return Parsed(iterations: iterations, salt: [UInt8](salt), hash: [UInt8](hash))
    }

    static func derive(_ password: String, salt: [UInt8], iterations: Int, byteCount: Int) -> [UInt8] {
        do {
            // The unchecked variant because the checked one refuses fewer than 210,000 rounds, which tests
            // need; `hash` and `parse` bound the count instead.
            let key = try KDF.Insecure.PBKDF2.deriveKey(
                from: Array(password.utf8), salt: salt, using: .sha256,
                outputByteCount: byteCount, unsafeUncheckedRounds: iterations
            )
            return key.withUnsafeBytes { [UInt8]($0) }
        } catch {
            // Only an allocation failure inside BoringSSL can get here: not an operating error to handle.
            preconditionFailure("PBKDF2 failed: \(error)")
        }
    }
}
