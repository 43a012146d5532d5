import HACore
import SimulationKit
import Testing

// One scenario per rule of DESIGN.md §3 ("Management HA semantics"), named after the rule.

@Suite("DESIGN.md §3 rules")
struct RuleScenarioTests {
    @Test("Add a standby: never-synchronized, then full-sync, then synchronized")
    func addStandby() {
        scenario("add a standby") {
            crash("C")
            publish(20, on: "A")
            restart("C")
            settle()
            expectStatusHistory(on: "A", of: "C", ["never-synchronized", "full-sync", "synchronized"])
            expect(.synchronized, on: "C")
        }
        // A standby that was never part of the group: added on the active, it starts never-synchronized.
        scenario("add a standby by membership", servers: ["A", "B", "C"]) {
            admin(.removePeer("C"), on: "A")
            expect(.status(of: "B", kind: "synchronized"), on: "A")
            admin(.addPeer("C"), on: "A")
            expectReason(on: "A", contains: "added C")
            wait(ticks: 1)
            expect(.status(of: "C", kind: "never-synchronized"), on: "A")
        }
    }

    @Test("Delta sync on every publish, event-triggered (not timed)")
    func deltaSyncOnPublish() {
        scenario("delta sync on every publish") {
            publish(1, on: "A")
            // One tick to send, one to deliver, at most two to make it durable: well before any timer.
            wait(ticks: 4)
            expect(.head(1), on: "B")
            expect(.head(1), on: "C")
            publish(5, on: "A")
            wait(ticks: 4)
            expect(.synchronized, on: "B")
            expect(.status(of: "B", kind: "synchronized"), on: "A")
        }
    }

    @Test("A gap or a hash mismatch stops delta sync; revisions are never applied out of order")
    func gapStopsDeltaSync() {
        let a: ServerID = "A"
        var standby = HAStateMachine(configuration: HAConfiguration(serverID: "B", peers: ["A"]))
        let epoch = Epoch(term: 1, server: a)
        _ = standby.step(.receive(from: a, message: HAMessage(epoch: epoch, body: .epochAnnouncement(head: .empty))))
        let first = revision(1, previous: "", epoch: epoch)
        let second = revision(2, previous: first.hash, epoch: epoch)
        // The active verified our (empty) journal: an empty append establishes delta sync.
        _ = standby.step(.receive(from: a, message: HAMessage(epoch: epoch, body: .append(previous: .empty, revisions: [], activeHead: .empty))))
        #expect(standby.followsActiveVerified)

        let gap = standby.step(
            .receive(from: a, message: HAMessage(epoch: epoch, body: .append(previous: first.head, revisions: [second], activeHead: second.head))))
        #expect(gap.effects.isEmpty, "nothing is applied after a gap")
        #expect(gap.messages.contains { if case .ack(_, _, true) = $0.message.body { true } else { false } })
        #expect(standby.journal.head == .empty)

        var broken = second
        broken.number = 1
        let mismatch = standby.step(
            .receive(from: a, message: HAMessage(epoch: epoch, body: .append(previous: .empty, revisions: [broken], activeHead: broken.head))))
        #expect(mismatch.effects.isEmpty, "a revision that does not link to our head is not applied")
        #expect(mismatch.reason.contains(.reconnecting(.hashChainBroken(number: 1))))
        #expect(mismatch.reason.description.contains("hash chain"))
        #expect(mismatch.messages.contains { if case .hello = $0.message.body { true } else { false } })
    }

    @Test("What is synced: the published revision, payload byte for byte (HACore never interprets it)")
    func payloadIsCarriedOpaque() {
        let cluster = SimulatedCluster(servers: ["A", "B"], seed: 7)
        cluster.bootstrap(active: "A")
        cluster.run(ticks: 100)
        for _ in 0..<3 {
            cluster.publish(on: "A")
            cluster.run(ticks: 1)
        }
        cluster.run(ticks: 50)
        #expect(cluster.core("B")!.journal.revisions == cluster.core("A")!.journal.revisions)
        #expect(cluster.diskJournal("B") == cluster.diskJournal("A"))
    }

