import Foundation
import Testing

/// Connection state across a failover: the members route between a client and a server namespace
/// with a stateful ruleset (a mid-connection packet without a connection table entry is dropped); one
/// TCP connection is established through the active member, the active fails (its agent killed, its
/// client-side link cut, or an operator's admin down), and the same
/// connection carries a request and its answer through the new active, because conntrackd synchronized
/// its entry and the new active committed it. The negative control empties the standby's external cache
/// first: the same request is dropped.
extension NamespaceLabs {
    @Suite("Gateway cluster: an established connection survives failover through conntrackd", .serialized)
    struct ClusterConnectionSyncEndToEndTests {
        static let boundSeconds = 60.0

        static let echoServer = """
            import socket, sys, threading
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen()
            def serve(c):
                while True:
                    data = c.recv(100)
                    if not data: return
                    c.sendall(data)
            while True:
                c, _ = s.accept(); threading.Thread(target=serve, args=(c,), daemon=True).start()
            """

        /// One connection: a request and its answer, then (once the trigger file exists) another on the same
        /// socket, waiting at most argv[4] seconds (TCP retransmits meanwhile).
        static let heldClient = """
            import os, socket, sys, time
            s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
            s.sendall(b"one\\n"); print("before", s.recv(100).decode().strip(), flush=True)
            while not os.path.exists(sys.argv[3]): time.sleep(0.05)
            s.settimeout(float(sys.argv[4]))
            try:
                s.sendall(b"two\\n"); data = s.recv(100); print("after", data.decode().strip() if data else "closed", flush=True)
            except Exception as error:
                print("after-failed", type(error).__name__, flush=True)
            """

        static var available: Bool {
            NetworkNamespace.available
                && ["/usr/bin/arping", "/usr/sbin/conntrackd", "/usr/sbin/nft", "/usr/sbin/conntrack"].allSatisfy {
                    FileManager.default.isExecutableFile(atPath: $0)
                }
        }

        struct Outcome {
            var answer: String
            var newActiveTable: String
            var standbyCacheBefore: String
            var logs: String
        }

        /// How the active member is made to fail over.
        enum Failover: String {
            case kill = "kill -9"
            case linkDown = "ip link set eth0 down"
            case adminDown = "cluster admin down"
        }

        /// Establishes the connection, fails the active over, and returns what the client saw after.
        func holdConnection(
            across failover: Failover = .kill, emptyStandbyCache: Bool = false, answerWaitSeconds: Int, memberCount: Int = 2
        ) async throws -> Outcome {
            let lab = try await ClusterLab(routed: true, memberCount: memberCount)
            defer { lab.tearDown() }
            let server = try #require(lab.server)
            let echo = try server.start(["python3", "-c", Self.echoServer, "8080"])
            defer {
                kill(echo.processIdentifier, SIGKILL)
                echo.waitUntilExit()
            }
            for id in lab.memberIDs { try await lab.start(id) }
            try #require(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders().count == 1 }, "\(lab.logs)")
            let active = try #require(await lab.activeHolders().first)
            let standbys = lab.memberIDs.filter { $0 != active }
            for standby in standbys {
                try #require(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(standby) == "STANDBY" }, "\(lab.logs)")
            }

            let trigger = lab.scratch.path("failed-over")
            let output = lab.scratch.path("client.out")
            FileManager.default.createFile(atPath: output, contents: nil)
            let client = Process()
            client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            client.arguments = [
                "ip", "netns", "exec", lab.client.name, "python3", "-c", Self.heldClient, ClusterLab.serverAddress, "8080", trigger, String(answerWaitSeconds),
            ]
            client.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: output))
            client.standardError = FileHandle.nullDevice
            try client.run()
            defer {
                if client.isRunning { kill(client.processIdentifier, SIGKILL) }
                client.waitUntilExit()
            }
            func clientSaid() -> String { (try? String(contentsOfFile: output, encoding: .utf8)) ?? "" }
            try #require(try await pollUntil(seconds: Self.boundSeconds) { clientSaid().contains("before one") }, "\(clientSaid()) \(lab.logs)")

            // Every standby's conntrackd holds the active's entry in its external cache.
            func cache(_ id: Int) async -> String {
                (try? await lab.members[id - 1].run(["conntrackd", "-C", lab.conntrackdConfiguration(id), "-e"])) ?? ""
            }
            var cacheBefore = ""
            for standby in standbys {
                let synced = try await pollUntil(seconds: Self.boundSeconds) { await cache(standby).contains("dst=\(ClusterLab.serverAddress)") }
                cacheBefore = await cache(standby)
                let daemonLog = (try? String(contentsOfFile: lab.dataDirectory(standby) + "/conntrackd.log", encoding: .utf8)) ?? ""
                try #require(synced, "member \(standby)'s external cache: \(cacheBefore); its conntrackd.log: \(daemonLog.suffix(2000))")
                if emptyStandbyCache {
                    _ = try await lab.members[standby - 1].run(["conntrackd", "-C", lab.conntrackdConfiguration(standby), "-f", "external"])
                    try #require(!(await cache(standby)).contains("dst=\(ClusterLab.serverAddress)"))
                }
            }

