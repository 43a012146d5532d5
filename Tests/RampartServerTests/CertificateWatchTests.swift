import Foundation
import Logging
import ManagementService
import Testing
import TrustCore

@testable import RampartServer

/// Certificates near their end reach the event stream (and so the log), not only a line at start-up.
@Suite("RampartServer: certificate expiry events")
struct CertificateWatchTests {
    @Test("an Internal CA and a SIC certificate near or past their end are certificateExpiring events; healthy ones are not")
    func expiringCertificatesAreEvents() async throws {
        let issuedAt = Date(timeIntervalSince1970: 1_800_000_000)
        let ica = try InternalCA.create(name: "watch", now: issuedAt)
        let keyPair = NodeKeyPair.generate()
        let identity = NodeIdentity(uid: "uid-w", name: "mgmt-w")
        let issued = try ica.issueNodeCertificate(publicKey: keyPair.publicKey, identity: identity, now: issuedAt, validityDays: 365)
        let credentials = NodeCredentials(
            identity: identity, privateKeyPEM: keyPair.privateKeyPEM, certificatePEM: issued.certificatePEM,
            icaPEM: ica.certificatePEM)
        let bus = EventBus<ManagementEvent>()
        var deliveries = try bus.subscribe(bufferedEventsMax: 16).makeAsyncIterator()
        let watch = CertificateWatch(credentials: credentials, events: bus, logger: Logger(label: "test"))
        watch.check(now: issuedAt.addingTimeInterval(86_400))  // healthy
        watch.check(now: issuedAt.addingTimeInterval(400 * 86_400))  // the SIC certificate expired
        bus.finish()
        var events: [CertificateExpiring] = []
        while let next = await deliveries.next() {
            if case .event(.certificateExpiring(let certificate), _) = next { events.append(certificate) }
        }
        #expect(events.map(\.certificate) == ["sic-certificate"], "\(events)")
        #expect(events.first.map { $0.daysLeft < 0 && $0.advice.contains("expired") } == true)
        #expect(ManagementEvent.certificateExpiring(try #require(events.first)).needsAttention)
    }
}
