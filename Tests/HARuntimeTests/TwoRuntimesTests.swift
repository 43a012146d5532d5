import Foundation
import HACore
import Logging
import ManagementModel
import Store
import Synchronization
import Testing

@testable import HARuntime

/// Two runtimes on real SQLite files, their messages handed straight to each other (the SIC channel is
/// exercised by the end-to-end tests): full sync of a new standby, delta sync, restart catch-up.
@Suite("HARuntime: two servers in one process")
struct TwoRuntimesTests {
    final class Pair: Sendable {
        let primaryStore: ManagementStore
        let secondaryStore: ManagementStore
        let directory: URL
        let links = Links()

        init() throws {
            directory = temporaryDirectory()
            primaryStore = try ManagementStore(path: directory.appendingPathComponent("primary.sqlite").path)
            secondaryStore = try ManagementStore(path: directory.appendingPathComponent("secondary.sqlite").path)
        }

        /// One host published on the primary, and both runtimes made and attached (not running yet).
        func seededPrimaryAndSecondary(limits: HALimits = HALimits()) throws -> (primary: HARuntime, secondary: HARuntime) {
            try publishHost(primaryStore, name: "seed")
            let primary = try runtime("primary", peer: "secondary", store: primaryStore, active: true, limits: limits)
            links.attach("primary", primary)
            let secondary = try runtime("secondary", peer: "primary", store: secondaryStore, active: false, limits: limits)
            links.attach("secondary", secondary)
            return (primary, secondary)
        }

        /// The seeded pair, running until synchronized: the primary in `group`, the standby in the task
        /// returned (which a test may stop).
        func synchronized(in group: inout ThrowingTaskGroup<Void, any Error>) async throws -> (
            primary: HARuntime, standbyRun: Task<Void, Never>
        ) {
            let (primary, secondary) = try seededPrimaryAndSecondary()
            group.addTask { await primary.run() }
            let standbyRun = Task { await secondary.run() }
            #expect(try await eventually { primary.status.peers.first?.status == .synchronized })
            return (primary, standbyRun)
        }

        func runtime(_ name: ServerID, peer: ServerID, store: ManagementStore, active: Bool, limits: HALimits = HALimits()) throws -> HARuntime {
            let links = links
            return try HARuntime(
                configuration: HAConfiguration(serverID: name, peers: [peer], limits: limits), store: store, bootstrapActive: active,
                snapshotDirectory: directory.appendingPathComponent("\(name)-snapshots"),
                exportDirectory: directory.appendingPathComponent("\(name)-exports"),
                logger: Logger(label: "test.\(name)"),
                send: { envelope in links.deliver(envelope, from: name) })
        }
    }

    /// Routes envelopes to whichever runtime currently plays each server.
    final class Links: Sendable {
        private let runtimes = Mutex<[ServerID: HARuntime]>([:])
        func attach(_ id: ServerID, _ runtime: HARuntime?) { runtimes.withLock { $0[id] = runtime } }
        func deliver(_ envelope: Envelope, from sender: ServerID) {
            runtimes.withLock { $0[envelope.to] }?.deliver(from: sender, envelope.message)
        }
    }

    @Test func aNewStandbyIsFullySyncedThenFollowsByDeltaAndCatchesUpAfterARestart() async throws {
        let pair = try Pair()
        defer { try? FileManager.default.removeItem(at: pair.directory) }
        for name in ["a", "b", "c"] { try publishHost(pair.primaryStore, name: name) }

        let primary = try pair.runtime("primary", peer: "secondary", store: pair.primaryStore, active: true)
        pair.links.attach("primary", primary)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await primary.run() }
            var secondary = try pair.runtime("secondary", peer: "primary", store: pair.secondaryStore, active: false)
            pair.links.attach("secondary", secondary)
            let firstRun = Task { [secondary] in await secondary.run() }

            #expect(try await eventually { primary.writesEnabled })
            #expect(try await eventually { try pair.secondaryStore.head()?.hash == pair.primaryStore.head()?.hash })
            #expect(pair.secondaryStore.reader.objects(named: "c").count == 1)
            #expect(try await eventually { primary.status.peers.first?.status == .synchronized })

            // Delta: a publish on the active reaches the standby without any full sync.
            let d = try nextHostRevision(pair.primaryStore, name: "d")
            _ = try primary.commit(d) { try pair.primaryStore.append(d) }
            #expect(try await eventually { pair.secondaryStore.reader.objects(named: "d").count == 1 })

