import Foundation
import HACore
import Store

/// HACore's `HardState` as stored JSON, in the store's settings table under `HardStateStore.settingKey`.
/// Its own Codable mirror keeps HACore free of Foundation and the stored shape explicit and stable.
struct HardStateRecord: Codable, Equatable {
    struct EpochRecord: Codable, Equatable {
        var term: UInt64
        var server: String
    }
    struct HeadRecord: Codable, Equatable {
        var number: UInt64
        var hash: String
    }
    struct PeerEntry: Codable, Equatable {
        var server: String
        var lastKnownHead: HeadRecord
        var everSynchronized: Bool
    }
    struct FullSyncEntry: Codable, Equatable {
        var snapshotHead: HeadRecord
        var chunkCount: Int
        var chunksApplied: Int
    }
    struct HandoverEntry: Codable, Equatable {
        var target: String
        var switchoverID: UInt64
        var finalHead: HeadRecord
    }
    struct TakeoverEntry: Codable, Equatable {
        var epoch: EpochRecord
        var finalHead: HeadRecord
        var takenInEpoch: EpochRecord
    }

    var version = 1
    var epoch: EpochRecord
    var role: String
    /// "async", or "sync" with `syncTimeoutMilliseconds`.
    var replicationMode: String
    var syncTimeoutMilliseconds: UInt64?
    var haStopped: Bool
    var peers: [PeerEntry]
    var fullSyncProgress: FullSyncEntry?
    var writesPaused: Bool
    var handover: HandoverEntry?
    /// Absent in records written before it existed (false).
    var takesWritesAtFirstStart: Bool?
    /// Absent in records written before it existed (none).
    var takeover: TakeoverEntry?
    /// `HardState.journalReplacedFrom`, 0 for never. Absent in records written before it existed:
    /// read as 1 (that server may have replaced any of its journal; nothing is concluded from it).
    var journalReplacedFrom: UInt64?

    init(_ state: HardState) {
        epoch = EpochRecord(state.epoch)
        role = state.role.rawValue
        switch state.replicationMode {
        case .async: replicationMode = "async"
        case .sync(let timeout):
            replicationMode = "sync"
            syncTimeoutMilliseconds = timeout
        }
        haStopped = state.haStopped
        peers = state.peers.map { PeerEntry(server: $0.serverID.name, lastKnownHead: HeadRecord($0.lastKnownHead), everSynchronized: $0.everSynchronized) }
        fullSyncProgress = state.fullSyncProgress.map {
            FullSyncEntry(snapshotHead: HeadRecord($0.snapshotHead), chunkCount: $0.chunkCount, chunksApplied: $0.chunksApplied)
        }
        writesPaused = state.writesPaused
        handover = state.handover.map { HandoverEntry(target: $0.target.name, switchoverID: $0.switchoverID, finalHead: HeadRecord($0.finalHead)) }
        takesWritesAtFirstStart = state.takesWritesAtFirstStart ? true : nil
        takeover = state.takeover.map {
            TakeoverEntry(epoch: EpochRecord($0.epoch), finalHead: HeadRecord($0.finalHead), takenInEpoch: EpochRecord($0.takenInEpoch))
        }
        journalReplacedFrom = state.journalReplacedFrom ?? 0
    }

    /// Nil when the record is not a hard state this version understands (never guessed into one).
    var hardState: HardState? {
        guard version == 1, let role = HARole(rawValue: role), peers.allSatisfy({ !$0.server.isEmpty }) else { return nil }
        let mode: ReplicationMode
        switch (replicationMode, syncTimeoutMilliseconds) {
        case ("async", _): mode = .async
        case ("sync", let timeout?): mode = .sync(timeoutMilliseconds: timeout)
        default: return nil
        }
        guard let epochValue = epoch.epoch else { return nil }
        if let handover, handover.target.isEmpty { return nil }
        var takeoverValue: TakeoverRecord?
        if let takeover {
            // A takeover names real epochs: one that does not is no state this version wrote.
            guard let handed = takeover.epoch.epoch, let taken = takeover.takenInEpoch.epoch else { return nil }
            takeoverValue = TakeoverRecord(epoch: handed, finalHead: takeover.finalHead.head, takenInEpoch: taken)
        }
        return HardState(
            epoch: epochValue, role: role, replicationMode: mode, haStopped: haStopped,
            peers: peers.map { PeerRecord(serverID: ServerID($0.server), lastKnownHead: $0.lastKnownHead.head, everSynchronized: $0.everSynchronized) },
            fullSyncProgress: fullSyncProgress.map {
                FullSyncProgress(snapshotHead: $0.snapshotHead.head, chunkCount: $0.chunkCount, chunksApplied: $0.chunksApplied)
            },
            writesPaused: writesPaused,
            handover: handover.map { HandoverRecord(target: ServerID($0.target), switchoverID: $0.switchoverID, finalHead: $0.finalHead.head) },
            takesWritesAtFirstStart: takesWritesAtFirstStart ?? false, takeover: takeoverValue,
            journalReplacedFrom: journalReplacedFrom.map { $0 == 0 ? nil : $0 } ?? 1)
    }
}

