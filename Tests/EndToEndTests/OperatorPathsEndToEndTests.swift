import Foundation
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Paths an operator walks on the first day: secrets kept off the command line, and a port in use
/// that must leave the data directory as it was.
@Suite("End to end: secrets off the command line, ports bound first", .serialized, .endToEndSlot)
struct OperatorPathsEndToEndTests {
    @Test(
        "rampart mgmt refuses secrets on the command line; sic new-key makes a key file that enrols a node",
        .timeLimit(.minutes(10)))
    func secretsStayOffTheCommandLine() async throws {
        let fixture = try EndToEndTests.Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server")
        defer { server.kill() }
        let sicPort = try #require(server.sicPort)

        // Refused, saying how instead, never echoing the value.
        for key in ["one-time-password", "password", "new-password", "shared-secret"] {
            let refused = try await fixture.rampart(
                [
                    "mgmt", "add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1",
                    "\(key)=Visible-In-Ps-2026",
                ] + fixture.asRoot)
            #expect(refused.status == 2, "\(refused)")
            #expect(refused.stderr.contains("'\(key)=…' is refused"), "\(refused)")
            #expect(refused.stderr.contains("\(key)-file=FILE") && refused.stderr.contains("\(key)-env=VARIABLE"), "\(refused)")
            #expect(!refused.stderr.contains("Visible-In-Ps") && !refused.stdout.contains("Visible-In-Ps"))
        }
        let hint = try await fixture.rampart(["mgmt", "add-simple-gateway", "name=gw", "one-time-password=x"] + fixture.asRoot)
        #expect(hint.stderr.contains("rampart sic new-key --out FILE"), "\(hint)")
        #expect(
            try await fixture.rampart(["mgmt", "show-checkpoint-host", "name=mgmt-b"] + fixture.asRoot).status == 1,
            "nothing was created")

        // sic new-key: a private file, the key not printed; an existing file is never replaced.
        let keyFile = fixture.scratch.path("mgmt-b.key")
        let made = try await fixture.rampart(["sic", "new-key", "--out", keyFile])
        #expect(made.status == 0, "\(made)")
        let key = try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(key.count >= 20)
        #expect(!made.stdout.contains(key) && !made.stderr.contains(key))
        #expect(made.stdout.contains("one-time-password-file=\(keyFile)") && made.stdout.contains("--activation-key-file \(keyFile)"))
        let mode = try FileManager.default.attributesOfItem(atPath: keyFile)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let again = try await fixture.rampart(["sic", "new-key", "--out", keyFile])
        #expect(again.status != 0 && again.stderr.contains("exists"), "\(again)")
        #expect(try String(contentsOfFile: keyFile, encoding: .utf8).trimmingCharacters(in: .newlines) == key)
        let shown = try await fixture.rampart(["sic", "new-key", "--out", "-"])
        #expect(shown.status == 0 && shown.stdout.trimmingCharacters(in: .newlines).count >= 20, "\(shown)")

        // The key from the file is the object's key: the node enrols with the same file.
        try await fixture.mgmtJSON(
            [
                "add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1",
                "one-time-password-file=\(keyFile)",
            ] + fixture.asRoot)
        let enrolled = try await fixture.rampart([
            "sic", "enroll", "--data", fixture.scratch.path("node-b"), "--server",
            "127.0.0.1:\(sicPort)", "--name", "mgmt-b", "--activation-key-file", keyFile,
        ])
        #expect(enrolled.status == 0 && enrolled.stdout.contains("Enrolled as mgmt-b"), "\(enrolled)")

        // The API's sic-state and `rampart sic status` come from one computation.
        let talked = try await fixture.rampart(["sic", "test", "--data", fixture.scratch.path("node-b"), "--server", "127.0.0.1:\(sicPort)"])
        #expect(talked.status == 0, "\(talked)")
        let sicStatus = try await fixture.rampart(["sic", "status", "--data", fixture.data, "--json"])
        #expect(sicStatus.stdout.contains("\"sic-status\":\"communicating\""), "\(sicStatus)")
        let object = try await fixture.mgmtJSON(["show-checkpoint-host", "name=mgmt-b"] + fixture.asRoot)
        #expect(object.string("sic-state") == "communicating", "show-checkpoint-host agrees with sic status: \(object)")
        let itself = try await fixture.mgmtJSON(["show-checkpoint-host", "name=primary"] + fixture.asRoot)
        #expect(itself.string("sic-state") == "communicating", "\(itself)")

