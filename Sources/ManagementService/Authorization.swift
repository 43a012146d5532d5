import ManagementModel

/// Bounds on sessions (the model's `Limits.sessionsMax` bounds the API's sessions as a whole).
public enum SessionLimits {
    /// Sessions (open and disconnected) one administrator may hold: one administrator cannot take
    /// every session of the server.
    public static let sessionsPerAdministratorMax = 10
    /// Sessions of root over the local operator socket. They do not count against the API's limit,
    /// so a full API never locks the operator out.
    public static let localRootSessionsMax = 20
}

extension ManagementService {
    /// The profile a session acts with: the administrator's profile at login, lowered to the
    /// published one if it was lowered since (or read-only if the administrator was deleted).
    func profile(of session: Session) -> PermissionProfile {
        if session.isLocalRoot { return .superUser }
        let administrator =
            session.administratorUID.map { uid in store.reader.object(uid: uid).flatMap { $0.type == .administrator ? $0 : nil } }
            ?? store.reader.objects(named: session.user).first { $0.type == .administrator }
        let current = administrator?.fields["permissions-profile"]?.stringValue.flatMap(PermissionProfile.init(rawValue:)) ?? .readOnly
        return min(current, session.profile ?? current)
    }

    /// Refuses (403 `generic_err_no_permissions`) a command the session may not run, as the catalog
    /// says: a change needs a read-write session, then the command's profile; acting on another
    /// administrator's session needs a super-user.
    func authorize(_ spec: CommandSpec, _ params: [String: JSONValue], sessionUID: String) throws {
        let caller = try session(sessionUID)
        var required = spec.profileRequired
        var needsWritableSession = spec.changes || required > .readOnly
        if spec.permission == .ownSessionOrSuperUser, let other = try otherSession(params, caller: caller) {
            needsWritableSession = true
            if other.owner != caller.owner { required = .superUser }
        }
        if required > .readOnly {
            let profile = profile(of: caller)
            guard profile >= required else {
                throw ManagementError.noPermissions(
                    "Administrator [\(caller.user)] has the \(profile.rawValue) profile; \(spec.name)\(spec.permission == .ownSessionOrSuperUser ? " on another administrator's session" : "") needs \(required == .superUser ? "a super-user" : "a read-write administrator or a super-user")"
                )
            }
        }
        if needsWritableSession && caller.readOnly {
            throw ManagementError.noPermissions(
                "Administrator [\(caller.user)] is in a read-only session; \(spec.name) needs a read-write session\(required == .superUser ? " of a super-user" : "")"
            )
        }
    }

    /// The session another-session commands name by `uid`, when it is not the caller's own.
    func otherSession(_ params: [String: JSONValue], caller: Session) throws -> Session? {
        guard let uid = params["uid"]?.stringValue, uid != caller.uid else { return nil }
        guard let other = sessions[uid] else { throw ManagementError.notFound(uid) }
        return other
    }

    /// A standby refuses every change, naming the active server (CHECKPOINT-API.md §3.6).
    func refuseChangeOnStandby(_ spec: CommandSpec) throws {
        guard spec.refusedOnStandby, let refusal = ha?.writeRefusal else { return }
        throw ManagementError.noPermissions(refusal)
    }

    /// Refuses a login that would hold more sessions than allowed: root on the local socket has its
    /// own room; everyone else shares the API's, and each administrator has a share of it.
    func checkSessionLimits(owner: String, user: String, isLocalRoot: Bool) throws {
        let held = sessions.values.filter { $0.owner == owner }.count
        if isLocalRoot {
            guard held < SessionLimits.localRootSessionsMax else {
                throw tooManySessions(
                    "root on the local socket already holds \(held) sessions, the most it may (\(SessionLimits.localRootSessionsMax)); end them with logout, or wait for their session-timeout"
                )
            }
            return
        }
        guard held < SessionLimits.sessionsPerAdministratorMax else {
            throw tooManySessions(
                "Administrator [\(user)] already holds \(held) sessions, the most one administrator may (\(SessionLimits.sessionsPerAdministratorMax)). Free one: end sessions no longer used (logout), publish or discard disconnected ones (show-sessions, then discard uid=...), or wait for their session-timeout; a super-user can discard them too"
            )
        }
        let shared = sessions.values.filter { !$0.isLocalRoot }.count
        guard shared < Limits.sessionsMax else {
            throw tooManySessions(
                "Too many open sessions (\(Limits.sessionsMax)): log out or discard unused sessions (show-sessions), or wait for their session-timeout")
        }
    }

    func tooManySessions(_ message: String) -> ManagementError {
        ManagementError(code: "err_login_failed_more_than_one_opened_session", message: message, httpStatus: 400)
    }
}
