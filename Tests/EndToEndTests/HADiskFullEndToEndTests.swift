import Foundation
import Testing

/// A standby whose disk fills up (found by the chaos runner, Tests/chaos): HA halts rather than act on a
/// state it could not make durable, the operator can still ask it why, and once space is back HA starts
/// again from its durable state by itself and catches up — no restart, no operator.
@Suite("End to end: a full disk on a standby", .serialized, .endToEndSlot)
struct HADiskFullEndToEndTests {
    @Test(
        "a standby's full disk halts HA, status still answers, and HA resumes and catches up once space is freed",
        .enabled(if: getuid() == 0, "mounts a small tmpfs (root)"), .timeLimit(.minutes(5)))
    func fullDiskHaltsThenResumes() async throws {
        let fixture = try EndToEndTests.Fixture()
        let primary = try await ServerProcess.start(dataDirectory: fixture.data, logName: "disk-primary")
        defer { primary.kill() }
        let sicPort = try #require(primary.sicPort)
        try await fixture.mgmtJSON(
            ["add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1", "one-time-password-file=\(secretFile("activate-mgmt-b-2026", in: fixture.scratch))"]
                + fixture.asRoot)
        let smallDisk = try SmallDisk(at: fixture.scratch.path("small-disk"), megabytes: 32)
        defer { smallDisk.unmount() }
        let secondaryData = smallDisk.path + "/data"
        try FileManager.default.createDirectory(atPath: secondaryData, withIntermediateDirectories: true)
        let keyFile = secretFile("activate-mgmt-b-2026", in: fixture.scratch)
        let secondary = try await ServerProcess.start(
            dataDirectory: secondaryData, logName: "disk-secondary",
            extraArguments: ["--server-name", "mgmt-b", "--join", "127.0.0.1:\(sicPort)", "--activation-key-file", keyFile],
            createsAdminPassword: false)
        defer { secondary.kill() }
        let status = { try await fixture.rampart(["ha", "status", "--data", secondaryData]) }
        #expect(try await pollUntil(seconds: 60) { try await status().status == 0 }, "never synchronized: \(secondary.logTail)")

        try smallDisk.fill()
        for index in 1...3 { try await fixture.mgmtJSON(["add-host", "name=while-full-\(index)", "ip-address=192.0.2.\(index)"] + fixture.asRoot) }
        #expect(
            try await pollUntil(seconds: 60) { secondary.log.contains("HA halted") },
            "the standby never halted on its full disk: \(secondary.logTail)")
        let whileFull = try await status()
        #expect(whileFull.status == 1 && whileFull.stdout.contains("halted"), "status must answer and say HA is halted: \(whileFull)")

        smallDisk.free()
        #expect(
            try await pollUntil(seconds: 90) {
                let caughtUp = try await fixture.rampart(["mgmt", "show-host", "name=while-full-3", "-r", "true", "--data", secondaryData])
                let synchronized = try await status()
                return caughtUp.status == 0 && synchronized.status == 0
            }, "HA did not resume by itself once space was back: \(secondary.logTail)")
        #expect(secondary.log.contains("HA resumed from its durable state"), "\(secondary.logTail)")
        _ = try await secondary.stop()
        _ = try await primary.stop()
    }
}

/// A tmpfs of a few megabytes, filled and freed on demand.
struct SmallDisk {
    let path: String
    var filler: String { path + "/filler" }

    init(at path: String, megabytes: Int) throws {
        self.path = path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Self.run(["mount", "-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", path])
    }

    /// Writes zeros until the disk is full (bounded by the mount's size).
    func fill() throws {
        FileManager.default.createFile(atPath: filler, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: filler))
        defer { try? handle.close() }
        let block = Data(count: 1 << 20)
        for _ in 0..<1_024 {
            do { try handle.write(contentsOf: block) } catch { return }
        }
        // A last partial block may still fit: fill byte pages until the write fails.
        for _ in 0..<256 {
            do { try handle.write(contentsOf: Data(count: 4_096)) } catch { return }
        }
    }

    func free() { try? FileManager.default.removeItem(atPath: filler) }

    func unmount() { try? Self.run(["umount", "-l", path]) }

    private static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw E2EFailure("\(arguments.joined(separator: " ")) exited \(process.terminationStatus)") }
    }
}
