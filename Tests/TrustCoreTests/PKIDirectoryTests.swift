import Foundation
import Testing
import X509

@testable import TrustCore

@Suite("PKI directory")
struct PKIDirectoryTests {
    @Test("first start creates the ICA and API certificate with private key files 0600 in a 0700 folder")
    func firstStartCreates() throws {
        try withTemporaryDirectory { data in
            let pki = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: ["127.0.0.1"], now: referenceTime)
            #expect(pki.icaOutcome == .created)
            #expect(pki.apiCertificateOutcome == .created)
            let folder = data.appendingPathComponent("pki").path
            #expect(try permissionBits(folder) == 0o700)
            #expect(try permissionBits(folder + "/ica.key") == 0o600)
            #expect(try permissionBits(folder + "/api.key") == 0o600)
            #expect(try permissionBits(folder + "/ica.pem") == 0o644)
            #expect(try permissionBits(folder + "/api.pem") == 0o644)
            #expect(pki.icaCertificatePath == folder + "/ica.pem")
            #expect(
                try String(contentsOfFile: pki.icaCertificatePath, encoding: .utf8) == pki.internalCA.certificatePEM)
            let names = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
            #expect(names == ["api.key", "api.pem", "ica.key", "ica.pem"])
        }
    }

    @Test("a later start loads the same ICA and API certificate")
    func secondStartLoads() throws {
        try withTemporaryDirectory { data in
            let first = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: ["127.0.0.1"], now: referenceTime)
            let second = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: ["127.0.0.1"],
                now: referenceTime + 100 * secondsPerDay)
            #expect(second.icaOutcome == .loaded)
            #expect(second.apiCertificateOutcome == .loaded)
            #expect(second.internalCA.certificate == first.internalCA.certificate)
            #expect(second.internalCA.privateKeyPEM == first.internalCA.privateKeyPEM)
            #expect(second.apiIdentity == first.apiIdentity)
        }
    }

    @Test("the API certificate is reissued when the listen addresses are no longer covered")
    func reissueOnNewAddress() throws {
        try withTemporaryDirectory { data in
            let first = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: ["127.0.0.1"], now: referenceTime)
            let second = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: ["192.0.2.7", "mgmt1.example.com"],
                now: referenceTime)
            guard case .reissued(let reason) = second.apiCertificateOutcome else {
                Issue.record("expected a reissue, got \(second.apiCertificateOutcome)")
                return
            }
            #expect(reason.contains("192.0.2.7") && reason.contains("mgmt1.example.com"))
            #expect(second.icaOutcome == .loaded)
            #expect(second.internalCA.certificate == first.internalCA.certificate)
            #expect(second.apiIdentity.certificatePEM != first.apiIdentity.certificatePEM)
            let certificate = try Certificate(pemEncoded: second.apiIdentity.certificatePEM)
            let names = try #require(try certificate.extensions.subjectAlternativeNames)
            #expect(names.contains(.dnsName("mgmt1.example.com")))
            #expect(names.contains(.dnsName("mgmt1")))
            #expect(names.contains(.dnsName("localhost")))
            // The new certificate is what is on disk, and a third start keeps it.
            let third = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: ["192.0.2.7"], now: referenceTime)
            #expect(third.apiCertificateOutcome == .loaded)
            #expect(third.apiIdentity == second.apiIdentity)
            // Wildcard listen addresses and equivalent spellings need nothing new.
            let fourth = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "MGMT1", listenAddresses: ["0.0.0.0", "::", "0:0:0:0:0:0:0:1"],
                now: referenceTime)
            #expect(fourth.apiCertificateOutcome == .loaded)
        }
    }

    @Test("the API certificate is reissued near expiry, and when the clock is before its start")
    func reissueOnTime() throws {
        try withTemporaryDirectory { data in
            _ = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            // 825-day certificate: 800 days later is within the 30-day renewal margin.
            let late = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime + 800 * secondsPerDay)
            guard case .reissued(let reason) = late.apiCertificateOutcome else {
                Issue.record("expected a reissue, got \(late.apiCertificateOutcome)")
                return
            }
            #expect(reason.contains("expires"))
            let certificate = try Certificate(pemEncoded: late.apiIdentity.certificatePEM)
            #expect(certificate.notValidAfter > referenceTime + 1600 * secondsPerDay)
            // Clock set back before the reissued certificate's start.
            let early = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime + 10 * secondsPerDay)
            guard case .reissued(let earlyReason) = early.apiCertificateOutcome else {
                Issue.record("expected a reissue, got \(early.apiCertificateOutcome)")
                return
            }
            #expect(earlyReason.contains("not valid before"))
        }
    }

    @Test("damaged API files are repaired; a lost ICA key is an error, never a silent new ICA")
    func damage() throws {
        try withTemporaryDirectory { data in
            let first = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            let folder = data.appendingPathComponent("pki")
            // A crash between writing api.key and api.pem leaves a key that does not match.
            let otherKey = try first.internalCA.issueTLSServerCertificate(
                commonName: "x", dnsNames: [], ipAddresses: [], now: referenceTime
            ).privateKeyPEM
            try DurableFile.write(Array(otherKey.utf8), to: folder.appendingPathComponent("api.key"), mode: 0o600)
            let repaired = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            #expect(repaired.apiCertificateOutcome == .reissued(reason: "api.key does not belong to api.pem"))

            // A certificate from another ICA.
            let stranger = try InternalCA.create(name: "mgmt1", now: referenceTime)
            let foreign = try stranger.issueTLSServerCertificate(
                commonName: "mgmt1", dnsNames: ["mgmt1", "localhost"], ipAddresses: ["127.0.0.1", "::1"],
                now: referenceTime)
            try DurableFile.write(
                Array(foreign.privateKeyPEM.utf8), to: folder.appendingPathComponent("api.key"), mode: 0o600)
            try DurableFile.write(
                Array(foreign.certificatePEM.utf8), to: folder.appendingPathComponent("api.pem"), mode: 0o644)
            let again = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            #expect(again.apiCertificateOutcome == .reissued(reason: "api.pem was not issued by this ICA"))

            // A missing api.pem.
            try FileManager.default.removeItem(at: folder.appendingPathComponent("api.pem"))
            let missing = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            #expect(missing.apiCertificateOutcome == .reissued(reason: "api.pem is missing"))

            // A widened key file is narrowed again.
            #expect(chmod(folder.appendingPathComponent("ica.key").path, 0o644) == 0)
            _ = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            #expect(try permissionBits(folder.appendingPathComponent("ica.key").path) == 0o600)

            // The ICA key lost.
            try FileManager.default.removeItem(at: folder.appendingPathComponent("ica.key"))
            let error = #expect(throws: TrustError.self) {
                try PKIDirectory.loadOrCreate(
                    dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            }
            #expect(error?.code == .icaKeyMissing)
        }
    }

    @Test("a crash during the first start (ICA key written, certificate not) is recovered by starting over")
    func crashDuringFirstStart() throws {
        try withTemporaryDirectory { data in
            let folder = data.appendingPathComponent("pki")
            try DurableFile.ensureDirectory(folder, mode: 0o700)
            let orphan = try InternalCA.create(name: "mgmt1", now: referenceTime)
            try DurableFile.write(
                Array(orphan.privateKeyPEM.utf8), to: folder.appendingPathComponent("ica.key"), mode: 0o600)
            // And a temporary file left behind by the crash.
            let leftover = folder.appendingPathComponent(".rampart-tmp-ica.pem.abc")
            #expect(FileManager.default.createFile(atPath: leftover.path, contents: Data("x".utf8)))
            let pki = try PKIDirectory.loadOrCreate(
                dataDirectory: data, serverName: "mgmt1", listenAddresses: [], now: referenceTime)
            #expect(pki.icaOutcome == .created)
            #expect(pki.internalCA.privateKeyPEM != orphan.privateKeyPEM)
            #expect(!FileManager.default.fileExists(atPath: leftover.path))
        }
    }

    @Test("bad listen addresses and server names are refused")
    func badInput() throws {
        try withTemporaryDirectory { data in
            #expect(throws: TrustError.self) {
                try PKIDirectory.loadOrCreate(
                    dataDirectory: data, serverName: "mgmt1", listenAddresses: ["not an address"], now: referenceTime)
            }
            #expect(throws: TrustError.self) {
                try PKIDirectory.loadOrCreate(
                    dataDirectory: data, serverName: "", listenAddresses: [], now: referenceTime)
            }
        }
    }
}

