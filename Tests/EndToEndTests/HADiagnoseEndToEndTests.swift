import Foundation
import Testing

/// `rampart ha diagnose` on a real pair: healthy (exit 0), then each problem provoked on real processes
/// (a failed backup, HA stopped, a stopped standby, a collision, a revoked peer, clock skew, another
/// release, a stalled full sync, a nearly full disk), each named with its cause and its fix command (exit 1).
@Suite("End to end: ha diagnose", .serialized, .endToEndSlot)
struct HADiagnoseEndToEndTests {
    /// One `ha diagnose --json`: its exit status and findings by code.
    struct Diagnosis: CustomStringConvertible {
        var status: Int32
        var findings: [String: [String: Any]]
        var result: CLIResult
        var description: String { "\(result)" }
    }

    /// `ha diagnose --json` on `name`.
    static func diagnose(_ group: HAGroup, on name: String) async throws -> Diagnosis {
        let result = try await group.ha(["diagnose", "--json"], on: name)
        let findings = (try? result.json())?.objects("findings") ?? []
        var byCode: [String: [String: Any]] = [:]
        for finding in findings { byCode[finding.string("code") ?? "?"] = finding }
        return Diagnosis(status: result.status, findings: byCode, result: result)
    }

    /// Provoke, then check: asks `ha diagnose` on `name` until `holds` (a problem takes a heartbeat or
    /// two to show), and returns the last answer; an issue names it when `holds` never did.
    static func diagnose(
        _ group: HAGroup, on name: String, seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation,
        until holds: (Diagnosis) -> Bool
    ) async throws -> Diagnosis {
        var last: Diagnosis?
        let held = try await group.eventually(seconds: seconds) {
            let diagnosis = try await Self.diagnose(group, on: name)
            last = diagnosis
            return holds(diagnosis)
        }
        let answer = try #require(last, sourceLocation: sourceLocation)
        #expect(held, "\(answer)", sourceLocation: sourceLocation)
        return answer
    }

    /// The finding `code` on `name` once it shows (and `holds` of it); nil, with an issue, when it never does.
    static func finding(
        _ code: String, on name: String, in group: HAGroup, seconds: Double = 30, sourceLocation: SourceLocation = #_sourceLocation,
        where holds: ([String: Any]) -> Bool = { _ in true }
    ) async throws -> [String: Any]? {
        let diagnosis = try await diagnose(group, on: name, seconds: seconds, sourceLocation: sourceLocation) { diagnosis in
            diagnosis.findings[code].map(holds) ?? false
        }
        return diagnosis.findings[code]
    }