        // show-access-rulebase as text: the rules' objects by name (the uids are in --format json).
        let rulebase = try await fixture.rampart(["mgmt", "show-access-rulebase", "name=Network"] + fixture.asRoot)
        #expect(rulebase.status == 0 && rulebase.stdout.contains("name: Cleanup rule") && rulebase.stdout.contains("action: Drop"), "\(rulebase)")
        let json = try await fixture.mgmtJSON(["show-access-rulebase", "name=Network"] + fixture.asRoot)
        let dictionaryUIDs = json.objects("objects-dictionary").compactMap { $0.string("uid") }
        #expect(!dictionaryUIDs.isEmpty && dictionaryUIDs.allSatisfy { !rulebase.stdout.contains($0) }, "\(rulebase.stdout)")

        // From the environment, for another node.
        let fromEnvironment = try await fixture.rampart(
            ["mgmt", "add-checkpoint-host", "name=mgmt-c", "ip-address=127.0.0.1", "one-time-password-env=MGMT_C_KEY"] + fixture.asRoot,
            environment: ["MGMT_C_KEY": "activate-mgmt-c-2026"])
        #expect(fromEnvironment.status == 0, "\(fromEnvironment)")
        // Not yet enrolled: the same word in both places.
        let pending = try await fixture.mgmtJSON(["show-checkpoint-host", "name=mgmt-c"] + fixture.asRoot)
        #expect(pending.string("sic-state") == "uninitialized", "\(pending)")
        let pendingTest = try await fixture.rampart(["sic", "test", "mgmt-c", "--data", fixture.data])
        #expect(pendingTest.stdout.contains("mgmt-c: uninitialized"), "\(pendingTest)")
        let keyC = secretFile("activate-mgmt-c-2026", in: fixture.scratch)
        let enrolledC = try await fixture.rampart([
            "sic", "enroll", "--data", fixture.scratch.path("node-c"), "--server",
            "127.0.0.1:\(sicPort)", "--name", "mgmt-c", "--activation-key-file", keyC,
        ])
        #expect(enrolledC.status == 0, "\(enrolledC)")
        #expect(try await server.stop().status == 0)
    }

    @Test(
        "a port in use stops the first start before it creates anything, naming the port and the flag",
        .timeLimit(.minutes(10)))
    func portInUseLeavesTheDataDirectoryUntouched() async throws {
        let scratch = try TemporaryDirectory()
        let occupied = try Listener()
        defer { occupied.close() }
        let fresh = scratch.path("fresh")
        let empty = scratch.path("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)

        for (flag, other) in [("--api-port", "--sic-port"), ("--sic-port", "--api-port")] {
            for directory in [fresh, empty] {
                let result = try await CLI.run(
                    [
                        "server", "--data", directory, flag, "\(occupied.port)", other, "0",
                        "--listen", "127.0.0.1",
                    ], scratch: scratch)
                #expect(result.status != 0, "\(result)")
                #expect(
                    result.stderr.contains(
                        "\(flag) \(occupied.port) is in use: another process listens on 127.0.0.1:\(occupied.port); choose another with \(flag)"),
                    "\(result)")
                #expect(!result.stderr.contains("CancellationError"), "\(result)")
                #expect(!FileManager.default.fileExists(atPath: fresh), "a fresh data directory stays absent")
                #expect(try FileManager.default.contentsOfDirectory(atPath: empty).isEmpty, "an empty data directory stays empty")
            }
        }

        // A joining secondary binds before it spends its one-time key.
        try FileManager.default.createDirectory(atPath: scratch.path("primary"), withIntermediateDirectories: true)
        let primary = try await ServerProcess.start(dataDirectory: scratch.path("primary"), logName: "primary")
        defer { primary.kill() }
        let keyFile = secretFile("activate-mgmt-b-2026", in: scratch)
        let asRoot = ["-r", "true", "--data", scratch.path("primary")]
        let added = try await CLI.run(
            [
                "mgmt", "add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1",
                "one-time-password-file=\(keyFile)",
            ] + asRoot, scratch: scratch)
        try #require(added.status == 0, "\(added)")
        let joinArguments = ["--server-name", "mgmt-b", "--join", "127.0.0.1:\(try #require(primary.sicPort))", "--activation-key-file", keyFile]
        let secondary = scratch.path("secondary")
        let refusedJoin = try await CLI.run(
            [
                "server", "--data", secondary, "--api-port", "\(occupied.port)", "--sic-port", "0",
                "--listen", "127.0.0.1",
            ] + joinArguments, scratch: scratch)
        #expect(refusedJoin.status != 0 && refusedJoin.stderr.contains("--api-port \(occupied.port) is in use"), "\(refusedJoin)")
        #expect(!FileManager.default.fileExists(atPath: secondary))
        let hosts = try await CLI.run(["mgmt", "show-checkpoint-host", "name=mgmt-b", "--format", "json"] + asRoot, scratch: scratch)
        #expect(hosts.status == 0 && (try? hosts.json().string("sic-state")) == "uninitialized", "the key is not spent: \(hosts)")

        // On free ports the same commands initialize normally (the secondary joins with the same key).
        try FileManager.default.createDirectory(atPath: secondary, withIntermediateDirectories: true)
        let joined = try await ServerProcess.start(
            dataDirectory: secondary, logName: "secondary", extraArguments: joinArguments,
            createsAdminPassword: false)
        defer { joined.kill() }
        try FileManager.default.createDirectory(atPath: fresh, withIntermediateDirectories: true)
        let server = try await ServerProcess.start(dataDirectory: fresh, logName: "fresh")
        defer { server.kill() }
        #expect(FileManager.default.fileExists(atPath: "\(fresh)/initial-admin-password"))
        #expect(try await joined.stop().status == 0)
        #expect(try await server.stop().status == 0)
        #expect(try await primary.stop().status == 0)
    }
}

