import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Testing

/// `/metrics` and the health endpoints on a real primary and standby: scraped over HTTPS (trusting
/// the Internal CA) and over the plain `--metrics-listen` port, parsed by Prometheus' own Python
/// parser (prometheus_client), the values checked against the state the test created.
@Suite("End to end: /metrics and health endpoints on an HA pair", .serialized, .endToEndSlot)
struct MonitoringEndToEndTests {
    @Test("a primary and a standby: metrics parse with prometheus_client and match the HA state; /health/* answers 200 or 503", .timeLimit(.minutes(10)))
    func metricsAndHealthOnAPair() async throws {
        let fixture = try EndToEndTests.Fixture()
        let primaryMetricsPort = try Network.freeLoopbackPort()
        let primary = try await ServerProcess.start(
            dataDirectory: fixture.data, logName: "mon-primary", extraArguments: ["--metrics-listen", "127.0.0.1:\(primaryMetricsPort)"])
        defer { primary.kill() }
        let sicPort = try #require(primary.sicPort)
        try await fixture.mgmtJSON(
            ["add-checkpoint-host", "name=mgmt-b", "ip-address=127.0.0.1", "one-time-password-file=\(secretFile("activate-mgmt-b-2026", in: fixture.scratch))"]
                + fixture.asRoot)
        let keyFile = secretFile("activate-mgmt-b-2026", in: fixture.scratch)
        let secondaryData = fixture.scratch.path("secondary")
        try FileManager.default.createDirectory(atPath: secondaryData, withIntermediateDirectories: true)
        let secondaryMetricsPort = try Network.freeLoopbackPort()
        let secondary = try await ServerProcess.start(
            dataDirectory: secondaryData, logName: "mon-secondary",
            extraArguments: [
                "--server-name", "mgmt-b", "--join", "127.0.0.1:\(sicPort)", "--activation-key-file", keyFile,
                "--metrics-listen", "127.0.0.1:\(secondaryMetricsPort)",
            ],
            createsAdminPassword: false)
        defer { secondary.kill() }
        #expect(
            try await pollUntil(seconds: 60) { try await fixture.rampart(["ha", "status", "--data", secondaryData]).status == 0 },
            "the secondary never became synchronized; its log:\n\(secondary.logTail)")