    @Test("healthy exits 0; failed backup, HA stopped, standby down, collision, revoked peer: each named with its fix", .timeLimit(.minutes(10)))
    func diagnosePair() async throws {
        let group = try await HAGroup()
        try await group.join("mgmt-b")

        // Healthy: both servers say so (clock and version facts arrive with the first messages).
        for name in ["primary", "mgmt-b"] {
            let healthy = try await group.eventually { try await group.ha(["diagnose"], on: name).status == 0 }
            let text = try await group.ha(["diagnose"], on: name)
            #expect(healthy && text.stdout.hasPrefix("no problems found"), "\(text)")
            #expect(text.stdout.contains("TCP connect ok") && text.stdout.contains("disk:"), "\(text)")
        }

        // A backup that failed (its destination is a file): named with its cause, until one succeeds.
        let notADirectory = group.fixture.scratch.path("not-a-directory")
        FileManager.default.createFile(atPath: notADirectory, contents: Data("x".utf8))
        #expect(try await group.fixture.rampart(["backup", "create", "--to", notADirectory, "--data", group.data("primary")]).status != 0)
        let failedBackup = try await Self.diagnose(group, on: "primary")
        #expect(failedBackup.status == 1 && Set(failedBackup.findings.keys) == ["backup-failed"], "\(failedBackup.result)")
        #expect(failedBackup.findings["backup-failed"]?.string("fix-command")?.hasPrefix("rampart backup create --data") == true)
        #expect(try await group.fixture.rampart(["backup", "create", "--data", group.data("primary")]).status == 0)
        #expect(try await group.ha(["diagnose"], on: "primary").status == 0)

        // HA stopped on the standby: the standby and the active both name it and `ha start`.
        #expect(try await group.ha(["stop"], on: "mgmt-b").status == 0)
        let here = try await Self.diagnose(group, on: "mgmt-b")
        #expect(here.status == 1, "\(here.result)")
        #expect(here.findings["ha-stopped"]?.string("fix-command") == "rampart ha start --data \(group.data("mgmt-b"))", "\(here.result)")
        #expect(Set(here.findings.keys) == ["ha-stopped"], "one problem, one finding: \(here.result)")
        _ = try await Self.diagnose(group, on: "primary") { diagnosis in
            diagnosis.findings["ha-stopped"]?.string("summary")?.contains("mgmt-b") == true && diagnosis.findings.count == 1
        }
        #expect(try await group.ha(["start"], on: "mgmt-b").status == 0)
        #expect(try await group.eventually { try await group.ha(["diagnose"], on: "primary").status == 0 })

        // The standby stops: the active names its SIC address, the refused connect, and starting it.
        let standbySIC = try #require(group.server("mgmt-b").sicPort)
        _ = try await group.server("mgmt-b").stop()
        let unreachable = try await Self.finding("peer-unreachable", on: "primary", in: group) {
            $0.string("evidence")?.contains("TCP connect: refused") == true
        }
        #expect(unreachable?.string("summary") == "mgmt-b is unreachable")
        #expect(unreachable?.string("evidence")?.contains("127.0.0.1:\(standbySIC)") == true, "\(unreachable ?? [:])")
        #expect(unreachable?.string("fix")?.contains("nothing listens") == true)
        #expect(unreachable?.string("fix-command")?.contains("rampart server --data DIR --server-name mgmt-b") == true)
        let text = try await group.ha(["diagnose"], on: "primary")
        #expect(text.status == 1 && text.stdout.contains("problem peer-unreachable: mgmt-b is unreachable"), "\(text)")
        print("ha diagnose on the active, its standby stopped:\n\(text.stdout)")

        // A collision (as in HAPromotionEndToEndTests): the old active names the divergent count and the resolve command.
        try await group.start("mgmt-b")
        #expect(try await group.eventually { try await group.isHealthy("mgmt-b") })
        #expect(try await group.ha(["stop"], on: "mgmt-b").status == 0)
        #expect(try await group.addHost("only-on-old-active", on: "primary").status == 0)
        group.server("primary").kill()
        #expect(try await group.ha(["start"], on: "mgmt-b").status == 0)
        #expect(try await group.ha(["promote", "--force"], on: "mgmt-b").status == 0)
        try await group.start("primary")
        let collision = try await Self.finding("collision", on: "primary", in: group)
        #expect(collision?.string("summary")?.contains("1 revision(s)") == true, "\(collision ?? [:])")
        #expect(collision?.string("fix-command")?.contains("rampart ha resolve-collision --keep peer --data \(group.data("primary"))") == true)
        let collisionText = try await group.ha(["diagnose"], on: "primary")
        print("ha diagnose on the old active in collision:\n\(collisionText.stdout)")
        let active = try await Self.diagnose(group, on: "mgmt-b")
        #expect(active.findings["collision"]?.string("summary")?.contains("primary holds") == true, "\(active.result)")

        // SIC broken: the active revokes the old active's certificate; it names the cause and the reset steps.
        let reset = try await group.fixture.rampart(["sic", "reset", "primary", "--data", group.data("mgmt-b")])
        #expect(reset.status == 0, "\(reset)")
        let sic = try await Self.finding("sic-broken", on: "mgmt-b", in: group)
        #expect(sic?.string("summary")?.contains("primary's certificate was revoked") == true, "\(sic ?? [:])")
        #expect(sic?.string("fix-command")?.hasPrefix("rampart sic reset primary --data \(group.data("mgmt-b"))") == true, "\(sic ?? [:])")
        #expect(sic?.string("fix-command")?.contains("--join 127.0.0.1:") == true, "\(sic ?? [:])")
        print("ha diagnose on the active after `sic reset primary`:\n\(try await group.ha(["diagnose"], on: "mgmt-b").stdout)")
    }