extension OperatorPathsEndToEndTests {
    @Test("a migrate export whose epoch term is at the edge of Int64 is refused as corrupt, never a trap", .timeLimit(.minutes(10)))
    func hostileMigrateFileDoesNotTrap() async throws {
        let fixture = try EndToEndTests.Fixture()
        let server = try await ServerProcess.start(dataDirectory: fixture.data, logName: "server")
        defer { server.kill() }
        let exported = fixture.scratch.path("export.json")
        let export = try await fixture.rampart(["migrate", "export", exported, "--data", fixture.data])
        try #require(export.status == 0, "\(export)")
        #expect(try await server.stop().status == 0)
        var document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: exported))) as? [String: Any])
        var source = try #require(document["source"] as? [String: Any])
        source["epoch-term"] = Int64.max
        document["source"] = source
        let edited = fixture.scratch.path("edited.json")
        try JSONSerialization.data(withJSONObject: document).write(to: URL(fileURLWithPath: edited))
        let dryRun = try await fixture.rampart(["migrate", "import", edited, "--data", fixture.scratch.path("new"), "--dry-run", "--json"])
        #expect(!dryRun.exit.bySignal, "a file must never stop the process: \(dryRun)")
        // A term that cannot be raised by one is no real history: the file is refused, saying why.
        #expect(dryRun.status != 0 && (dryRun.stdout + dryRun.stderr).contains("epoch-term"), "\(dryRun)")
    }
}

/// A TCP listener on 127.0.0.1 held by the test process: "another process" in the server's eyes.
final class Listener: Sendable {
    /// Taken by the one `close()` that closes it: a second close would close a number reused meanwhile.
    private let descriptor: Mutex<Int32?>
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(Network.streamSocketType), 0)
        guard fd >= 0 else { throw E2EFailure("socket() failed: \(errno)") }
        var address = Network.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard bound == 0, named == 0, listen(fd, 8) == 0 else { throw E2EFailure("cannot listen: \(errno)") }
        descriptor = Mutex(fd)
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        if let fd = descriptor.withLock({ $0.take() }) { _ = Glibc.close(fd) }
    }
}
