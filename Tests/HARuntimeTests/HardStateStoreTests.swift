import Foundation
import HACore
import Logging
import Store
import Testing

@testable import HARuntime

@Suite("HARuntime: hard state persistence")
struct HardStateStoreTests {
    @Test func everyFieldSurvivesReopeningTheDatabase() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("rampart.sqlite").path
        let head = RevisionHead(number: 7, hash: "ab12")
        let state = HardState(
            epoch: Epoch(term: 3, server: "secondary"), role: .active, replicationMode: .sync(timeoutMilliseconds: 1_500),
            haStopped: true,
            peers: [PeerRecord(serverID: "primary", lastKnownHead: head, everSynchronized: true), PeerRecord(serverID: "third")],
            fullSyncProgress: FullSyncProgress(snapshotHead: head, chunkCount: 4, chunksApplied: 2),
            writesPaused: true, handover: HandoverRecord(target: "primary", switchoverID: 9, finalHead: head), takesWritesAtFirstStart: true,
            takeover: TakeoverRecord(epoch: Epoch(term: 2, server: "primary"), finalHead: head, takenInEpoch: Epoch(term: 3, server: "secondary")),
            journalReplacedFrom: 5)
        do {
            let store = try ManagementStore(path: path)
            #expect(try HardStateStore(store: store).load() == nil)
            try HardStateStore(store: store).save(state)
        }
        let reopened = try ManagementStore(path: path)
        #expect(try HardStateStore(store: reopened).load() == state)
    }

    @Test func theInitialEpochAndAsyncModeRoundTrip() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let state = HardState(role: .standby, peers: [PeerRecord(serverID: "primary")])
        try HardStateStore(store: store).save(state)
        #expect(try HardStateStore(store: store).load() == state)
        #expect(try HardStateStore(store: store).load()?.journalReplacedFrom == nil, "a journal never replaced stays so")
    }

    @Test func aRecordWrittenBeforeTakeoversAndReplacementsExistedReadsAsNoneAndAsReplaced() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let older =
            #"{"version":1,"epoch":{"term":2,"server":"primary"},"role":"active","replicationMode":"async","haStopped":false,"peers":[],"writesPaused":false}"#
        try store.setSetting(HardStateStore.settingKey, older)
        let state = try HardStateStore(store: store).load()
        #expect(state?.epoch == Epoch(term: 2, server: "primary") && state?.takeover == nil)
        // That server may have replaced any of its journal: nothing is concluded from what it holds.
        #expect(state?.journalReplacedFrom == 1)
        // A takeover naming no real epoch is no state this version wrote.
        try store.setSetting(
            HardStateStore.settingKey,
            older.replacingOccurrences(
                of: #""writesPaused":false}"#,
                with:
                    #""writesPaused":false,"takeover":{"epoch":{"term":5,"server":""},"finalHead":{"number":1,"hash":"a"},"takenInEpoch":{"term":6,"server":"x"}}}"#
            ))
        #expect(throws: HARuntimeError.self) { try HardStateStore(store: store).load() }
    }

    @Test func anUnreadableStoredStateIsAnErrorNotAFreshStart() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        try store.setSetting(HardStateStore.settingKey, #"{"version": 99}"#)
        #expect(throws: HARuntimeError.self) { try HardStateStore(store: store).load() }
    }
}

@Suite("HARuntime: start")
struct HARuntimeStartTests {
    @Test func aBootstrappedPrimaryPersistsItsEpochAndTakesWritesBeforeItsFirstTick() throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        try publishHost(store, name: "a")
        let runtime = try HARuntime(
            configuration: HAConfiguration(serverID: "primary", peers: []), store: store, bootstrapActive: true,
            snapshotDirectory: directory.appendingPathComponent("snapshots"),
            exportDirectory: directory.appendingPathComponent("exports"), logger: Logger(label: "test"), send: { _ in })
        #expect(try HardStateStore(store: store).load()?.epoch == Epoch(term: 1, server: "primary"))
        #expect(runtime.writesEnabled)
        #expect(runtime.status.head.number == 1, "the journal was loaded from the store")
        let next = try nextHostRevision(store, name: "b")
        _ = try runtime.commit(next) { try store.append(next) }
        #expect(runtime.status.head == RevisionHead(number: 2, hash: next.hash))

        // A revision from another epoch is refused before it reaches the store.
        let foreign = try nextHostRevision(store, name: "c", epoch: .init(term: 7, server: "other"))
        #expect(throws: HAWriteRefused.self) { try runtime.commit(foreign) { try store.append(foreign) } }
        #expect(try store.head()?.number == 2)
    }
}