    @Test(
        "clock skew (named with this server's thresholds), another release, a full sync stalled at a chunk: each named with its fix",
        .timeLimit(.minutes(10)))
    func diagnoseClockVersionsAndStalledSync() async throws {
        let group = try await HAGroup()
        // mgmt-b's clock is 120 s ahead (the primary's default 300 s lets it enrol), its problem threshold
        // is 60 s, and it announces another release.
        try await group.join(
            "mgmt-b", extra: ["--clock-warning-ms", "1000", "--clock-problem-ms", "60000"],
            environment: ["RAMPART_TEST_CLOCK_OFFSET_MS": "120000", "RAMPART_TEST_ANNOUNCED_VERSION": "0.9.9-other"])

        let clock = try await Self.finding("clock-skew", on: "mgmt-b", in: group) { $0.string("severity") == "problem" }
        #expect(clock?.string("evidence")?.contains("primary -1") == true, "\(clock ?? [:])")
        #expect(clock?.string("evidence")?.contains("over 1 s a warning, over 60 s a problem") == true, "mgmt-b's own thresholds: \(clock ?? [:])")
        #expect(clock?.string("fix")?.contains("NTP") == true && clock?.string("fix-command")?.contains("timedatectl set-ntp true") == true)

        let versions = try await Self.finding("versions-differ", on: "primary", in: group)
        #expect(versions?.string("severity") == "warning" && versions?.string("summary") == "the servers run different releases", "\(versions ?? [:])")
        #expect(versions?.string("evidence")?.contains("mgmt-b 0.9.9-other") == true, "\(versions ?? [:])")
        #expect(versions?.string("fix")?.contains("install one Rampart release on every server") == true)
        #expect(versions?.string("fix-command")?.hasPrefix("rampart ha status --data \(group.data("primary"))") == true)
        print("ha diagnose on a standby 120 s ahead that runs another release:\n\(try await group.ha(["diagnose"], on: "mgmt-b").stdout)")

        // The standby freezes (SIGSTOP: its TCP still accepts) just as the active starts a full copy:
        // the copy waits at its first chunk, and diagnose names the stall and the command that restarts it.
        group.server("mgmt-b").pause()
        let fullSync = try await group.ha(["full-sync", "mgmt-b"], on: "primary")
        #expect(fullSync.status == 0, "\(fullSync)")
        let stuck = try await Self.finding("sync-stuck", on: "primary", in: group)
        #expect(stuck?.string("severity") == "problem" && stuck?.string("summary")?.contains("stalled at chunk 0 of") == true, "\(stuck ?? [:])")
        #expect(stuck?.string("evidence")?.contains("in both samples") == true, "\(stuck ?? [:])")
        #expect(stuck?.string("fix-command") == "rampart ha full-sync mgmt-b --data \(group.data("primary"))", "\(stuck ?? [:])")
        print("ha diagnose on the active, its full sync to a frozen standby stalled:\n\(try await group.ha(["diagnose"], on: "primary").stdout)")
        group.server("mgmt-b").resume()
        _ = try await Self.diagnose(group, on: "primary", seconds: 60) { $0.findings["sync-stuck"] == nil && $0.findings["peer-unreachable"] == nil }
    }

    @Test(
        "a data directory on a nearly full filesystem (a 32 MiB tmpfs): disk-full names the free space and the fix",
        .enabled(if: Tmpfs.mayMount), .timeLimit(.minutes(5)))
    func diagnoseDiskNearlyFull() async throws {
        let fixture = try EndToEndTests.Fixture()
        let data = fixture.scratch.path("on-tmpfs")
        let mount = try Tmpfs(at: data, megabytes: 32)
        defer { mount.unmount() }
        let server = try await ServerProcess.start(dataDirectory: data, logName: "diagnose-disk")
        defer { server.kill() }
        let diagnose = { try await fixture.rampart(["ha", "diagnose", "--json", "--data", data]) }
        #expect(try await diagnose().status == 0, "a fresh tmpfs has room")

        // Fill it to within 512 KiB (under 3 % of 32 MiB): a problem, with the free space and the fix.
        try mount.fill(leavingBytes: 512 << 10)
        let full = try await diagnose()
        let finding = (try? full.json())?.objects("findings").first { $0.string("code") == "disk-full" }
        #expect(full.status == 1 && finding?.string("severity") == "problem", "\(full)")
        #expect(finding?.string("summary") == "the data directory's disk is full or nearly", "\(finding ?? [:])")
        #expect(finding?.string("evidence")?.contains("MiB free of 32 MiB") == true && finding?.string("evidence")?.contains(data) == true)
        #expect(finding?.string("fix")?.contains("free space") == true, "\(finding ?? [:])")
        #expect(finding?.string("fix-command") == "df -h \(data) && rampart backup list --data \(data)", "\(finding ?? [:])")
        print("ha diagnose on a nearly full disk:\n\(try await fixture.rampart(["ha", "diagnose", "--data", data]).stdout)")
        mount.removeFill()
        #expect(try await diagnose().status == 0, "space freed, the finding is gone")
    }
}

/// A small tmpfs for a test that needs a nearly full filesystem (mounting needs root: the sandbox's
/// namespaces give it; elsewhere the test is skipped).
struct Tmpfs {
    let path: String
    var fillPath: String { path + "/zz-fill" }

    static var mayMount: Bool { geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/bin/mount") }

    init(at path: String, megabytes: Int) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let mounted = try Self.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", path])
        try #require(mounted == 0, "mount -t tmpfs failed")
        self.path = path
    }

    /// Writes a file (real bytes: a sparse one takes no room) until `leavingBytes` are free.
    func fill(leavingBytes: UInt64) throws {
        let free = try #require((try FileManager.default.attributesOfFileSystem(forPath: path)[.systemFreeSize] as? NSNumber)?.uint64Value)
        try #require(free > leavingBytes, "\(free) bytes free")
        FileManager.default.createFile(atPath: fillPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: fillPath))
        defer { try? handle.close() }
        var left = free - leavingBytes
        let block = Data(count: 64 << 10)
        while left > 0 {
            let size = Int(min(left, UInt64(block.count)))
            try handle.write(contentsOf: block.prefix(size))
            left -= UInt64(size)
        }
    }

    func removeFill() { try? FileManager.default.removeItem(atPath: fillPath) }

    /// Lazily: a process still holding a file there does not keep the mount.
    func unmount() { _ = try? Self.run("/bin/umount", ["-l", path]) }

    static func run(_ program: String, _ arguments: [String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
