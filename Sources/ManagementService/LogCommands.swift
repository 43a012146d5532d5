import Foundation
import ManagementModel
import Store

/// `show-logs` queries in progress: a `new-query` starts one, `query-id` reads its next page.
/// Bounded in number and age; the oldest go first.
struct LogQueries {
    static let queriesMax = 100
    static let queryLifetimeMilliseconds: Int64 = 3_600_000

    struct Entry {
        var query: LogQuery
        var pageSize: Int
        var nextOffset: Int
        var createdAtMilliseconds: Int64
    }

    var entries: [String: Entry] = [:]

    mutating func insert(_ entry: Entry, id: String) {
        entries = entries.filter { entry.createdAtMilliseconds - $0.value.createdAtMilliseconds < Self.queryLifetimeMilliseconds }
        if entries.count >= Self.queriesMax, let oldest = entries.min(by: { $0.value.createdAtMilliseconds < $1.value.createdAtMilliseconds }) {
            entries[oldest.key] = nil
        }
        entries[id] = entry
    }
}

/// The `new-query` object of `show-logs`, Check Point style: `filter` as typed in SmartView (here
/// `field:value` terms joined by spaces or AND), `time-frame`, `custom-start`/`custom-end` (ISO 8601
/// or milliseconds), `max-logs-per-request`, `type` "logs". Pure: `now` is a parameter.
public enum LogQueryRequest {
    public static let pageSizeDefault = 10
    public static let pageSizeMax = 100
    public static let timeFrames = ["last-hour", "last-24-hours", "today", "yesterday", "last-7-days", "last-30-days", "all-time", "custom"]
    public static let filterFields = ["gateway", "action", "rule", "src", "dst", "port"]

    public static func parse(_ newQuery: JSONValue, nowMilliseconds: Int64) throws -> (query: LogQuery, pageSize: Int) {
        guard let fields = newQuery.objectValue else { throw ManagementError.invalid("new-query", "expected an object") }
        let known: Set<String> = ["filter", "time-frame", "custom-start", "custom-end", "max-logs-per-request", "type", "log-servers"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) { throw ManagementError.unknownParameter("new-query.\(unknown)") }
        if let type = fields["type"], type.stringValue != "logs" {
            throw ManagementError.invalid("new-query.type", "only \"logs\" is kept (there are no audit logs yet)")
        }
        let pageSize =
            try fields["max-logs-per-request"].map { Int(try $0.integer("new-query.max-logs-per-request", in: 1...Int64(pageSizeMax))) }
            ?? pageSizeDefault
        var query = try filter(fields["filter"]?.stringValue ?? "")
        (query.startMilliseconds, query.endMilliseconds) = try timeFrame(fields, nowMilliseconds: nowMilliseconds)
        return (query, pageSize)
    }

    static func timeFrame(_ fields: [String: JSONValue], nowMilliseconds now: Int64) throws -> (Int64?, Int64?) {
        let hour: Int64 = 3_600_000
        let day = 24 * hour
        let startOfDay = now - ((now % day) + day) % day
        switch (fields["time-frame"]?.stringValue ?? "last-7-days").lowercased() {
        case "last-hour": return (now - hour, nil)
        case "last-24-hours": return (now - day, nil)
        case "today": return (startOfDay, nil)
        case "yesterday": return (startOfDay - day, startOfDay - 1)
        case "last-7-days": return (now - 7 * day, nil)
        case "last-30-days": return (now - 30 * day, nil)
        case "all-time", "all": return (nil, nil)
        case "custom":
            guard let start = fields["custom-start"], let end = fields["custom-end"] else {
                throw ManagementError.missing(["new-query.custom-start", "new-query.custom-end"])
            }
            let range = (try time(start, field: "new-query.custom-start"), try time(end, field: "new-query.custom-end"))
            guard range.0 <= range.1 else { throw ManagementError.invalid("new-query.custom-end", "is before custom-start") }
            return range
        default:
            throw ManagementError.invalid("new-query.time-frame", "expected one of: \(timeFrames.joined(separator: ", "))")
        }
    }

