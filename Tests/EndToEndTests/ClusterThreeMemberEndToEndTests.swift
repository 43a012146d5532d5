import Foundation
import Testing

extension NamespaceLabs {
    @Suite("Gateway cluster: three member agents in namespaces: failover, partition and heal", .serialized)
    struct ClusterThreeMemberEndToEndTests {
        static let boundSeconds = 60.0
        /// How long the healed cluster must stay unchanged: several dead timers.
        static let stableSeconds = 3.0 * Double(ClusterLab.deadTimerMilliseconds) / 1_000

        @Test(
            "three members: kill -9 of the active moves the address to exactly one of the other two; a partition of the sync link, and of every link, ends after the heal with exactly one ACTIVE holding the address, and it stays so; link loss and admin down of the active fail over too",
            .timeLimit(.minutes(8)),
            .enabled(if: NetworkNamespace.available && FileManager.default.isExecutableFile(atPath: "/usr/bin/arping"), "needs root, ip, arping"))
        func threeMembersFailOverAndHealToOneActive() async throws {
            let lab = try await ClusterLab(memberCount: 3)
            defer { lab.tearDown() }
            for id in lab.memberIDs { try await lab.start(id) }
            try #require(try await Self.settlesOnOneActive(lab), "\(lab.logs)")
            let first = try #require(await lab.activeHolders().first)
            let others = lab.memberIDs.filter { $0 != first }
            for id in others { #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(id) == "STANDBY" }, "\(lab.logs)") }

            // kill -9 of the active: exactly one of the two others takes the address.
            await lab.powerOff(first)
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.activeHolders().count == 1 }, "\(lab.logs)")
            let successor = try #require(await lab.activeHolders().first, "\(lab.logs)")
            #expect(others.contains(successor))
            // The powered-off member keeps the address on its down links (nobody removed it): only the running members count.
            #expect(try await Self.staysWithOneActive(lab, holder: successor, running: others), "\(lab.logs)")
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.clientReachesVirtualAddress() }, "\(lab.logs)")
            try await lab.agents[first]?.waitForExit()
            try await lab.start(first)
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.memberState(first) == "STANDBY" }, "\(lab.logs)")

            // The sync network partitioned (its bridge down: every link stays up, no heartbeat crosses), then healed.
            try await Self.partitionAndHeal(lab, bridges: ["brs"])
            // Every network partitioned: each member alone; after the heal exactly one ACTIVE again.
            try await Self.partitionAndHeal(lab, bridges: ["brs", "brc"])
            #expect(try await pollUntil(seconds: Self.boundSeconds) { await lab.clientReachesVirtualAddress() }, "\(lab.logs)")

            // Link loss of the active's monitored interface, then admin down: each time exactly one of the two
            // others takes the address, and the member that lost it comes back STANDBY.
            let link = { (id: Int, state: String) in _ = try await lab.members[id - 1].run(["ip", "link", "set", "eth0", state]) }
            try await Self.failsOver(lab, cause: "link down", do: { try await link($0, "down") }, undo: { try await link($0, "up") })
            let admin = { (id: Int, verb: String) in _ = try await CLI.run(["cluster", "admin", verb, "--data", lab.dataDirectory(id)], scratch: lab.scratch) }
            try await Self.failsOver(lab, cause: "admin down", do: { try await admin($0, "down") }, undo: { try await admin($0, "up") })
        }

        static func failsOver(
            _ lab: ClusterLab, cause: String, do fail: (Int) async throws -> Void, undo restore: (Int) async throws -> Void
        ) async throws {
            let holder = try #require(await lab.activeHolders().first, "before \(cause): \(lab.logs)")
            try await fail(holder)
            let others = lab.memberIDs.filter { $0 != holder }
            #expect(
                try await pollUntil(seconds: boundSeconds) {
                    let holders = await lab.activeHolders()
                    let released = !(await lab.holdsVirtualAddress(holder))
                    return holders.count == 1 && others.contains(holders[0]) && released
                }, "after \(cause) of member \(holder): \(lab.logs)")
            try await restore(holder)
            #expect(try await pollUntil(seconds: boundSeconds) { await lab.memberState(holder) == "STANDBY" }, "after \(cause) undone: \(lab.logs)")
            let successor = await lab.activeHolders().first
            #expect(try await staysWithOneActive(lab, holder: successor, running: Array(lab.memberIDs)), "after \(cause): \(lab.logs)")
        }

        static func partitionAndHeal(_ lab: ClusterLab, bridges: [String]) async throws {
            for name in bridges { try await lab.bridge.run(["ip", "link", "set", name, "down"]) }
            // Several dead timers: long enough for each side to decide alone.
            try await Task.sleep(for: .milliseconds(3 * ClusterLab.deadTimerMilliseconds))
            var during: [String] = []
            for id in lab.memberIDs { during.append("m\(id)=\(await lab.memberState(id) ?? "?")\(await lab.holdsVirtualAddress(id) ? "+VIP" : "")") }
            print("cluster partition of \(bridges): \(during.joined(separator: " "))")
            for name in bridges { try await lab.bridge.run(["ip", "link", "set", name, "up"]) }
            #expect(try await settlesOnOneActive(lab), "after healing \(bridges): \(lab.logs)")
            let holder = await lab.activeHolders().first
            #expect(try await staysWithOneActive(lab, holder: holder, running: Array(lab.memberIDs)), "after healing \(bridges): \(lab.logs)")
        }

        /// Exactly one of the `running` members ACTIVE with the address, the others STANDBY without it,
        /// read from each one's `rampart cluster state --json` and `ip addr` in its namespace.
        static func oneActive(_ lab: ClusterLab, running: [Int]) async -> Bool {
            var states: [Int: String] = [:]
            for id in running { states[id] = await lab.memberState(id) ?? "unreachable" }
            var holders: [Int] = []
            for id in running where await lab.holdsVirtualAddress(id) { holders.append(id) }
            return states.values.filter { $0 == "ACTIVE" }.count == 1 && states.values.filter { $0 == "STANDBY" }.count == running.count - 1
                && holders.count == 1 && states[holders[0]] == "ACTIVE"
        }

        static func settlesOnOneActive(_ lab: ClusterLab) async throws -> Bool {
            try await pollUntil(seconds: boundSeconds) { await oneActive(lab, running: Array(lab.memberIDs)) }
        }

        /// No flapping: the same member stays the one ACTIVE holder and no failover counter moves.
        static func staysWithOneActive(_ lab: ClusterLab, holder: Int?, running: [Int]) async throws -> Bool {
            guard let holder else { return false }
            let counters = await failoverCounts(lab, running: running)
            let deadline = ContinuousClock.now + .seconds(stableSeconds)
            while ContinuousClock.now < deadline {
                guard await oneActive(lab, running: running), await lab.holdsVirtualAddress(holder) else { return false }
                try await Task.sleep(for: .milliseconds(200))
            }
            return await failoverCounts(lab, running: running) == counters
        }

        static func failoverCounts(_ lab: ClusterLab, running: [Int]) async -> [Int?] {
            var counts: [Int?] = []
            for id in running { counts.append(await lab.state(id)?.int("failover-count")) }
            return counts
        }
    }
}
