import Foundation
import ManagementModel

/// Backup and migrate as the Web API sees them. The server's composition root provides it
/// (`ManagementService.attachOperations`); the work runs outside the service's actor.
public protocol NodeOperationsProvider: Sendable {
    /// Writes the migrate export of this server's database to `filePath` on the server. Returns a
    /// summary for the task's details; throws with a message for the task's comments.
    func exportManagement(filePath: String) async throws -> JSONValue
    /// Queues `job` on the operations worker; false when it no longer takes jobs (shutting down).
    func enqueue(_ job: @escaping @Sendable () async -> Void) -> Bool
    /// This node's last backup, for `show-ha-status` (`last-backup`); nil when none was taken.
    func lastBackup() -> JSONValue?
}

extension ManagementService {
    public func attachOperations(_ provider: any NodeOperationsProvider) { operations = provider }

    /// `export-management` (CHECKPOINT-API.md §3.9): starts the migrate export as a task and returns
    /// its task-id at once; `show-task` follows it.
    nonisolated func exportManagement(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let (filePath, provider) = try await exportRequest(params)
        let id = await startTask("Export management", details: [["file-path": .string(filePath)]])
        let queued = provider.enqueue { [self] in
            do {
                let summary = try await provider.exportManagement(filePath: filePath)
                await finishTask(id, status: "succeeded", comments: summary["summary"]?.stringValue ?? "exported to \(filePath)")
            } catch {
                await finishTask(id, status: "failed", comments: "\(error)")
            }
        }
        if !queued { await finishTask(id, status: "failed", comments: "the server is shutting down") }
        return APIResponse.ok(["task-id": .string(id)])
    }

    /// The export's file and the provider that writes it. export-management writes the Internal CA's key
    /// and every password hash: the catalog gives it to super-users only.
    func exportRequest(_ params: [String: JSONValue]) throws -> (String, any NodeOperationsProvider) {
        guard let provider = operations else {
            throw ManagementError(code: "generic_err_invalid_parameter", message: "export-management is not available on this server", httpStatus: 400)
        }
        guard let path = params["file-path"]?.stringValue, !path.isEmpty else { throw ManagementError.missing(["file-path"]) }
        guard path.hasPrefix("/"), path.count <= Limits.stringLengthMax else {
            throw ManagementError.invalid("file-path", "an absolute path on the management server is expected")
        }
        if try params.flag("include-logs", default: false) || params.flag("include-logs-indexes", default: false) {
            throw ManagementError.invalid(
                "include-logs", "a migrate export is configuration only; logs go into backups (`rampart backup create --include-logs`)")
        }
        return (path, provider)
    }

    func startTask(_ name: String, details: [JSONValue]) -> String { tasks.started(name, details: details, nowMilliseconds: now) }

    func finishTask(_ id: String, status: String, comments: String) {
        tasks.update(id, status: status, comments: comments, nowMilliseconds: now)
    }

    /// This node's last backup for `show-ha-status` (node-local, never synchronized), as the report types it.
    func lastBackup() -> HAStatusReport.LastBackup? {
        guard let backup = operations?.lastBackup() else { return nil }
        do {
            return try JSONDecoder().decode(HAStatusReport.LastBackup.self, from: Data(backup.canonicalBytes))
        } catch {
            logger.error("the last backup's status does not read as show-ha-status's last-backup", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
