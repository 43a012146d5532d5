import Foundation
import Store
import TrustCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// `rampart snapshot`: the whole node — database, logs, node-local settings, certificates and
/// keys — to roll the same node back. Taken online; restored only on a stopped server.
public enum Snapshots {
    public static let fileExtension = "rampart-snapshot"

    /// Files of a data directory that are not part of the node's state: live runtime files, the
    /// operations tools' own output and scratch space, copies kept aside by earlier restores.
    static func isNodeState(_ relativePath: String) -> Bool {
        let first = relativePath.split(separator: "/").first.map(String.init) ?? relativePath
        let name = (relativePath as NSString).lastPathComponent
        if [
            DataDirectoryLayout.backups, DataDirectoryLayout.snapshots, DataDirectoryLayout.haSnapshots, DataDirectoryLayout.socket, NodeLock.fileName,
            DataDirectoryLayout.restoreMarker,
        ].contains(first) {
            return false
        }
        if first.hasPrefix(DataDirectoryLayout.asidePrefix) || first.hasPrefix(".") || name.hasPrefix(".") { return false }
        return !name.hasSuffix("-wal") && !name.hasSuffix("-shm") && !name.hasSuffix("-journal")
    }

    /// Regular files of the node's state, as paths relative to the directory, sorted.
    static func nodeFiles(_ directory: URL) -> [(path: String, mode: UInt32)] {
        guard let enumerator = FileManager.default.enumerator(atPath: directory.path) else { return [] }
        var files: [(String, UInt32)] = []
        while let path = enumerator.nextObject() as? String {
            var info = stat()
            guard lstat(directory.appendingPathComponent(path).path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, isNodeState(path) else { continue }
            files.append((path, UInt32(info.st_mode & 0o777)))
        }
        return files.sorted { $0.0 < $1.0 }
    }

    public static func create(
        dataDirectory: URL, destination: URL?, passphrase: [UInt8]?, serverName: String,
        nowMilliseconds: Int64
    ) throws -> (url: URL, manifest: ArchiveManifest) {
        let directory = destination ?? dataDirectory.appendingPathComponent(DataDirectoryLayout.snapshots)
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        let staging = try StagingDirectory(in: directory)
        defer { staging.remove() }
        var inputs: [ArchiveInput] = []
        var facts: DatabaseFacts?
        for (index, file) in nodeFiles(dataDirectory).enumerated() {
            let source = dataDirectory.appendingPathComponent(file.path)
            let name = "\(index)-" + (file.path as NSString).lastPathComponent
            if [DataDirectoryLayout.database, DataDirectoryLayout.logs].contains(file.path) {
                let copy = staging.file(name)
                try DatabaseFiles.consistentCopy(of: source.path, to: copy.path)
                if file.path == DataDirectoryLayout.database { facts = try DatabaseFacts.read(path: copy.path, verifyJournal: true) }
                inputs.append(ArchiveInput(name: name, path: file.path, kind: .sqlite, mode: file.mode, source: copy))
            } else {
                inputs.append(ArchiveInput(name: name, path: file.path, kind: .file, mode: file.mode, source: source))
            }
        }
        guard let facts, inputs.count <= OperationsLimits.partsMax else {
            throw OperationsError("no-database", "\(dataDirectory.path) holds no management database, or more than \(OperationsLimits.partsMax) files")
        }
        let manifest = ArchiveManifest(
            kind: .snapshot, archiveID: SecureRandom.uuid(), createdAtMilliseconds: nowMilliseconds, server: serverName,
            schema: facts.schema, head: facts.head, epochTerm: facts.epochTerm, objectCount: facts.objectCount,
            groupPeers: facts.groupPeers(of: serverName).map(\.name),
            includesLogs: inputs.contains { $0.path == DataDirectoryLayout.logs })
        let url = directory.appendingPathComponent("snapshot-\(serverName)-\(DataDirectoryLayout.stamp(nowMilliseconds)).\(fileExtension)")
        return (url, try ArchiveFile.write(manifest, inputs: inputs, passphrase: passphrase, to: url))
    }

    /// Rolls the node in `dataDirectory` back to the snapshot: refused while its server runs, onto
    /// another node, or while a server of its HA group answers — the group the snapshot records, and
    /// the one the directory's current database records (rolled back, the node would rejoin with an
    /// older journal; restored into a fresh directory beside a live group, it would be a second copy of
    /// a running server). The file is checked before anything else is decided. Every current file of
    /// the node is kept aside, so the directory ends up exactly as the snapshot was; a failure leaves
    /// it as it was.
    ///
    /// A node the snapshot shows as its group's active comes back active in a new epoch (`raiseEpoch`):
    /// in its old one, it would lack revisions of that epoch its standbys hold (publishes it answered
    /// after the snapshot), and they would take that for revisions it lost before their fsync and drop
    /// them. In a new epoch they are a collision, kept for export.
    public static func restore(
        archive: URL, dataDirectory: URL, passphrase: [UInt8]?, nowMilliseconds: Int64,
        raiseEpoch: Backups.EpochRaiser
    ) throws -> Backups.RestoreReport {
        let target = try TargetDirectory.open(dataDirectory)
        return try target.undoingOnFailure {
            try restore(archive: archive, into: target, passphrase: passphrase, nowMilliseconds: nowMilliseconds, raiseEpoch: raiseEpoch)
        }
    }

    static func restore(
        archive: URL, into target: TargetDirectory, passphrase: [UInt8]?, nowMilliseconds: Int64,
        raiseEpoch: Backups.EpochRaiser
    ) throws -> Backups.RestoreReport {
        let dataDirectory = target.url
        let (manifest, _) = try ArchiveFile.readManifest(archive)
        guard manifest.kind == .snapshot else {
            throw OperationsError(
                "wrong-kind", "\(archive.path) is a \(manifest.kind.rawValue), not a snapshot: use `rampart \(manifest.kind.rawValue) restore`")
        }
        let situation = try Backups.targetSituation(dataDirectory, serverName: manifest.server, running: target.lock == nil)
        if situation.serverRunning, let refusal = RestorePolicy.refusal(situation, RestoreRequest()) { throw refusal }
        let staging = try StagingDirectory(in: dataDirectory)
        defer { staging.remove() }
        _ = try ArchiveFile.verify(archive, passphrase: passphrase, knownSchema: DatabaseFiles.managementSchema, extractTo: staging.url)
        guard let database = manifest.parts.first(where: { $0.path == DataDirectoryLayout.database }) else {
            throw OperationsError.corrupt(archive.path, "it holds no management database")
        }
        let facts = try Backups.checkedDatabase(staging.file(database.name).path, against: manifest, archive: archive.path)
        if let current = nodeName(dataDirectory), current != manifest.server {
            throw OperationsError(
                "other-node",
                """
                \(archive.path) is a snapshot of \(manifest.server), but \(dataDirectory.path) is \(current): a snapshot rolls back \
                the same node. To move data to another machine use `rampart migrate export`/`import` or a backup.
                """)
        }
        let current = DatabaseFacts.readInPlace(path: dataDirectory.appendingPathComponent(DataDirectoryLayout.database).path)
        let group = facts.managementServers + (current?.managementServers ?? []).filter { server in !facts.managementServers.contains(server) }
        let answering = GroupProbe.answering(group)
        guard answering.isEmpty else {
            throw OperationsError(
                "ha-group-alive",
                """
                \(answering.joined(separator: ", ")) of this node's HA group answer\(answering.count == 1 ? "s" : ""): a snapshot rolls back a \
                stopped node whose group is gone. Rolled back, this node would rejoin with an older journal, and restored beside \
                the running group it would be a second copy of a live server. Remove it from the group and add it again as a \
                standby (full sync) instead; to copy a server's data elsewhere use `rampart backup` or `rampart migrate`.
                """)
        }
        var epochTerm = manifest.epochTerm
        if facts.wasHAActive {
            epochTerm = try raiseEpoch(staging.file(database.name).path, manifest.server, max(facts.highestKnownEpochTerm, current?.highestKnownEpochTerm ?? 0))
        }
        let moves = manifest.parts.map { DirectoryCommit.Move(staged: staging.file($0.name), path: $0.path, mode: $0.mode) }
        let currentFiles = nodeFiles(dataDirectory).map(\.path) + Backups.sqliteCompanions(manifest.parts)
        let aside = try DirectoryCommit.commit(moves, into: dataDirectory, alsoSetAside: currentFiles, nowMilliseconds: nowMilliseconds)
        return Backups.RestoreReport(manifest: manifest, serverName: manifest.server, epochTerm: epochTerm, setAside: aside)
    }

    /// The node's name from its node.json, when it has one.
    static func nodeName(_ dataDirectory: URL) -> String? {
        guard let data = FileManager.default.contents(atPath: dataDirectory.appendingPathComponent(DataDirectoryLayout.nodeSettings).path),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return nil }
        return json["server-name"] as? String
    }
}
