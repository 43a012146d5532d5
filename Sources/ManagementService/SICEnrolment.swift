import Foundation
import ManagementModel
import Store
import TrustCore

extension ManagementService {
    /// The Internal CA that signs node certificates: only a server holding its key can enrol nodes.
    public func configureSIC(authority: InternalCA) { sicAuthority = authority }

    /// The clock thresholds of this server (`rampart server --clock-warning-ms`, `--clock-problem-ms`).
    public func configureClock(_ thresholds: ClockThresholds) { clockThresholds = thresholds }

    /// How long a finished task stays for `show-task` (within `Limits.taskRetentionSecondsRange`).
    public func configureTaskRetention(seconds: Int) {
        let bounded = min(max(seconds, Limits.taskRetentionSecondsRange.lowerBound), Limits.taskRetentionSecondsRange.upperBound)
        tasks.retentionMilliseconds = Int64(bounded) * 1000
    }

    /// Runs one enrolment request from the SIC port and answers it. A certificate is issued only
    /// after the key record (now used) and the node's new SIC state are published durably.
    public func enrol(_ request: EnrolmentRequest, address: String, serverNonce: [UInt8]) -> EnrolmentMessage {
        let date = Date(timeIntervalSince1970: Double(now) / 1000)
        let throttleKey = EnrolmentServer.throttleKey(nodeName: request.nodeName, address: address)
        if case .refused(let retry) = throttle.check(throttleKey, now: date) {
            return .refusal(.throttled(retryAfterMilliseconds: retry))
        }
        guard let authority = sicAuthority else {
            return .refusal(EnrolmentRefusal(.unavailable, "this server holds no Internal CA key and cannot enrol nodes; enrol with the primary"))
        }
        let node = store.reader.objects(named: request.nodeName).first { ObjectType.sicNodes.contains($0.type) }
        if let node, let owner = lockOwner[node.uid], let holder = sessions[owner] {
            return .refusal(
                EnrolmentRefusal(.unavailable, "the object \(node.name) is being edited in a session of \(holder.user); publish or discard it, then retry"))
        }
        let pending = node.flatMap { node -> PendingEnrolment? in
            guard let text = node.fields[ManagedObject.activationKeyField]?.canonicalString,
                let record = try? ActivationKeyRecord(jsonText: text)
            else { return nil }
            return PendingEnrolment(identity: NodeIdentity(uid: node.uid, name: node.name), record: record)
        }
        let revocations = (try? currentRevocations()) ?? RevocationList()
        let server = EnrolmentServer(ica: authority, clockSkewMillisecondsMax: clockThresholds.problemMilliseconds)
        if request.allowsClockSkew {
            logger.notice("SIC enrolment forced: a clock skew beyond --clock-problem-ms is accepted", metadata: ["node": "\(request.nodeName)"])
        }
        switch server.handle(request, pending: pending, revocations: revocations, serverNonce: serverNonce, now: date) {
        case .refused(let refusal, let isFailedProof):
            if isFailedProof { _ = throttle.recordFailure(throttleKey, now: date) }
            logger.warning("SIC enrolment refused", metadata: ["node": "\(request.nodeName)", "address": "\(address)", "reason": "\(refusal.code.rawValue)"])
            return .refusal(refusal)
        case .enrolled(let response, let record, let certificate):
            guard var enrolled = node, let recordJSON = try? JSONValue.parse(record.jsonText) else {
                return .refusal(EnrolmentRefusal(.unavailable, "internal error while recording the enrolment"))
            }
            enrolled.fields[ManagedObject.activationKeyField] = recordJSON
            enrolled.fields[ManagedObject.sicStateField] = "initialized"
            enrolled.fields[ManagedObject.sicSerialField] = .string(certificate.serial)
            enrolled.fields[ManagedObject.sicNameField] = .string("CN=\(enrolled.name),O=Rampart,URI=urn:rampart:node:\(enrolled.uid)")
            enrolled.meta.lastModifier = "SIC"
            enrolled.meta.lastModifyTimeMilliseconds = now
            do {
                try publishSystemChange([.upsert(enrolled)], author: "SIC", reason: "Enrolment of \(enrolled.name)")
            } catch {
                logger.error("could not record an enrolment", metadata: ["node": "\(enrolled.name)", "error": "\(error)"])
                return .refusal(EnrolmentRefusal(.unavailable, "the server could not record the enrolment; the key was not used"))
            }
            throttle.recordSuccess(throttleKey)
            logger.notice("SIC enrolment", metadata: ["node": "\(enrolled.name)", "serial": "\(certificate.serial)", "address": "\(address)"])
            return .response(response)
        }
    }

    /// A change made by the server itself (not by an administrator's session), published at once as
    /// its own revision.
    func publishSystemChange(_ changes: [ObjectChange], author: String, reason: String) throws {
        let revision = Revision(
            after: try store.head(), epoch: currentEpoch, publishedAtMilliseconds: now, author: author,
            sessionUID: "", sessionName: reason, changes: changes)
        try commitRevision(revision)
    }

    /// The ICA's revocation list as stored (empty when nothing was ever revoked).
    public nonisolated func currentRevocations() throws -> RevocationList {
        guard let text = try store.setting(Self.revocationsSetting) else { return RevocationList() }
        return try RevocationList(jsonText: text)
    }
}

