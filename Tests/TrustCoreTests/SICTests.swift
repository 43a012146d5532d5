import Foundation
import SwiftASN1
import Testing
import X509

@testable import TrustCore

/// PBKDF2 rounds for activation keys in tests: both sides take it as a parameter, and the debug build of
/// BoringSSL is slow at the protocol's 210,000.
let testKeyIterations = 1_000

/// A small SIC installation minted in memory: an ICA made ten days before `referenceTime`, and a node.
struct SICFixture {
    let ica: InternalCA
    let node = NodeIdentity(uid: "6f1c2b7e-0000-4000-8000-000000000001", name: "gw-paris")
    let keyPair = NodeKeyPair.generate()

    init() throws {
        ica = try InternalCA.create(name: "mgmt1", now: referenceTime.addingTimeInterval(-10 * secondsPerDay))
    }

    func issue(now: Date = referenceTime, validityDays: Int = 365) throws -> IssuedNodeCertificate {
        try ica.issueNodeCertificate(
            csrDER: try keyPair.makeCSR(identity: node), identity: node, now: now, validityDays: validityDays)
    }

    var verifier: SICVerifier { SICVerifier(icaCertificate: ica.certificate) }
}

@Suite("SIC node certificates and verification")
struct SICVerificationTests {
    @Test("a certificate issued from a CSR verifies, names the node in its SANs, and is for the CSR's key")
    func issueAndVerify() async throws {
        let pki = try SICFixture()
        let issued = try pki.issue()
        #expect(issued.identity == pki.node)
        #expect(issued.certificate.publicKey == pki.keyPair.publicKey)
        #expect(issued.certificatePEM.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(issued.serial == NodeCertificate.hex(issued.certificate.serialNumber.bytes))
        let names = try #require(try issued.certificate.extensions.subjectAlternativeNames)
        #expect(names.contains(.dnsName("gw-paris")))
        #expect(names.contains(.uniformResourceIdentifier("urn:rampart:node:\(pki.node.uid)")))
        let usages = try #require(try issued.certificate.extensions.extendedKeyUsage)
        #expect(usages.contains(.serverAuth) && usages.contains(.clientAuth))
        #expect(try issued.certificate.extensions.basicConstraints == .notCertificateAuthority)
        #expect(abs(issued.notValidAfter.timeIntervalSince(referenceTime) - 365 * secondsPerDay) < 2)

        for expected in [pki.node, nil] {
            #expect(
                pki.verifier.verify(leafDER: issued.certificateDER, expected: expected, now: referenceTime)
                    == .success(pki.node))
            #expect(
                await pki.verifier.validate(leafDER: issued.certificateDER, expected: expected, now: referenceTime)
                    == .success(pki.node))
        }
        // A renamed node keeps its trust: the uid is the identity.
        let renamed = NodeIdentity(uid: pki.node.uid, name: "gw-paris-2")
        #expect(
            pki.verifier.verify(leafDER: issued.certificateDER, expected: renamed, now: referenceTime)
                == .success(pki.node))
    }

    @Test("a name that is not a DNS name is carried exactly as a URI, and read back")
    func nonDNSName() throws {
        let pki = try SICFixture()
        let node = NodeIdentity(uid: "node-2", name: "Gateway Paris/1 é")
        let issued = try pki.ica.issueNodeCertificate(
            publicKey: pki.keyPair.publicKey, identity: node, now: referenceTime)
        let names = try #require(try issued.certificate.extensions.subjectAlternativeNames)
        #expect(!names.contains { if case .dnsName = $0 { true } else { false } })
        #expect(NodeCertificate.identity(of: issued.certificate) == node)
        #expect(
            pki.verifier.verify(leafDER: issued.certificateDER, expected: node, now: referenceTime) == .success(node))
    }

    @Test("bad uids, CSRs with a broken signature and garbage CSRs are refused")
    func badInputs() throws {
        let pki = try SICFixture()
        #expect(throws: TrustError.self) {
            try pki.ica.issueNodeCertificate(
                publicKey: pki.keyPair.publicKey, identity: NodeIdentity(uid: "a b", name: "x"), now: referenceTime)
        }
        var csr = try pki.keyPair.makeCSR(identity: pki.node)
        csr[csr.count - 3] ^= 0x01  // inside the signature
        let error = #expect(throws: TrustError.self) {
            try pki.ica.issueNodeCertificate(csrDER: csr, identity: pki.node, now: referenceTime)
        }
        #expect(error?.code == .invalidArgument)
        #expect(throws: TrustError.self) {
            try pki.ica.issueNodeCertificate(
                csrDER: [0x30, 0x03, 0x02, 0x01, 0x00], identity: pki.node, now: referenceTime)
        }
        #expect(try pki.keyPair.makeCSRPEM(identity: pki.node).hasPrefix("-----BEGIN CERTIFICATE REQUEST-----"))
    }

    @Test("expired and not-yet-valid certificates are refused with their dates, by both paths")
    func validityWindow() async throws {
        let pki = try SICFixture()
        let issued = try pki.issue(validityDays: 30)
        let late = referenceTime.addingTimeInterval(31 * secondsPerDay)
        let early = referenceTime.addingTimeInterval(-2 * 3600)
        let expired = PeerTrustFailure.expired(notValidAfter: issued.notValidAfter)
        let notYet = PeerTrustFailure.notYetValid(notValidBefore: issued.notValidBefore)
        #expect(pki.verifier.verify(leafDER: issued.certificateDER, expected: pki.node, now: late) == .failure(expired))
        #expect(pki.verifier.verify(leafDER: issued.certificateDER, expected: pki.node, now: early) == .failure(notYet))
        #expect(
            await pki.verifier.validate(leafDER: issued.certificateDER, expected: pki.node, now: late)
                == .failure(expired))
        #expect(
            await pki.verifier.validate(leafDER: issued.certificateDER, expected: pki.node, now: early)
                == .failure(notYet))
        #expect(expired.code == "expired" && expired.description.contains("expired"))
    }

    @Test("a certificate from another CA is refused, naming that CA")
    func otherCA() async throws {
        let pki = try SICFixture()
        let stranger = try InternalCA.create(name: "elsewhere", now: referenceTime.addingTimeInterval(-secondsPerDay))
        let issued = try stranger.issueNodeCertificate(
            publicKey: pki.keyPair.publicKey, identity: pki.node, now: referenceTime)
        let result = pki.verifier.verify(leafDER: issued.certificateDER, expected: pki.node, now: referenceTime)
        #expect(result == .failure(.otherCA(issuer: stranger.certificate.subject.description)))
        #expect(
            await pki.verifier.validate(leafDER: issued.certificateDER, expected: pki.node, now: referenceTime)
                == result)
        // Same subject, other key: still another CA (the signature decides, not the name).
        let lookalike = try InternalCA.create(name: "mgmt1", now: referenceTime.addingTimeInterval(-secondsPerDay))
        let forged = try lookalike.issueNodeCertificate(
            publicKey: pki.keyPair.publicKey, identity: pki.node, now: referenceTime)
        guard
            case .failure(.otherCA) = pki.verifier.verify(
                leafDER: forged.certificateDER, expected: pki.node, now: referenceTime)
        else {
            Issue.record("a look-alike ICA was trusted")
            return
        }
    }

    @Test("a certificate for another node is refused, naming both")
    func wrongIdentity() async throws {
        let pki = try SICFixture()
        let issued = try pki.issue()
        let other = NodeIdentity(uid: "6f1c2b7e-0000-4000-8000-000000000002", name: "gw-paris")
        let expected = PeerTrustFailure.wrongIdentity(expected: other, found: pki.node.description)
        #expect(
            pki.verifier.verify(leafDER: issued.certificateDER, expected: other, now: referenceTime)
                == .failure(expected))
        #expect(
            await pki.verifier.validate(leafDER: issued.certificateDER, expected: other, now: referenceTime)
                == .failure(expected))
    }

    @Test("a revoked certificate is refused with its serial; others of the same node are not")
    func revoked() async throws {
        let pki = try SICFixture()
        let old = try pki.issue()
        let new = try pki.issue()
        var list = RevocationList()
        #expect(
            try pki.ica.revoke(
                serial: old.serial, reason: .sicReset, certificateNotValidAfter: old.notValidAfter, now: referenceTime,
                in: &list))
        let verifier = SICVerifier(icaCertificate: pki.ica.certificate, revocations: list)
        #expect(
            verifier.verify(leafDER: old.certificateDER, expected: pki.node, now: referenceTime)
                == .failure(.revoked(serial: old.serial)))
        #expect(
            await verifier.validate(leafDER: old.certificateDER, expected: pki.node, now: referenceTime)
                == .failure(.revoked(serial: old.serial)))
        #expect(
            verifier.verify(leafDER: new.certificateDER, expected: pki.node, now: referenceTime) == .success(pki.node))
    }

    @Test("no certificate, garbage, the ICA itself and a Web API certificate are refused as such")
    func malformed() throws {
        let pki = try SICFixture()
        #expect(pki.verifier.verify(leafDER: [], expected: nil, now: referenceTime) == .failure(.noCertificate))
        guard case .failure(.malformed) = pki.verifier.verify(leafDER: [1, 2, 3], expected: nil, now: referenceTime)
        else {
            Issue.record("garbage accepted")
            return
        }
        let icaDER = try NodeCertificate.derBytes(pki.ica.certificate)
        guard case .failure(.malformed) = pki.verifier.verify(leafDER: icaDER, expected: nil, now: referenceTime) else {
            Issue.record("the ICA was accepted as a node")
            return
        }
        let api = try pki.ica.issueTLSServerCertificate(
            commonName: "mgmt1", dnsNames: ["mgmt1"], ipAddresses: [], now: referenceTime)
        let apiDER = try NodeCertificate.derBytes(try Certificate(pemEncoded: api.certificatePEM))
        guard case .failure(.malformed) = pki.verifier.verify(leafDER: apiDER, expected: nil, now: referenceTime) else {
            Issue.record("a certificate without a node identity was accepted")
            return
        }
    }
}