extension HardStateRecord.EpochRecord {
    init(_ epoch: Epoch) { self.init(term: epoch.term, server: epoch.server.name) }
    /// Nil for a server-less epoch other than the initial one.
    var epoch: Epoch? { server.isEmpty ? (term == 0 ? Epoch.initial : nil) : Epoch(term: term, server: ServerID(server)) }
}

extension HardStateRecord.HeadRecord {
    init(_ head: RevisionHead) { self.init(number: head.number, hash: head.hash) }
    var head: RevisionHead { RevisionHead(number: number, hash: hash) }
}

/// Reads and writes this server's HA hard state. `save` returns only once the state is on disk
/// (the store's settings writes commit with synchronous=FULL): HACore's persist-before-send contract.
public struct HardStateStore: Sendable {
    public static let settingKey = "ha-hard-state"
    let store: ManagementStore

    public init(store: ManagementStore) { self.store = store }

    public func save(_ state: HardState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = String(decoding: try encoder.encode(HardStateRecord(state)), as: UTF8.self)
        try store.setSetting(Self.settingKey, text)
    }

    /// Makes the database this store holds the active primary of a new epoch, above `floor` and
    /// above the epoch it already stored: restoring after every server of the group was lost. The
    /// raised epoch fences everything from before (old servers and their epochs), so gateways that
    /// saw the old active accept this one's policy. Returns the new term.
    public func restoreAsNewPrimary(server: String, above floor: UInt64) throws -> UInt64 {
        let previous = try load()
        let highest = max(floor, previous?.epoch.term ?? 0)
        guard highest < Epoch.termMax else { throw HARuntimeError.epochTermOutOfRange(highest) }
        let term = highest + 1
        var state = previous ?? HardState(role: .active, peers: [])
        state.epoch = Epoch(term: term, server: ServerID(server))
        state.role = .active
        state.haStopped = false
        state.fullSyncProgress = nil
        state.writesPaused = false
        state.handover = nil
        // The operator's restore checked that no server of the old group answers: its first start
        // takes writes without waiting to hear from them.
        state.takesWritesAtFirstStart = true
        // A restored journal may be another server's copy: nothing is concluded from what it holds.
        state.journalReplacedFrom = 1
        try save(state)
        return term
    }

    /// Nil on a server that never persisted one; throws when one is stored but unreadable, because
    /// starting from scratch could forget an epoch (and act in a lower one).
    public func load() throws -> HardState? {
        guard let text = try store.setting(Self.settingKey) else { return nil }
        guard let record = try? JSONDecoder().decode(HardStateRecord.self, from: Data(text.utf8)), let state = record.hardState else {
            throw HARuntimeError.unreadableHardState
        }
        return state
    }
}

public enum HARuntimeError: Error, Sendable, CustomStringConvertible {
    case unreadableHardState
    case snapshotUnavailable(String)
    /// A received snapshot that cannot be staged or installed (the standby asks for another full sync).
    case snapshotRejected(String)
    /// A replicated revision that does not match its envelope or its hash (never applied).
    case revisionRejected(String)
    /// A publish committed here that its fsync could not make durable (HA halts; never answered).
    case notDurable(String)
    /// An epoch term no real promotion history reaches (a mistyped --epoch-term, say).
    case epochTermOutOfRange(UInt64)
    /// The store's journal does not hold what the HA core lists (the revision bodies it sends or exports).
    case journalMismatch(String)

    public var code: String {
        switch self {
        case .unreadableHardState: "ha_hard_state_unreadable"
        case .snapshotUnavailable: "ha_snapshot_unavailable"
        case .snapshotRejected: "ha_snapshot_rejected"
        case .revisionRejected: "ha_revision_rejected"
        case .notDurable: "ha_not_durable"
        case .epochTermOutOfRange: "ha_epoch_term_out_of_range"
        case .journalMismatch: "ha_journal_mismatch"
        }
    }

    public var description: String {
        switch self {
        case .unreadableHardState: "the stored HA hard state cannot be read; refusing to start HA rather than forget the epoch"
        case .snapshotUnavailable(let why): "snapshot unavailable: \(why)"
        case .snapshotRejected(let why): "snapshot rejected: \(why)"
        case .revisionRejected(let why): "revision rejected: \(why)"
        case .notDurable(let why): "publish not durable: \(why)"
        case .epochTermOutOfRange(let term): "epoch term \(term) is out of range (at most \(Epoch.termMax - 1)); give the highest term the group really used"
        case .journalMismatch(let why): "journal mismatch: \(why)"
        }
    }
}