            // Restart the standby while the active publishes: it catches up from its own head.
            firstRun.cancel()
            await firstRun.value
            pair.links.attach("secondary", nil)
            let e = try nextHostRevision(pair.primaryStore, name: "e")
            _ = try primary.commit(e) { try pair.primaryStore.append(e) }
            secondary = try pair.runtime("secondary", peer: "primary", store: pair.secondaryStore, active: false)
            pair.links.attach("secondary", secondary)
            group.addTask { [secondary] in await secondary.run() }
            #expect(try await eventually { pair.secondaryStore.reader.objects(named: "e").count == 1 })
            #expect(try pair.secondaryStore.verifyJournal() == nil)
            // A standby refuses to commit, and says who is active; nothing reaches its store.
            let refused = try nextHostRevision(pair.secondaryStore, name: "f")
            #expect(throws: HAWriteRefused.self) { try secondary.commit(refused) { try pair.secondaryStore.append(refused) } }
            #expect(pair.secondaryStore.reader.objects(named: "f").isEmpty)
            #expect(secondary.status.role == .standby)
            #expect(secondary.writeRefusal?.contains("primary") == true)
            group.cancelAll()
        }
    }

    /// The active's core holds 4 revisions individually: a standby that was down while 10 were published
    /// is behind its compacted base, and a full sync (not a delta it could no longer list) brings it level.
    @Test func aStandbyBehindTheActivesCompactedJournalIsBroughtLevelByAFullSync() async throws {
        let pair = try Pair()
        defer { try? FileManager.default.removeItem(at: pair.directory) }
        var limits = HALimits()
        limits.journalRevisionsHeldMax = 4
        let (primary, secondary) = try pair.seededPrimaryAndSecondary(limits: limits)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await primary.run() }
            let firstRun = Task { await secondary.run() }
            #expect(try await eventually { primary.status.peers.first?.status == .synchronized })
            firstRun.cancel()
            await firstRun.value
            pair.links.attach("secondary", nil)
            let standbyHead = try #require(try pair.secondaryStore.head())

            for index in 0..<10 {
                let revision = try nextHostRevision(pair.primaryStore, name: "while-down-\(index)")
                _ = try primary.commit(revision) { try pair.primaryStore.append(revision) }
            }
            let restarted = try pair.runtime("secondary", peer: "primary", store: pair.secondaryStore, active: false, limits: limits)
            pair.links.attach("secondary", restarted)
            group.addTask { await restarted.run() }
            #expect(try await eventually { try pair.secondaryStore.head()?.hash == pair.primaryStore.head()?.hash })
            #expect(try pair.primaryStore.head().map { $0.number - standbyHead.number } == 10)
            #expect(pair.secondaryStore.reader.objects(named: "while-down-9").count == 1)
            #expect(try pair.secondaryStore.verifyJournal() == nil)
            #expect(try await eventually { primary.status.peers.first?.status == .synchronized })
            group.cancelAll()
        }
    }

    /// A collision whose common revision lies under the base the old active's core compacted its journal
    /// to (it holds two revisions individually): `ha export-divergent` reads every divergent revision from
    /// the store (it asked the core's journal for revisions under its base, a trap that took the server
    /// down), and resolving it keeping the peer exports them all, drops them and resynchronizes. Under
    /// its base the old active cannot show the hashes the active's fork probe asks for, so the common
    /// point found may lie lower than the true one (here #0, not #1): the export then holds a shared
    /// revision too, which comes back from the active.
    @Test func aCollisionUnderACompactedBaseExportsEveryDivergentRevision() async throws {
        let pair = try Pair()
        defer { try? FileManager.default.removeItem(at: pair.directory) }
        var limits = HALimits()
        limits.journalRevisionsHeldMax = 2
        let (primary, secondary) = try pair.seededPrimaryAndSecondary(limits: limits)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await primary.run() }
            group.addTask { await secondary.run() }
            #expect(try await eventually { primary.status.peers.first?.status == .synchronized })

            // A partition; the secondary is promoted by force and both sides publish.
            pair.links.attach("primary", nil)
            pair.links.attach("secondary", nil)
            #expect(try await eventually { secondary.admin(.promote(dryRun: false, force: true)).refusedCode == nil })
            #expect(try await eventually { secondary.writesEnabled })
            let theirs = try nextHostRevision(pair.secondaryStore, name: "theirs", epoch: .init(term: secondary.status.epoch.term, server: "secondary"))
            _ = try secondary.commit(theirs) { try pair.secondaryStore.append(theirs) }
            var ours: [Revision] = []
            for index in 0..<3 {
                let revision = try nextHostRevision(pair.primaryStore, name: "ours\(index)")
                _ = try primary.commit(revision) { try pair.primaryStore.append(revision) }
                ours.append(revision)
            }

            // Healed: the primary, fenced by the higher epoch, is a standby in collision after #1.
            pair.links.attach("primary", primary)
            pair.links.attach("secondary", secondary)
            #expect(try await eventually { primary.status.link == .collision })
            let divergent = try #require(try primary.divergentRevisions())
            let headNumber = try #require(try pair.primaryStore.head()?.number)
            #expect(divergent.commonNumber <= 1)
            #expect(divergent.payloads.count == Int(headNumber - divergent.commonNumber), "every stored revision after the common one")
            #expect(ours.allSatisfy { divergent.payloads.contains($0.json.canonicalBytes) }, "each divergent revision is exported")

            #expect(primary.admin(.resolveCollision(keep: .peer)).refusedCode == nil)
            let export = try #require(primary.lastExport)
            let lines = try String(contentsOfFile: export, encoding: .utf8).split(separator: "\n").map { Array($0.utf8) }
            #expect(lines == divergent.payloads, "the resolution's export holds the same revisions")
            #expect(try await eventually { try pair.primaryStore.head()?.hash == pair.secondaryStore.head()?.hash })
            #expect(pair.primaryStore.reader.objects(named: "theirs").count == 1 && pair.primaryStore.reader.objects(named: "ours0").isEmpty)
            #expect(try pair.primaryStore.verifyJournal() == nil)
            group.cancelAll()
        }
    }

    /// Applying a large revision is seconds of SQLite work: a standby does it on its runtime's own
    /// thread, never on the thread that delivers the message (a SIC channel's task, on Swift
    /// concurrency's threads, which two such applies once held whole). Here the active's commit delivers
    /// straight into the standby: before, the standby applied it inside that call.
    @Test func aStandbyAppliesALargeRevisionOnItsOwnThreadNotTheDeliverersOne() async throws {
        let pair = try Pair()
        defer { try? FileManager.default.removeItem(at: pair.directory) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            let (primary, standbyRun) = try await pair.synchronized(in: &group)
            // The standby's inbox is not read from now on: what is not applied inline waits there.
            standbyRun.cancel()
            await standbyRun.value

            let small = try nextHostRevision(pair.primaryStore, name: "small")
            _ = try primary.commit(small) { try pair.primaryStore.append(small) }
            #expect(pair.secondaryStore.reader.objects(named: "small").count == 1, "a small revision is applied at once")

            var large = host("large", uid: "uid-large")
            large.fields["comments"] = .string(String(repeating: "x", count: HARuntimeLimits.inlinePayloadBytesMax + 1))
            let revision = Revision(
                after: try pair.primaryStore.head(), epoch: .init(term: 1, server: "primary"), publishedAtMilliseconds: 10,
                author: "alice", sessionUID: "s", sessionName: "", changes: [.upsert(large)])
            _ = try primary.commit(revision) { try pair.primaryStore.append(revision) }
            #expect(pair.secondaryStore.reader.objects(named: "large").count == 0, "applied on the deliverer's thread")

            // The standby's runtime, run again (as after a restart), applies it.
            let restarted = try pair.runtime("secondary", peer: "primary", store: pair.secondaryStore, active: false)
            pair.links.attach("secondary", restarted)
            group.addTask { await restarted.run() }
            #expect(try await eventually { pair.secondaryStore.reader.objects(named: "large").count == 1 })
            group.cancelAll()
        }
    }

    /// A power loss on the active after it sent a publish and before its fsync: the active comes back
    /// without the revision its standby applied. The standby drops it (no publish of it was answered)
    /// and follows the active's new revision under the same number: no collision, nothing exported.
    @Test func aStandbyDropsARevisionItsActiveLostBeforeItsFsync() async throws {
        try await standbyDropsWhatItsActiveLost(lostCount: 1, limits: HALimits())
    }

    /// The same with three lost revisions and cores that hold at most two revisions individually: the standby's core
    /// compacted its journal past the last revision it shares with the active, and drops the lost ones
    /// with the active's hash of that revision (before, it ignored the discard and never synchronized).
    @Test func aStandbyWhoseCoreCompactedPastTheForkDropsWhatItsActiveLost() async throws {
        var limits = HALimits()
        limits.journalRevisionsHeldMax = 2
        try await standbyDropsWhatItsActiveLost(lostCount: 3, limits: limits)
    }

    func standbyDropsWhatItsActiveLost(lostCount: Int, limits: HALimits) async throws {
        let pair = try Pair()
        defer { try? FileManager.default.removeItem(at: pair.directory) }
        let (primary, secondary) = try pair.seededPrimaryAndSecondary(limits: limits)
        try await withThrowingTaskGroup(of: Void.self) { group in
            let activeRun = Task { await primary.run() }
            group.addTask { await secondary.run() }
            #expect(try await eventually { primary.status.peers.first?.status == .synchronized })

            // What the primary's disk holds after the power loss: the database as it was before the publish.
            let diskAfterPowerLoss = pair.directory.appendingPathComponent("primary-after-power-loss.sqlite").path
            try pair.primaryStore.copyDatabase(to: diskAfterPowerLoss)
            var lost: [Revision] = []
            for index in 0..<lostCount {
                let revision = try nextHostRevision(pair.primaryStore, name: "lost\(index)")
                _ = try primary.commit(revision) { try pair.primaryStore.appendVisible(revision) }
                lost.append(revision)
            }
            #expect(try await eventually { pair.secondaryStore.reader.objects(named: "lost\(lostCount - 1)").count == 1 })

            activeRun.cancel()
            await activeRun.value
            pair.links.attach("primary", nil)
            let restartedStore = try ManagementStore(path: diskAfterPowerLoss)
            let restarted = try pair.runtime("primary", peer: "secondary", store: restartedStore, active: false, limits: limits)
            pair.links.attach("primary", restarted)
            group.addTask { await restarted.run() }
            #expect(try await eventually { restarted.writesEnabled })
            let kept = try nextHostRevision(restartedStore, name: "kept")
            #expect(kept.number == lost[0].number)
            _ = try restarted.commit(kept) { try restartedStore.appendVisible(kept) }

            #expect(try await eventually { pair.secondaryStore.reader.objects(named: "kept").count == 1 })
            for index in 0..<lostCount { #expect(pair.secondaryStore.reader.objects(named: "lost\(index)").isEmpty) }
            #expect(try pair.secondaryStore.head()?.hash == restartedStore.head()?.hash)
            #expect(try pair.secondaryStore.verifyJournal() == nil)
            #expect(try await eventually { restarted.status.peers.first?.status == .synchronized })
            #expect(secondary.status.link == .delta)
            let exports = pair.directory.appendingPathComponent("secondary-exports").path
            #expect((try? FileManager.default.contentsOfDirectory(atPath: exports))?.isEmpty ?? true, "nothing exported")
            group.cancelAll()
        }
    }

    @Test func syncModeAcknowledgesOnlyWhatAStandbyHoldsAndTimesOutWithoutOne() async throws {
        let pair = try Pair()
        defer { try? FileManager.default.removeItem(at: pair.directory) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            let (primary, standbyRun) = try await pair.synchronized(in: &group)
            // A timeout no loaded test machine reaches while the standby is there.
            #expect(primary.admin(.setReplicationMode(.sync(timeoutMilliseconds: 60_000))).refusedCode == nil)

            let held = try nextHostRevision(pair.primaryStore, name: "held")
            #expect(try primary.commit(held) { try pair.primaryStore.append(held) }, "sync mode: the publish waits")
            #expect(await primary.awaitReplication(revision: held.number) == .acknowledged)
            #expect(pair.secondaryStore.reader.objects(named: "held").count == 1, "acknowledged means the standby holds it")

            // Without the standby the publish is committed but reported unprotected after the timeout.
            standbyRun.cancel()
            await standbyRun.value
            pair.links.attach("secondary", nil)
            #expect(primary.admin(.setReplicationMode(.sync(timeoutMilliseconds: 300))).refusedCode == nil)
            let alone = try nextHostRevision(pair.primaryStore, name: "alone")
            #expect(try primary.commit(alone) { try pair.primaryStore.append(alone) })
            #expect(await primary.awaitReplication(revision: alone.number) == .timedOut)
            #expect(pair.primaryStore.reader.objects(named: "alone").count == 1)
            group.cancelAll()
        }
    }
}
