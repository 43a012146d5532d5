import ManagementModel

/// An administrator's login. Pending changes stay private to it until publish or discard.
struct Session: Sendable {
    enum State: String { case open, disconnected }

    let uid: String
    let sid: String
    let user: String
    let readOnly: Bool
    /// The administrator's profile at login (nil in a session stored before profiles were kept: then
    /// the administrator's current one counts).
    let profile: PermissionProfile?
    /// root over the local operator socket, not an administrator who logged in with a password.
    let isLocalRoot: Bool
    /// The administrator object's uid (its name may change while the session lasts).
    let administratorUID: String?
    var name: String
    var description: String
    let timeoutSeconds: Int
    let loginMilliseconds: Int64
    var lastActivityMilliseconds: Int64
    let ipAddress: String
    var state: State = .open
    /// Pending changes by object uid, each with the order it was made in.
    var pending = PendingChanges()
    var nextSeq: Int64 = 1

    func isExpired(nowMilliseconds: Int64) -> Bool {
        let (idle, overflow) = nowMilliseconds.subtractingReportingOverflow(lastActivityMilliseconds)
        return overflow || idle > Int64(timeoutSeconds) * 1000  // timeoutSeconds is at most Limits.sessionTimeoutSecondsMax
    }

    /// Who the session belongs to, for "one's own sessions" and per-administrator limits: root on
    /// the local socket is not the administrator who may be named root.
    var owner: String { isLocalRoot ? "root@local-socket" : user }

    var orderedChanges: [ObjectChange] { pending.values.sorted { $0.seq < $1.seq }.map(\.change) }

    var json: JSONValue {
        .object([
            "uid": .string(uid), "sid": .string(sid), "user": .string(user), "read-only": .bool(readOnly),
            "profile": profile.map { .string($0.rawValue) } ?? .null, "local-root": .bool(isLocalRoot),
            "administrator-uid": administratorUID.map(JSONValue.string) ?? .null,
            "name": .string(name), "description": .string(description), "timeout": .int(Int64(timeoutSeconds)),
            "login": .int(loginMilliseconds), "last-activity": .int(lastActivityMilliseconds),
            "ip-address": .string(ipAddress), "state": .string(state.rawValue), "next-seq": .int(nextSeq),
        ])
    }

    init(
        uid: String, sid: String, user: String, readOnly: Bool, profile: PermissionProfile?, isLocalRoot: Bool, administratorUID: String?,
        name: String, description: String, timeoutSeconds: Int, nowMilliseconds: Int64, ipAddress: String
    ) {
        self.uid = uid
        self.sid = sid
        self.user = user
        self.readOnly = readOnly
        self.profile = profile
        self.isLocalRoot = isLocalRoot
        self.administratorUID = administratorUID
        self.name = name
        self.description = description
        self.timeoutSeconds = timeoutSeconds
        self.loginMilliseconds = nowMilliseconds
        self.lastActivityMilliseconds = nowMilliseconds
        self.ipAddress = ipAddress
    }

    init?(json: JSONValue, changes: [(seq: Int64, change: ObjectChange)]) {
        guard let uid = json["uid"]?.stringValue, let sid = json["sid"]?.stringValue, let user = json["user"]?.stringValue else { return nil }
        // A stored record is read like a request: a timeout out of range takes the nearest bound.
        let timeout = max(10, min(json["timeout"]?.intValue ?? 600, Int64(Limits.sessionTimeoutSecondsMax)))
        self.init(
            uid: uid, sid: sid, user: user, readOnly: json["read-only"]?.boolValue ?? true,
            profile: json["profile"]?.stringValue.flatMap(PermissionProfile.init(rawValue:)),
            isLocalRoot: json["local-root"]?.boolValue ?? false, administratorUID: json["administrator-uid"]?.stringValue,
            name: json["name"]?.stringValue ?? "", description: json["description"]?.stringValue ?? "",
            timeoutSeconds: Int(timeout), nowMilliseconds: json["login"]?.intValue ?? 0,
            ipAddress: json["ip-address"]?.stringValue ?? "")
        lastActivityMilliseconds = json["last-activity"]?.intValue ?? loginMilliseconds
        state = State(rawValue: json["state"]?.stringValue ?? "open") ?? .open
        nextSeq = json["next-seq"]?.intValue ?? 1
        for item in changes {
            pending[item.change.uid] = item
            nextSeq = max(nextSeq, item.seq &+ 1)
        }
        // Sequence numbers count changes: one near Int64's end is damage, and would overflow on the next change.
        guard nextSeq >= 1, nextSeq < Int64.max / 2 else { return nil }
    }
}

/// The published database seen through one session: its pending changes on top.
struct SessionView: ObjectReader {
    let published: any ObjectReader
    let pending: PendingChanges

    func object(uid: String) -> ManagedObject? {
        if let mine = pending[uid] {
            if case .upsert(let object) = mine.change { return object }
            return nil
        }
        return published.object(uid: uid)
    }

    func objects(named name: String) -> [ManagedObject] {
        var out = published.objects(named: name).filter { pending[$0.uid] == nil }
        out += pending.upserts(named: name)
        return out.sorted { $0.uid < $1.uid }
    }

    func referrers(of uid: String) -> [ManagedObject] {
        var out = published.referrers(of: uid).filter { pending[$0.uid] == nil }
        out += pending.upserts(referring: uid)
        return out.sorted { $0.uid < $1.uid }
    }
}

/// A session's pending changes by object uid, indexed by name and by referenced uid so that a
/// session holding thousands of changes still answers each lookup without a scan.
struct PendingChanges: Sendable {
    typealias Item = (seq: Int64, change: ObjectChange)

    private(set) var items: [String: Item] = [:]
    private var uidsByName: [String: Set<String>] = [:]
    private var uidsByReference: [String: Set<String>] = [:]

    var keys: Dictionary<String, Item>.Keys { items.keys }
    var values: Dictionary<String, Item>.Values { items.values }
    var count: Int { items.count }
    var isEmpty: Bool { items.isEmpty }

    subscript(uid: String) -> Item? {
        get { items[uid] }
        set {
            if let old = items[uid], case .upsert(let object) = old.change { unindex(object) }
            items[uid] = newValue
            if let newValue, case .upsert(let object) = newValue.change { index(object) }
        }
    }

    private mutating func index(_ object: ManagedObject) {
        uidsByName[object.name, default: []].insert(object.uid)
        for target in object.referencedUIDs { uidsByReference[target, default: []].insert(object.uid) }
    }

    private mutating func unindex(_ object: ManagedObject) {
        uidsByName[object.name]?.remove(object.uid)
        if uidsByName[object.name]?.isEmpty == true { uidsByName[object.name] = nil }
        for target in object.referencedUIDs {
            uidsByReference[target]?.remove(object.uid)
            if uidsByReference[target]?.isEmpty == true { uidsByReference[target] = nil }
        }
    }

    private func upserts(_ uids: Set<String>?) -> [ManagedObject] {
        (uids ?? []).sorted().compactMap { uid in
            if case .upsert(let object)? = items[uid]?.change { return object }
            return nil
        }
    }

    func upserts(named name: String) -> [ManagedObject] { upserts(uidsByName[name]) }
    func upserts(referring uid: String) -> [ManagedObject] { upserts(uidsByReference[uid]) }
}