@Suite("Revocation list and lifecycle")
struct RevocationAndLifecycleTests {
    @Test("the list stays sorted, refuses duplicates and bad serials, and survives JSON")
    func revocationList() throws {
        var list = RevocationList()
        #expect(try list.revoke(serial: "0B", reason: .keyCompromise, now: referenceTime))
        #expect(
            try list.revoke(
                serial: "0a", reason: .sicReset, certificateNotValidAfter: referenceTime, now: referenceTime))
        #expect(try !list.revoke(serial: "0b", reason: .unspecified, now: referenceTime))
        #expect(list.entries.map(\.serial) == ["0a", "0b"])
        #expect(list.entry(forSerial: "0B")?.reason == .keyCompromise)
        #expect(throws: TrustError.self) { try list.revoke(serial: "xyz", reason: .unspecified, now: referenceTime) }
        #expect(throws: TrustError.self) { try list.revoke(serial: "abc", reason: .unspecified, now: referenceTime) }
        let loaded = try RevocationList(jsonText: list.jsonText)
        #expect(loaded == list)
        #expect(loaded.jsonText == list.jsonText)
        #expect(throws: TrustError.self) {
            try RevocationList(
                jsonText:
                    "{\"entries\":[{\"serial\":\"0b\",\"revokedAtMilliseconds\":0,\"reason\":\"sic-reset\"},{\"serial\":\"0a\",\"revokedAtMilliseconds\":0,\"reason\":\"sic-reset\"}]}"
            )
        }
        #expect(throws: TrustError.self) { try RevocationList(jsonText: "not json") }
        #expect(list.removeExpired(now: referenceTime.addingTimeInterval(1)) == 1)
        #expect(list.entries.map(\.serial) == ["0b"])
    }

    @Test("renewal is due from two thirds of the lifetime on")
    func renewal() throws {
        let pki = try SICFixture()
        let issued = try pki.issue(validityDays: 300)
        let lifetime = issued.notValidAfter.timeIntervalSince(issued.notValidBefore)
        let twoThirds = issued.notValidBefore.addingTimeInterval(lifetime * 2 / 3)
        #expect(!CertificateLifecycle.renewalDue(issued.certificate, now: referenceTime))
        #expect(!CertificateLifecycle.renewalDue(issued.certificate, now: twoThirds.addingTimeInterval(-60)))
        #expect(CertificateLifecycle.renewalDue(issued.certificate, now: twoThirds))
        #expect(CertificateLifecycle.renewalDue(issued.certificate, now: issued.notValidAfter.addingTimeInterval(1)))
        // Renewal over the trusted channel: a new CSR, the identity from the verified old certificate.
        let newKey = NodeKeyPair.generate()
        let found = try pki.verifier.verify(leafDER: issued.certificateDER, expected: nil, now: twoThirds).get()
        let renewed = try pki.ica.issueNodeCertificate(
            csrDER: try newKey.makeCSR(identity: found), identity: found, now: twoThirds)
        #expect(renewed.serial != issued.serial)
        #expect(
            pki.verifier.verify(leafDER: renewed.certificateDER, expected: pki.node, now: twoThirds)
                == .success(pki.node))
    }

    @Test("warnings come 30 days before node expiry and 180 days before ICA expiry")
    func warnings() {
        let now = referenceTime
        let far = now.addingTimeInterval(1000 * secondsPerDay)
        #expect(CertificateLifecycle.expiryWarnings(icaNotValidAfter: far, nodeNotValidAfter: far, now: now).isEmpty)
        let nodeSoon = CertificateLifecycle.expiryWarnings(
            icaNotValidAfter: far, nodeNotValidAfter: now.addingTimeInterval(10 * secondsPerDay), now: now)
        #expect(nodeSoon.count == 1 && nodeSoon[0].contains("10 days"))
        let icaSoon = CertificateLifecycle.expiryWarnings(
            icaNotValidAfter: now.addingTimeInterval(100 * secondsPerDay), nodeNotValidAfter: nil, now: now)
        #expect(icaSoon.count == 1 && icaSoon[0].contains("Internal CA expires in 100 days"))
        let bothGone = CertificateLifecycle.expiryWarnings(
            icaNotValidAfter: now.addingTimeInterval(-1), nodeNotValidAfter: now.addingTimeInterval(-1), now: now)
        #expect(bothGone.count == 2 && bothGone.allSatisfy { $0.contains("expired") })
    }
}

