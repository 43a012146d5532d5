import ManagementModel

/// A session's changes about to be published, as Before Publish smart-tasks see them.
public struct BeforePublishContext: Sendable, Equatable {
    public let sessionUID: String
    public let sessionName: String
    public let user: String
    public let changes: [ObjectChange]
}

/// What the Before Publish smart-tasks decided.
public enum BeforePublishVerdict: Sendable, Equatable {
    case proceed
    /// A task without fail-open failed: the publish is refused with its message.
    case refused(task: String, message: String)
}

/// SmartTasks as the management service reaches them (the module depends on this one, so the service
/// holds a port the composition root sets): Before Publish runs inline in publish, and the history
/// answers `show-smart-task-executions`.
public protocol SmartTaskPort: Sendable {
    func beforePublish(_ context: BeforePublishContext) async -> BeforePublishVerdict
    /// A page of this node's executions, newest first, rendered; and how many match.
    func executions(task: String?, trigger: String?, result: String?, offset: Int, limit: Int) async throws -> (items: [JSONValue], total: Int)
}

extension ManagementService {
    /// Connects SmartTasks: from now on Before Publish tasks run in every publish that has changes.
    public func attachSmartTaskPort(_ port: any SmartTaskPort) { smartTaskPort = port }

    /// publish: Before Publish tasks run first, outside the actor (they may take their time-out), and
    /// may refuse it, nothing published; then the publish itself, which refuses a session whose
    /// changes moved while the tasks ran (what they approved is what is published).
    nonisolated func publishWithSmartTasks(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        guard let port = await smartTaskPort, let context = try await beforePublishContext(params, sessionUID) else {
            return await completeSyncPublish(try await publish(params, sessionUID))
        }
        if case .refused(let task, let message) = await port.beforePublish(context) {
            throw ManagementError(
                code: "err_publish_failed",
                message: "Publish refused by the Before Publish smart task \(task): \(message). Nothing was published", httpStatus: 400)
        }
        return await completeSyncPublish(try await publish(params, sessionUID, approved: context.changes))
    }

    /// The session a publish would publish, with its changes (nil: nothing to publish).
    func beforePublishContext(_ params: [String: JSONValue], _ sessionUID: String) throws -> BeforePublishContext? {
        let target = try targetSession(params, sessionUID)
        let changes = target.orderedChanges
        guard !changes.isEmpty else { return nil }
        return BeforePublishContext(sessionUID: target.uid, sessionName: target.name, user: target.user, changes: changes)
    }

    /// The publish after Before Publish tasks approved `approved`: refused when the session changed meanwhile.
    func publish(_ params: [String: JSONValue], _ sessionUID: String, approved: [ObjectChange]) throws -> APIResponse {
        guard try targetSession(params, sessionUID).orderedChanges == approved else {
            throw ManagementError(
                code: "err_publish_failed",
                message: "Publish failed: the session's changes moved while the Before Publish smart tasks ran; nothing was published. Publish again",
                httpStatus: 409)
        }
        return try publish(params, sessionUID)
    }

    /// show-smart-task-executions: this node's history, paged and filtered.
    nonisolated func showSmartTaskExecutions(_ params: [String: JSONValue], _ sessionUID: String) async throws -> APIResponse {
        let (offset, limit) = try await page(params)
        var filters: [String: String] = [:]
        for key in ["task", "trigger", "result"] {
            guard let value = params[key] else { continue }
            guard let text = value.stringValue, text.utf8.count <= Limits.nameBytesMax else {
                throw ManagementError.invalid(key, "A name of at most \(Limits.nameBytesMax) bytes.")
            }
            filters[key] = text
        }
        guard let port = await smartTaskPort else { return Self.listReply([], offset: offset, total: 0) }
        let (items, total) = try await port.executions(
            task: filters["task"], trigger: filters["trigger"], result: filters["result"], offset: offset, limit: limit)
        return Self.listReply(items, offset: offset, total: total)
    }
}
