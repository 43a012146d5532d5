import Foundation
import ManagementModel
import ManagementService
import Store
import Testing

@Suite("Logs: the log store and show-logs")
struct LogTests {
    static func record(
        _ time: Int64, gateway: String = "gw-1", rule: Int = 1, action: CompiledAction = .accept,
        source: String = "10.0.0.1", destination: String = "10.0.0.2", port: Int? = 80
    ) -> PolicyLogRecord {
        PolicyLogRecord(
            timeMilliseconds: time, gatewayName: gateway, ruleUID: "rule-\(rule)", ruleNumber: rule, ruleName: "r\(rule)",
            action: action, source: source, destination: destination, proto: port == nil ? "icmp" : "tcp",
            destinationPort: port, origin: "matcher", policyRevision: 4)
    }

    static func temporaryStore() throws -> LogStore {
        let directory = TestDirectories.make()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try LogStore(directory: directory)
    }

    @Test func aResentBatchIsStoredOnceUnderTheAuthenticatedGateway() throws {
        let logs = try Self.temporaryStore()
        let batch = (1...3).map { SequencedLogRecord(sequence: UInt64($0), record: Self.record(Int64($0), gateway: "claims-to-be-other")) }
        #expect(try logs.append(batch, receivedFrom: "gw-1", receivedAtMilliseconds: 10) == 3)
        #expect(try logs.append(batch, receivedFrom: "gw-1", receivedAtMilliseconds: 11) == 0)
        // The same sequence numbers from another gateway are other records.
        #expect(try logs.append(batch, receivedFrom: "gw-2", receivedAtMilliseconds: 12) == 3)
        #expect(try logs.lastSequence(gateway: "gw-1") == 3)
        let stored = try logs.query(LogQuery(gateway: "gw-1"), offset: 0, limit: 10)
        #expect(stored.total == 3 && stored.records.allSatisfy { $0.gateway == "gw-1" && $0.record.gatewayName == "gw-1" })
        #expect(stored.records.map(\.sequence) == [3, 2, 1])
        #expect(throws: LogStoreError.self) {
            try logs.append(Array(repeating: batch[0], count: LogStore.batchRecordsMax + 1), receivedFrom: "gw-1", receivedAtMilliseconds: 0)
        }
    }

    @Test func theOutboxNumbersRecordsAndShipsThoseAfterASequence() throws {
        let logs = try Self.temporaryStore()
        let first = try logs.appendLocal([Self.record(1), Self.record(2)], gateway: "gw-1", nowMilliseconds: 5)
        let second = try logs.appendLocal([Self.record(3)], gateway: "gw-1", nowMilliseconds: 6)
        #expect(first.map(\.sequence) == [1, 2] && second.map(\.sequence) == [3])
        #expect(try logs.records(gateway: "gw-1", after: 1, limit: 10).map(\.sequence) == [2, 3])
        #expect(try logs.records(gateway: "gw-1", after: 0, limit: 2).map(\.record.timeMilliseconds) == [1, 2])
        // Reopening the file keeps the records and the numbering.
        let reopened = try LogStore(path: logs.path)
        #expect(try reopened.appendLocal([Self.record(4)], gateway: "gw-1", nowMilliseconds: 7).map(\.sequence) == [4])
        // What the outbox ships, a management server stores: the wire form round-trips.
        let shipped = try JSONDecoder().decode(
            [SequencedLogRecord].self, from: JSONEncoder().encode(try reopened.records(gateway: "gw-1", after: 0, limit: 10)))
        #expect(shipped.map(\.sequence) == [1, 2, 3, 4] && shipped[0].record == Self.record(1))
    }

    @Test func twoWritersOnOneOutboxNeverReuseASequence() async throws {
        let first = try Self.temporaryStore()
        let second = try LogStore(path: first.path)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for store in [first, second] {
                group.addTask {
                    for index in 0..<50 { try store.appendLocal([Self.record(Int64(index))], gateway: "gw-1", nowMilliseconds: 1) }
                }
            }
            try await group.waitForAll()
        }
        let shipped = try first.records(gateway: "gw-1", after: 0, limit: 1_000)
        #expect(shipped.map(\.sequence) == Array(1...100))
    }

    @Test func showLogsFiltersAndPages() async throws {
        let harness = try await Harness()
        let sid = try await harness.login()
        let now = harness.clock.now
        var batch: [SequencedLogRecord] = []
        for index in 0..<25 {
            let action: CompiledAction = index % 5 == 0 ? .drop : .accept
            batch.append(
                SequencedLogRecord(
                    sequence: UInt64(index + 1),
                    record: Self.record(
                        now - Int64(index) * 1_000, rule: index % 5 == 0 ? 2 : 1,
                        action: action, port: index % 5 == 0 ? 22 : 443)))
        }
        try harness.logs.append(batch, receivedFrom: "gw-1", receivedAtMilliseconds: now)
        try harness.logs.append(
            [SequencedLogRecord(sequence: 1, record: Self.record(now, source: "192.0.2.7"))], receivedFrom: "gw-2", receivedAtMilliseconds: now)

        let first = try await harness.ok(
            "show-logs", ["new-query": ["filter": "gateway:gw-1", "time-frame": "last-hour", "max-logs-per-request": 10]], sid: sid)
        #expect(first["logs-count"] == .int(10) && first["total"] == .int(25))
        #expect(first["logs"]?[0]?["orig"] == "gw-1" && first["logs"]?[0]?["time"]?["posix"] == .int(now))
        let queryID = try #require(first["query-id"])
        // Logs arriving meanwhile do not shift the pages of a query already running.
        try harness.logs.append([SequencedLogRecord(sequence: 99, record: Self.record(now + 1))], receivedFrom: "gw-1", receivedAtMilliseconds: now)
        let second = try await harness.ok("show-logs", ["query-id": queryID], sid: sid)
        let third = try await harness.ok("show-logs", ["query-id": queryID], sid: sid)
        let fourth = try await harness.ok("show-logs", ["query-id": queryID], sid: sid)
        #expect(second["logs-count"] == .int(10) && third["logs-count"] == .int(5) && fourth["logs-count"] == .int(0))
        let times = [first, second, third].flatMap { $0["logs"]?.arrayValue ?? [] }.compactMap { $0["time"]?["posix"]?.intValue }
        #expect(times == (0..<25).map { now - Int64($0) * 1_000 })

        let drops = try await harness.ok("show-logs", ["new-query": ["filter": "action:Drop AND port:22 AND rule:2", "time-frame": "all-time"]], sid: sid)
        #expect(drops["total"] == .int(5) && drops["logs"]?[0]?["action"] == "Drop" && drops["logs"]?[0]?["service"] == .int(22))
        let bySource = try await harness.ok("show-logs", ["new-query": ["filter": "src:192.0.2.7", "time-frame": "today"]], sid: sid)
        #expect(bySource["total"] == .int(1) && bySource["logs"]?[0]?["orig"] == "gw-2")
        let byRuleName = try await harness.ok("show-logs", ["new-query": ["filter": "rule:r2 dst:10.0.0.2"]], sid: sid)
        #expect(byRuleName["total"] == .int(5))
    }

    @Test func timeFramesBoundTheQuery() async throws {
        let harness = try await Harness()
        let sid = try await harness.login()
        let now = harness.clock.now
        let hour: Int64 = 3_600_000
        let records = [now, now - 2 * hour, now - 3 * 24 * hour, now - 10 * 24 * hour].enumerated().map {
            SequencedLogRecord(sequence: UInt64($0.offset + 1), record: Self.record($0.element))
        }
        try harness.logs.append(records, receivedFrom: "gw-1", receivedAtMilliseconds: now)
        func total(_ query: JSONValue) async throws -> JSONValue? { try await harness.ok("show-logs", ["new-query": query], sid: sid)["total"] }
        #expect(try await total(["time-frame": "last-hour"]) == .int(1))
        #expect(try await total(["time-frame": "last-24-hours"]) == .int(2))
        #expect(try await total(["time-frame": "last-7-days"]) == .int(3))
        #expect(try await total([:]) == .int(3))
        #expect(try await total(["time-frame": "all-time"]) == .int(4))
        #expect(try await total(["time-frame": "custom", "custom-start": .int(now - 4 * 24 * hour), "custom-end": .int(now - hour)]) == .int(2))
        let iso = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(now - 11 * 24 * hour) / 1000))
        #expect(try await total(["time-frame": "custom", "custom-start": .string(iso), "custom-end": .int(now)]) == .int(4))
    }

    @Test func badQueriesNameTheField() async throws {
        let harness = try await Harness()
        let sid = try await harness.login()
        func message(_ body: JSONValue) async -> String? {
            let reply = await harness.call("show-logs", body, sid: sid)
            return reply.status == 200 ? nil : reply.body["message"]?.stringValue
        }
        #expect(await message(["new-query": ["filter": "colour:blue"]])?.contains("unknown field 'colour'") == true)
        #expect(await message(["new-query": ["filter": "action:allow"]])?.contains("action is accept, drop or reject") == true)
        #expect(await message(["new-query": ["time-frame": "forever"]])?.contains("new-query.time-frame") == true)
        #expect(await message(["new-query": ["time-frame": "custom"]])?.contains("custom-start") == true)
        #expect(await message(["new-query": ["max-logs-per-request": 1000]])?.contains("max-logs-per-request") == true)
        #expect(await message(["new-query": ["type": "audit"]])?.contains("new-query.type") == true)
        #expect(await message(["query-id": "no-such-query"])?.contains("not found") == true)
        #expect(await message([:])?.contains("new-query or query-id") == true)
    }
}
