import HACore
import ManagementModel

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

    /// Decodes the payload and checks that it is the revision the envelope claims (number, epoch, chain,
    /// and a hash that matches the content). Nil for anything else: it must never reach the store.
    public static func revision(_ replicated: ReplicatedRevision) -> Revision? {
        guard let json = try? JSONValue.parse(replicated.payload), let revision = Revision(json: json) else { return nil }
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
