import Foundation
import ManagementModel

/// The four ways to keep or move a management server's data, side by side (README and `backup --help`).
public enum OperationsHelp {
    /// The seed's comparison (README "Backup, snapshot, migrate" has the same rows), narrow enough
    /// for an 80-column `--help`.
    public static let comparisonTable = """
        tool           purpose          use case                includes logs   HA sync
        -------------  ---------------  ----------------------  --------------  -----
        backup         routine DB copy  scheduled; same version --include-logs  no
        snapshot       the whole node   roll back this node     yes             no
        migrate        config only,     new machine or version; no              no
        export/import  portable JSON    disaster recovery

        None of them is HA sync: `rampart ha` keeps a standby (full, then delta sync).
        """
}

/// Database settings that travel with a migrate export: synchronized state only, never node-local.
public enum MigrationSettings {
    public static let keys = ["sic-revocations"]
}

/// What the operations commands print: text for people, or one JSON object.
public enum OperationsReport {
    /// A manifest as JSON (the archive's own encoding).
    public static func manifestJSON(_ manifest: ArchiveManifest) -> JSONValue {
        (try? JSONEncoder().encode(manifest)).flatMap { try? JSONValue.parse($0) } ?? .null
    }

    public static func manifestSummary(_ manifest: ArchiveManifest, fileSize: UInt64) -> String {
        let head = manifest.head.map { "#\($0.number) \($0.hash.prefix(12))" } ?? "empty"
        return "\(manifest.kind.rawValue) of \(manifest.server) at \(manifest.createdAt): head \(head), \(manifest.objectCount) objects, "
            + "\(fileSize) bytes\(manifest.encryption == nil ? "" : ", encrypted")\(manifest.includesLogs ? ", with logs" : "")"
    }

    /// An operations failure with its code (what every operations command prints before it exits 1).
    public static func failure(_ error: any Error, json: Bool) -> String {
        let failure = error as? OperationsError ?? OperationsError("failed", "\(error)")
        if json { return JSONValue.object(["ok": false, "code": .string(failure.code), "message": .string(failure.message)]).canonicalString }
        return "error: \(failure.message) [\(failure.code)]"
    }

    /// What `backup create` and `snapshot create` print.
    public static func created(_ made: (url: URL, manifest: ArchiveManifest), json: Bool) -> String {
        let size = (try? ArchiveFile.fileSize(made.url)) ?? 0
        if json {
            return JSONValue.object([
                "ok": true, "file": .string(made.url.path), "size-bytes": .int(Int64(clamping: size)),
                "manifest": manifestJSON(made.manifest),
            ]).canonicalString
        }
        return "\(made.manifest.kind.rawValue) written: \(made.url.path)\n" + manifestSummary(made.manifest, fileSize: size)
            + ", \(made.manifest.parts.count) files"
    }

    /// What `backup list` and `snapshot list` print.
    public static func listing(_ listed: [Backups.Listed], json: Bool) -> String {
        if json {
            return JSONValue.array(
                listed.map { entry in
                    var fields: [String: JSONValue] = ["file": .string(entry.url.path), "size-bytes": .int(Int64(clamping: entry.fileSize))]
                    if let manifest = entry.manifest { fields["manifest"] = manifestJSON(manifest) }
                    if let problem = entry.problem {
                        fields["problem"] = .string(problem.message)
                        fields["code"] = .string(problem.code)
                    }
                    return .object(fields)
                }
            ).canonicalString
        }
        var lines = listed.isEmpty ? ["no archives"] : []
        for entry in listed {
            lines.append(entry.url.lastPathComponent)
            lines.append("    " + (entry.manifest.map { manifestSummary($0, fileSize: entry.fileSize) } ?? "UNUSABLE: \(entry.problem?.message ?? "?")"))
        }
        return lines.joined(separator: "\n")
    }

    /// What `backup restore` and `snapshot restore` print.
    public static func restored(_ report: Backups.RestoreReport, data: String, json: Bool, asNewPrimary: Bool) -> String {
        if json {
            var fields: [String: JSONValue] = ["ok": true, "server-name": .string(report.serverName), "manifest": manifestJSON(report.manifest)]
            // Terms come from a backup file: a term past Int64.max is shown at that bound, never a trap.
            if let term = report.epochTerm { fields["epoch-term"] = .int(Int64(clamping: term)) }
            if let aside = report.setAside { fields["set-aside"] = .string(aside.path) }
            return JSONValue.object(fields).canonicalString
        }
        var lines = ["restored \(report.manifest.kind.rawValue) of \(report.manifest.server) (head #\(report.manifest.head?.number ?? 0)) into \(data)"]
        if let aside = report.setAside { lines.append("the files it replaced are in \(aside.path)") }
        if asNewPrimary, let term = report.epochTerm { lines.append("new primary \(report.serverName) in epoch term \(term)") }
        lines.append("start it with: rampart server --data \(data) --server-name \(report.serverName)")
        return lines.joined(separator: "\n")
    }

    /// What `migrate export` and `migrate import` print about the export.
    public static func migrated(_ export: Migration.Export, verb: String, extra: [String: JSONValue], json: Bool) -> String {
        if json {
            var fields = extra
            fields["ok"] = true
            fields["objects"] = .int(Int64(export.objects.count))
            fields["counts"] = .object(export.counts.mapValues { .int(Int64($0)) })
            fields["administrators"] = .array(export.administrators.map(JSONValue.string))
            fields["source"] = export.source
            fields["includes-ica"] = .bool(export.icaKey != nil)
            return JSONValue.object(fields).canonicalString
        }
        var lines = ["\(export.objects.count) objects \(verb)"]
        for (type, count) in export.counts.sorted(by: { $0.key < $1.key }) { lines.append("  \(type): \(count)") }
        lines.append("administrators: \(export.administrators.joined(separator: ", "))")
        lines.append("internal CA in the export: \(export.icaKey != nil ? "yes" : "no")")
        if let revisions = extra["revisions"]?.intValue { lines.append("revisions: \(revisions), epoch term \(extra["epoch-term"]?.scalarText ?? "?")") }
        return lines.joined(separator: "\n")
    }
}