@Suite("Durable file")
struct DurableFileTests {
    @Test("write replaces content atomically with the exact mode, whatever the umask")
    func writeReplaces() throws {
        try withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("node.json")
            try DurableFile.write(Data("one".utf8), to: file, mode: 0o600)
            #expect(try String(contentsOf: file, encoding: .utf8) == "one")
            #expect(try permissionBits(file.path) == 0o600)
            let previous = umask(0o077)
            defer { umask(previous) }
            try DurableFile.write(Array("two".utf8), to: file, mode: 0o644)
            #expect(try String(contentsOf: file, encoding: .utf8) == "two")
            #expect(try permissionBits(file.path) == 0o644)
            try DurableFile.write([UInt8](), to: file, mode: 0o600)
            #expect(try Data(contentsOf: file).isEmpty)
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["node.json"])
        }
    }

    @Test("write into a missing directory fails with a file-system error naming the path")
    func writeFails() throws {
        try withTemporaryDirectory { directory in
            let file = directory.appendingPathComponent("missing/node.json")
            let error = #expect(throws: TrustError.self) {
                try DurableFile.write(Data("x".utf8), to: file, mode: 0o600)
            }
            #expect(error?.code == .fileSystem)
            #expect(error?.message.contains("missing") == true)
        }
    }
}