        // A publish (add-host over the operator socket publishes it), which reaches the standby.
        try await fixture.mgmtJSON(["add-host", "name=watched", "ip-address=192.0.2.40"] + fixture.asRoot)
        #expect(
            try await pollUntil(seconds: 60) {
                try await fixture.rampart(["mgmt", "show-host", "name=watched", "-r", "true", "--data", secondaryData]).status == 0
            })
        let epoch = try #require(try await fixture.rampart(["ha", "status", "--data", fixture.data, "--json"]).json().object("epoch")?.int("term"))

        try await Scraper.with(caFile: "\(fixture.data)/pki/ica.pem") { scraper in
            // The primary over HTTPS, once the standby's acknowledgement brought its lag to 0.
            var primaryMetrics = Samples()
            #expect(
                try await pollUntil(seconds: 60) {
                    primaryMetrics = try await scraper.metrics("https://127.0.0.1:\(primary.port)/metrics", fixture)
                    return primaryMetrics["rampart_ha_peer_lag_revisions", ["peer": "mgmt-b"]] == 0
                }, "the primary never showed mgmt-b caught up: \(primaryMetrics)")
            #expect(primaryMetrics["rampart_ha_role", ["role": "active"]] == 1)
            #expect(primaryMetrics["rampart_ha_role", ["role": "standby"]] == 0)
            #expect(primaryMetrics["rampart_ha_epoch"] == Double(epoch))
            #expect(primaryMetrics["rampart_ha_writes_enabled"] == 1)
            #expect(primaryMetrics["rampart_ha_collision"] == 0)
            #expect(primaryMetrics["rampart_ha_peer_lag_seconds", ["peer": "mgmt-b"]] == 0, "caught up: no lag in seconds")
            #expect(primaryMetrics["rampart_ha_peer_connected", ["peer": "mgmt-b"]] == 1)
            #expect((primaryMetrics["rampart_publish_duration_seconds_count"] ?? 0) >= 1)
            #expect((primaryMetrics["rampart_api_requests_total", ["command": "publish", "status": "200"]] ?? 0) >= 1)
            #expect((primaryMetrics["rampart_api_requests_total", ["command": "add-host", "status": "200"]] ?? 0) >= 1)
            #expect(primaryMetrics["rampart_certificate_expiry_timestamp_seconds", ["certificate": "internal-ca"]] ?? 0 > Date().timeIntervalSince1970)
            #expect(primaryMetrics.types["rampart_publish_duration_seconds"] == "histogram")
            #expect(primaryMetrics.types["rampart_api_requests"] == "counter")
            // Every family has a help text, those recorded through swift-metrics too.
            let helpless = primaryMetrics.types.keys.filter { (primaryMetrics.helps[$0] ?? "").isEmpty }
            #expect(helpless.isEmpty, "families without # HELP: \(helpless.sorted())")
            let password = try String(contentsOfFile: fixture.passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
            #expect(!primaryMetrics.text.contains(password), "nothing secret in /metrics")

            // The peer's clock, measured over the HA channel: present, and small on one machine.
            var offset: Double?
            #expect(
                try await pollUntil(seconds: 60) {
                    offset = try await scraper.metrics("https://127.0.0.1:\(primary.port)/metrics", fixture)[
                        "rampart_peer_clock_offset_seconds", ["peer": "mgmt-b"]]
                    return offset != nil
                })
            #expect(abs(offset ?? 99) < 5, "\(String(describing: offset))")

            // The same families over plain HTTP on --metrics-listen.
            let plain = try await scraper.metrics("http://127.0.0.1:\(primaryMetricsPort)/metrics", fixture)
            #expect(plain["rampart_ha_role", ["role": "active"]] == 1)
            #expect(plain["rampart_ha_epoch"] == Double(epoch))

            // The standby, over HTTPS and plain HTTP.
            var standbyMetrics = Samples()
            #expect(
                try await pollUntil(seconds: 60) {
                    standbyMetrics = try await scraper.metrics("https://127.0.0.1:\(secondary.port)/metrics", fixture)
                    return standbyMetrics["rampart_ha_peer_lag_revisions", ["peer": "primary"]] == 0
                }, "\(standbyMetrics)")
            #expect(standbyMetrics["rampart_ha_role", ["role": "standby"]] == 1)
            #expect(standbyMetrics["rampart_ha_writes_enabled"] == 0)
            #expect(standbyMetrics["rampart_ha_epoch"] == Double(epoch))
            let standbyPlain = try await scraper.metrics("http://127.0.0.1:\(secondaryMetricsPort)/metrics", fixture)
            #expect(standbyPlain["rampart_ha_role", ["role": "standby"]] == 1)

            // Health, as a load balancer asks: the primary is the active, the secondary a synchronized standby.
            for (port, scheme) in [(primary.port, "https"), (primaryMetricsPort, "http")] {
                #expect(try await scraper.status("\(scheme)://127.0.0.1:\(port)/health/active") == 200)
                #expect(try await scraper.status("\(scheme)://127.0.0.1:\(port)/health/standby") == 503)
                #expect(try await pollUntil(seconds: 30) { try await scraper.status("\(scheme)://127.0.0.1:\(port)/health/synchronized") == 200 })
            }
            for (port, scheme) in [(secondary.port, "https"), (secondaryMetricsPort, "http")] {
                #expect(try await scraper.status("\(scheme)://127.0.0.1:\(port)/health/active") == 503)
                #expect(try await scraper.status("\(scheme)://127.0.0.1:\(port)/health/standby") == 200)
                #expect(try await scraper.status("\(scheme)://127.0.0.1:\(port)/health/synchronized") == 200)
            }
            let reason = try await scraper.get("https://127.0.0.1:\(secondary.port)/health/active")
            let body = try JSONSerialization.jsonObject(with: Data(reason.body.utf8)) as? [String: Any]
            #expect(body?["role"] as? String == "standby" && (body?["reason"] as? String)?.contains("primary") == true, "\(reason.body)")
            #expect(try await scraper.status("http://127.0.0.1:\(primaryMetricsPort)/web_api/login", post: true) == 404, "no Web API on the plain port")

            // A standby that stops answering falls behind: its lag counts from the commit of the first
            // revision it lacks, and returns to 0 once it caught up.
            secondary.pause()
            try await fixture.mgmtJSON(["add-host", "name=while-paused", "ip-address=192.0.2.41"] + fixture.asRoot)
            var lagging = Samples()
            let sawLag = try await pollUntil(seconds: 60) {
                lagging = try await scraper.metrics("http://127.0.0.1:\(primaryMetricsPort)/metrics", fixture)
                return (lagging["rampart_ha_peer_lag_revisions", ["peer": "mgmt-b"]] ?? 0) >= 1
                    && (lagging["rampart_ha_peer_lag_seconds", ["peer": "mgmt-b"]] ?? 0) >= 1
            }
            #expect(try await scraper.status("http://127.0.0.1:\(primaryMetricsPort)/health/synchronized") == 503)
            secondary.resume()
            #expect(sawLag, "no lag in revisions and seconds while the standby was paused: \(lagging)")
            #expect(
                try await pollUntil(seconds: 60) {
                    let caughtUp = try await scraper.metrics("http://127.0.0.1:\(primaryMetricsPort)/metrics", fixture)
                    return caughtUp["rampart_ha_peer_lag_revisions", ["peer": "mgmt-b"]] == 0
                        && caughtUp["rampart_ha_peer_lag_seconds", ["peer": "mgmt-b"]] == 0
                }, "the lag did not return to 0 after the standby resumed")
        }
        _ = try await secondary.stop()
        _ = try await primary.stop()
    }
}

