import Foundation
import HACore
import ManagementModel
import Store
import TrustCore

/// A management server of the HA group as the database records it: its checkpoint-host object.
public struct ManagementServerEntry: Sendable, Equatable {
    public var uid: String
    public var name: String
    public var sicAddress: String?
    public var apiAddress: String?
    /// The object's `ipv4-address` (else `ipv6-address`), as an administrator gave it.
    public var ipAddress: String?
    public var isPrimary: Bool
    /// The serial of the SIC certificate the server was last known to use.
    public var sicSerial: String?
}

extension ManagementService {
    /// Every management server the database knows (checkpoint-host objects), this one included once
    /// it has registered itself.
    public nonisolated func managementServers() -> [ManagementServerEntry] {
        // Status commands ask on every call (a standby's status names the active's address): the list
        // is read again only after a commit that changed checkpoint-host objects.
        let changes = store.changeCount(of: .checkpointHost)
        if let cached = managementServersRead.withLock({ $0 }), cached.changes == changes { return cached.entries }
        let entries = readManagementServers()
        managementServersRead.withLock { $0 = (changes, entries) }
        return entries
    }

    private nonisolated func readManagementServers() -> [ManagementServerEntry] {
        var entries: [ManagementServerEntry] = []
        var offset = 0
        while let page = try? store.objects(types: [.checkpointHost], offset: offset, limit: 500, nameFilter: nil), !page.objects.isEmpty {
            entries += page.objects.map { object in
                ManagementServerEntry(
                    uid: object.uid, name: object.name,
                    sicAddress: object.fields[ManagedObject.haSICAddressField]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
                    apiAddress: object.fields[ManagedObject.haAPIAddressField]?.stringValue.flatMap { $0.isEmpty ? nil : $0 },
                    ipAddress: ["ipv4-address", "ipv6-address"].lazy.compactMap { object.fields[$0]?.stringValue }.first { !$0.isEmpty },
                    isPrimary: object.fields[ManagedObject.haPrimaryField]?.boolValue == true,
                    sicSerial: object.fields[ManagedObject.sicSerialField]?.stringValue.flatMap { $0.isEmpty ? nil : $0 })
            }
            offset += page.objects.count
            if offset >= page.total { break }
        }
        return entries
    }

    /// Every checkpoint-host object is a management server of the HA group, which holds at most
    /// `HALimits.serversMax` (a server refuses to start with more): refuses a session whose changes,
    /// with `adding` more, would leave more in the database.
    func checkManagementServerBound(_ pending: PendingChanges, adding: Int = 0) throws {
        var count = try store.objects(types: [.checkpointHost], offset: 0, limit: 1, nameFilter: nil).total + adding
        for item in pending.values {
            switch item.change {
            case .upsert(let object) where object.type == .checkpointHost && store.reader.object(uid: object.uid) == nil: count += 1
            case .delete(let uid, let type, _) where type == .checkpointHost && store.reader.object(uid: uid) != nil: count -= 1
            default: break
            }
        }
        let serversMax = HALimits().serversMax
        guard count <= serversMax else {
            throw ManagementError.invalid(
                "checkpoint-host", "an HA group holds at most \(serversMax) management servers, this one included; this would make \(count)")
        }
    }

    /// The primary's own checkpoint-host object, created once at installation (as Check Point lists
    /// the primary among its management servers). `uid` is the one in its SIC certificate.
    public func registerPrimary(name: String, uid: String, ipAddress: String, sicSerial: String) throws {
        guard store.reader.objects(named: name).first(where: { $0.type == .checkpointHost }) == nil else { return }
        var fields = Schema.of(.checkpointHost).defaults
        if ipAddress.contains(".") { fields["ipv4-address"] = .string(ipAddress) } else { fields["ipv6-address"] = .string(ipAddress) }
        fields[ManagedObject.haPrimaryField] = true
        fields[ManagedObject.sicStateField] = "initialized"
        fields[ManagedObject.sicSerialField] = .string(sicSerial)
        fields[ManagedObject.sicNameField] = .string("CN=\(name),O=Rampart,URI=urn:rampart:node:\(uid)")
        let object = ManagedObject(
            uid: uid, type: .checkpointHost, name: name, fields: fields,
            meta: MetaInfo(creator: "System", creationTimeMilliseconds: now, lastModifier: "System", lastModifyTimeMilliseconds: now))
        try publishSystemChange([.upsert(object)], author: "System", reason: "Primary management server \(name)")
        logger.notice("registered this server as the primary management server", metadata: ["name": "\(name)"])
    }

    /// Records where management server `name` is reachable and the serial of the SIC certificate it
    /// uses, as a system change, when they differ from what is published. Only the active publishes:
    /// elsewhere this returns false and changes nothing. The serial is what lets any server of the group,
    /// once active, revoke that server (`reset-sic`); a serial that is not one, or is revoked, is ignored.
    @discardableResult
    public func recordAddresses(of name: String, sicAddress: String, apiAddress: String, sicSerial: String? = nil) throws -> Bool {
        guard ha?.writeRefusal == nil else { return false }
        guard var object = store.reader.objects(named: name).first(where: { $0.type == .checkpointHost }) else { return false }
        var serial: String?
        if let sicSerial, RevocationList.isValidSerial(sicSerial), object.fields[ManagedObject.sicStateField]?.stringValue == "initialized",
            object.fields[ManagedObject.sicSerialField]?.stringValue != sicSerial, try !currentRevocations().contains(serial: sicSerial)
        {
            serial = sicSerial
        }
        guard
            object.fields[ManagedObject.haSICAddressField]?.stringValue != sicAddress
                || object.fields[ManagedObject.haAPIAddressField]?.stringValue != apiAddress
                || (serial != nil && object.fields[ManagedObject.sicSerialField]?.stringValue != serial)
        else { return false }
        if let owner = lockOwner[object.uid], sessions[owner] != nil { return false }  // retried on the next announcement
        object.fields[ManagedObject.haSICAddressField] = .string(sicAddress)
        object.fields[ManagedObject.haAPIAddressField] = .string(apiAddress)
        if let serial { object.fields[ManagedObject.sicSerialField] = .string(serial) }
        object.meta.lastModifier = "System"
        object.meta.lastModifyTimeMilliseconds = now
        try publishSystemChange([.upsert(object)], author: "System", reason: "Addresses of \(name)")
        logger.notice(
            "management server addresses recorded",
            metadata: [
                "server": "\(name)", "sic": "\(sicAddress)", "api": "\(apiAddress)",
                "sic-serial": "\(serial ?? "unchanged")",
            ])
        return true
    }
}

extension ManagementService {
    /// The Internal CA state a standby needs to sign and revoke once promoted, as the active sends it:
    /// the revocation list is stored as this server's own, the authority kept for enrolments.
    public func adoptICAState(authority: InternalCA, revocationsText: String) throws {
        if try store.setting(Self.revocationsSetting) != revocationsText {
            try storeRevocations(try RevocationList(jsonText: revocationsText))  // never store what does not parse
        }
        sicAuthority = authority
    }
}
