import HACore
import ManagementModel
import Store

/// Maps the store's `Revision` to what HACore replicates and back.
///
/// The payload is the revision's canonical JSON, so the standby stores exactly the bytes the active
/// hashed. HACore's empty journal has head hash "", while the store chains revision 1 to
/// `Revision.genesisHash`: the adapter translates between the two so both chains check.
public enum RevisionAdapter {
    /// `payload`: the revision's canonical JSON when the caller has it already (nil: serialized here).
    public static func replicated(_ revision: Revision, payload: [UInt8]? = nil) -> ReplicatedRevision {
        ReplicatedRevision(
            number: revision.number,
            epoch: Epoch(term: revision.epoch.term, server: ServerID(revision.epoch.server)),
            previousHash: coreHash(revision.previousHash),
            hash: revision.hash,
            payload: payload ?? revision.json.canonicalBytes)
    }

    /// A stored revision as the core's journal lists it (payload `.stored`); throws for a row no
    /// revision could have written (no epoch server), where the core would trap.
    public static func replicated(_ entry: JournalEntry) throws -> ReplicatedRevision {
        guard !entry.epochServer.isEmpty else {
            throw StoreError.journal(JournalBreak(revision: entry.number, reason: "no epoch server"))
        }
        return ReplicatedRevision(
            number: entry.number, epoch: Epoch(term: entry.epochTerm, server: ServerID(entry.epochServer)),
            previousHash: coreHash(entry.previousHash), hash: entry.hash, payload: .stored(byteCount: entry.bodyByteCount))
    }

    /// Decodes the payload and checks that it is the revision the envelope claims (number, epoch, chain,
    /// and a hash that matches the content). Nil for anything else: it must never reach the store.
    public static func revision(_ replicated: ReplicatedRevision) -> Revision? {
        guard let bytes = replicated.payload.bytes, let json = try? JSONValue.parse(bytes), let revision = Revision(json: json) else { return nil }
        guard revision.number == replicated.number,
            revision.epoch.term == replicated.epoch.term, revision.epoch.server == replicated.epoch.server.name,
            coreHash(revision.previousHash) == replicated.previousHash,
            revision.hash == replicated.hash, revision.computedHash == revision.hash
        else { return nil }
        return revision
    }

    public static func head(_ head: (number: UInt64, hash: String)?) -> RevisionHead {
        guard let head else { return .empty }
        return RevisionHead(number: head.number, hash: head.hash)
    }

    static func coreHash(_ storeHash: String) -> String {
        storeHash == Revision.genesisHash ? RevisionHead.empty.hash : storeHash
    }
}
