import Foundation
import HARuntime
import ManagementModel
import Operations
import Store
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A temporary directory removed by `remove()`.
struct Scratch {
    let url: URL
    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-ops-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> URL { url.appendingPathComponent(name) }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

let meta = MetaInfo(creator: "admin", creationTimeMilliseconds: 1, lastModifier: "admin", lastModifyTimeMilliseconds: 1)

func host(_ index: Int) -> ManagedObject {
    ManagedObject(
        uid: "host-\(index)", type: .host, name: "host-\(index)", fields: ["ipv4-address": .string("10.0.\(index / 256 % 256).\(index % 256)")], meta: meta)
}

func administrator(_ name: String) -> ManagedObject {
    ManagedObject(
        uid: "admin-\(name)", type: .administrator, name: name,
        fields: ["password-hash": "pbkdf2-sha256$1$AAAA$AAAA", "permissions-profile": "super-user"], meta: meta)
}

/// A management server object, as HA records one (with its SIC address).
func managementServer(_ name: String, sicAddress: String, primary: Bool = false) -> ManagedObject {
    ManagedObject(
        uid: "server-\(name)", type: .checkpointHost, name: name,
        fields: [ManagedObject.haSICAddressField: .string(sicAddress), ManagedObject.haPrimaryField: .bool(primary)], meta: meta)
}

/// A data directory with a real management database, node.json and an ICA certificate and key.
struct NodeDirectory {
    let url: URL
    let serverName: String

    init(
        _ url: URL, serverName: String = "primary", objects: [ManagedObject] = (0..<20).map(host) + [administrator("admin")],
        revisionsOf: Int = 5, epochTerm: UInt64 = 1
    ) throws {
        self.url = url
        self.serverName = serverName
        try FileManager.default.createDirectory(at: url.appendingPathComponent("pki"), withIntermediateDirectories: true)
        let store = try ManagementStore(path: url.appendingPathComponent("rampart.sqlite").path)
        var offset = 0
        while offset < objects.count {
            let batch = Array(objects[offset..<min(offset + revisionsOf, objects.count)])
            try store.append(
                Revision(
                    after: try store.head(), epoch: RevisionEpoch(term: epochTerm, server: serverName), publishedAtMilliseconds: 10,
                    author: "admin", sessionUID: "s", sessionName: "", changes: batch.map { .upsert($0) }))
            offset += batch.count
        }
        try store.setSetting("sic-revocations", "{\"revoked\":[]}")
        try HardStateStore(store: store).restoreAsNewPrimary(server: serverName, above: epochTerm - 1)
        try Data("{\"server-name\": \"\(serverName)\", \"listen\": \"127.0.0.1\", \"api-port\": 1}".utf8).write(to: url.appendingPathComponent("node.json"))
        try Data("-----BEGIN CERTIFICATE-----\nICA\n-----END CERTIFICATE-----\n".utf8).write(to: url.appendingPathComponent("pki/ica.pem"))
        let key = url.appendingPathComponent("pki/ica.key")
        try Data("-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n".utf8).write(to: key)
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key.path)
    }

    var store: ManagementStore { try! ManagementStore(path: url.appendingPathComponent("rampart.sqlite").path) }
    var databasePath: String { url.appendingPathComponent("rampart.sqlite").path }

    func facts() throws -> DatabaseFacts { try DatabaseFacts.read(path: databasePath, verifyJournal: true) }

    func publish(_ objects: [ManagedObject]) throws {
        let store = self.store
        try store.append(
            Revision(
                after: try store.head(), epoch: RevisionEpoch(term: 1, server: serverName), publishedAtMilliseconds: 10,
                author: "admin", sessionUID: "s", sessionName: "", changes: objects.map { .upsert($0) }))
    }

    func backup(passphrase: [UInt8]? = nil, to destination: URL? = nil, now: Int64 = 1_700_000_000_000) throws -> (url: URL, manifest: ArchiveManifest) {
        try Backups.create(
            Backups.CreateOptions(
                dataDirectory: url, destination: destination, passphrase: passphrase, serverName: serverName,
                nowMilliseconds: now))
    }
}

let raiseEpoch: Backups.EpochRaiser = { path, server, floor in
    try HardStateStore(store: try ManagementStore(path: path)).restoreAsNewPrimary(server: server, above: floor)
}

let passphraseBytes = Array("correct horse battery staple".utf8)

/// Every file under `directory` with its content digest: "nothing changed" means equal fingerprints.
func fingerprint(_ directory: URL) -> [String: Data] {
    var result: [String: Data] = [:]
    guard let enumerator = FileManager.default.enumerator(atPath: directory.path) else { return result }
    while let path = enumerator.nextObject() as? String {
        var isDirectory: ObjCBool = false
        let full = directory.appendingPathComponent(path).path
        if FileManager.default.fileExists(atPath: full, isDirectory: &isDirectory), !isDirectory.boolValue, path != "rampart.lock" {
            result[path] = FileManager.default.contents(atPath: full) ?? Data()
        }
    }
    return result
}

/// The code of the `OperationsError` `work` throws (nil when it does not throw one).
func refusalCode(_ work: () throws -> Void) -> String? {
    do { try work() } catch let error as OperationsError { return error.code } catch { return "other: \(error)" }
    return nil
}

/// A TCP listener on 127.0.0.1 (a peer that "answers"); closed by `close()` or when released.
/// Closing twice is harmless: a second `close(2)` of the same number would close whatever the
/// process opened under it meanwhile, such as a concurrent test's SQLite file (a CI run failed
/// with "disk I/O error" in another test that way).
final class Listener: Sendable {
    private let descriptor: Mutex<Int32?>
    let port: UInt16
    init() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        _ = listen(fd, 8)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.descriptor = Mutex(fd)
        self.port = UInt16(bigEndian: bound.sin_port)
    }
    /// Closes the socket once; returns whether this call closed it.
    @discardableResult func close() -> Bool {
        guard let fd = descriptor.withLock({ $0.take() }) else { return false }
        return Glibc.close(fd) == 0
    }
    deinit { close() }
}
