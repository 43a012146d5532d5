import Foundation
import HACore
import Logging
import ManagementModel
import ManagementService
import Store
import Testing

@testable import HARuntime

/// The JSON of show-ha-status (and so of `rampart ha status --json`), pinned key for key: Check
/// Point's fields (servers, ip-address, ha-state, sync-state, last-successful-sync, successfully-synced)
/// and Rampart's beside them. Clients read these keys; a refactor must not move one.
@Suite("HARuntime: the HA status report's JSON")
struct HAStatusReportTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    func runtime(active: Bool, in directory: URL) throws -> HARuntime {
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        try publishHost(store, name: "seed")
        return try HARuntime(
            configuration: HAConfiguration(serverID: active ? "primary" : "mgmt-b", peers: [active ? "mgmt-b" : "primary"]),
            store: store, bootstrapActive: active, snapshotDirectory: directory.appendingPathComponent("snapshots"),
            exportDirectory: directory.appendingPathComponent("exports"), logger: Logger(label: "test"), send: { _ in })
    }

    /// A runtime's snapshot with every figure set by the test (times, heads, peers), so the report is fixed.
    func sample(_ runtime: HARuntime, peers: [PeerView]) -> HARuntimeSnapshot {
        var snapshot = runtime.snapshot
        let active = snapshot.core.role == .active
        snapshot.writesEnabled = active
        snapshot.halted = false
        snapshot.core.writesRefusal = active ? nil : "this server is a standby of primary"
        snapshot.core.epoch = Epoch(term: 3, server: ServerID("primary"))
        snapshot.core.head = RevisionHead(number: 42, hash: "4f1c2a9e7b3d")
        snapshot.core.durableHead = RevisionHead(number: 41, hash: "0b9e")
        snapshot.core.activeServer = ServerID("primary")
        snapshot.core.replicationMode = .sync(timeoutMilliseconds: 2_000)
        snapshot.core.peers = peers
        snapshot.lastError = "peer mgmt-c: connection refused"
        snapshot.lastErrorAt = Date(timeIntervalSince1970: 1_799_999_990)
        snapshot.lastAppliedAt = Date(timeIntervalSince1970: 1_799_999_999)
        snapshot.lastAppliedRevision = 42
        snapshot.lastAppliedMonotonicNanoseconds = 123_456_789
        snapshot.modeSince = Date(timeIntervalSince1970: 1_799_990_000)
        return snapshot
    }

    @Test func anActivesReportKeepsEveryKey() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let runtime = try runtime(active: true, in: directory)
        let links = HAPeerLinks()
        links.recordTrustProblem(ServerID("mgmt-c"), "its certificate was revoked")
        let snapshot = sample(
            runtime,
            peers: [
                PeerView(
                    serverID: "mgmt-b", status: .synchronized, knownHead: RevisionHead(number: 42, hash: "4f1c"),
                    lastContactMillisecondsAgo: 250, lagRevisions: 0, synchronizedMillisecondsAgo: 1_000),
                PeerView(
                    serverID: "mgmt-c", status: .lagging(revisions: 5, milliseconds: 7_500), knownHead: RevisionHead(number: 37, hash: "9a"),
                    lastContactMillisecondsAgo: nil, lagRevisions: nil, synchronizedMillisecondsAgo: nil),
                PeerView(serverID: "mgmt-d", status: .haStopped, knownHead: RevisionHead(number: 40, hash: "77")),
            ])
        // mgmt-b's clock is 40 ms behind ours, 2 ms away; it has been a standby for a minute.
        let facts = PeerFacts()
        facts.recordClock(
            "mgmt-b",
            ClockStamps(
                sentAtMilliseconds: 1_799_999_999_462, receivedAtMilliseconds: 1_799_999_999_504,
                echoed: .init(sentAtMilliseconds: 1_799_999_999_000, receivedAtMilliseconds: 1_799_999_998_962)))
        facts.recordMode("mgmt-b", mode: "standby", heldMilliseconds: 60_000, receivedAtMilliseconds: 1_799_999_999_504)
        let report = HAStatusReport(
            snapshot, serverRole: .primary, links: links, ipAddress: { $0.name == "mgmt-b" ? "192.0.2.12" : nil }, facts: facts, now: Self.now)
        let mgmtB = try #require(report.servers.first)
        #expect(mgmtB.clockOffsetMilliseconds == -40 && mgmtB.clockDelayMilliseconds == 4 && mgmtB.clockLevel == "ok")
        #expect(mgmtB.modeSince?.posix == 1_799_999_939_504 && report.modeSince?.posix == 1_799_990_000_000)
        #expect(
            try json(report) == """
                {"active-server":"primary","clock-thresholds":{"problem-ms":300000,"warning-ms":5000},\
                "domain-type":"domain","durable-head":41,"epoch":{"server":"primary","term":3},\
                "head":{"hash":"4f1c2a9e7b3d","number":42},"last-error":"peer mgmt-c: connection refused",\
                "last-error-at":{"iso-8601":"2027-01-15T07:59:50Z","posix":1799999990000},\
                "last-successful-sync":{"iso-8601":"2027-01-15T07:59:59Z","posix":1799999999000},"mode":"active",\
                "mode-since":{"iso-8601":"2027-01-15T05:13:20Z","posix":1799990000000},"name":"SMC User",\
                "problems":["mgmt-c: trust-error: its certificate was revoked (`rampart sic status`; `rampart sic reset mgmt-c` gives it a new one-time key)",\
                "mgmt-d: HA is stopped there (run `rampart ha start` on mgmt-d)"],\
                "rampart-last-applied":{"monotonic-ns":123456789,"revision":42},"replication-mode":"sync(2000ms)","role":"primary",\
                "servers":[{"clock-delay-ms":4,"clock-level":"ok","clock-measured-at":{"iso-8601":"2027-01-15T07:59:59Z","posix":1799999999504},\
                "clock-offset-ms":-40,"connected":false,"ha-state":"standby","ip-address":"192.0.2.12","known-head":42,"lag-revisions":0,"lag-seconds":0,\
                "last-contact-ms-ago":250,"last-successful-sync":{"iso-8601":"2027-01-15T07:59:59Z","posix":1799999999000},\
                "mode-since":{"iso-8601":"2027-01-15T07:58:59Z","posix":1799999939504},"name":"mgmt-b",\
                "rampart-sync-detail":"synchronized","rampart-sync-status":"synchronized","sync-state":"Ok"},\
                {"clock-offset-ms":null,"connected":false,"ha-state":"standby","ip-address":"","known-head":37,"lag-revisions":null,"lag-seconds":7,\
                "last-contact-ms-ago":null,"name":"mgmt-c","rampart-sync-detail":"trust-error: its certificate was revoked",\
                "rampart-sync-status":"trust-error","sync-state":"Sync Error"},\
                {"clock-offset-ms":null,"connected":false,"ha-state":"standby","ip-address":"","known-head":40,"lag-revisions":null,"lag-seconds":0,\
                "last-contact-ms-ago":null,"name":"mgmt-d","rampart-sync-detail":"ha-stopped","rampart-sync-status":"ha-stopped",\
                "sync-state":"Sync Error"}],\
                "successfully-synced":false,"sync-status":"degraded","this-server":"primary","uid":"41e821a0-3720-11e3-aa6e-0800200c9fde",\
                "writes-enabled":true}
                """)
    }

    @Test func aStandbysReportKeepsEveryKey() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let runtime = try runtime(active: false, in: directory)
        let snapshot = sample(
            runtime,
            peers: [
                PeerView(
                    serverID: "primary", status: .communicationError, knownHead: RevisionHead(number: 44, hash: "5d"),
                    lastContactMillisecondsAgo: 12_000, lagRevisions: 2, synchronizedMillisecondsAgo: 15_000)
            ])
        let report = HAStatusReport(snapshot, serverRole: .secondary, links: HAPeerLinks(), ipAddress: { _ in "192.0.2.11" }, now: Self.now)
        #expect(
            try json(report) == """
                {"active-server":"primary","clock-thresholds":{"problem-ms":300000,"warning-ms":5000},\
                "domain-type":"domain","durable-head":41,"epoch":{"server":"primary","term":3},\
                "head":{"hash":"4f1c2a9e7b3d","number":42},"lag-revisions":2,"last-error":"peer mgmt-c: connection refused",\
                "last-error-at":{"iso-8601":"2027-01-15T07:59:50Z","posix":1799999990000},\
                "last-successful-sync":{"iso-8601":"2027-01-15T07:59:59Z","posix":1799999999000},"mode":"standby",\
                "mode-since":{"iso-8601":"2027-01-15T05:13:20Z","posix":1799990000000},"name":"SMC User",\
                "problems":["no contact with the active primary (check that it runs, and `rampart sic status`); 2 revision(s) behind the last head primary reported"],\
                "rampart-last-applied":{"monotonic-ns":123456789,"revision":42},"replication-mode":"sync(2000ms)","role":"secondary",\
                "servers":[{"clock-offset-ms":null,"connected":false,"ha-state":"active","ip-address":"192.0.2.11","known-head":44,"lag-revisions":2,"lag-seconds":0,\
                "last-contact-ms-ago":12000,"last-successful-sync":{"iso-8601":"2027-01-15T07:59:45Z","posix":1799999985000},"name":"primary",\
                "rampart-sync-detail":"communication-error","rampart-sync-status":"communication-error","sync-state":"Communication Error"}],\
                "successfully-synced":false,"sync-status":"communication-error","this-server":"mgmt-b",\
                "uid":"41e821a0-3720-11e3-aa6e-0800200c9fde","writes-enabled":false,"writes-refusal":"this server is a standby of primary"}
                """)
    }

    /// A standby that never heard of its active: `lag-revisions` is there, and null.
    @Test func aStandbyThatNeverHeardOfItsActiveSendsANullLag() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let runtime = try runtime(active: false, in: directory)
        let report = HAStatusReport(sample(runtime, peers: []), serverRole: .secondary, links: HAPeerLinks(), ipAddress: { _ in nil }, now: Self.now)
        let fields = try #require(try JSONValue.parse(json(report)).objectValue)
        #expect(fields["lag-revisions"] == .null)
        #expect(fields["sync-status"] == "never-synchronized")
    }

    /// The report's JSON as the Web API sends it; reading it back gives the same report.
    func json(_ report: HAStatusReport) throws -> String {
        let json = try report.jsonValue()
        #expect(try HAStatusReport(json: json) == report, "the CLI reads back what the server sent")
        return json.canonicalString
    }
}
