import Foundation
import Testing

@testable import TrustCore

/// Few iterations keep the suite fast; one test exercises the default count.
private let testIterations = 1_000

@Suite("Password hashing")
struct PasswordHasherTests {
    @Test("hash has the documented format and verifies the right password only")
    func hashAndVerify() throws {
        let encoded = PasswordHasher.hash("correct horse", iterations: testIterations)
        let fields = encoded.split(separator: "$", omittingEmptySubsequences: false)
        #expect(fields.count == 4)
        #expect(fields[0] == "pbkdf2-sha256")
        #expect(fields[1] == "1000")
        #expect(Data(base64Encoded: String(fields[2]))?.count == 16)
        #expect(Data(base64Encoded: String(fields[3]))?.count == 32)
        #expect(PasswordHasher.verify("correct horse", against: encoded))
        #expect(!PasswordHasher.verify("correct horse ", against: encoded))
        #expect(!PasswordHasher.verify("Correct horse", against: encoded))
        #expect(!PasswordHasher.verify("", against: encoded))
    }

    @Test("two hashes of one password differ (random salt) and both verify")
    func saltDiffers() {
        let first = PasswordHasher.hash("secret", iterations: testIterations)
        let second = PasswordHasher.hash("secret", iterations: testIterations)
        #expect(first != second)
        #expect(PasswordHasher.verify("secret", against: first))
        #expect(PasswordHasher.verify("secret", against: second))
    }

    @Test("known vectors: RFC 7914 §11 for the KDF, and a hash made by Python's hashlib for the format")
    func knownVectors() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64.
        let derived = PasswordHasher.derive("passwd", salt: Array("salt".utf8), iterations: 1, byteCount: 64)
        #expect(
            Data(derived).base64EncodedString()
                == "VawEblbjCJ/sFpHCJUS2BflBhSFt3gRl5oudV8INrLxJypzM8Xm2RZkWZLOdd+8xfHG4RbHjC9UJESBB06GXgw==")
        // hashlib.pbkdf2_hmac('sha256', b'correct horse', bytes(range(16)), 1000, 32)
        let encoded = "pbkdf2-sha256$1000$AAECAwQFBgcICQoLDA0ODw==$yRTMTwbMbo9G0VfjobWqerzuuxe7BETNTErBbKKumGQ="
        #expect(PasswordHasher.verify("correct horse", against: encoded))
        #expect(!PasswordHasher.verify("correct horsf", against: encoded))
    }

    @Test(
        "malformed or hostile encodings give false, not a crash",
        arguments: [
            "",
            "pbkdf2-sha256",
            "pbkdf2-sha256$$$",
            "pbkdf2-sha1$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pbkdf2-sha256$0$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pbkdf2-sha256$-5$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pbkdf2-sha256$+5$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pbkdf2-sha256$999999999$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pbkdf2-sha256$1000$not base64!$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$",
            "pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
            "pbkdf2-sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=$extra",
            "pbkdf2-sha256$1000$" + String(repeating: "A", count: 600) + "$AAAA",
        ])
    func malformed(encoded: String) {
        #expect(!PasswordHasher.verify("anything", against: encoded))
        #expect(PasswordHasher.needsRehash(encoded))
    }

    @Test("default parameters: hash verifies, needs no rehash; fewer iterations need one")
    func defaultIterations() {
        let encoded = PasswordHasher.hash("pw")
        #expect(encoded.hasPrefix("pbkdf2-sha256$\(TrustLimits.passwordHashIterations)$"))
        #expect(PasswordHasher.verify("pw", against: encoded))
        #expect(!PasswordHasher.needsRehash(encoded))
        #expect(PasswordHasher.needsRehash(PasswordHasher.hash("pw", iterations: testIterations)))
        #expect(!PasswordHasher.verifyUnknownUser("pw"))
    }

    @Test("constant-time comparison compares whole byte strings")
    func constantTimeEqual() {
        #expect(PasswordHasher.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!PasswordHasher.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!PasswordHasher.constantTimeEqual([1, 2, 3], [1, 2]))
        #expect(PasswordHasher.constantTimeEqual([], []))
    }
}

@Suite("Secure random")
struct SecureRandomTests {
    @Test("tokens are base64url without padding, of the right length, and differ")
    func tokens() {
        let token = SecureRandom.token(byteCount: 32)
        #expect(token.count == 43)
        #expect(token.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
        #expect(SecureRandom.token(byteCount: 32) != token)
        #expect(SecureRandom.token(byteCount: 1).count == 2)
        #expect(SecureRandom.token(byteCount: 2).count == 3)
        #expect(SecureRandom.token(byteCount: 0) == "")
        // Every byte value eventually shows; in particular the characters that base64 and base64url differ on.
        let many = (0..<64).map { _ in SecureRandom.token(byteCount: 48) }.joined()
        #expect(!many.contains("+") && !many.contains("/") && !many.contains("="))
        #expect(many.contains("-") && many.contains("_"))
    }

    @Test("passwords use the readable alphabet only")
    func passwords() {
        let password = SecureRandom.password(length: 20)
        #expect(password.count == 20)
        #expect(password.allSatisfy(SecureRandom.passwordAlphabet.contains))
        let many = (0..<50).map { _ in SecureRandom.password(length: 40) }.joined()
        for lookAlike in "0O1lI" { #expect(!many.contains(lookAlike)) }
        #expect(SecureRandom.password(length: 20) != password)
    }

    @Test("uuids are lowercase version 4 and differ")
    func uuids() {
        let uuid = SecureRandom.uuid()
        #expect(uuid.count == 36)
        #expect(uuid == uuid.lowercased())
        #expect(UUID(uuidString: uuid) != nil)
        let characters = Array(uuid)
        #expect(characters[14] == "4")
        #expect("89ab".contains(characters[19]))
        #expect(SecureRandom.uuid() != uuid)
    }
}
