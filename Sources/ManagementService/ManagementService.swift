import Foundation
import Logging
import ManagementModel
import Store
import Synchronization
import TrustCore

/// Who sent a request: its address, and whether it came over the local operator socket (where
/// `login` as root needs no password, as `mgmt_cli -r true` on a Check Point box).
public struct ClientInfo: Sendable {
    public let address: String
    public let isLocalSocket: Bool
    public init(address: String, isLocalSocket: Bool) {
        self.address = address
        self.isLocalSocket = isLocalSocket
    }
}

public struct APIResponse: Sendable {
    public let status: Int
    public let body: JSONValue
    /// A sync-mode publish: the answer waits until a standby holds the revision (`completeSyncPublish`).
    var pendingReplication: PendingReplication?

    public init(status: Int = 200, body: JSONValue) {
        self.status = status
        self.body = body
    }
    static func ok(_ fields: [String: JSONValue]) -> APIResponse { APIResponse(body: .object(fields)) }
    static let okMessage = APIResponse.ok(["message": .string("OK")])
}

/// This server's identity as shown to clients.
public struct ServerIdentity: Sendable {
    public let name: String
    public let ipAddress: String
    public var apiPort: Int
    public init(name: String, ipAddress: String, apiPort: Int) {
        self.name = name
        self.ipAddress = ipAddress
        self.apiPort = apiPort
    }
}

