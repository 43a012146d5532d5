import Foundation
import HACore
import HARuntime
import ManagementModel
import Store
import Testing

@testable import Operations

@Suite("Restore safety: every refusal, and the disaster case")
struct RestoreSafetyTests {
    func restore(
        _ archive: URL, into target: URL, _ request: RestoreRequest = RestoreRequest(), serverName: String? = nil,
        minimumEpochTerm: UInt64 = 0
    ) throws -> Backups.RestoreReport {
        try Backups.restore(
            Backups.RestoreOptions(
                archive: archive, dataDirectory: target, passphrase: nil, request: request, serverName: serverName,
                minimumEpochTerm: minimumEpochTerm, nowMilliseconds: 1_700_000_000_000), raiseEpoch: raiseEpoch)
    }

    @Test func policyRefusesInOrderAndExplains() {
        let base = RestoreSituation(dataDirectory: "/d")
        #expect(RestorePolicy.refusal(base, RestoreRequest()) == nil)
        var running = base
        running.serverRunning = true
        #expect(RestorePolicy.refusal(running, RestoreRequest(asNewPrimary: true, replace: true))?.code == "server-running")
        var member = base
        member.archiveGroupPeers = ["mgmt-b"]
        #expect(RestorePolicy.refusal(member, RestoreRequest(replace: true))?.code == "ha-member")
        #expect(RestorePolicy.refusal(member, RestoreRequest(replace: true))?.message.contains("--as-new-primary") == true)
        #expect(RestorePolicy.refusal(member, RestoreRequest(asNewPrimary: true)) == nil)
        var alive = member
        alive.answeringPeers = ["mgmt-b (10.0.0.2:18191)"]
        #expect(RestorePolicy.refusal(alive, RestoreRequest(asNewPrimary: true))?.code == "ha-group-alive")
        var secondary = base
        secondary.targetIsSecondary = true
        #expect(RestorePolicy.refusal(secondary, RestoreRequest())?.code == "ha-member")
        #expect(RestorePolicy.refusal(secondary, RestoreRequest(asNewPrimary: true))?.code == "ha-member")
        var full = base
        full.targetHoldsDatabase = true
        full.targetHead = .init(number: 7, hash: "h")
        #expect(RestorePolicy.refusal(full, RestoreRequest())?.code == "target-not-empty")
        #expect(RestorePolicy.refusal(full, RestoreRequest())?.message.contains("#7") == true)
        #expect(RestorePolicy.refusal(full, RestoreRequest(replace: true)) == nil)
    }

