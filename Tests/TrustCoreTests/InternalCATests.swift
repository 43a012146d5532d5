import Crypto
import Foundation
import SwiftASN1
import Testing
import X509

@testable import TrustCore

@Suite("Internal CA")
struct InternalCATests {
    @Test("a new ICA is a self-signed P-256 CA with the Rampart subject, valid ten years")
    func creation() throws {
        let ica = try InternalCA.create(name: "mgmt1", now: referenceTime)
        let certificate = ica.certificate
        #expect(certificate.subject.description == "CN=Rampart Internal CA mgmt1,O=Rampart")
        #expect(certificate.issuer == certificate.subject)
        #expect(certificate.publicKey.isValidSignature(certificate.signature, for: certificate))
        #expect(P256.Signing.PublicKey(certificate.publicKey) != nil)
        #expect(try certificate.extensions.basicConstraints == .isCertificateAuthority(maxPathLength: 0))
        let keyUsage = try #require(try certificate.extensions.keyUsage)
        #expect(keyUsage.keyCertSign && keyUsage.cRLSign && !keyUsage.digitalSignature)
        #expect(certificate.notValidBefore <= referenceTime)
        let lifetime = certificate.notValidAfter.timeIntervalSince(referenceTime)
        #expect(abs(lifetime - 3650 * secondsPerDay) < 2)
    }

    @Test("an ICA survives a round trip through its PEMs")
    func pemRoundTrip() throws {
        let ica = try InternalCA.create(name: "mgmt1", now: referenceTime)
        let loaded = try InternalCA(certificatePEM: ica.certificatePEM, privateKeyPEM: ica.privateKeyPEM)
        #expect(loaded.certificate == ica.certificate)
        #expect(loaded.privateKeyPEM == ica.privateKeyPEM)
        #expect(ica.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(ica.privateKeyPEM.hasPrefix("-----BEGIN PRIVATE KEY-----"))
    }