/// The management server's state machine for the Web API: sessions, locks, publish, tasks. One
/// actor serializes every change, so locks and revision numbers need no further coordination.
///
/// Where it runs is its owner's choice (`executor`): by default a thread of its own (`StoreThread`), as
/// a publish of a large revision is seconds of synchronous work that must not hold Swift concurrency's
/// threads; `rampart server` gives it the event loop its sockets run on instead, which spares every
/// request a hop to another thread and back (see README, Threads).
public actor ManagementService {
    let store: ManagementStore
    let executor: any SerialExecutor
    public nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    var identity: ServerIdentity
    let logger: Logger
    let clockMilliseconds: @Sendable () -> Int64
    let passwords: PasswordFunctions
    var epoch: RevisionEpoch

    var sessions: [String: Session] = [:]
    var sessionUIDBySID: [String: String] = [:]
    var lockOwner: [String: String] = [:]
    var tasks = TaskList()
    var throttle = LoginThrottle()
    /// When each SIC peer (by object uid) was last heard from on the SIC port.
    var sicLastContactMilliseconds: [String: Int64] = [:]
    var sicAuthority: InternalCA?
    /// When a peer's or a gateway's clock is off (`--clock-warning-ms`, `--clock-problem-ms`): enrolment
    /// refuses a node beyond the problem threshold unless forced (see `configureClock`).
    public internal(set) var clockThresholds = ClockThresholds.standard
    /// This server's open SIC channels (see `attachSICChannels`): a revocation closes the node's at once.
    var sicChannels: (any SICChannelCloser)?
    /// Management HA, when this server runs it (see `attachHA`).
    var ha: (any HAPort)?
    /// SmartTasks' before-publish actions and history (see `attachSmartTaskPort`).
    var smartTaskPort: (any SmartTaskPort)?
    /// Backup and migrate (see `attachOperations`).
    var operations: (any NodeOperationsProvider)?
    /// Gateways connected over SIC (see `attachGateways`), and install tasks still running.
    var gateways: (any GatewayFleet)?
    var installs: [String: InstallProgress] = [:]
    /// What each running install pushes (package uid and epoch): a rollback names the install it undoes.
    var installedPolicies: [String: (packageUID: String, epoch: RevisionEpoch)] = [:]
    /// This server's log database (DIR/logs.sqlite): what gateways send it, never synchronized.
    public nonisolated let logs: LogStore?
    /// This node's typed events: the services publish, the log and tests subscribe.
    public nonisolated let events: EventBus<ManagementEvent>
    /// Requests and publishes as counters and timers (see `ServiceMetrics.attach`).
    public nonisolated let metrics = ServiceMetrics()
    /// The last events and how long this server has held its HA mode, for `rampart view` (the node feeds it).
    public nonisolated let recentEvents = RecentEvents()
    /// Each peer's clock minus ours, as the node measured it (see `attachClockOffsets`).
    var clockOffsets: (@Sendable () -> [String: Int64])?
    var logQueries = LogQueries()
    /// `managementServers()` as last read, with the store's count of checkpoint-host changes it was read at.
    nonisolated let managementServersRead = Mutex<(changes: UInt64, entries: [ManagementServerEntry])?>(nil)
    /// Every published smart-task that parses, as `publishedSmartTasks()` last read them, with the store's
    /// count of smart-task changes they were read at.
    nonisolated let smartTasksRead = Mutex<(changes: UInt64, tasks: [SmartTaskDefinition])?>(nil)

    public init(
        store: ManagementStore, identity: ServerIdentity, logger: Logger,
        passwordIterations: Int = TrustLimits.passwordHashIterations,
        clockMilliseconds: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        logs: LogStore? = nil, events: EventBus<ManagementEvent> = EventBus(),
        verifyPassword: @escaping @Sendable (_ password: String, _ storedHash: String) -> Bool = { PasswordHasher.verify($0, against: $1) },
        executor: (any SerialExecutor)? = nil
    ) throws {
        self.store = store
        self.executor = executor ?? StoreThread(name: "rampart-service")
        self.logs = logs
        self.events = events
        self.identity = identity
        self.logger = logger
        self.clockMilliseconds = clockMilliseconds
        self.passwords = PasswordFunctions(
            hash: { PasswordHasher.hash($0, iterations: passwordIterations) },
            verify: verifyPassword,
            activationKeyRecord: { key, nodeName in
                do {
                    let record = try ActivationKey.record(
                        secret: key, nodeName: nodeName, now: Date(timeIntervalSince1970: Double(clockMilliseconds()) / 1000),
                        iterations: passwordIterations)
                    return try JSONValue.parse(record.jsonText)
                } catch {
                    throw ManagementError.invalid("one-time-password", "\(error)")
                }
            })
        self.epoch = RevisionEpoch(term: UInt64(try store.setting("epoch-term").flatMap(UInt64.init) ?? 1), server: identity.name)
        for stored in try store.loadSessions() {
            guard let session = Session(json: stored.body, changes: stored.changes) else { continue }
            sessions[session.uid] = session
            sessionUIDBySID[session.sid] = session.uid
            for uid in session.pending.keys { lockOwner[uid] = session.uid }
        }
    }

    deinit { (executor as? StoreThread)?.stop() }

    var now: Int64 { clockMilliseconds() }

    /// The port the API listener really bound (it differs from the requested one when that was 0).
    public func apiListenerBound(port: Int) { identity.apiPort = port }

    // MARK: first start

    /// Creates revision 1 on an empty database: the first administrator and the objects every
    /// Check Point database starts with (package Standard, layer Network with its Cleanup rule,
    /// common services). Returns false when the database already has revisions.
    public func initializeIfEmpty(adminPassword: String) throws -> Bool {
        guard try store.head() == nil else { return false }
        var counter = 0
        let context = ChangeContext(administrator: "System", nowMilliseconds: now) {
            counter += 1
            return SecureRandom.uuid()
        }
        let view = SessionView(published: store.reader, pending: PendingChanges())
        var pending = PendingChanges()
        var seq: Int64 = 0
        func run(_ type: ObjectType, _ params: [String: JSONValue]) throws {
            let planner = Planner(reader: SessionView(published: view.published, pending: pending), passwords: passwords)
            for change in try planner.add(type, params, context: context).changes {
                seq += 1
                pending[change.uid] = (seq, change)
            }
        }
        try run(.administrator, ["name": "admin", "password": .string(adminPassword), "permissions-profile": "super-user"])
        for (name, port) in [("http", "80"), ("https", "443"), ("ssh", "22"), ("smtp", "25"), ("ftp", "21"), ("telnet", "23")] {
            try run(.serviceTCP, ["name": .string(name), "port": .string(port)])
        }
        for (name, port) in [("domain-udp", "53"), ("ntp-udp", "123"), ("snmp", "161"), ("syslog", "514")] {
            try run(.serviceUDP, ["name": .string(name), "port": .string(port)])
        }
        try run(.package, ["name": "Standard", "access": true])
        // Check Point calls the default package's layer "Network".
        if let layerChange = pending.values.first(where: {
            if case .upsert(let o) = $0.change { return o.type == .accessLayer }
            return false
        }),
            case .upsert(var layer) = layerChange.change
        {
            layer.name = "Network"
            pending[layer.uid] = (layerChange.seq, .upsert(layer))
        }
        let changes = pending.values.sorted { $0.seq < $1.seq }.map(\.change)
        let revision = Revision(
            after: nil, epoch: epoch, publishedAtMilliseconds: now, author: "System",
            sessionUID: "", sessionName: "Initial database", changes: changes)
        try store.append(revision)
        logger.info("initialized the management database", metadata: ["revision": "1", "objects": "\(changes.count)"])
        return true
    }

    // MARK: dispatch

    /// Runs one Web API command. Errors become Check Point error bodies with their HTTP status. The
    /// command table says which commands exist, what each needs and which handler runs it.
    /// Every answer is counted by command and status; a committed publish's duration is recorded.
    public nonisolated func handle(command: String, body: JSONValue, sid: String?, client: ClientInfo) async -> APIResponse {
        let started = ContinuousClock.now
        let response = await dispatch(command: command, body: body, sid: sid, client: client)
        let known = CommandTable.entry(named: command)?.spec.name
        metrics.requestAnswered(command: known ?? "unknown", status: response.status)
        if known == "publish", response.status == 200 { metrics.publishCommitted(after: ContinuousClock.now - started) }
        return response
    }

    nonisolated func dispatch(command: String, body: JSONValue, sid: String?, client: ClientInfo) async -> APIResponse {
        guard let entry = CommandTable.entry(named: command) else {
            let error = ManagementError(
                code: "generic_err_command_not_found", message: "Command '\(String(command.prefix(Limits.nameLengthMax)))' not found", httpStatus: 404)
            return APIResponse(status: error.httpStatus, body: error.body)
        }
        let spec = entry.spec
        switch entry.handler {
        case .login:
            return await handleLogin(spec, body: body, client: client)
        case .open(let handler):
            return await runOpen(spec, handler, body: body)
        case .session(let handler):
            return await completeSyncPublish(await runInSession(spec, handler, body: body, sid: sid))
        case .outside(let handler):
            do {
                let (params, sessionUID) = try await admit(spec, body: body, sid: sid)
                return try await handler(self, params, sessionUID)
            } catch {
                return errorResponse(spec, error)
            }
        }
    }

    /// `login`: PBKDF2 takes tens of milliseconds, so it runs outside the actor, off the threads that
    /// carry the network, and stalls nothing else. The attempt is reserved with the throttle before
    /// the hash, so concurrent guesses beyond the budget are refused without one.
    nonisolated func handleLogin(_ spec: CommandSpec, body: JSONValue, client: ClientInfo) async -> APIResponse {
        guard case .object(let params) = body, let attempt = PasswordAttempt(params, client: client) else {
            return await answerLogin(spec, body: body, client: client, verdict: nil)
        }
        if let refusal = await reserveLoginAttempt(attempt) { return refusal }
        let admin = store.reader.objects(named: attempt.user).first { $0.type == .administrator }
        let storedHash = admin.flatMap { $0.fields["password-hash"]?.stringValue }
        let verify = passwords.verify
        let valid =
            (try? await offloaded {
                storedHash.map { verify(attempt.password, $0) } ?? PasswordHasher.verifyUnknownUser(attempt.password)
            }) ?? false
        return await finishLogin(spec, body: body, client: client, verdict: PasswordVerdict(attempt: attempt, administrator: valid ? admin : nil))
    }

    func finishLogin(_ spec: CommandSpec, body: JSONValue, client: ClientInfo, verdict: PasswordVerdict) -> APIResponse {
        let attempt = verdict.attempt
        throttle.release(
            LoginThrottle.Key(user: attempt.user, address: attempt.address), succeeded: verdict.administrator != nil,
            now: Date(timeIntervalSince1970: Double(now) / 1000))
        if verdict.administrator == nil {
            logger.warning("login failed", metadata: ["user": "\(attempt.user)", "address": "\(attempt.address)"])
        }
        return answerLogin(spec, body: body, client: client, verdict: verdict)
    }

    func answerLogin(_ spec: CommandSpec, body: JSONValue, client: ClientInfo, verdict: PasswordVerdict?) -> APIResponse {
        answer(spec, body: body) { params in try login(params, client: client, verdict: verdict) }
    }

    func runOpen(
        _ spec: CommandSpec, _ handler: @Sendable (isolated ManagementService, [String: JSONValue]) throws -> APIResponse,
        body: JSONValue
    ) -> APIResponse {
        answer(spec, body: body) { params in try handler(self, params) }
    }

    /// Runs `work` on the request's parameters inside the actor, after idle sessions ended; errors
    /// become their answers.
    func answer(_ spec: CommandSpec, body: JSONValue, _ work: (_ params: [String: JSONValue]) throws -> APIResponse) -> APIResponse {
        do {
            let params = try Self.parameters(body)
            expireIdleSessions()
            return try work(params)
        } catch {
            return errorResponse(spec, error)
        }
    }

    /// A command on the caller's session, inside the actor: the standby's read-only rule and the
    /// command's permission first.
    func runInSession(
        _ spec: CommandSpec, _ handler: @Sendable (isolated ManagementService, [String: JSONValue], String) throws -> APIResponse,
        body: JSONValue, sid: String?
    ) -> APIResponse {
        answer(spec, body: body) { params in
            let sessionUID = try authenticate(sid)
            try refuseChangeOnStandby(spec)
            try authorize(spec, params, sessionUID: sessionUID)
            return try handler(self, params, sessionUID)
        }
    }

    /// The checks of `runInSession` for a command that then runs outside the actor: its parameters
    /// and the caller's session uid.
    func admit(_ spec: CommandSpec, body: JSONValue, sid: String?) throws -> ([String: JSONValue], String) {
        let params = try Self.parameters(body)
        expireIdleSessions()
        let sessionUID = try authenticate(sid)
        try refuseChangeOnStandby(spec)
        try authorize(spec, params, sessionUID: sessionUID)
        return (params, sessionUID)
    }

    /// A request body is a JSON object (`{}` when empty).
    static func parameters(_ body: JSONValue) throws -> [String: JSONValue] {
        guard case .object(let params) = body else {
            throw ManagementError(code: "generic_err_invalid_syntax", message: "The request body must be a JSON object", httpStatus: 400)
        }
        return params
    }

    /// The answer to a command that failed: a `ManagementError` with its status; anything else is a
    /// server error (500), logged.
    nonisolated func errorResponse(_ spec: CommandSpec, _ error: any Error) -> APIResponse {
        if let error = error as? ManagementError { return APIResponse(status: error.httpStatus, body: error.body) }
        logger.error("command failed", metadata: ["command": "\(spec.name)", "error": "\(error)"])
        return APIResponse(status: 500, body: ManagementError.internalError("\(error)").body)
    }

    /// The uid of the open session a sid names (only the uid: a copy of the session would make
    /// the next change to its pending set copy them all).
    func authenticate(_ sid: String?) throws -> String {
        guard let sid, !sid.isEmpty else {
            throw ManagementError(code: "generic_err_missing_session_id", message: "Missing header: [X-chkp-sid]", httpStatus: 401)
        }
        guard let uid = sessionUIDBySID[sid], sessions[uid]?.state == .open else {
            throw ManagementError(
                code: "generic_err_wrong_session_id",
                message: "Wrong session id [\(sid.prefix(6))…]. Session may be expired. Please check session id and resend the request", httpStatus: 401)
        }
        sessions[uid]!.lastActivityMilliseconds = now
        return uid
    }

    // MARK: sessions

    /// Reserves a password check with the throttle; the refusal to answer with when it is used up.
    func reserveLoginAttempt(_ attempt: PasswordAttempt) -> APIResponse? {
        let key = LoginThrottle.Key(user: attempt.user, address: attempt.address)
        guard case .refused(let retry) = throttle.reserve(key, now: Date(timeIntervalSince1970: Double(now) / 1000)) else { return nil }
        logger.warning("login throttled", metadata: ["user": "\(attempt.user)", "address": "\(attempt.address)"])
        let error = ManagementError(code: "err_too_many_requests", message: "Too many failed logins; try again in \(retry / 1000 + 1) seconds", httpStatus: 400)
        return APIResponse(status: error.httpStatus, body: error.body)
    }

    func login(_ params: [String: JSONValue], client: ClientInfo, verdict: PasswordVerdict?) throws -> APIResponse {
        let asRoot = try params.flag("login-as-root", default: false)
        let user: String
        let profile: PermissionProfile
        var administratorUID: String?
        if asRoot {
            guard client.isLocalSocket else {
                throw ManagementError(code: "err_login_failed", message: "login-as-root is accepted only on the local operator socket", httpStatus: 400)
            }
            user = "root"
            profile = .superUser
        } else {
            if params["api-key"] != nil {
                throw ManagementError(
                    code: "err_login_failed", message: "Authentication with api-key is not enabled on this server; log in with user and password",
                    httpStatus: 400)
            }
            guard let name = params["user"]?.stringValue, let password = params["password"]?.stringValue else {
                throw ManagementError.missing(["user", "password"])
            }
            guard name.count <= Limits.nameLengthMax, password.count <= Limits.stringLengthMax else { throw loginFailed() }
            if let domain = params["domain"]?.stringValue, !["SMC User", "System Data", Renderer.defaultDomain["uid"]!.stringValue!].contains(domain) {
                throw ManagementError(code: "err_login_failed", message: "Login failed: unknown domain [\(domain)]", httpStatus: 400)
            }
            guard let verdict, verdict.attempt.user == name, verdict.attempt.password == password else {
                throw ManagementError.internalError("login reached the service without a password check")
            }
            guard let admin = verdict.administrator else { throw loginFailed() }
            user = admin.name
            administratorUID = admin.uid
            profile = admin.fields["permissions-profile"]?.stringValue.flatMap(PermissionProfile.init(rawValue:)) ?? .readOnly
        }
        try checkSessionLimits(owner: asRoot ? "root@local-socket" : user, user: user, isLocalRoot: asRoot)
        let timeout =
            try params["session-timeout"].map { Int(try $0.integer("session-timeout", in: 10...Int64(Limits.sessionTimeoutSecondsMax))) }
            ?? Limits.sessionTimeoutSecondsDefault
        let readOnly = try params.flag("read-only", default: false) || profile == .readOnly
        let session = Session(
            uid: SecureRandom.uuid(), sid: SecureRandom.token(byteCount: 32), user: user, readOnly: readOnly,
            profile: profile, isLocalRoot: asRoot, administratorUID: administratorUID,
            name: params["session-name"]?.scalarText.map { Limits.truncated($0, characters: Limits.nameLengthMax) } ?? "",
            description: params["session-description"]?.scalarText.map { Limits.truncated($0, characters: Limits.commentsLengthMax) } ?? "",
            timeoutSeconds: timeout, nowMilliseconds: now, ipAddress: client.address)
        sessions[session.uid] = session
        sessionUIDBySID[session.sid] = session.uid
        do {
            try store.saveSession(uid: session.uid, body: session.json)
        } catch {
            // A full disk must not lock the operator out of status and diagnosis: the session works from
            // memory (it ends with the process; a change in it is refused as the store refuses it).
            logger.warning("session kept in memory only: the store refused it", metadata: ["session": "\(session.uid)", "error": "\(error)"])
        }
        logger.info("login", metadata: ["user": "\(user)", "session": "\(session.uid)", "read-only": "\(readOnly)"])
        return APIResponse.ok([
            "sid": .string(session.sid), "uid": .string(session.uid), "session-timeout": .int(Int64(timeout)),
            "url": .string("https://\(identity.ipAddress):\(identity.apiPort)/web_api"), "api-server-version": .string(APIVersions.current),
            "read-only": .bool(readOnly), "standby": .bool(ha?.isStandby ?? false),
            "last-login-was-at": Renderer.timestamp(now),
        ])
    }

    func loginFailed() -> ManagementError {
        ManagementError(code: "err_login_failed_wrong_username_or_password", message: "Authentication to server failed.", httpStatus: 400)
    }

    /// Idle sessions end: one without pending changes is forgotten; one with pending changes has
    /// them discarded, so its locks are released (nothing was published, nothing else is lost).
    func expireIdleSessions() {
        let current = now
        for uid in sessions.keys.sorted() {
            guard let session = sessions[uid], session.isExpired(nowMilliseconds: current) else { continue }
            if !session.pending.isEmpty {
                logger.notice(
                    "session expired; its unpublished changes are discarded",
                    metadata: ["session": "\(uid)", "user": "\(session.user)", "changes": "\(session.pending.count)"])
            }
            endSession(uid)
        }
    }

    func endSession(_ uid: String) {
        guard let session = sessions.removeValue(forKey: uid) else { return }
        sessionUIDBySID[session.sid] = nil
        for objectUID in session.pending.keys where lockOwner[objectUID] == uid { lockOwner[objectUID] = nil }
        do { try store.deleteSession(uid: uid) } catch { logger.error("could not delete session", metadata: ["error": "\(error)"]) }
    }

    func view(of sessionUID: String) -> SessionView {
        SessionView(published: store.reader, pending: sessions[sessionUID]?.pending ?? PendingChanges())
    }

    func changeContext(_ session: Session) -> ChangeContext {
        ChangeContext(administrator: session.user, nowMilliseconds: now, newUID: { SecureRandom.uuid() })
    }

    func requireWritable(_ session: Session) throws {
        if session.readOnly {
            throw ManagementError.noPermissions("Session is read-only: administrator [\(session.user)] cannot change the database in this session")
        }
    }

    /// Takes the locks a plan needs and records its changes in the session (durably).
    func record(_ plan: Planner.Plan, in sessionUID: String) throws {
        guard sessions[sessionUID] != nil else { throw ManagementError.internalError("session vanished") }
        for change in plan.changes {
            if let owner = lockOwner[change.uid], owner != sessionUID, let holder = sessions[owner] {
                let name = (try? objectName(change.uid, owner)) ?? change.uid
                throw ManagementError(
                    code: "generic_err_object_locked",
                    message: "Object [\(name)] is locked by session [\(holder.name.isEmpty ? holder.uid : holder.name)] of administrator [\(holder.user)]",
                    httpStatus: 409, details: ["locking-session": .string(holder.uid)])
            }
        }
        guard sessions[sessionUID]!.pending.count + plan.changes.count <= Limits.changesPerSessionMax else {
            throw ManagementError.invalid("session", "more than \(Limits.changesPerSessionMax) pending changes; publish first")
        }
        var saved: [(seq: Int64, change: ObjectChange)] = []
        var dropped: [String] = []
        var nextSeq = sessions[sessionUID]!.nextSeq
        for change in plan.changes {
            // A delete of an object added in this same session leaves nothing to publish.
            if case .delete = change, case .upsert? = sessions[sessionUID]!.pending[change.uid]?.change,
                store.reader.object(uid: change.uid) == nil
            {
                dropped.append(change.uid)
                continue
            }
            saved.append((nextSeq, change))
            nextSeq += 1
        }
        // Durable first, then memory: a failed write leaves the session as it was. The session is
        // changed in place so its pending changes are never copied (a draft may hold thousands).
        try store.savePendingChanges(session: sessionUID, saved, removing: dropped)
        sessions[sessionUID]!.nextSeq = nextSeq
        for uid in dropped {
            sessions[sessionUID]!.pending[uid] = nil
            lockOwner[uid] = nil
        }
        for item in saved {
            sessions[sessionUID]!.pending[item.change.uid] = item
            lockOwner[item.change.uid] = sessionUID
        }
    }

    /// The name of an object as a session sees it. An object that session deleted is gone from its
    /// view, but its pending delete still carries the name, so lock errors can name it.
    func objectName(_ uid: String, _ sessionUID: String) throws -> String {
        if let name = view(of: sessionUID).object(uid: uid)?.name { return name }
        if case .delete(_, _, let name)? = sessions[sessionUID]?.pending[uid]?.change { return name }
        return uid
    }

    func lockText(_ uid: String, viewer: String) -> String {
        guard let owner = lockOwner[uid] else { return "unlocked" }
        return owner == viewer ? "locked by current session" : "locked by other session"
    }
}

public enum APIVersions {
    public static let current = "1.9.1"
    public static let supported = ["1", "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.6.1", "1.7", "1.7.1", "1.8", "1.8.1", "1.9", "1.9.1"]
}

/// A login's user name and password, as sent (read from the body before anything else).
struct PasswordAttempt: Sendable {
    let user: String
    let password: String
    let address: String

    init?(_ params: [String: JSONValue], client: ClientInfo) {
        guard !(params["login-as-root"]?.boolValue ?? false), let user = params["user"]?.stringValue,
            let password = params["password"]?.stringValue, user.count <= Limits.nameLengthMax,
            password.count <= Limits.stringLengthMax
        else { return nil }
        self.user = user
        self.password = password
        self.address = client.address
    }
}

/// The outcome of checking a password: the administrator it proved, or nil.
struct PasswordVerdict: Sendable {
    let attempt: PasswordAttempt
    let administrator: ManagedObject?
}
