import Foundation
import Testing
@_spi(FixedExpiryValidationTime) import X509

@testable import TrustCore

/// A fixed instant for tests (2027-01-15): no test depends on the real clock.
let referenceTime = Date(timeIntervalSince1970: 1_800_000_000)

let secondsPerDay: TimeInterval = 86_400

/// A fresh empty directory under the system temporary directory; `body` runs with it, then it is removed.
func withTemporaryDirectory<T>(_ body: (URL) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("trustcore-tests-\(SecureRandom.uuid())", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url)
}

/// Async variant of `withTemporaryDirectory`.
func withTemporaryDirectoryAsync<T>(_ body: (URL) async throws -> T) async throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("trustcore-tests-\(SecureRandom.uuid())", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}

/// Permission bits of a file, as `stat(2)` reports them.
func permissionBits(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

/// Validates `leafPEM` against `roots` at `time` with swift-certificates' RFC 5280 policy and, when given,
/// the server identity policy. Returns true for a valid chain.
func chainIsValid(
    leafPEM: String, roots: [Certificate], at time: Date, hostname: String? = nil, ipAddress: String? = nil
) async throws -> Bool {
    let leaf = try Certificate(pemEncoded: leafPEM)
    var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
        RFC5280Policy(fixedExpiryValidationTime: time)
        if hostname != nil || ipAddress != nil {
            ServerIdentityPolicy(serverHostname: hostname, serverIP: ipAddress)
        }
    }
    let result = await verifier.validate(leaf: leaf, intermediates: CertificateStore())
    if case .validCertificate = result { return true }
    return false
}
