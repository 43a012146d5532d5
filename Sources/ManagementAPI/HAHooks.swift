import ManagementModel

/// Management HA as the Web API sees it. The server's HA runtime provides it at startup
/// (`ManagementService.attachHA`); a server without HA takes every write.
public protocol HAWriteCoordinator: Sendable {
    /// Runs `append` (the store's durable commit of `revision`) only while this server takes writes,
    /// and tells HA about the revision before anything else can happen. Throws a `ManagementError`
    /// naming the active server otherwise, without calling `append`.
    func commit(_ revision: Revision, _ append: () throws -> Void) throws
    /// Nil when changes are accepted; otherwise a message naming the active server and its address.
    var writeRefusal: String? { get }
    var isStandby: Bool { get }
    /// The body of `show-ha-status` (CHECKPOINT-API.md §3.6 plus Rampart's fields).
    func showHAStatus() -> JSONValue
}

extension ManagementService {
    /// Connects the HA runtime: from now on publishes go through it, and changes are refused while
    /// it does not take writes.
    public func attachHA(_ coordinator: any HAWriteCoordinator) { ha = coordinator }

    /// Commands that read, or only touch this server's own session, work on a standby; every other
    /// command is a change and is refused there. Unknown commands count as changes (refusing is safe).
    static func isReadOnly(_ command: String) -> Bool {
        command.hasPrefix("show-") || ["login", "logout", "keepalive", "discard", "equals", "where-used",
                                       "test-sic-status", "show-ha-status"].contains(command)
    }

    func refuseChangeOnStandby(_ command: String) throws {
        guard let refusal = ha?.writeRefusal, !Self.isReadOnly(command) else { return }
        throw ManagementError.noPermissions(refusal)
    }

    /// Appends `revision` through HA when attached (it checks writes and replicates), else directly.
    func commitRevision(_ revision: Revision, clearingSession sessionUID: String? = nil) throws {
        if let ha {
            try ha.commit(revision) { try store.append(revision, clearingSession: sessionUID) }
        } else {
            try store.append(revision, clearingSession: sessionUID)
        }
    }

    func showHAStatus() -> APIResponse {
        APIResponse(body: ha?.showHAStatus() ?? ["uid": .string(Renderer.defaultDomain["uid"]?.stringValue ?? ""), "name": "SMC User",
                                                  "domain-type": "domain", "servers": [], "successfully-synced": true,
                                                  "rampart-ha": "not-configured"])
    }
}