    @Test func restoringOverADatabaseNeedsReplaceAndKeepsTheOldFilesAside() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let (url, manifest) = try node.backup()
        try node.publish([host(500)])
        let before = fingerprint(node.url)
        #expect(refusalCode { _ = try restore(url, into: node.url) } == "target-not-empty")
        #expect(fingerprint(node.url) == before)
        let report = try restore(url, into: node.url, RestoreRequest(replace: true))
        #expect(try node.facts().head == manifest.head)
        let aside = try #require(report.setAside)
        #expect(FileManager.default.contents(atPath: aside.appendingPathComponent("rampart.sqlite").path) == before["rampart.sqlite"])
        #expect(!FileManager.default.fileExists(atPath: node.url.appendingPathComponent(DataDirectoryLayout.restoreMarker).path))
    }

    @Test func aRunningServerIsDetectedByItsLockAndNothingChanges() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let (url, _) = try node.backup()
        let serverLock = try #require(try NodeLock.tryAcquire(dataDirectory: node.url))
        let before = fingerprint(node.url)
        #expect(refusalCode { _ = try restore(url, into: node.url, RestoreRequest(asNewPrimary: true, replace: true)) } == "server-running")
        #expect(fingerprint(node.url) == before)
        withExtendedLifetime(serverLock) {}
    }

    @Test func aMemberOfAnHAGroupIsRefusedAndTheDisasterCaseRaisesTheEpoch() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let peer = Listener()
        defer { peer.close() }
        let node = try NodeDirectory(
            scratch.path("node"),
            objects: [
                administrator("admin"), managementServer("primary", sicAddress: "127.0.0.1:1", primary: true),
                managementServer("mgmt-b", sicAddress: "127.0.0.1:\(peer.port)"),
            ], epochTerm: 4)
        let (url, manifest) = try node.backup()
        #expect(manifest.groupPeers == ["mgmt-b"])
        #expect(manifest.epochTerm == 4)
        let fresh = scratch.path("fresh")
        // A plain restore of a group member: refused, pointing at "add a standby" and --as-new-primary.
        #expect(refusalCode { _ = try restore(url, into: fresh) } == "ha-member")
        // The group still works (mgmt-b answers on its SIC port): refused even as the new primary.
        #expect(refusalCode { _ = try restore(url, into: fresh, RestoreRequest(asNewPrimary: true)) } == "ha-group-alive")
        #expect(fingerprint(fresh).isEmpty)
        // Every server lost: the restore makes a primary in a raised epoch.
        peer.close()
        let report = try restore(url, into: fresh, RestoreRequest(asNewPrimary: true), serverName: "mgmt-c", minimumEpochTerm: 6)
        #expect(report.epochTerm == 7)
        let state = try #require(try HardStateStore(store: ManagementStore(path: fresh.appendingPathComponent("rampart.sqlite").path)).load())
        #expect(state.epoch.term == 7 && state.epoch.server.name == "mgmt-c" && state.role == .active)
        #expect(state.journalReplacedFrom == 1, "a restored journal may be a copy: nothing is concluded from it")
        // A secondary's directory (ha.json) is never the target of a new primary.
        let secondary = scratch.path("secondary")
        try FileManager.default.createDirectory(at: secondary, withIntermediateDirectories: true)
        try Data("{}".utf8).write(to: secondary.appendingPathComponent("ha.json"))
        #expect(refusalCode { _ = try restore(url, into: secondary, RestoreRequest(asNewPrimary: true)) } == "ha-member")
    }

    /// A damaged file is named as such whatever else is true of it (here: it is a group member's
    /// backup, which would be refused as ha-member), and a failed restore leaves nothing behind.
    @Test func aCorruptBackupIsCheckedFirstAndAFailedRestoreLeavesNothingBehind() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(
            scratch.path("node"),
            objects: [
                administrator("admin"), managementServer("primary", sicAddress: "127.0.0.1:1", primary: true),
                managementServer("mgmt-b", sicAddress: "127.0.0.1:1"),
            ])
        let (url, _) = try node.backup()
        var bytes = try Data(contentsOf: url)
        bytes[bytes.count / 2] ^= 0xFF
        let corrupt = scratch.path("corrupt.rampart-backup")
        try bytes.write(to: corrupt)
        let fresh = scratch.path("fresh")
        #expect(refusalCode { _ = try restore(corrupt, into: fresh) } == "corrupt")
        #expect(!FileManager.default.fileExists(atPath: fresh.path), "the directory the restore created is removed again")
        #expect(refusalCode { _ = try restore(corrupt, into: fresh, RestoreRequest(asNewPrimary: true)) } == "corrupt")
        // An existing empty directory keeps existing, without the lock file the restore made.
        let empty = scratch.path("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        #expect(refusalCode { _ = try restore(url, into: empty) } == "ha-member")
        #expect(try FileManager.default.contentsOfDirectory(atPath: empty.path).isEmpty)
    }

    /// A snapshot restored into a fresh directory while its node's group answers would be a second
    /// copy of a live server: refused as a backup restore would be.
    @Test func aSnapshotOfALiveGroupsNodeIsNotClonedIntoAFreshDirectory() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let peer = Listener()
        defer { peer.close() }
        let node = try NodeDirectory(
            scratch.path("node"),
            objects: [
                administrator("admin"), managementServer("primary", sicAddress: "127.0.0.1:1", primary: true),
                managementServer("mgmt-b", sicAddress: "127.0.0.1:\(peer.port)"),
            ])
        let (url, _) = try Snapshots.create(
            dataDirectory: node.url, destination: nil, passphrase: nil, serverName: "primary", nowMilliseconds: 1_700_000_000_000)
        let fresh = scratch.path("clone")
        #expect(
            refusalCode { _ = try Snapshots.restore(archive: url, dataDirectory: fresh, passphrase: nil, nowMilliseconds: 2, raiseEpoch: raiseEpoch) }
                == "ha-group-alive")
        #expect(!FileManager.default.fileExists(atPath: fresh.path))
        peer.close()
        _ = try Snapshots.restore(archive: url, dataDirectory: fresh, passphrase: nil, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
        #expect(FileManager.default.fileExists(atPath: fresh.appendingPathComponent("rampart.sqlite").path))
    }

    /// The new primary's epoch is above every one the backup shows, its revisions' included: a hard
    /// state behind the journal (a standby's, say) must not pull it below an epoch gateways saw.
    @Test func aNewPrimaryComesUpAboveTheHighestEpochTheBackupKnows() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"), serverName: "mgmt-b", epochTerm: 6)
        try HardStateStore(store: node.store).save(HardState(epoch: Epoch(term: 2, server: "primary"), role: .standby, peers: []))
        let (url, _) = try node.backup()
        let report = try restore(url, into: scratch.path("new"), RestoreRequest(asNewPrimary: true))
        #expect(report.epochTerm == 7, "above the head revision's term 6, not only the hard state's 2")
    }

    @Test func theHardStateKeyMatchesHARuntime() {
        #expect(DatabaseFacts.hardStateSettingKey == HardStateStore.settingKey)
    }

    /// Rolled back in its old epoch, an active would lack revisions of that epoch its standbys hold, and
    /// they would drop them as a tail it lost before their fsync. It comes back in a new epoch instead.
    @Test func anActiveRolledBackBySnapshotComesBackInANewEpoch() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let hardState = HardStateStore(store: node.store)
        try hardState.save(HardState(epoch: Epoch(term: 3, server: "primary"), role: .active, peers: []))
        let (url, _) = try Snapshots.create(
            dataDirectory: node.url, destination: nil, passphrase: nil, serverName: "primary",
            nowMilliseconds: 1_700_000_000_000)
        try node.publish([host(901)])
        try hardState.save(HardState(epoch: Epoch(term: 4, server: "primary"), role: .active, peers: []))
        let report = try Snapshots.restore(archive: url, dataDirectory: node.url, passphrase: nil, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
        let restored = try #require(try HardStateStore(store: node.store).load())
        #expect(restored.epoch == Epoch(term: 5, server: "primary"), "above the snapshot's term 3 and the term 4 it had reached")
        #expect(restored.role == .active)
        #expect(report.epochTerm == 5)

        // A standby's snapshot keeps its epoch: it follows whoever is active.
        let standby = try NodeDirectory(scratch.path("standby"), serverName: "mgmt-b")
        try HardStateStore(store: standby.store).save(HardState(epoch: Epoch(term: 3, server: "primary"), role: .standby, peers: []))
        let (standbyURL, _) = try Snapshots.create(
            dataDirectory: standby.url, destination: nil, passphrase: nil, serverName: "mgmt-b",
            nowMilliseconds: 1_700_000_000_000)
        _ = try Snapshots.restore(archive: standbyURL, dataDirectory: standby.url, passphrase: nil, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
        #expect(try HardStateStore(store: standby.store).load()?.epoch == Epoch(term: 3, server: "primary"))
    }

    @Test func aSnapshotRollsTheSameNodeBackAndRefusesAnotherNode() throws {
        let scratch = Scratch()
        defer { scratch.remove() }
        let node = try NodeDirectory(scratch.path("node"))
        let (url, manifest) = try Snapshots.create(
            dataDirectory: node.url, destination: nil, passphrase: passphraseBytes, serverName: "primary",
            nowMilliseconds: 1_700_000_000_000)
        #expect(Set(manifest.parts.map(\.path)) == ["rampart.sqlite", "node.json", "pki/ica.pem", "pki/ica.key"])
        #expect(manifest.parts.first { $0.path == "pki/ica.key" }?.mode == 0o600, "the key's mode travels with it")
        try node.publish([host(900)])
        try Data("{}".utf8).write(to: node.url.appendingPathComponent("ha.json"))
        try withExtendedLifetime(try #require(try NodeLock.tryAcquire(dataDirectory: node.url))) {
            #expect(
                refusalCode {
                    _ = try Snapshots.restore(archive: url, dataDirectory: node.url, passphrase: passphraseBytes, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
                } == "server-running")
        }
        #expect(
            refusalCode {
                _ = try Snapshots.restore(
                    archive: url, dataDirectory: node.url, passphrase: Array("not the passphrase".utf8), nowMilliseconds: 2, raiseEpoch: raiseEpoch)
            } == "wrong-passphrase")
        let report = try Snapshots.restore(archive: url, dataDirectory: node.url, passphrase: passphraseBytes, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
        #expect(try node.facts().head == manifest.head)
        #expect(!FileManager.default.fileExists(atPath: node.url.appendingPathComponent("ha.json").path), "files newer than the snapshot are set aside")
        #expect(FileManager.default.fileExists(atPath: try #require(report.setAside).appendingPathComponent("ha.json").path))

        let other = try NodeDirectory(scratch.path("other"), serverName: "mgmt-b")
        let before = fingerprint(other.url)
        #expect(
            refusalCode {
                _ = try Snapshots.restore(archive: url, dataDirectory: other.url, passphrase: passphraseBytes, nowMilliseconds: 2, raiseEpoch: raiseEpoch)
            } == "other-node")
        #expect(fingerprint(other.url) == before)
        // A backup is not a snapshot, and the other way round.
        let (backup, _) = try node.backup()
        #expect(
            refusalCode { _ = try Snapshots.restore(archive: backup, dataDirectory: node.url, passphrase: nil, nowMilliseconds: 2, raiseEpoch: raiseEpoch) }
                == "wrong-kind")
        #expect(refusalCode { _ = try restore(url, into: scratch.path("x")) } == "wrong-kind")
    }
}