            let failedAt = ContinuousClock.now
            switch failover {
            case .kill: await lab.powerOff(active)
            case .linkDown: try await lab.members[active - 1].run(["ip", "link", "set", "eth0", "down"])
            case .adminDown:
                let down = try await CLI.run(["cluster", "admin", "down", "--data", lab.dataDirectory(active)], scratch: lab.scratch)
                try #require(down.status == 0, "\(down)")
            }
            func newActive() async -> Int? {
                for standby in standbys where await lab.holdsVirtualAddress(standby) { return standby }
                return nil
            }
            try #require(try await pollUntil(seconds: Self.boundSeconds) { await newActive() != nil }, "\(lab.logs)")
            let successor = try #require(await newActive())
            if failover != .kill {
                // A live member that leaves ACTIVE lets go of the address (a powered-off one holds nothing).
                try #require(try await pollUntil(seconds: Self.boundSeconds) { !(await lab.holdsVirtualAddress(active)) }, "\(lab.logs)")
            }
            FileManager.default.createFile(atPath: trigger, contents: nil)
            _ = try await pollUntil(seconds: Double(answerWaitSeconds) + 10) { clientSaid().contains("after") }
            print(
                "connection sync (\(memberCount) members): answer after failover \(clientSaid().split(separator: "\n").last ?? "") at \(ContinuousClock.now - failedAt) after \(failover.rawValue)"
            )
            let table = (try? await lab.members[successor - 1].run(["conntrack", "-L", "-p", "tcp", "--dport", "8080"])) ?? ""
            return Outcome(answer: clientSaid(), newActiveTable: table, standbyCacheBefore: cacheBefore, logs: lab.logs)
        }

        @Test(
            "kill -9 of the active: the standby commits the synchronized entry and the established connection answers through it",
            .timeLimit(.minutes(4)), .enabled(if: available, "needs root, ip, arping, nft, conntrackd, conntrack"))
        func establishedConnectionSurvivesKill() async throws {
            let outcome = try await holdConnection(across: .kill, answerWaitSeconds: 20)
            #expect(outcome.answer.contains("after two"), "\(outcome.answer) \(outcome.logs)")
            // The new active's kernel holds the connection (its state: FIN_WAIT once the client closed).
            #expect(outcome.newActiveTable.contains("src=10.1.0.100") && outcome.newActiveTable.contains("[ASSURED]"), "\(outcome.newActiveTable)")
        }

        @Test(
            "link down of the active's client-side interface: the established connection answers through the new active",
            .timeLimit(.minutes(4)), .enabled(if: available, "needs root, ip, arping, nft, conntrackd, conntrack"))
        func establishedConnectionSurvivesLinkDown() async throws {
            let outcome = try await holdConnection(across: .linkDown, answerWaitSeconds: 20)
            #expect(outcome.answer.contains("after two"), "\(outcome.answer) \(outcome.logs)")
            #expect(outcome.newActiveTable.contains("src=10.1.0.100") && outcome.newActiveTable.contains("[ASSURED]"), "\(outcome.newActiveTable)")
        }

        @Test(
            "admin down of the active: the established connection answers through the new active",
            .timeLimit(.minutes(4)), .enabled(if: available, "needs root, ip, arping, nft, conntrackd, conntrack"))
        func establishedConnectionSurvivesAdminDown() async throws {
            let outcome = try await holdConnection(across: .adminDown, answerWaitSeconds: 20)
            #expect(outcome.answer.contains("after two"), "\(outcome.answer) \(outcome.logs)")
            #expect(outcome.newActiveTable.contains("src=10.1.0.100") && outcome.newActiveTable.contains("[ASSURED]"), "\(outcome.newActiveTable)")
        }

        @Test(
            "three members: kill -9 of the active: the connection, synchronized to both standbys over the multicast group, answers through the new active",
            .timeLimit(.minutes(4)), .enabled(if: available, "needs root, ip, arping, nft, conntrackd, conntrack"))
        func establishedConnectionSurvivesKillInAThreeMemberCluster() async throws {
            let outcome = try await holdConnection(across: .kill, answerWaitSeconds: 20, memberCount: 3)
            #expect(outcome.answer.contains("after two"), "\(outcome.answer) \(outcome.logs)")
            #expect(outcome.newActiveTable.contains("src=10.1.0.100") && outcome.newActiveTable.contains("[ASSURED]"), "\(outcome.newActiveTable)")
        }

        @Test(
            "negative control: without the synchronized entry the new active drops the established connection's packets",
            .timeLimit(.minutes(4)), .enabled(if: available, "needs root, ip, arping, nft, conntrackd, conntrack"))
        func connectionDiesWithoutTheSynchronizedEntry() async throws {
            let outcome = try await holdConnection(across: .kill, emptyStandbyCache: true, answerWaitSeconds: 8)
            #expect(outcome.answer.contains("after-failed"), "\(outcome.answer)")
        }
    }
}
