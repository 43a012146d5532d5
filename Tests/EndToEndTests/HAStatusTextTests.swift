import Foundation
import ManagementModel
import ManagementService
import Testing

@testable import rampart

/// `rampart ha status` in text, pinned line for line for the reports the server sends (the same
/// samples as HARuntimeTests' HAStatusReportTests pin in JSON).
@Suite("ha status: the text an operator reads")
struct HAStatusTextTests {
    static let active = """
        {"active-server":"primary","domain-type":"domain","durable-head":41,"epoch":{"server":"primary","term":3},\
        "head":{"hash":"4f1c2a9e7b3d","number":42},"last-error":"peer mgmt-c: connection refused",\
        "last-error-at":{"iso-8601":"2027-01-15T07:59:50Z","posix":1799999990000},\
        "last-successful-sync":{"iso-8601":"2027-01-15T07:59:59Z","posix":1799999999000},"mode":"active",\
        "mode-since":{"iso-8601":"2027-01-15T05:13:20Z","posix":1799990000000},"name":"SMC User",\
        "problems":["mgmt-c: trust-error: its certificate was revoked (`rampart sic status`; `rampart sic reset mgmt-c` gives it a new one-time key)",\
        "mgmt-d: HA is stopped there (run `rampart ha start` on mgmt-d)"],\
        "rampart-last-applied":{"monotonic-ns":123456789,"revision":42},"replication-mode":"sync(2000ms)","role":"primary",\
        "servers":[{"connected":false,"ha-state":"standby","ip-address":"192.0.2.12","known-head":42,"lag-revisions":0,"lag-seconds":0,\
        "last-contact-ms-ago":250,"last-successful-sync":{"iso-8601":"2027-01-15T07:59:59Z","posix":1799999999000},"name":"mgmt-b",\
        "rampart-sync-detail":"synchronized","rampart-sync-status":"synchronized","sync-state":"Ok",\
        "clock-offset-ms":-40,"clock-delay-ms":4,"clock-level":"ok","clock-measured-at":{"iso-8601":"2027-01-15T07:59:59Z","posix":1799999999504},\
        "mode-since":{"iso-8601":"2027-01-15T07:58:59Z","posix":1799999939504}},\
        {"connected":false,"ha-state":"standby","ip-address":"","known-head":37,"lag-revisions":null,"lag-seconds":7,\
        "last-contact-ms-ago":null,"name":"mgmt-c","rampart-sync-detail":"trust-error: its certificate was revoked",\
        "rampart-sync-status":"trust-error","sync-state":"Sync Error"}],\
        "successfully-synced":false,"sync-status":"degraded","this-server":"primary","uid":"41e821a0-3720-11e3-aa6e-0800200c9fde",\
        "writes-enabled":true,"last-backup":{"duration-ms":120,"file":"/var/backups/b.tgz","message":"revision #42, 17 objects",\
        "result":"succeeded","schedule":"daily at 02:00","size-bytes":4096,"time":"2027-01-15T02:00:00Z","trigger":"scheduled"}}
        """

    static let standby = """
        {"active-server":"primary","domain-type":"domain","durable-head":41,"epoch":{"server":"primary","term":3},\
        "head":{"hash":"4f1c2a9e7b3d","number":42},"lag-revisions":2,\
        "mode":"standby","name":"SMC User","problems":[],"replication-mode":"async","role":"secondary",\
        "servers":[],"successfully-synced":true,"sync-status":"synchronized","this-server":"mgmt-b",\
        "uid":"41e821a0-3720-11e3-aa6e-0800200c9fde","writes-enabled":false,"writes-refusal":"this server is a standby of primary"}
        """

    static let notConfigured = """
        {"domain-type":"domain","last-backup":{"result":"none yet","schedule":"none"},"name":"SMC User","rampart-ha":"not-configured",\
        "servers":[],"successfully-synced":true,"uid":"41e821a0-3720-11e3-aa6e-0800200c9fde"}
        """

    func text(_ json: String) throws -> String { HAStatusCommand.text(try HAStatusReport(json: JSONValue.parse(json))) }

    @Test func anActiveWithProblems() throws {
        #expect(
            try text(Self.active) == """
                server:       primary (primary, active since 2027-01-15T05:13:20Z)
                active:       primary
                epoch:        3/primary
                head:         #42 4f1c2a9e7b3d
                writes:       enabled
                replication:  sync(2000ms)
                sync status:  degraded
                last sync:    2027-01-15T07:59:59Z
                last error:   peer mgmt-c: connection refused
                peer mgmt-b: standby since 2027-01-15T07:58:59Z, synchronized, lag 0 revisions / 0 s, connected false, clock -40 ms (ok, delay 4 ms)
                peer mgmt-c: standby, trust-error: its certificate was revoked, lag ? revisions / 7 s, connected false
                problem: mgmt-c: trust-error: its certificate was revoked (`rampart sic status`; `rampart sic reset mgmt-c` gives it a new one-time key)
                problem: mgmt-d: HA is stopped there (run `rampart ha start` on mgmt-d)
                last backup:  2027-01-15T02:00:00Z succeeded, 4096 bytes, scheduled (revision #42, 17 objects); schedule: daily at 02:00
                """)
    }

    @Test func aStandby() throws {
        #expect(
            try text(Self.standby) == """
                server:       mgmt-b (secondary, standby)
                active:       primary
                epoch:        3/primary
                head:         #42 4f1c2a9e7b3d
                writes:       refused (this server is a standby of primary)
                replication:  async
                sync status:  synchronized, 2 revision(s) behind
                last sync:    -
                last error:   -
                """)
    }

    @Test func aServerWithoutHA() throws {
        #expect(
            try text(Self.notConfigured) == """
                HA is not running on this server.
                last backup: none (schedule: none)
                """)
    }
}
