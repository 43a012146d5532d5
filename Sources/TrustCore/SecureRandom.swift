import Foundation

/// Secrets drawn from the operating system's CSPRNG (`SystemRandomNumberGenerator`: getrandom(2) on Linux).
///
/// This is the I/O shell for randomness: pure cores take a seeded generator instead (DESIGN.md §2).
public enum SecureRandom {
    /// Alphabet of generated passwords: letters and digits without look-alikes (0/O, 1/l/I), so a
    /// password read from a file or a screen can be typed without mistakes. 56 symbols, ~5.8 bits each.
    public static let passwordAlphabet: [Character] = Array("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789")

    /// `count` random bytes.
    public static func bytes(count: Int) -> [UInt8] {
        precondition(count >= 0 && count <= TrustLimits.randomLengthMax, "random byte count out of range")
        var generator = SystemRandomNumberGenerator()
        var result = [UInt8](repeating: 0, count: count)
        var index = 0
        while index < count {
            var word = generator.next()
            for _ in 0..<8 where index < count {
                result[index] = UInt8(truncatingIfNeeded: word)
                word >>= 8
                index += 1
            }
        }
        return result
    }

    /// A token of `byteCount` random bytes, encoded as base64url without padding (safe in URLs, headers
    /// and file names). 32 bytes give 256 bits, the right size for session ids.
    public static func token(byteCount: Int) -> String {
        base64URLEncoded(bytes(count: byteCount))
    }

    /// A password of `length` characters from `passwordAlphabet`, each drawn uniformly (no modulo bias).
    public static func password(length: Int) -> String {
        precondition(length > 0 && length <= TrustLimits.randomLengthMax, "password length out of range")
        var generator = SystemRandomNumberGenerator()
        var result = ""
        result.reserveCapacity(length)
        for _ in 0..<length {
            result.append(passwordAlphabet[Int.random(in: 0..<passwordAlphabet.count, using: &generator)])
        }
        return result
    }

    /// A random (version 4, RFC 9562) UUID in lowercase, as Check Point writes object uids.
    public static func uuid() -> String {
        var raw = bytes(count: 16)
        raw[6] = (raw[6] & 0x0F) | 0x40  // version 4
        raw[8] = (raw[8] & 0x3F) | 0x80  // variant 10xx
        let hex = raw.map { byte -> String in
            let digits = String(byte, radix: 16)
            return digits.count == 1 ? "0" + digits : digits
        }
        return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-"
            + hex[8..<10].joined() + "-" + hex[10..<16].joined()
    }

    /// Base64url (RFC 4648 §5) without padding.
    static func base64URLEncoded(_ bytes: [UInt8]) -> String {
        var text = Data(bytes).base64EncodedString()
        text = text.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        while text.hasSuffix("=") { text.removeLast() }
        return text
    }
}