    static func time(_ value: JSONValue, field: String) throws -> Int64 {
        if case .int(let milliseconds) = value { return milliseconds }
        guard let text = value.stringValue else { throw ManagementError.invalid(field, "expected an ISO 8601 time or milliseconds") }
        if let milliseconds = Int64(text) { return milliseconds }
        let formatter = ISO8601DateFormatter()
        // Check Point's examples give local-looking times without a zone: read them as UTC.
        let zoned = text.hasSuffix("Z") || text.range(of: #"[+-]\d\d:?\d\d$"#, options: .regularExpression) != nil ? text : text + "Z"
        guard let date = formatter.date(from: zoned), let milliseconds = Int64(exactly: (date.timeIntervalSince1970 * 1000).rounded(.down)) else {
            throw ManagementError.invalid(field, "'\(text.prefix(40))' is not an ISO 8601 time like 2026-11-25T10:00:00Z")
        }
        return milliseconds
    }

    /// `gateway:gw-1 action:drop rule:3 src:10.0.0.1 dst:10.0.0.2 port:443`, terms joined by spaces or AND.
    public static func filter(_ text: String) throws -> LogQuery {
        guard Limits.fits(text, characters: Limits.stringLengthMax) else {
            throw ManagementError.invalid("new-query.filter", "longer than \(Limits.stringLengthMax) characters or \(Limits.stringBytesMax) bytes")
        }
        var query = LogQuery()
        for term in text.split(whereSeparator: \.isWhitespace) where term.uppercased() != "AND" {
            let parts = term.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[1].isEmpty else {
                throw ManagementError.invalid(
                    "new-query.filter",
                    "'\(term.prefix(40))' is not a field:value term (fields: \(filterFields.joined(separator: ", ")); terms are joined by AND)")
            }
            let value = String(parts[1])
            switch parts[0].lowercased() {
            case "gateway", "origin", "orig": query.gateway = value
            case "action":
                guard let action = CompiledAction(rawValue: value.lowercased()) else {
                    throw ManagementError.invalid("new-query.filter", "action is accept, drop or reject")
                }
                query.action = action
            case "rule", "rule_uid", "rule_name": query.rule = value
            case "src", "source": query.source = try address(value)
            case "dst", "destination": query.destination = try address(value)
            case "port", "service", "dport":
                guard let port = Int(value), (1...65535).contains(port) else { throw ManagementError.invalid("new-query.filter", "port is 1 to 65535") }
                query.destinationPort = port
            default:
                throw ManagementError.invalid("new-query.filter", "unknown field '\(parts[0].prefix(40))'; use \(filterFields.joined(separator: ", "))")
            }
        }
        return query
    }

    static func address(_ text: String) throws -> String {
        guard let address = IPAddress.parse(text) else { throw ManagementError.invalid("new-query.filter", "'\(text.prefix(45))' is not an IP address") }
        return address.text
    }

    /// One log as `show-logs` shows it (Check Point's field names where one exists).
    public static func json(_ stored: StoredLogRecord) -> JSONValue {
        let record = stored.record
        var fields: [String: JSONValue] = [
            "id": .string(String(stored.id)),
            "time": ["posix": .int(record.timeMilliseconds), "iso-8601": .string(isoText(record.timeMilliseconds))],
            "type": "Log", "product": "Firewall",
            "orig": .string(stored.gateway), "gateway-sequence": .int(Int64(clamping: stored.sequence)),
            "action": .string(record.action.rawValue.capitalized),
            "rule": .int(Int64(record.ruleNumber)), "rule_uid": .string(record.ruleUID), "rule_name": .string(record.ruleName),
            "src": .string(record.source), "dst": .string(record.destination), "proto": .string(record.proto),
            "log-source": .string(record.origin), "policy-revision": .int(Int64(clamping: record.policyRevision)),
            "received-at": .int(stored.receivedAtMilliseconds),
        ]
        if let port = record.destinationPort { fields["service"] = .int(Int64(port)) }
        if let hits = record.hitCount { fields["hits"] = .int(Int64(hits)) }
        return .object(fields)
    }

    /// `2024-05-01T10:20:30.123Z`: the Renderer's UTC text with the milliseconds, no formatter per row.
    static func isoText(_ milliseconds: Int64) -> String {
        let fraction = ((milliseconds % 1000) + 1000) % 1000
        let digits = String(fraction)
        return String(Renderer.iso8601(milliseconds: milliseconds).dropLast()) + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }
}

extension ManagementService {
    /// `show-logs`: `new-query` starts a query and returns its first page, `query-id` the next one.
    /// Logs are this server's own (what gateways sent it); HA never synchronizes them.
    func showLogs(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        guard let logs else { throw ManagementError(code: "generic_error", message: "This server keeps no logs", httpStatus: 400) }
        let id: String
        if let newQuery = params["new-query"] {
            var (query, pageSize) = try LogQueryRequest.parse(newQuery, nowMilliseconds: now)
            query.upToID = try logs.lastID()
            id = UUID().uuidString.lowercased()
            logQueries.insert(.init(query: query, pageSize: pageSize, nextOffset: 0, createdAtMilliseconds: now), id: id)
        } else if let given = params["query-id"]?.stringValue {
            guard logQueries.entries[given] != nil else { throw ManagementError.notFound("query-id \(given.prefix(64))") }
            id = given
        } else {
            throw ManagementError.missing(["new-query or query-id"])
        }
        let entry = logQueries.entries[id]!
        let page = try logs.query(entry.query, offset: entry.nextOffset, limit: entry.pageSize)
        logQueries.entries[id]!.nextOffset += page.records.count
        return APIResponse.ok([
            "logs": .array(page.records.map(LogQueryRequest.json)), "logs-count": .int(Int64(page.records.count)),
            "query-id": .string(id), "total": .int(Int64(page.total)),
        ])
    }
}
