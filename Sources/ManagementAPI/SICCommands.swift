import Foundation
import ManagementModel
import TrustCore

extension ManagementService {
    /// A SIC peer (secondary server, later gateway) reached the SIC port with a trusted certificate.
    public func sicPeerSeen(uid: String) { sicLastContactMilliseconds[uid] = now }

    /// Check Point's test-sic-status: uninitialized (never enrolled, or reset), initialized
    /// (enrolled, not connected now), communicating (connected within the last minute).
    func testSICStatus(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let reader = view(of: sessionUID)
        let node = try findSICNode(Planner(reader: reader, passwords: passwords), params)
        let sicName = node.fields[ManagedObject.sicNameField]?.stringValue ?? ""
        let state = node.fields[ManagedObject.sicStateField]?.stringValue ?? "uninitialized"
        let (status, message): (String, String)
        if node.name == identity.name {
            (status, message) = ("communicating", "This is the server you are connected to.")
        } else if state != "initialized" {
            let key = node.fields[ManagedObject.activationKeyField]
            (status, message) = ("uninitialized", key == nil
                ? "No activation key: set one with set-\(node.type.rawValue) one-time-password=… and enrol the node."
                : "Waiting for the node to enrol with its one-time activation key (rampart sic enroll).")
        } else if let seen = sicLastContactMilliseconds[node.uid], now - seen <= SICStatusLimits.communicatingWindowMilliseconds {
            (status, message) = ("communicating", "Trust established; last contact \((now - seen) / 1000) s ago.")
        } else {
            let seen = sicLastContactMilliseconds[node.uid]
            (status, message) = ("not communicating", seen.map { "Trust established, but no contact for \((now - $0) / 1000) s: check that the node runs and reaches the SIC port." }
                ?? "Trust established (certificate issued), but the node has not connected since this server started.")
        }
        return APIResponse.ok(["sic-status": .string(status), "sic-name": .string(sicName), "sic-message": .string(message)])
    }

    /// The management server or gateway a SIC command names (by uid or name).
    func findSICNode(_ planner: Planner, _ params: [String: JSONValue]) throws -> ManagedObject {
        for type in ObjectType.sicNodes.dropLast() {
            if let found = try? planner.find(type, params) { return found }
        }
        return try planner.find(ObjectType.sicNodes.last!, params)
    }

    /// reset-sic: the node's certificate is revoked at once and a new one-time activation key is
    /// set (given, or generated and shown once in the reply). The object change is published with
    /// the session, like any other change.
    func resetSIC(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let current = try session(sessionUID)
        try requireWritable(current)
        let planner = Planner(reader: view(of: sessionUID), passwords: passwords)
        var node = try findSICNode(planner, params)
        let generated = params["one-time-password"] == nil
        let key = params["one-time-password"]?.stringValue ?? SecureRandom.password(length: 20)
        let normalized = try planner.normalizer.normalize(node.type, ["one-time-password": .string(key)], existing: node)
        if let serial = node.fields[ManagedObject.sicSerialField]?.stringValue {
            try revokeNodeCertificate(serial: serial, node: node.uid)
        }
        node.fields.merge(normalized) { _, new in new }
        node.fields[ManagedObject.sicSerialField] = nil
        node.fields[ManagedObject.sicNameField] = nil
        node.meta.lastModifier = current.user
        node.meta.lastModifyTimeMilliseconds = now
        try record(Planner.Plan(primary: node, changes: [.upsert(node)]), in: sessionUID)
        sicLastContactMilliseconds[node.uid] = nil
        logger.notice("SIC reset", metadata: ["node": "\(node.name)", "by": "\(current.user)"])
        var reply: [String: JSONValue] = ["message": .string("OK")]
        if generated { reply["one-time-password"] = .string(key) }
        return APIResponse.ok(reply)
    }
}

enum SICStatusLimits {
    /// A node heard from within this window counts as communicating.
    static let communicatingWindowMilliseconds: Int64 = 60_000
}

extension ManagementService {
    static let revocationsSetting = "sic-revocations"

    /// Adds a serial to the revocation list, durably, before anything else about the reset is done.
    func revokeNodeCertificate(serial: String, node: String) throws {
        var list = try currentRevocations()
        try list.revoke(serial: serial, reason: .sicReset, now: Date(timeIntervalSince1970: Double(now) / 1000))
        try store.setSetting(Self.revocationsSetting, list.jsonText)
    }
}