extension ObjectType {
    /// Objects that enrol over SIC with a one-time activation key: management servers, gateways and
    /// cluster members (each member with its own key and certificate).
    static let sicNodes: [ObjectType] = [.checkpointHost, .clusterMember, .simpleGateway]
    /// SIC nodes that open gateway channels (policy installs, status reports).
    static let gatewayNodes: [ObjectType] = [.simpleGateway, .clusterMember]
}

/// The SIC verifier with the revocation list as it is now: a reset takes effect on the next
/// connection without a restart.
public struct LiveSICVerifier: PeerCertificateVerifier {
    let icaPEM: String
    let service: ManagementService

    public init(icaPEM: String, service: ManagementService) {
        self.icaPEM = icaPEM
        self.service = service
    }

    public func verify(leafDER: [UInt8], expected: NodeIdentity?, now: Date) -> Result<NodeIdentity, PeerTrustFailure> {
        do {
            let verifier = try SICVerifier(icaPEM: icaPEM, revocations: try service.currentRevocations())
            return verifier.verify(leafDER: leafDER, expected: expected, now: now)
        } catch {
            return .failure(.malformed("the server's trust settings cannot be read: \(error)"))
        }
    }
}

extension ManagementService {
    /// Renews an enrolled node's certificate over its trusted channel: a new certificate for the
    /// key in `csrDER`, the old serial revoked as superseded, the new serial published, in that order.
    public func renewCertificate(for identity: NodeIdentity, csrDER: [UInt8]) throws -> IssuedNodeCertificate {
        guard let authority = sicAuthority else {
            throw ManagementError(code: "err_sic_unavailable", message: "this server holds no Internal CA key", httpStatus: 400)
        }
        guard var node = store.reader.object(uid: identity.uid), ObjectType.sicNodes.contains(node.type),
            node.fields[ManagedObject.sicStateField]?.stringValue == "initialized"
        else {
            throw ManagementError(code: "err_sic_not_enrolled", message: "\(identity) is not an enrolled node of this server", httpStatus: 400)
        }
        if let owner = lockOwner[node.uid], let holder = sessions[owner] {
            throw ManagementError(code: "generic_err_object_locked", message: "\(node.name) is being edited in a session of \(holder.user)", httpStatus: 409)
        }
        // A reset revokes at once, before its session is published: a channel opened before it must not renew its way back.
        if let serial = node.fields[ManagedObject.sicSerialField]?.stringValue, try currentRevocations().contains(serial: serial) {
            throw ManagementError(code: "err_sic_revoked", message: "\(identity)'s certificate is revoked: enrol it again", httpStatus: 403)
        }
        let date = Date(timeIntervalSince1970: Double(now) / 1000)
        let issued = try authority.issueNodeCertificate(csrDER: csrDER, identity: identity, now: date)
        if let old = node.fields[ManagedObject.sicSerialField]?.stringValue {
            var list = try currentRevocations()
            try list.revoke(serial: old, reason: .superseded, node: node.uid, now: date)
            try storeRevocations(list)
        }
        node.fields[ManagedObject.sicSerialField] = .string(issued.serial)
        node.meta.lastModifier = "SIC"
        node.meta.lastModifyTimeMilliseconds = now
        try publishSystemChange([.upsert(node)], author: "SIC", reason: "Certificate renewal of \(node.name)")
        logger.notice("SIC certificate renewed", metadata: ["node": "\(node.name)", "serial": "\(issued.serial)"])
        return issued
    }
}

/// The Internal CA's state as one management server gives it to another over their SIC channel.
public struct ICAStateForServer: Sendable {
    public let certificatePEM: String
    public let privateKeyPEM: String
    public let revocationsText: String
    /// The requesting server's addresses as its checkpoint-host object records them (for its API certificate).
    public let addresses: [String]
}

extension ManagementService {
    /// The Internal CA's state for a management server of this group that asks for it over its SIC
    /// channel (when it joins, or starts without the key): the same state the active sends every
    /// standby over HA, given only to an enrolled, unrevoked checkpoint-host (never to a gateway).
    /// With the key, every server issues its own API certificate from the group's CA.
    public func icaState(forServer identity: NodeIdentity) throws -> ICAStateForServer {
        guard let authority = sicAuthority else {
            throw ManagementError(code: "err_sic_unavailable", message: "this server holds no Internal CA key", httpStatus: 400)
        }
        guard let node = store.reader.object(uid: identity.uid), node.type == .checkpointHost,
            node.fields[ManagedObject.sicStateField]?.stringValue == "initialized"
        else {
            throw ManagementError(code: "err_sic_not_enrolled", message: "\(identity) is not an enrolled management server of this group", httpStatus: 403)
        }
        let revocations = try currentRevocations()
        if let serial = node.fields[ManagedObject.sicSerialField]?.stringValue, revocations.contains(serial: serial) {
            throw ManagementError(code: "err_sic_revoked", message: "\(identity)'s certificate is revoked", httpStatus: 403)
        }
        let addresses = ["ipv4-address", "ipv6-address"].compactMap { node.fields[$0]?.stringValue }.filter { !$0.isEmpty }
        return ICAStateForServer(
            certificatePEM: authority.certificatePEM, privateKeyPEM: authority.privateKeyPEM,
            revocationsText: revocations.jsonText, addresses: addresses)
    }
}
