import Foundation
import ManagementModel
import TrustCore

/// The SIC channels open on this server (HA channels to the other management servers, gateways'
/// channels), so that a revocation cuts a node off at once rather than at its next connection. The
/// server's SIC shell provides it (`ManagementService.attachSICChannels`).
public protocol SICChannelCloser: Sendable {
    /// Closes every open channel whose peer certificate names node `uid`; returns how many.
    @discardableResult
    func closeChannels(ofNode uid: String, reason: String) -> Int
}

extension ManagementService {
    /// A SIC peer (secondary server, later gateway) reached the SIC port with a trusted certificate.
    public func sicPeerSeen(uid: String) { sicLastContactMilliseconds[uid] = now }

    public func attachSICChannels(_ channels: any SICChannelCloser) { sicChannels = channels }

    /// Check Point's test-sic-status (and so `rampart sic status`): uninitialized (never enrolled,
    /// reset, or revoked), not communicating (enrolled, no contact now), communicating.
    func testSICStatus(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        let reader = view(of: sessionUID)
        let node = try findSICNode(Planner(reader: reader, passwords: passwords), params)
        let sicName = node.fields[ManagedObject.sicNameField]?.stringValue ?? ""
        let status = sicNodeStatus(node)
        return APIResponse.ok([
            "sic-status": .string(status.sicStatus), "sic-name": .string(sicName), "sic-message": .string(status.message),
            "rampart-revoked": .bool(status.revoked),
        ])
    }

    /// SIC with a management server or gateway now: the one computation behind the objects'
    /// `sic-state` (show-checkpoint-host, show-simple-gateway, …) and test-sic-status, so the API and
    /// `rampart sic status` never disagree. Communicating: this server itself, a gateway whose channel
    /// to this server is open, a management server heard from (its HA link reports every second)
    /// within `SICStatusLimits.communicatingWindowMilliseconds`.
    func sicNodeStatus(_ node: ManagedObject) -> SICNodeStatus {
        if node.type == .checkpointHost, node.name == identity.name {
            return SICNodeStatus(state: .communicating, message: "This is the server you are connected to.")
        }
        // An unreadable revocation list is an error of its own (reset-sic reports it); status still answers.
        if let revoked = (try? revocation(of: node)) ?? nil {
            return SICNodeStatus(state: .uninitialized, message: revoked, revoked: true)
        }
        guard node.fields[ManagedObject.sicStateField]?.stringValue == "initialized" else {
            let key = node.fields[ManagedObject.activationKeyField]
            return SICNodeStatus(
                state: .uninitialized,
                message: key == nil
                    ? "No activation key: set one with set-\(node.type.rawValue) one-time-password (rampart mgmt: one-time-password-file=FILE) and enrol the node."
                    : "Waiting for the node to enrol with its one-time activation key (rampart sic enroll).")
        }
        let seen = sicLastContactMilliseconds[node.uid]
        if ObjectType.gatewayNodes.contains(node.type) {
            if gateways?.status(ofGateway: node.uid)?.connected == true {
                return SICNodeStatus(state: .communicating, message: "Trust established; its channel to this server is open.")
            }
        } else if let seen, now - seen <= SICStatusLimits.communicatingWindowMilliseconds {
            return SICNodeStatus(state: .communicating, message: "Trust established; last contact \((now - seen) / 1000) s ago.")
        }
        return SICNodeStatus(
            state: .notCommunicating,
            message: seen.map {
                "Trust established, but no contact for \((now - $0) / 1000) s: check that the node runs and reaches the SIC port."
            } ?? "Trust established (certificate issued), but the node has not connected since this server started.")
    }

    /// Why `node` is cut off, when its trust was revoked: its recorded certificate is on the revocation
    /// list, or a reset revoked its certificate and it has not enrolled again.
    func revocation(of node: ManagedObject) throws -> String? {
        let list = try currentRevocations()
        let serial = node.fields[ManagedObject.sicSerialField]?.stringValue ?? ""
        let entry: RevocationList.Entry
        if let current = list.entry(forSerial: serial), current.endsTrust {
            entry = current
        } else if node.fields[ManagedObject.sicStateField]?.stringValue != "initialized", let last = list.lastTrustEnding(ofNode: node.uid) {
            entry = last
        } else {
            return nil
        }
        let at = Renderer.timestamp(entry.revokedAtMilliseconds)["iso-8601"]?.stringValue ?? "\(entry.revokedAtMilliseconds)"
        return "Revoked: its certificate (serial \(entry.serial)) was revoked at \(at) (\(entry.reason.rawValue)); every channel of it was "
            + "closed and it cannot connect. Enrol it again with its new one-time activation key."
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
        guard node.name != identity.name else {
            throw ManagementError(
                code: "err_sic_reset_self", message: "\(node.name) is the server you are connected to: reset its SIC from another server of the group",
                httpStatus: 400)
        }
        let generated = params["one-time-password"] == nil
        let key = params["one-time-password"]?.stringValue ?? SecureRandom.password(length: 20)
        let normalized = try planner.normalizer.normalize(node.type, ["one-time-password": .string(key)], existing: node)
        let serial = node.fields[ManagedObject.sicSerialField]?.stringValue ?? ""
        if node.fields[ManagedObject.sicStateField]?.stringValue == "initialized" {
            guard RevocationList.isValidSerial(serial) else {
                throw ManagementError(
                    code: "err_sic_serial_unknown",
                    message: """
                        the certificate serial of \(node.name) is not known here yet, so its certificate cannot be revoked: start \(node.name) \
                        so that it connects to the active server (which records every server's serial), then reset it again
                        """, httpStatus: 400)
            }
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

/// See `ManagementService.sicNodeStatus`.
struct SICNodeStatus: Equatable {
    enum State { case uninitialized, notCommunicating, communicating }
    let state: State
    let message: String
    /// Its certificate was revoked (sic reset) and it has not enrolled again.
    var revoked = false

    /// The objects' `sic-state`, in Check Point's words.
    var sicState: String {
        switch state {
        case .uninitialized: "uninitialized"
        case .notCommunicating: "initialized"
        case .communicating: "communicating"
        }
    }

    /// test-sic-status's `sic-status`, in Check Point's words.
    var sicStatus: String {
        switch state {
        case .uninitialized: "uninitialized"
        case .notCommunicating: "not communicating"
        case .communicating: "communicating"
        }
    }
}

enum SICStatusLimits {
    /// A node heard from within this window counts as communicating.
    static let communicatingWindowMilliseconds: Int64 = 60_000
}

extension ManagementService {
    static let revocationsSetting = "sic-revocations"

    /// Adds a serial to the revocation list, durably, before anything else about the reset is done;
    /// the node's open channels close at once.
    func revokeNodeCertificate(serial: String, node: String) throws {
        var list = try currentRevocations()
        try list.revoke(serial: serial, reason: .sicReset, node: node, now: Date(timeIntervalSince1970: Double(now) / 1000))
        try storeRevocations(list)
    }

    /// Stores the revocation list (durably), then closes every open channel of a node whose trust it
    /// ended and the stored one did not: the one place a revocation takes effect, whether it was made
    /// here (reset-sic) or arrived from the active (ICA state sync).
    func storeRevocations(_ list: RevocationList) throws {
        let before = try currentRevocations()
        try store.setSetting(Self.revocationsSetting, list.jsonText)
        for node in list.nodesNewlyRevoked(since: before) {
            let closed = sicChannels?.closeChannels(ofNode: node, reason: "its certificate was revoked") ?? 0
            logger.notice("SIC revocation in force", metadata: ["node": "\(node)", "channels-closed": "\(closed)"])
        }
    }
}