    @Test("loading refuses a key of another ICA, a leaf certificate, and garbage")
    func loadingRefusesMismatches() throws {
        let ica = try InternalCA.create(name: "a", now: referenceTime)
        let other = try InternalCA.create(name: "a", now: referenceTime)
        #expect(throws: TrustError.self) {
            try InternalCA(certificatePEM: ica.certificatePEM, privateKeyPEM: other.privateKeyPEM)
        }
        let leaf = try ica.issueTLSServerCertificate(commonName: "x", dnsNames: [], ipAddresses: [], now: referenceTime)
        let error = #expect(throws: TrustError.self) {
            try InternalCA(certificatePEM: leaf.certificatePEM, privateKeyPEM: leaf.privateKeyPEM)
        }
        #expect(error?.code == .notACertificateAuthority)
        #expect(throws: TrustError.self) {
            try InternalCA(certificatePEM: "garbage", privateKeyPEM: ica.privateKeyPEM)
        }
        let keyError = #expect(throws: TrustError.self) {
            try InternalCA(
                certificatePEM: ica.certificatePEM,
                privateKeyPEM: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        }
        #expect(keyError?.code == .malformedPEM)
    }

    @Test("names that are empty, too long or hold control characters are refused")
    func nameValidation() throws {
        #expect(throws: TrustError.self) { try InternalCA.create(name: "", now: referenceTime) }
        #expect(throws: TrustError.self) {
            try InternalCA.create(name: String(repeating: "x", count: 45), now: referenceTime)
        }
        #expect(throws: TrustError.self) { try InternalCA.create(name: "a\nb", now: referenceTime) }
        _ = try InternalCA.create(name: String(repeating: "x", count: 44), now: referenceTime)
        let ica = try InternalCA.create(name: "a", now: referenceTime)
        #expect(throws: TrustError.self) {
            try ica.issueTLSServerCertificate(
                commonName: "x", dnsNames: ["bad name"], ipAddresses: [], now: referenceTime)
        }
        #expect(throws: TrustError.self) {
            try ica.issueTLSServerCertificate(commonName: "x", dnsNames: [], ipAddresses: ["1.2.3"], now: referenceTime)
        }
        #expect(throws: TrustError.self) {
            try ica.issueTLSServerCertificate(
                commonName: "x", dnsNames: ["*.example.com"], ipAddresses: [], now: referenceTime)
        }
    }

    @Test("an issued server certificate has the requested names and usages")
    func issuedCertificateContent() throws {
        let ica = try InternalCA.create(name: "mgmt1", now: referenceTime)
        let identity = try ica.issueTLSServerCertificate(
            commonName: "mgmt1", dnsNames: ["mgmt1.example.com", "LOCALHOST"],
            ipAddresses: ["192.0.2.10", "[2001:db8::1]"], now: referenceTime)
        let certificate = try Certificate(pemEncoded: identity.certificatePEM)
        #expect(certificate.subject.description == "CN=mgmt1,O=Rampart")
        #expect(certificate.issuer == ica.certificate.subject)
        #expect(identity.chainPEM == ica.certificatePEM)
        #expect(try certificate.extensions.basicConstraints == .notCertificateAuthority)
        let usages = try #require(try certificate.extensions.extendedKeyUsage)
        #expect(Array(usages) == [.serverAuth, .clientAuth])
        let names = try #require(try certificate.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("mgmt1.example.com")))
        #expect(names.contains(.dnsName("localhost")))
        #expect(names.contains(.ipAddress(ASN1OctetString(contentBytes: [192, 0, 2, 10]))))
        #expect(names.count == 4)
        let key = try P256.Signing.PrivateKey(pemRepresentation: identity.privateKeyPEM)
        #expect(Certificate.PublicKey(key.publicKey) == certificate.publicKey)
        let lifetime = certificate.notValidAfter.timeIntervalSince(referenceTime)
        #expect(abs(lifetime - 825 * secondsPerDay) < 2)
    }

    @Test("an issued certificate verifies against its ICA only within its validity")
    func verificationAtInjectedTimes() async throws {
        let ica = try InternalCA.create(name: "mgmt1", now: referenceTime)
        let identity = try ica.issueTLSServerCertificate(
            commonName: "mgmt1", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], now: referenceTime,
            validityDays: 30)
        let roots = [ica.certificate]
        let pem = identity.certificatePEM
        #expect(try await chainIsValid(leafPEM: pem, roots: roots, at: referenceTime))
        #expect(try await chainIsValid(leafPEM: pem, roots: roots, at: referenceTime + 29 * secondsPerDay))
        // Expired.
        #expect(try await !chainIsValid(leafPEM: pem, roots: roots, at: referenceTime + 31 * secondsPerDay))
        // Not yet valid (beyond the one-hour backdating that absorbs clock skew).
        #expect(try await chainIsValid(leafPEM: pem, roots: roots, at: referenceTime - 1800))
        #expect(try await !chainIsValid(leafPEM: pem, roots: roots, at: referenceTime - 2 * 3600))
        // Server identity.
        #expect(try await chainIsValid(leafPEM: pem, roots: roots, at: referenceTime, hostname: "localhost"))
        #expect(try await chainIsValid(leafPEM: pem, roots: roots, at: referenceTime, ipAddress: "127.0.0.1"))
        #expect(try await !chainIsValid(leafPEM: pem, roots: roots, at: referenceTime, hostname: "other.example"))
        #expect(try await !chainIsValid(leafPEM: pem, roots: roots, at: referenceTime, ipAddress: "127.0.0.2"))
    }

    @Test("a certificate does not verify against another ICA, even one with the same name")
    func otherCARejected() async throws {
        let ica = try InternalCA.create(name: "mgmt1", now: referenceTime)
        let impostor = try InternalCA.create(name: "mgmt1", now: referenceTime)
        let unrelated = try InternalCA.create(name: "other", now: referenceTime)
        let identity = try ica.issueTLSServerCertificate(
            commonName: "mgmt1", dnsNames: ["localhost"], ipAddresses: [], now: referenceTime)
        #expect(
            try await !chainIsValid(leafPEM: identity.certificatePEM, roots: [impostor.certificate], at: referenceTime))
        #expect(
            try await !chainIsValid(leafPEM: identity.certificatePEM, roots: [unrelated.certificate], at: referenceTime)
        )
        #expect(try await !chainIsValid(leafPEM: identity.certificatePEM, roots: [], at: referenceTime))
    }

    @Test("an issued certificate never outlives its ICA, and an expired ICA issues nothing")
    func leafBoundedByICA() throws {
        let ica = try InternalCA.create(name: "short", now: referenceTime, validityDays: 10)
        let identity = try ica.issueTLSServerCertificate(
            commonName: "x", dnsNames: [], ipAddresses: [], now: referenceTime + secondsPerDay)
        let certificate = try Certificate(pemEncoded: identity.certificatePEM)
        #expect(certificate.notValidAfter == ica.certificate.notValidAfter)
        #expect(certificate.notValidBefore >= ica.certificate.notValidBefore)
        let error = #expect(throws: TrustError.self) {
            try ica.issueTLSServerCertificate(
                commonName: "x", dnsNames: [], ipAddresses: [], now: referenceTime + 11 * secondsPerDay)
        }
        #expect(error?.code == .invalidArgument)
    }
}