    @Test("Replication modes: sync acknowledges a publish only once a standby holds it durably, and times out explicitly")
    func replicationModes() {
        scenario("sync mode") {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 500)), on: "A")
            publish(1, on: "A")
            wait(ticks: 10)
            expectEffect(on: "A", "acknowledge publish #1") { $0 == .publishAcknowledged(revision: 1) }
            isolate("A")
            publish(1, on: "A")
            wait(ticks: 40)
            expectNoEffect(on: "A", "acknowledge publish #2 while isolated") { $0 == .publishAcknowledged(revision: 2) }
            wait(ticks: 20)
            expectEffect(on: "A", "report publish #2 timed out") { $0 == .publishTimedOut(revision: 2) }
            expectLogged(on: "A", "committed on the active only")
            heal()
            settle()
            expect(.synchronized, on: "B")
        }
        // Found by the contract fuzz (seed 10938): with HA stopped, a sync-mode publish waited forever,
        // for acknowledgements a stopped server ignores. The simulator's new invariant (every waiting
        // publish answered once its timeout passed) then found the forced promotion below.
        scenario("with HA stopped, a sync-mode publish is answered at once, unconfirmed") {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 600_000)), on: "A")
            isolate("A")
            publish(1, on: "A")
            wait(ticks: 1)
            admin(.haStop, on: "A")
            expectEffect(on: "A", "answer the publish waiting when HA stopped") { $0 == .publishTimedOut(revision: 1) }
            expectLogged(on: "A", "HA is stopped here: 1 publish(es) answered at once")
            publish(1, on: "A")
            expectEffect(on: "A", "answer a publish made while HA is stopped") { $0 == .publishTimedOut(revision: 2) }
            heal()
            admin(.haStart, on: "A")
            settle()
            expect(.synchronized, on: "B")
            expect(.head(2), on: "B")
        }
        scenario("a forced promotion of a handing-over active answers the publishes of its old epoch") {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 600_000)), on: "A")
            settle()
            ScenarioStep(describe: "clog A -> B and A -> C") { run in
                run.cluster.clog(from: "A", to: "B")
                run.cluster.clog(from: "A", to: "C")
            }
            publish(1, on: "A")
            promote("C")
            wait(ticks: 1)
            expect(.writesDisabled, on: "A")
            promote("A", force: true)
            expectReason(on: "A", contains: "forced promotion during a hand-over to C")
            expectEffect(on: "A", "answer the publish of the old epoch") {
                if case .publishTimedOut = $0 { true } else { false }
            }
            expectLogged(on: "A", "publish(es) of the previous epoch answered unconfirmed")
            heal()
            settle()
            expectConverged()
        }
        scenario("standbys learn the mode from the active") {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 800)), on: "B")
            expectReason(on: "B", contains: "set on the active")
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 800)), on: "A")
            wait(ticks: 20)
            expectLogged(on: "C", "replication mode is now sync(800ms)")
        }
    }

    @Test("Read-only standby: writes fail with an error naming the active")
    func readOnlyStandby() {
        scenario("read-only standby") {
            publishRefused(on: "B")
            expect(.writesDisabled, on: "B")
        }
        let cluster = SimulatedCluster(servers: ["A", "B"], seed: 1)
        cluster.bootstrap(active: "A")
        cluster.run(ticks: 50)
        #expect(cluster.core("B")!.writeRefusal?.contains("the active server is A") == true)
        #expect(cluster.core("A")!.writeRefusal == nil)
    }

    @Test("Promotion dry run reports lag, last contact and what would be lost")
    func promotionDryRun() {
        scenario("dry run while the active is reachable") {
            dryRunPromote("B")
            expectReason(on: "B", contains: "switchover")
            expectReason(on: "B", contains: "nothing is lost")
            expect(.standby, on: "B")
        }
        scenario("dry run while the active is unreachable") {
            cut(from: "A", to: "B")
            publish(3, on: "A")
            wait(ticks: 150)
            dryRunPromote("B")
            expectReason(on: "B", contains: "unreachable")
            expectReason(on: "B", contains: "last contact")
            expectReason(on: "B", contains: "would be lost")
            expectEffect(on: "B", "report that revisions may be lost") {
                if case .promotionReport(let report) = $0 { report.mayLoseRevisions && report.path == .failover } else { false }
            }
            expect(.standby, on: "B")
        }
    }

    @Test("Switchover when the active is reachable: the active stops writes, flushes, hands over; nothing is lost")
    func switchover() {
        scenario("switchover loses nothing") {
            publish(10, on: "A")
            // Slow the network so revisions are still in flight when the promotion starts.
            network(NetworkProfile(delayTicksMax: 5))
            publish(5, on: "A")
            promote("B")
            expectReason(on: "B", contains: "switchover requested")
            settle()
            expect(.active, on: "B")
            expect(.writesEnabled, on: "B")
            expect(.head(15), on: "B")
            expect(.epochTerm(2), on: "B")
            expect(.standby, on: "A")
            expect(.synchronized, on: "A")
            expect(.synchronized, on: "C")
            expectLogged(on: "B", "nothing lost")
            expectEffect(on: "B", "enable writes without force") { $0 == .enableWrites(epoch: Epoch(term: 2, server: "B"), forced: false) }
        }
    }

    @Test("Failover when the active is unreachable: refused if revisions may be lost, unless forced; says how many and since when")
    func failover() {
        scenario("async failover needs force") {
            publish(2, on: "A")
            wait(ticks: 10)
            isolate("A")
            wait(ticks: 150)
            promote("B")
            expectReason(on: "B", contains: "failover refused")
            expectReason(on: "B", contains: "async mode")
            expectEffect(on: "B", "refuse with may-lose-revisions") { $0 == .commandRefused(.mayLoseRevisions) }
            expect(.standby, on: "B")
            promote("B", force: true)
            expectReason(on: "B", contains: "forced promotion")
            expect(.active, on: "B")
            expect(.writesEnabled, on: "B")
            wait(ticks: 20)
            expect(.synchronized, on: "C")
        }
        scenario("sync failover asks every other standby first") {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 1_000)), on: "A")
            publish(3, on: "A")
            wait(ticks: 10)
            isolate("A")
            wait(ticks: 150)
            promote("B")
            expectReason(on: "B", contains: "asking every other standby")
            wait(ticks: 10)
            expect(.active, on: "B")
            expectLogged(on: "B", "none holds revisions we lack")
        }
        scenario("sync failover refused when another standby is ahead") {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 1_000)), on: "A")
            wait(ticks: 20)
            cut(from: "A", to: "B")
            publish(3, on: "A")
            wait(ticks: 10)
            expectEffect(on: "A", "acknowledge #3 (held by C)") { $0 == .publishAcknowledged(revision: 3) }
            isolate("A")
            wait(ticks: 150)
            promote("B")
            wait(ticks: 10)
            expect(.standby, on: "B")
            expectLogged(on: "B", "C holds 3 revision(s) we lack")
            promote("C")
            wait(ticks: 10)
            expect(.active, on: "C")
            expect(.head(3), on: "C")
        }
    }

    @Test("Old active returns: demotes at once and catches up by delta when its journal is a prefix")
    func oldActiveReturnsPrefix() {
        scenario("old active returns with a prefix journal") {
            publish(2, on: "A")
            wait(ticks: 10)
            isolate("A")
            promote("B", force: true)
            publish(4, on: "B")
            heal()
            wait(ticks: 30)
            expect(.standby, on: "A")
            expect(.writesDisabled, on: "A")
            settle()
            expect(.synchronized, on: "A")
            expect(.head(6), on: "A")
            expectLogged(on: "A", "demoted to standby at once")
            expectConverged()
        }
    }

    @Test("Old active with divergent revisions: both report collision, revisions kept for export, never overwritten silently")
    func oldActiveDivergentCollision() {
        scenario("old active with divergent revisions enters collision") {
            isolate("A")
            publish(3, on: "A")
            promote("B", force: true)
            publish(1, on: "B")
            heal()
            settle()
            expect(.collision(divergent: 3), on: "A")
            expect(.head(3), on: "A")
            expect(.status(of: "A", kind: "collision"), on: "B")
            expectNoEffect(on: "A", "drop revisions before the administrator resolves") {
                if case .truncateJournal = $0 { true } else { false }
            }
            resolveCollision(on: "A", keep: .peer)
            expectReason(on: "A", contains: "exported and dropped our 3 divergent revision(s)")
            expectEffect(on: "A", "export the 3 divergent revisions") {
                if case .exportDivergent(_, let revisions, nil) = $0 { revisions.count == 3 } else { false }
            }
            settle()
            expect(.synchronized, on: "A")
            expect(.head(1), on: "A")
            expectConverged()
        }
    }

    /// A (active) and B hold revisions 1 and 2; A publishes #3, B applies it, A loses it in a power loss.
    static var activeLosesRevision3BeforeItsFsync: [ScenarioStep] {
        [publish(2, on: "A"), settle(), publishThenCrashBeforeItsFsync(on: "A"), wait(ticks: 5), expect(.head(3), on: "B")]
    }

    @Test("Back to async while a standby that learned sync mode never reported it: publishes still wait for a standby")
    func backToAsyncCountsEveryStandbyAsInSyncUntilItReports() {
        scenario("a switch back to async does not trust a report older than the standby's mode", servers: ["A", "B"]) {
            settle()
            // A stops hearing B, then turns sync mode on: B learns it, A never hears B say so.
            cut(from: "B", to: "A")
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 1_000)), on: "A")
            wait(ticks: 30)
            cut(from: "A", to: "B")
            admin(.setReplicationMode(.async), on: "A")
            expectReason(on: "A", contains: "until every standby holds it, publishes still wait for one")
            heal()
            settle()
            admin(.setReplicationMode(.async), on: "A")
            // B said async since: the mode takes effect at once.
            expectReason(on: "A", contains: "replication mode set to async")
            ScenarioStep(describe: "A's publishes no longer wait") { run in
                let reason = run.lastReason["A"].flatMap { $0.map { "\($0)" } } ?? ""
                run.check(!reason.contains("still wait"), "got \"\(reason)\"", at: #_sourceLocation)
            }
            expectConverged()
        }
    }

    @Test("A demoted active cut off from its peers is promoted again: writes wait until every peer answers, and a forced promotion elsewhere fences it")
    func pausedActiveWaitsForEveryPeerBeforeWritesComeBack() {
        scenario("a paused active out of reach does not take writes back on its own say", servers: ["A", "B", "C"]) {
            publish(2, on: "A")
            settle()
            admin(.demote, on: "A")
            isolate("A")
            wait(ticks: 50)
            promote("C", force: true)
            publish(1, on: "C")
            promote("A")
            expectReason(on: "A", contains: "once B, C answer with no higher epoch")
            wait(ticks: 50)
            expect(.writesDisabled, on: "A")
            publishRefused(on: "A")
            heal()
            settle()
            expect(.standby, on: "A")
            expect(.head(3), on: "A")
            expectConverged()
        }
    }

    /// With `publishedAfterRestart` 0, the old active hands over at #2, below the revision the standby holds.
    @Test(
        "A standby that never heard its active's discard (a one-way cut) drops the lost publish when the active it switched over to says so, no collision",
        arguments: [0, 2])
    func switchoverTargetTellsAStandbyToDropWhatTheOldActiveLost(publishedAfterRestart: Int) {
        scenario("a switchover target knows what the old active lost", servers: ["A", "B", "C"]) {
            Self.activeLosesRevision3BeforeItsFsync
            // B keeps #3 of 1/A, which A lost: A's "drop it" never reaches B.
            cut(from: "A", to: "B")
            restart("A")
            wait(ticks: 10)
            publishedAfterRestart > 0 ? [publish(publishedAfterRestart, on: "A")] : []
            settle()
            expect(.head(UInt64(2 + publishedAfterRestart)), on: "C")
            expect(.head(3), on: "B")
            promote("C")
            settle()
            expect(.active, on: "C")
            heal()
            settle()
            expectLogged(on: "C", "holds revisions of epoch 1/A after #2 that we do not: lost by A in a crash before their fsync")
            expectLogged(on: "B", "dropped our 1 revision(s) after #2")
            expectNoCollisionExport(on: "B")
            expect(.synchronized, on: "B")
            expect(.head(UInt64(2 + publishedAfterRestart)), on: "B")
            expectConverged()
        }
    }

    @Test("An active sends a publish before its fsync: if a crash loses it there, a standby holding it drops it (never answered), no collision")
    func activeLosesUnsyncedPublish() {
        scenario("active loses a sent, unsynced publish in a crash", servers: ["A", "B"]) {
            Self.activeLosesRevision3BeforeItsFsync
            restart("A")
            wait(ticks: 10)
            expect(.head(2), on: "A")
            publish(2, on: "A")
            settle()
            expectLogged(on: "A", "that we do not: lost by A in a crash before their fsync")
            expectLogged(on: "B", "dropped our 1 revision(s) after #2")
            expectEffect(on: "B", "drop the revision A lost") {
                if case .discardUnsyncedRevisions(after: 2) = $0 { true } else { false }
            }
            expectNoCollisionExport(on: "B")
            expect(.synchronized, on: "B")
            expect(.head(4), on: "B")
            expectConverged()
        }
    }

    /// A (active), B and C hold #1 and #2. #3 reaches C only, then A loses it before its fsync. C still
    /// reaches A (so A hears from every peer and takes writes again), but A's answer to C's hello (drop
    /// #3) never arrives: C keeps its #3 of epoch 1/A while A writes #3 and #4 again, which B holds.
    static var cKeepsTheRevision3ThatALostAndWroteAgain: [ScenarioStep] {
        [
            publish(2, on: "A"), settle(), cut(from: "A", to: "B"), publishThenCrashBeforeItsFsync(on: "A"), wait(ticks: 5),
            expect(.head(3), on: "C"), heal(), cut(from: "A", to: "C"), restart("A"), wait(ticks: 20), expect(.writesEnabled, on: "A"),
            publish(2, on: "A"), wait(ticks: 20), expect(.head(4), on: "B"), expect(.head(3), on: "C"),
        ]
    }

    @Test("Revisions an old active wrote again under the same numbers after losing them are a collision found by hash, not by epoch spans")
    func rewrittenNumbersAreACollisionFoundByHash() {
        scenario("a standby keeps a revision the active lost and wrote again; a later active finds it by hash", servers: ["A", "B", "C"]) {
            Self.cKeepsTheRevision3ThatALostAndWroteAgain
            isolate("A")
            promote("B", force: true)
            publish(1, on: "B")
            heal()
            settle()
            // C's #3 and B's #3 share the epoch span 1/A: only their hashes tell them apart.
            expect(.collision(divergent: 1), on: "C")
            resolveCollision(on: "C", keep: .peer)
            expectReason(on: "C", contains: "exported and dropped our 1 divergent revision(s) after #2")
            settle()
            expect(.synchronized, on: "C")
            expect(.synchronized, on: "A")
            expect(.head(5), on: "C")
            expectConverged()
        }
    }

    @Test(
        "A standby away while its active lost a revision before the fsync drops it when that active, back by switchovers in a later epoch, says so: no collision"
    )
    func theLostRevisionsAuthorTellsAStandbyToDropItInALaterEpoch() {
        // Found by the simulator (seed 7031292): C kept #3 of 1/A, which A lost before its fsync and
        // wrote again; C heard nothing through the switchovers to B (2/B) and back to A (3/A). A is
        // the author of 1/A and never dropped or replaced its journal: its #3 of 1/A is the one it
        // kept, and C's, another #3 of 1/A, one it lost (never answered).
        scenario("the author of an epoch meets, in a later epoch, a standby holding what it lost", servers: ["A", "B", "C"]) {
            Self.cKeepsTheRevision3ThatALostAndWroteAgain
            isolate("C")
            promote("B")
            wait(ticks: 50)
            expect(.writesEnabled, on: "B")
            publish(1, on: "B")
            wait(ticks: 20)
            promote("A")
            wait(ticks: 50)
            expect(.writesEnabled, on: "A")
            heal()
            settle()
            expectLogged(on: "C", "dropped our 1 revision(s) after #2")
            expectNoCollisionExport(on: "C")
            expect(.synchronized, on: "C")
            expect(.head(5), on: "C")
            expectConverged()
        }
    }

    @Test("A switch to async mode answers publishes without a standby only once every standby holds it")
    func asyncOnlyOnceEveryStandbyHoldsIt() {
        // Found by the simulator (seed 15323): the old active, cut off, switched to async and answered
        // publishes while the standbys, still in sync mode, failed over without force.
        scenario("an isolated active switches to async after a sync-mode failover", servers: ["A", "B", "C"]) {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 2_000)), on: "A")
            settle()
            isolate("A")
            wait(ticks: 150)
            promote("B")
            settle()
            expect(.active, on: "B")
            publish(1, on: "B")
            admin(.setReplicationMode(.async), on: "A")
            expectReason(on: "A", contains: "until every standby holds it, publishes still wait for one")
            publish(1, on: "A")
            wait(ticks: 300)
            expectEffect(on: "A", "report the publish as not protected") {
                if case .publishTimedOut = $0 { true } else { false }
            }
            heal()
            settle()
            expect(.standby, on: "A")
        }
        scenario("with every standby reachable, async answers at once") {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 2_000)), on: "A")
            settle()
            admin(.setReplicationMode(.async), on: "A")
            wait(ticks: 30)
            publish(1, on: "A")
            wait(ticks: 5)
            expectNoEffect(on: "A", "wait for a standby") {
                if case .publishTimedOut = $0 { true } else if case .publishAcknowledged = $0 { true } else { false }
            }
        }
    }

    @Test("A restarted active takes no write until every peer answered in no higher epoch (DESIGN.md §3)")
    func restartedActiveWaitsForItsPeers() {
        scenario("old active restarts while the promoted standby is unreachable", servers: ["A", "B"]) {
            publish(2, on: "A")
            settle()
            crash("A")
            promote("B", force: true)
            publish(1, on: "B")
            isolate("B")
            restart("A")
            wait(ticks: 100)
            expect(.active, on: "A")
            expect(.writesDisabled, on: "A")
            publishRefused(on: "A")
            dryRunPromote("A")
            expectReason(on: "A", contains: "writes stay off until B (not heard from since this restart)")
            promote("A")
            expectReason(on: "A", contains: "needs force")
            expect(.writesDisabled, on: "A")
            heal()
            settle()
            expect(.standby, on: "A")
            expect(.epochTerm(2), on: "A")
            expect(.synchronized, on: "A")
            expectConverged()
        }
        scenario("sync mode: the old active restarts and hears the new epoch from another standby", servers: ["A", "B", "C"]) {
            admin(.setReplicationMode(.sync(timeoutMilliseconds: 2_000)), on: "A")
            publish(2, on: "A")
            settle()
            crash("A")
            wait(ticks: 150)
            promote("B")
            settle()
            expect(.active, on: "B")
            publish(1, on: "B")
            isolate("B")
            restart("A")
            holdsThroughout("A takes no writes", ticks: 50) { !$0.writesEnabled("A") }
            expect(.standby, on: "A")
            expect(.epochTerm(2), on: "A")
        }
        // Found by the simulator (seeds 7037273, 9055298): C answered the restarted A, then was promoted
        // by force; A's writes came back on B's answer. What A answers then is what C's forced
        // promotion said it may lose (A was unreachable): both sides collide and are kept for export.
        scenario("a peer that answered a restarted active is promoted by force before the last peer answers", servers: ["A", "B", "C"]) {
            publish(2, on: "A")
            settle()
            crash("A")
            wait(ticks: 10)
            cut(from: "B", to: "A")
            restart("A")
            wait(ticks: 30)
            expect(.writesDisabled, on: "A")
            isolate("C")
            wait(ticks: 150)
            promote("C", force: true)
            expect(.writesEnabled, on: "C")
            publish(1, on: "C")
            heal()
            isolate("C")
            wait(ticks: 30)
            expect(.writesEnabled, on: "A")
            publish(1, on: "A")
            heal()
            settle()
            expect(.collision(divergent: 1), on: "A")
            expect(.collision(divergent: 1), on: "B")
            resolveCollision(on: "A", keep: .peer)
            resolveCollision(on: "B", keep: .peer)
            settle()
            expect(.head(3), on: "A")
            expectConverged()
        }
        scenario("a restarted active whose peers stay silent is promoted by force into a new epoch", servers: ["A", "B"]) {
            publish(1, on: "A")
            settle()
            crash("A")
            isolate("B")
            restart("A")
            wait(ticks: 100)
            expect(.writesDisabled, on: "A")
            promote("A", force: true)
            expectReason(on: "A", contains: "forced promotion of a restarted active")
            expect(.writesEnabled, on: "A")
            expect(.epochTerm(2), on: "A")
            heal()
            settle()
            expectConverged()
        }
    }

    @Test("A standby promoted by force that loses its last applied revision in a crash collides with the standby holding it: the force explains it")
    func forcedPromotionLosesAnUndurableTail() {
        // Found by the simulator (seed 40275730): B, forced, had applied #3 but not made it durable; it
        // crashed before writes came on and took them after its restart, at #2. C holds #3 of 1/A: a
        // collision, kept for export. The epoch is a forced one although its writes came on plainly.
        scenario("a forced promotion crashes before its journal is durable", servers: ["A", "B", "C"]) {
            publish(2, on: "A")
            settle()
            publish(1, on: "A")
            expect(.head(3), on: "B")
            promote("B", force: true)
            crash("B")
            wait(ticks: 50)
            restart("B")
            settle()
            expect(.active, on: "B")
            expect(.collision(divergent: 1), on: "C")
            resolveCollision(on: "C", keep: .peer)
            resolveCollision(on: "A", keep: .peer)
            settle()
            expectConverged()
        }
    }

    @Test("Resolve a collision keeping this server's data: it becomes active; the other side exports its own")
    func resolveKeepingLocal() {
        scenario("resolve collision keeping local data") {
            isolate("A")
            publish(3, on: "A")
            promote("B", force: true)
            publish(2, on: "B")
            heal()
            settle()
            expect(.collision(divergent: 3), on: "A")
            resolveCollision(on: "A", keep: .local)
            settle()
            expect(.active, on: "A")
            // B's data reached C too: both hold the revisions A lacks, and each exports its own.
            expect(.collision(divergent: 2), on: "B")
            expect(.collision(divergent: 2), on: "C")
            resolveCollision(on: "B", keep: .peer)
            resolveCollision(on: "C", keep: .peer)
            settle()
            expect(.head(3), on: "B")
            expectConverged()
        }
        scenario("resolve-collision without a collision is refused") {
            resolveCollision(on: "B", keep: .peer)
            expectReason(on: "B", contains: "not in collision")
        }
    }

    @Test("A server that sees a higher epoch never acts as active in the lower one again (fencing)")
    func fencing() {
        // Restarted as the active of epoch 1 (not its first start): it takes writes once B answered.
        var active = HAStateMachine(
            configuration: HAConfiguration(serverID: "A", peers: ["B"]),
            hardState: HardState(epoch: Epoch(term: 1, server: "A"), role: .active, peers: [PeerRecord(serverID: "B")]))
        _ = active.step(.tick(now: 0))
        let started = active.step(
            .receive(
                from: "B",
                message: HAMessage(
                    epoch: .initial,
                    body: .heartbeat(
                        .init(
                            head: .empty, durableHead: .empty, role: .standby, writesEnabled: false, haStopped: false,
                            replicationMode: .async, expectingHello: false)))))
        #expect(started.effects.contains(.enableWrites(epoch: Epoch(term: 1, server: "A"), forced: false)))
        let higher = Epoch(term: 2, server: "B")
        let fenced = active.step(
            .receive(
                from: "B",
                message: HAMessage(
                    epoch: higher,
                    body: .heartbeat(
                        .init(
                            head: .empty, durableHead: .empty, role: .active, writesEnabled: true, haStopped: false,
                            replicationMode: .async, expectingHello: false)))))
        #expect(fenced.persist?.epoch == higher, "the higher epoch is persisted with this very output")
        #expect(fenced.effects.first == .disableWrites)
        #expect(fenced.reason.description.contains("demoted to standby at once"))
        #expect(!active.writesEnabled && active.role == .standby)
        // A promote in the old epoch is impossible: any promotion raises above the epoch we saw.
        let again = active.step(.admin(.promote(dryRun: false, force: true)))
        #expect(again.persist!.epoch > higher)
        // Messages from a lower epoch are refused and answered with ours.
        let stale = active.step(.receive(from: "B", message: HAMessage(epoch: Epoch(term: 1, server: "A"), body: .switchoverRequest(switchoverID: 1))))
        #expect(stale.messages.count == 1)
        #expect(stale.messages[0].message.epoch == active.epoch)
        if case .epochAnnouncement = stale.messages[0].message.body {} else { Issue.record("expected an epoch announcement") }
        #expect(Epoch(term: 2, server: "A") < Epoch(term: 2, server: "B"))
        #expect(Epoch(term: 2, server: "B") < Epoch(term: 3, server: "A"))
    }

    @Test("Gateways follow the active: the epoch is a fencing token that only grows")
    func gatewaysFollowTheActive() {
        scenario("epochs only grow across promotions") {
            promote("B")
            settle()
            expect(.epochTerm(2), on: "A")
            expect(.epochTerm(2), on: "C")
            promote("C")
            settle()
            expect(.epochTerm(3), on: "A")
            expect(.active, on: "C")
            expectConverged()
        }
    }

    @Test("Automatic failover is off by default: a silent active is never replaced without a command")
    func noAutomaticFailover() {
        scenario("no automatic failover") {
            isolate("A")
            wait(ticks: 2_000)
            expect(.standby, on: "B")
            expect(.standby, on: "C")
            expect(.status(of: "A", kind: "communication-error"), on: "B")
            expectNoEffect(on: "B", "enable writes") { if case .enableWrites = $0 { true } else { false } }
        }
    }

    @Test("More than one standby: five servers switch over and converge")
    func moreThanOneStandby() {
        scenario("five servers", servers: ["A", "B", "C", "D", "E"]) {
            publish(5, on: "A")
            promote("D")
            settle()
            expect(.active, on: "D")
            publish(3, on: "D")
            settle()
            expectConverged()
            expect(.head(8), on: "E")
        }
    }

    @Test("ha stop and ha start: a stopped standby shows as ha-stopped and catches up after start")
    func haStopStart() {
        scenario("ha stop / start") {
            admin(.haStop, on: "B")
            wait(ticks: 20)
            expect(.status(of: "B", kind: "ha-stopped"), on: "A")
            publish(4, on: "A")
            wait(ticks: 20)
            expect(.head(0), on: "B")
            admin(.haStart, on: "B")
            settle()
            expect(.synchronized, on: "B")
            expect(.head(4), on: "B")
        }
    }

    @Test("Full sync on request, checksummed chunks, resumed from the last acknowledged chunk")
    func fullSyncResumes() {
        scenario("full sync on request") {
            publish(40, on: "A")
            settle()
            admin(.requestFullSync(standby: "B"), on: "A")
            expectReason(on: "A", contains: "full sync of B")
            settle()
            expect(.synchronized, on: "B")
            expectEffect(on: "B", "complete a full sync") { if case .completeFullSync = $0 { true } else { false } }
        }
        scenario("corrupted chunks are asked for again") {
            publish(100, on: "A")
            crash("C")
            network(NetworkProfile(corruptPerMillion: 500_000))
            admin(.requestFullSync(standby: "B"), on: "A")
            wait(ticks: 600)
            expect(.synchronized, on: "B")
            expectLogged(on: "B", "failed its checksum")
        }
        scenario("an interrupted full sync resumes") {
            crash("C")
            publish(100, on: "A")
            restart("C")
            waitUntil("C applied two chunks") { ($0.core("C")?.hardState.fullSyncProgress?.chunksApplied ?? 0) >= 2 }
            crash("C")
            wait(ticks: 5)
            restart("C")
            settle()
            expect(.synchronized, on: "C")
            expectLogged(on: "C", "starting at chunk 2")
        }
    }

    @Test("Full syncs at once share one snapshot; one whose snapshot is gone starts over at the active's head")
    func fullSyncSnapshots() {
        scenario("a second new standby gets the snapshot already going to the first") {
            crash("B")
            crash("C")
            publish(100, on: "A")
            restart("B")
            waitUntil("B receives a snapshot") { ($0.core("B")?.hardState.fullSyncProgress) != nil }
            restart("C")
            settle()
            expectLogged(on: "A", "the snapshot already going to B")
            expect(.synchronized, on: "B")
            expect(.synchronized, on: "C")
        }
        // The runtime builds a snapshot only at its head and keeps two: B's, cut off meanwhile, is
        // evicted by two later ones.
        scenario("a standby whose snapshot was evicted gets a new one", servers: ["A", "B", "C", "D"]) {
            crash("B")
            publish(100, on: "A")
            restart("B")
            waitUntil("B receives a snapshot") { ($0.core("B")?.hardState.fullSyncProgress) != nil }
            partition("A", "B")
            publish(5, on: "A")
            admin(.requestFullSync(standby: "C"), on: "A")
            publish(5, on: "A")
            admin(.requestFullSync(standby: "D"), on: "A")
            heal()
            settle()
            expectLogged(on: "A", "is no longer available")
            expect(.synchronized, on: "B")
            expectConverged()
        }
        // Over a network the active resends an unacknowledged chunk only after 10 s: a chunk lost
        // with a broken connection is sent again as soon as the new connection is up.
        scenario("a full sync cut by a broken connection goes on as soon as the link is back", limits: .overNetwork) {
            crash("B")
            publish(100, on: "A")
            restart("B")
            waitUntil("B receives a snapshot") { ($0.core("B")?.hardState.fullSyncProgress) != nil }
            partition("A", "B")
            wait(ticks: 20)
            heal()
            expectLogged(on: "A", "link to B restored: what it had not acknowledged sent again")
            waitUntil("B is synchronized well before the 10 s retransmit", ticksMax: 300) { cluster in
                guard let standby = cluster.core("B"), let active = cluster.core("A") else { return false }
                return standby.followsActiveVerified && standby.journal.head == active.journal.head
            }
            settle()
            expectConverged()
        }
    }

    @Test("Switchover is refused to a standby that is not synchronizing, and a stalled switchover gives writes back")
    func switchoverEdges() {
        scenario("switchover times out and the active resumes") {
            publish(2, on: "A")
            wait(ticks: 10)
            cut(from: "A", to: "B")
            promote("B")
            wait(ticks: 400)
            expect(.standby, on: "B")
            expectLogged(on: "B", "switchover timed out")
            heal()
            settle()
            expect(.writesEnabled, on: "A")
            expectConverged()
        }
        // Found by the simulator (seed 100350): the hand-over must survive a crash of the active.
        scenario("an active that restarts during a hand-over keeps writes off") {
            publish(2, on: "A")
            wait(ticks: 10)
            cut(from: "A", to: "B")
            promote("B")
            wait(ticks: 5)
            expect(.writesDisabled, on: "A")
            crash("A")
            restart("A")
            wait(ticks: 20)
            expect(.active, on: "A")
            expect(.writesDisabled, on: "A")
            heal()
            // The active sends the hand-over again: once it gets through, the switchover completes.
            wait(ticks: 400)
            expectLogged(on: "B", "switchover complete")
            expect(.writesEnabled, on: "B")
            expect(.standby, on: "A")
            expectConverged()
        }
        // Found by the simulator's switchover invariant (seeds 31 and 108 of the first swarm profile): the forced active took
        // epoch 2/A, the target completed the hand-over it had received in 2/C, higher by name, and
        // fenced the forced active, losing what it had published since.
        scenario("a forced promotion during a hand-over fences the target, whatever the servers' names") {
            publish(2, on: "A")
            wait(ticks: 10)
            promote("C")
            wait(ticks: 1)
            expect(.writesDisabled, on: "A")
            ScenarioStep(describe: "clog A -> C") { $0.cluster.clog(from: "A", to: "C") }
            promote("A", force: true)
            expectReason(on: "A", contains: "forced promotion during a hand-over to C")
            expect(.writesEnabled, on: "A")
            publish(1, on: "A")
            wait(ticks: 5)
            heal()
            settle()
            expect(.active, on: "A")
            expect(.writesEnabled, on: "A")
            expect(.head(3), on: "C")
            expectConverged()
        }
        // Found by the simulator's liveness operator (seed 52 of the first swarm profile): the target crashed
        // before the hand-over reached it and forgot its switchover; the active waited for it forever
        // and only a forced promotion got writes going again.
        scenario("a target that restarts during a hand-over forgets it; the active sends it again and gets its writes back") {
            publish(2, on: "A")
            wait(ticks: 10)
            promote("B")
            wait(ticks: 1)
            expect(.writesDisabled, on: "A")
            crash("B")
            restart("B")
            wait(ticks: 100)
            expect(.active, on: "A")
            expect(.writesEnabled, on: "A")
            expectConverged()
        }
    }
}

func revision(_ number: UInt64, previous: String, epoch: Epoch) -> ReplicatedRevision {
    ReplicatedRevision(number: number, epoch: epoch, previousHash: previous, hash: "h\(number)-\(epoch)", payload: [UInt8(number)])
}
