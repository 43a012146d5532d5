import ManagementModel

/// An administrator's login. Pending changes stay private to it until publish or discard.
struct Session: Sendable {
    enum State: String { case open, disconnected }

    let uid: String
    let sid: String
    let user: String
    let readOnly: Bool
    var name: String
    var description: String
    let timeoutSeconds: Int
    let loginMilliseconds: Int64
    var lastActivityMilliseconds: Int64
    let ipAddress: String
    var state: State = .open
    /// Pending changes by object uid, each with the order it was made in.
    var pending: [String: (seq: Int64, change: ObjectChange)] = [:]
    var nextSeq: Int64 = 1

    func isExpired(nowMilliseconds: Int64) -> Bool {
        nowMilliseconds - lastActivityMilliseconds > Int64(timeoutSeconds) * 1000
    }

    var orderedChanges: [ObjectChange] { pending.values.sorted { $0.seq < $1.seq }.map(\.change) }

    var json: JSONValue {
        .object([
            "uid": .string(uid), "sid": .string(sid), "user": .string(user), "read-only": .bool(readOnly),
            "name": .string(name), "description": .string(description), "timeout": .int(Int64(timeoutSeconds)),
            "login": .int(loginMilliseconds), "last-activity": .int(lastActivityMilliseconds),
            "ip-address": .string(ipAddress), "state": .string(state.rawValue), "next-seq": .int(nextSeq),
        ])
    }

    init(uid: String, sid: String, user: String, readOnly: Bool, name: String, description: String,
         timeoutSeconds: Int, nowMilliseconds: Int64, ipAddress: String) {
        self.uid = uid
        self.sid = sid
        self.user = user
        self.readOnly = readOnly
        self.name = name
        self.description = description
        self.timeoutSeconds = timeoutSeconds
        self.loginMilliseconds = nowMilliseconds
        self.lastActivityMilliseconds = nowMilliseconds
        self.ipAddress = ipAddress
    }

    init?(json: JSONValue, changes: [(seq: Int64, change: ObjectChange)]) {
        guard let uid = json["uid"]?.stringValue, let sid = json["sid"]?.stringValue, let user = json["user"]?.stringValue else { return nil }
        self.init(uid: uid, sid: sid, user: user, readOnly: json["read-only"]?.boolValue ?? true,
                  name: json["name"]?.stringValue ?? "", description: json["description"]?.stringValue ?? "",
                  timeoutSeconds: Int(json["timeout"]?.intValue ?? 600), nowMilliseconds: json["login"]?.intValue ?? 0,
                  ipAddress: json["ip-address"]?.stringValue ?? "")
        lastActivityMilliseconds = json["last-activity"]?.intValue ?? loginMilliseconds
        state = State(rawValue: json["state"]?.stringValue ?? "open") ?? .open
        nextSeq = json["next-seq"]?.intValue ?? 1
        for item in changes { pending[item.change.uid] = item; nextSeq = max(nextSeq, item.seq + 1) }
    }
}

/// The published database seen through one session: its pending changes on top.
struct SessionView: ObjectReader {
    let published: any ObjectReader
    let pending: [String: (seq: Int64, change: ObjectChange)]

    func object(uid: String) -> ManagedObject? {
        if let mine = pending[uid] {
            if case .upsert(let object) = mine.change { return object }
            return nil
        }
        return published.object(uid: uid)
    }

    func objects(named name: String) -> [ManagedObject] {
        var out = published.objects(named: name).filter { pending[$0.uid] == nil }
        for (_, item) in pending { if case .upsert(let object) = item.change, object.name == name { out.append(object) } }
        return out.sorted { $0.uid < $1.uid }
    }

    func referrers(of uid: String) -> [ManagedObject] {
        var out = published.referrers(of: uid).filter { pending[$0.uid] == nil }
        for (_, item) in pending {
            if case .upsert(let object) = item.change, object.referencedUIDs.contains(uid) { out.append(object) }
        }
        return out.sorted { $0.uid < $1.uid }
    }
}