/// Parsed samples: by name and labels, from prometheus_client's parser.
struct Samples: CustomStringConvertible {
    var values: [String: Double] = [:]
    /// Family name (as the parser names it: a counter without `_total`) to type.
    var types: [String: String] = [:]
    /// Family name to its `# HELP` text ("" without one).
    var helps: [String: String] = [:]
    var text = ""

    static func key(_ name: String, _ labels: [String: String]) -> String {
        name + labels.sorted { $0.key < $1.key }.map { "|\($0.key)=\($0.value)" }.joined()
    }

    subscript(_ name: String, _ labels: [String: String] = [:]) -> Double? { values[Self.key(name, labels)] }

    var description: String { values.keys.sorted().map { "\($0) \(values[$0] ?? .nan)" }.joined(separator: "\n") }
}

/// GETs over HTTPS (trusting only the group's Internal CA) and plain HTTP; parses with Python.
struct Scraper {
    let http: HTTPClient

    static func with(caFile: String, _ body: (Scraper) async throws -> Void) async throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(caFile)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: HTTPClient.Configuration(tlsConfiguration: tls))
        let result: Result<Void, any Error>
        do { result = .success(try await body(Scraper(http: http))) } catch { result = .failure(error) }
        try? await http.shutdown()
        try result.get()
    }

    func get(_ url: String, post: Bool = false) async throws -> (status: Int, contentType: String, body: String) {
        var request = HTTPClientRequest(url: url)
        request.method = post ? .POST : .GET
        let response = try await http.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), response.headers.first(name: "content-type") ?? "", String(buffer: bytes))
    }

    func status(_ url: String, post: Bool = false) async throws -> Int { try await get(url, post: post).status }

    /// Scrapes `url` and parses the text with prometheus_client (a real Prometheus text parser).
    func metrics(_ url: String, _ fixture: EndToEndTests.Fixture) async throws -> Samples {
        let reply = try await get(url)
        try #require(reply.status == 200, "\(url): HTTP \(reply.status)")
        try #require(reply.contentType.hasPrefix("text/plain; version=0.0.4"), "\(reply.contentType)")
        let file = fixture.scratch.path("scrape-\(UUID().uuidString.prefix(8)).txt")
        try Data(reply.body.utf8).write(to: URL(fileURLWithPath: file))
        let parsed = try await CLI.run(
            program: URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", Self.parser, file], scratch: fixture.scratch)
        try #require(parsed.status == 0, "prometheus_client could not parse the scrape (pip install prometheus_client): \(parsed)\n\(reply.body)")
        var samples = Samples(text: reply.body)
        for line in parsed.stdout.split(separator: "\n") {
            guard let entry = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                let name = entry["name"] as? String, let value = (entry["value"] as? NSNumber)?.doubleValue
            else { continue }
            if let family = entry["family"] as? String, let type = entry["type"] as? String { samples.types[family] = type }
            if let family = entry["family"] as? String, let help = entry["help"] as? String { samples.helps[family] = help }
            samples.values[Samples.key(name, entry["labels"] as? [String: String] ?? [:])] = value
        }
        return samples
    }

    static let parser = """
        import json, sys
        from prometheus_client.parser import text_string_to_metric_families
        for family in text_string_to_metric_families(open(sys.argv[1]).read()):
            for sample in family.samples:
                print(json.dumps({"family": family.name, "type": family.type, "help": family.documentation, "name": sample.name, "labels": sample.labels, "value": sample.value}))
        """
}
