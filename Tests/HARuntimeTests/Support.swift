import Foundation
import HACore
import ManagementModel
import Store

func temporaryDirectory() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-ha-\(UUID().uuidString)")
    try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

func host(_ name: String, uid: String) -> ManagedObject {
    ManagedObject(
        uid: uid, type: .host, name: name, fields: ["ipv4-address": "192.0.2.1"],
        meta: MetaInfo(creator: "a", creationTimeMilliseconds: 1, lastModifier: "a", lastModifyTimeMilliseconds: 1))
}

/// Publishes one host as the next revision of `store`, in `epoch`.
@discardableResult
func publishHost(_ store: ManagementStore, name: String, epoch: RevisionEpoch = .init(term: 1, server: "primary")) throws -> Revision {
    let revision = try nextHostRevision(store, name: name, epoch: epoch)
    try store.append(revision)
    return revision
}

/// The revision that would publish one host after `store`'s head (not committed).
func nextHostRevision(_ store: ManagementStore, name: String, epoch: RevisionEpoch = .init(term: 1, server: "primary")) throws -> Revision {
    Revision(
        after: try store.head(), epoch: epoch, publishedAtMilliseconds: 10, author: "alice",
        sessionUID: "s", sessionName: "", changes: [.upsert(host(name, uid: "uid-\(name)"))])
}

/// Polls `condition` every 10 ms for at most `seconds`: waits for a state, never for a guessed duration.
/// The bound is far above what the state needs (under a second): the whole suite shares two cores with
/// the servers the end-to-end tests start.
func eventually(seconds: Double = 60, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1_000))
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