@Suite("Activation keys and enrolment")
struct EnrolmentTests {
    let pki: SICFixture
    let server: EnrolmentServer
    let secret: String
    let pending: PendingEnrolment

    init() throws {
        pki = try SICFixture()
        server = EnrolmentServer(ica: pki.ica)
        let generated = try ActivationKey.generate(
            nodeName: pki.node.name, now: referenceTime, iterations: testKeyIterations)
        secret = generated.secret
        pending = PendingEnrolment(identity: pki.node, record: generated.record)
    }

    func client(key: String? = nil, name: String? = nil) throws -> EnrolmentClient {
        try EnrolmentClient(
            nodeName: name ?? pki.node.name, activationKey: key ?? secret, keyPair: pki.keyPair,
            iterations: testKeyIterations)
    }

    static func nonce(_ byte: UInt8) -> [UInt8] { [UInt8](repeating: byte, count: 32) }

    @Test("the record stores no secret, only a 32-byte verifier key, and round-trips through JSON")
    func record() throws {
        #expect(secret.count == TrustLimits.activationKeyGeneratedLength)
        let record = pending.record
        #expect(record.verifierKey.count == 32)
        #expect(!record.jsonText.contains(secret))
        #expect(try ActivationKeyRecord(jsonText: record.jsonText) == record)
        #expect(record.expiresAt == referenceTime.addingTimeInterval(24 * 3600))
        #expect(throws: TrustError.self) {
            try ActivationKey.record(secret: "short", nodeName: "n", now: referenceTime)
        }
        let other = try ActivationKey.generate(
            nodeName: pki.node.name, now: referenceTime, iterations: testKeyIterations)
        #expect(other.secret != secret && other.record.verifierKey != record.verifierKey)
    }

    @Test("full enrolment: the node gets a certificate for its key and identity, and the ICA it can now pin")
    func roundTrip() throws {
        let client = try client()
        let request = try client.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime.addingTimeInterval(2))
        // Over the wire and back.
        guard case .request(let received) = try EnrolmentMessage.decode(request.encoded()) else {
            Issue.record("a request did not decode as a request")
            return
        }
        #expect(received == request)
        let decision = server.handle(
            received, pending: pending, revocations: RevocationList(), serverNonce: Self.nonce(2), now: referenceTime)
        guard case .enrolled(let response, let record, let issued) = decision else {
            Issue.record("enrolment refused: \(decision)")
            return
        }
        #expect(record.isUsed && !pending.record.isUsed)
        #expect(issued.identity == pki.node)
        let credentials = try client.accept(answer: decision.message.encoded(), to: request, now: referenceTime)
        #expect(credentials.identity == pki.node)
        #expect(credentials.icaPEM == pki.ica.certificatePEM)
        #expect(credentials.certificatePEM == issued.certificatePEM)
        #expect(try credentials.certificate().publicKey == pki.keyPair.publicKey)
        #expect(response.serverTimeMilliseconds == milliseconds(referenceTime))

        // Written to pki/ with the right modes, and loaded back.
        try withTemporaryDirectory { directory in
            let pkiDirectory = directory.appendingPathComponent("pki")
            try credentials.write(to: pkiDirectory)
            #expect(try permissionBits(pkiDirectory.appendingPathComponent("node.key").path) == 0o600)
            #expect(try permissionBits(pkiDirectory.appendingPathComponent("node.pem").path) == 0o644)
            #expect(try permissionBits(pkiDirectory.path) == 0o700)
            #expect(try NodeCredentials.load(from: pkiDirectory) == credentials)
            // The node now verifies its server's certificates (and the server the node's) with the pinned ICA.
            let verifier = try credentials.makeVerifier()
            #expect(
                verifier.verify(leafDER: issued.certificateDER, expected: pki.node, now: referenceTime)
                    == .success(pki.node))
        }
    }

    @Test("a used key is refused, even to the right node, and says so")
    func keyReuse() throws {
        let client = try client()
        let first = try client.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        guard
            case .enrolled(_, let used, _) = server.handle(
                first, pending: pending, serverNonce: Self.nonce(2), now: referenceTime)
        else {
            Issue.record("first enrolment refused")
            return
        }
        let again = try client.makeRequest(nodeNonce: Self.nonce(3), now: referenceTime)
        let decision = server.handle(
            again, pending: PendingEnrolment(identity: pki.node, record: used), serverNonce: Self.nonce(4),
            now: referenceTime)
        guard case .refused(let refusal, let isFailedProof) = decision else {
            Issue.record("a used key enrolled again")
            return
        }
        #expect(refusal.code == .keyUsed && !isFailedProof)
        #expect(refusal.message.contains("single-use"))
        let error = #expect(throws: EnrolmentError.self) {
            try client.accept(answer: decision.message.encoded(), to: again, now: referenceTime)
        }
        #expect(error?.code == .refused && error?.refusal?.code == .keyUsed)
    }

    @Test("a wrong key is refused as a failed proof (for the throttle), and does not use the key")
    func wrongKey() throws {
        let guesser = try client(key: "not-the-right-key")
        let request = try guesser.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        let decision = server.handle(request, pending: pending, serverNonce: Self.nonce(2), now: referenceTime)
        #expect(
            decision
                == .refused(
                    refusal: EnrolmentRefusal(.wrongKey, ActivationKeyError.wrongKey.description), isFailedProof: true))
        #expect(throws: ActivationKeyError.wrongKey) {
            try pending.record.check(proof: request.proof, transcript: request.transcript, now: referenceTime)
        }

        // The caller slows repeated wrong proofs with a LoginThrottle keyed by node name and address.
        var throttle = LoginThrottle(configuration: .init(freeFailures: 2))
        let key = EnrolmentServer.throttleKey(nodeName: request.nodeName, address: "192.0.2.7")
        for _ in 0..<2 { throttle.recordFailure(key, now: referenceTime) }
        guard case .refused(let retryAfter) = throttle.check(key, now: referenceTime) else {
            Issue.record("not throttled")
            return
        }
        #expect(EnrolmentRefusal.throttled(retryAfterMilliseconds: retryAfter).message.contains("1 seconds"))

        // A proof for another node name is wrong too (the name salts the key), and an unknown name is refused.
        let elsewhere = try client(name: "gw-london")
        let misdirected = try elsewhere.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        guard
            case .refused(let unknown, true) = server.handle(
                misdirected, pending: nil, serverNonce: Self.nonce(2), now: referenceTime)
        else {
            Issue.record("an unknown node was not refused")
            return
        }
        #expect(unknown.code == .unknownNode)
        // And the right key still works afterwards.
        let right = try client().makeRequest(nodeNonce: Self.nonce(5), now: referenceTime)
        guard case .enrolled = server.handle(right, pending: pending, serverNonce: Self.nonce(6), now: referenceTime)
        else {
            Issue.record("the right key was refused after wrong attempts")
            return
        }
    }

    @Test("an expired key is refused")
    func expiredKey() throws {
        let request = try client().makeRequest(
            nodeNonce: Self.nonce(1), now: referenceTime.addingTimeInterval(25 * 3600))
        let decision = server.handle(
            request, pending: pending, serverNonce: Self.nonce(2), now: referenceTime.addingTimeInterval(25 * 3600))
        guard case .refused(let refusal, false) = decision else {
            Issue.record("an expired key enrolled")
            return
        }
        #expect(refusal.code == .keyExpired)
        #expect(refusal.message.contains("expired"))
    }

    @Test("a clock skew beyond the limit is refused with the skew in seconds and the fix; the key stays usable")
    func clockSkew() throws {
        let client = try client()
        let ahead = try client.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime.addingTimeInterval(412.3))
        let decision = server.handle(ahead, pending: pending, serverNonce: Self.nonce(2), now: referenceTime)
        guard case .refused(let refusal, false) = decision else {
            Issue.record("a skewed node enrolled")
            return
        }
        #expect(refusal.code == .clockSkew)
        #expect(refusal.message.contains("412 seconds ahead of"))
        #expect(refusal.message.contains("at most 300 seconds"))
        #expect(refusal.message.contains("NTP") && refusal.message.contains("rampart time"))
        let behind = try client.makeRequest(nodeNonce: Self.nonce(3), now: referenceTime.addingTimeInterval(-3600))
        guard
            case .refused(let late, false) = server.handle(
                behind, pending: pending, serverNonce: Self.nonce(4), now: referenceTime)
        else {
            Issue.record("a node an hour behind enrolled")
            return
        }
        #expect(late.message.contains("3600 seconds behind"))
        // Within the limit, with the same (unused) key: enrolled.
        let fixed = try client.makeRequest(nodeNonce: Self.nonce(5), now: referenceTime.addingTimeInterval(-299))
        guard case .enrolled = server.handle(fixed, pending: pending, serverNonce: Self.nonce(6), now: referenceTime)
        else {
            Issue.record("a node within the skew limit was refused")
            return
        }
    }

    @Test("the skew limit is the server's --clock-problem-ms; refused above it naming skew, limit and fix, accepted below or when forced")
    func clockSkewAgainstConfiguredThreshold() throws {
        let strict = EnrolmentServer(ica: pki.ica, clockSkewMillisecondsMax: 60_000)
        let client = try client()
        let ahead = try client.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime.addingTimeInterval(120))
        guard case .refused(let refusal, false) = strict.handle(ahead, pending: pending, serverNonce: Self.nonce(2), now: referenceTime) else {
            Issue.record("a node 120 s ahead enrolled with a 60 s limit")
            return
        }
        #expect(refusal.code == .clockSkew && refusal.message.contains("120 seconds ahead of"), "\(refusal.message)")
        #expect(refusal.message.contains("at most 60 seconds") && refusal.message.contains("--clock-problem-ms"), "\(refusal.message)")
        #expect(refusal.message.contains("NTP") && refusal.message.contains("--force"), "\(refusal.message)")
        let below = try client.makeRequest(nodeNonce: Self.nonce(3), now: referenceTime.addingTimeInterval(-59))
        guard case .enrolled = strict.handle(below, pending: pending, serverNonce: Self.nonce(4), now: referenceTime) else {
            Issue.record("a node 59 s behind was refused with a 60 s limit")
            return
        }
        // Forced: the flag travels after the proof, and the proof covers it.
        let forced = try client.makeRequest(nodeNonce: Self.nonce(5), now: referenceTime.addingTimeInterval(3_600), allowsClockSkew: true)
        guard case .request(let received) = try EnrolmentMessage.decode(forced.encoded()) else {
            Issue.record("not a request")
            return
        }
        #expect(received == forced && received.allowsClockSkew)
        guard case .enrolled = strict.handle(received, pending: pending, serverNonce: Self.nonce(6), now: referenceTime) else {
            Issue.record("a forced enrolment was refused")
            return
        }
        // The flag added to a request that did not carry it is not what the node proved.
        let plain = try client.makeRequest(nodeNonce: Self.nonce(7), now: referenceTime.addingTimeInterval(3_600))
        let unforced = EnrolmentRequest(
            nodeName: forced.nodeName, csrDER: forced.csrDER, nodeNonce: forced.nodeNonce, nodeTimeMilliseconds: forced.nodeTimeMilliseconds,
            proof: forced.proof)
        #expect(unforced.encoded() + [1] == forced.encoded(), "an unforced request is the same bytes as before; the flag is one byte after")
        let tampered = EnrolmentRequest(
            nodeName: plain.nodeName, csrDER: plain.csrDER, nodeNonce: plain.nodeNonce, nodeTimeMilliseconds: plain.nodeTimeMilliseconds,
            proof: plain.proof, allowsClockSkew: true)
        guard case .refused(let wrong, true) = strict.handle(tampered, pending: pending, serverNonce: Self.nonce(8), now: referenceTime) else {
            Issue.record("a flag added on the way was accepted")
            return
        }
        #expect(wrong.code == .wrongKey)
        #expect(throws: EnrolmentError.self) { try EnrolmentMessage.decode(plain.encoded() + [2]) }
    }

    @Test("the node detects a tampered response, a forged server and a response to another request")
    func tamperedResponse() throws {
        let client = try client()
        let request = try client.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        guard
            case .enrolled(let response, _, _) = server.handle(
                request, pending: pending, serverNonce: Self.nonce(2), now: referenceTime)
        else {
            Issue.record("enrolment refused")
            return
        }
        // A flipped proof bit.
        var proof = response.proof
        proof[0] ^= 0x80
        let flipped = EnrolmentResponse(
            identity: response.identity, certificateDER: response.certificateDER, icaDER: response.icaDER,
            revocationJSON: response.revocationJSON, serverNonce: response.serverNonce,
            serverTimeMilliseconds: response.serverTimeMilliseconds, proof: proof)
        #expect(try errorCode { try client.accept(flipped, to: request, now: referenceTime) } == .serverProofInvalid)

        // A server with its own ICA (a man in the middle) and a key record of its own: its proof is wrong.
        let impostorICA = try InternalCA.create(name: "mgmt1", now: referenceTime.addingTimeInterval(-secondsPerDay))
        let fakeRecord = try ActivationKey.generate(
            nodeName: pki.node.name, now: referenceTime, iterations: testKeyIterations
        ).record
        let fakeCertificate = try impostorICA.issueNodeCertificate(
            csrDER: request.csrDER, identity: pki.node, now: referenceTime)
        let unsigned = EnrolmentResponse(
            identity: pki.node, certificateDER: fakeCertificate.certificateDER,
            icaDER: try NodeCertificate.derBytes(impostorICA.certificate), revocationJSON: nil,
            serverNonce: Self.nonce(2), serverTimeMilliseconds: milliseconds(referenceTime), proof: [])
        let forged = EnrolmentResponse(
            identity: unsigned.identity, certificateDER: unsigned.certificateDER, icaDER: unsigned.icaDER,
            revocationJSON: nil, serverNonce: unsigned.serverNonce,
            serverTimeMilliseconds: unsigned.serverTimeMilliseconds,
            proof: EnrolmentProof.server(
                verifierKey: [UInt8](fakeRecord.verifierKey), transcript: unsigned.transcript(request: request)))
        #expect(try errorCode { try client.accept(forged, to: request, now: referenceTime) } == .serverProofInvalid)
        // The node's own proof cannot be reflected back as the server's (each side has its own key).
        let reflected = EnrolmentResponse(
            identity: unsigned.identity, certificateDER: unsigned.certificateDER, icaDER: unsigned.icaDER,
            revocationJSON: nil, serverNonce: unsigned.serverNonce,
            serverTimeMilliseconds: unsigned.serverTimeMilliseconds,
            proof: request.proof)
        #expect(try errorCode { try client.accept(reflected, to: request, now: referenceTime) } == .serverProofInvalid)

        // The genuine response replayed to a later request (other nonce).
        let later = try client.makeRequest(nodeNonce: Self.nonce(9), now: referenceTime)
        #expect(try errorCode { try client.accept(response, to: later, now: referenceTime) } == .serverProofInvalid)
        // The genuine response is accepted.
        #expect(try client.accept(response, to: request, now: referenceTime).identity == pki.node)
    }

    /// The response with its ICA swapped for `ica` (and the proof left as it was).
    func swappedICA(_ response: EnrolmentResponse, _ ica: InternalCA) throws -> EnrolmentResponse {
        EnrolmentResponse(
            identity: response.identity, certificateDER: response.certificateDER,
            icaDER: try NodeCertificate.derBytes(ica.certificate), revocationJSON: response.revocationJSON,
            serverNonce: response.serverNonce, serverTimeMilliseconds: response.serverTimeMilliseconds,
            proof: response.proof)
    }

    @Test("a swapped ICA under the genuine proof is detected")
    func swappedICADetected() throws {
        let client = try client()
        let request = try client.makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        guard
            case .enrolled(let response, _, _) = server.handle(
                request, pending: pending, serverNonce: Self.nonce(2), now: referenceTime)
        else {
            Issue.record("enrolment refused")
            return
        }
        let impostorICA = try InternalCA.create(name: "mgmt1", now: referenceTime.addingTimeInterval(-secondsPerDay))
        #expect(
            try errorCode { try client.accept(swappedICA(response, impostorICA), to: request, now: referenceTime) }
                == .serverProofInvalid)
    }

    @Test("a server whose ICA has expired refuses as unavailable, and leaves the key unused")
    func expiredICA() throws {
        let oldICA = try InternalCA.create(
            name: "mgmt1", now: referenceTime.addingTimeInterval(-10 * secondsPerDay), validityDays: 5)
        let request = try client().makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        let decision = EnrolmentServer(ica: oldICA).handle(
            request, pending: pending, serverNonce: Self.nonce(2), now: referenceTime)
        guard case .refused(let refusal, false) = decision else {
            Issue.record("an expired ICA issued a certificate")
            return
        }
        #expect(refusal.code == .unavailable && refusal.message.contains("Internal CA is not valid"))
    }

    @Test("malformed, truncated, oversized and trailing messages are refused; every kind round-trips")
    func messageEncoding() throws {
        let request = try client().makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        let refusal = EnrolmentRefusal(.clockSkew, "skew")
        #expect(try EnrolmentMessage.decode(EnrolmentMessage.refusal(refusal).encoded()) == .refusal(refusal))
        guard
            case .enrolled(let response, _, _) = server.handle(
                request, pending: pending, revocations: RevocationList(), serverNonce: Self.nonce(2), now: referenceTime
            )
        else {
            Issue.record("enrolment refused")
            return
        }
        #expect(try EnrolmentMessage.decode(EnrolmentMessage.response(response).encoded()) == .response(response))
        let bytes = request.encoded()
        for cut in [0, 3, 5, 6, bytes.count / 2, bytes.count - 1] {
            #expect(throws: EnrolmentError.self) { try EnrolmentMessage.decode(Array(bytes.prefix(cut))) }
        }
        #expect(throws: EnrolmentError.self) { try EnrolmentMessage.decode(bytes + [0]) }
        var badVersion = bytes
        badVersion[4] = 9
        let versionError = #expect(throws: EnrolmentError.self) { try EnrolmentMessage.decode(badVersion) }
        #expect(versionError?.message.contains("version 9") == true)
        // A length field claiming 4 GiB is refused by its bound, not by trying to read it.
        var huge = Array(bytes.prefix(6))
        huge += [0xFF, 0xFF, 0xFF, 0xFF]
        #expect(throws: EnrolmentError.self) { try EnrolmentMessage.decode(huge) }
        #expect(
            EnrolmentRefusal(.badRequest, String(repeating: "x", count: 5000)).message.utf8.count
                == TrustLimits.enrolmentRefusalMessageLengthMax)
    }

    @Test("enrolmentRequestBytesMax is the largest request that decodes; a real one is far smaller")
    func requestSizeBound() throws {
        let real = try client(name: String(repeating: "n", count: TrustLimits.commonNameLengthMax))
            .makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        #expect(real.encoded().count < 1024)
        let largest = EnrolmentRequest(
            nodeName: String(repeating: "é", count: TrustLimits.commonNameLengthMax * 2),
            csrDER: [UInt8](repeating: 0x30, count: TrustLimits.certificateSigningRequestBytesMax),
            nodeNonce: Self.nonce(3), nodeTimeMilliseconds: 0, proof: Self.nonce(4))
        #expect(largest.encoded().count == TrustLimits.enrolmentRequestBytesMax)
        #expect(try EnrolmentMessage.decode(largest.encoded()) == .request(largest))
        let longer = EnrolmentRequest(
            nodeName: largest.nodeName, csrDER: largest.csrDER + [0], nodeNonce: largest.nodeNonce,
            nodeTimeMilliseconds: 0, proof: largest.proof)
        #expect(throws: EnrolmentError.self) { try EnrolmentMessage.decode(longer.encoded()) }
    }

    @Test("hostile enrolment bytes (20,000 seeded mutations of real messages) are refused or decoded, never a trap")
    func decoderSurvivesMutations() throws {
        let request = try client().makeRequest(nodeNonce: Self.nonce(1), now: referenceTime)
        guard
            case .enrolled(let response, _, _) = server.handle(
                request, pending: pending, revocations: RevocationList(), serverNonce: Self.nonce(2), now: referenceTime)
        else {
            Issue.record("enrolment refused")
            return
        }
        let seeds = [
            request.encoded(), EnrolmentMessage.response(response).encoded(),
            EnrolmentRefusal(.wrongKey, "no").encoded(),
        ]
        var random = SeededRandom(seed: 18)
        var decoded = 0
        for round in 0..<20_000 {
            var bytes = seeds[round % seeds.count]
            switch random.next() % 4 {
            case 0:  // flip bytes
                for _ in 0...(random.next() % 8) { bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next()) }
            case 1:  // cut
                bytes = Array(bytes.prefix(Int(random.next() % UInt64(bytes.count))))
            case 2:  // a length field at an extreme
                let at = Int(random.next() % UInt64(max(1, bytes.count - 4)))
                let extreme: [UInt8] = [[0xFF, 0xFF, 0xFF, 0xFF], [0x7F, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0], [0x80, 0, 0, 0]][Int(random.next() % 4)]
                for (offset, byte) in extreme.enumerated() where at + offset < bytes.count { bytes[at + offset] = byte }
            default:  // append garbage
                bytes += (0..<(random.next() % 64)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            if (try? EnrolmentMessage.decode(bytes)) != nil { decoded += 1 }
        }
        #expect(decoded < 20_000, "mutations are mostly refused")
    }

    /// The code of the `EnrolmentError` that `body` throws; nil when it succeeds. Other errors propagate.
    func errorCode(_ body: () throws -> some Any) throws -> EnrolmentError.Code? {
        do {
            _ = try body()
            return nil
        } catch let error as EnrolmentError {
            return error.code
        }
    }
}

/// SplitMix64: a seeded generator, so a failing fuzz round can be replayed.
struct SeededRandom {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
