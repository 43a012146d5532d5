import Foundation
import HACore
import Logging
import ManagementService
import ManagementModel
import Store
import Testing
@testable import HARuntime

/// The Web API's HA commands on a real runtime: bad input is refused naming the field and changes
/// nothing; commands that do not fit the server's HA state say why with err_ha_invalid_operation.
@Suite("HARuntime: HA commands of the Web API")
struct HAAdminCommandsTests {
    func withActive(checks: [PromotionCheck] = [], _ body: (HAWebAPIBridge, HARuntime) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        try publishHost(store, name: "seed")
        let runtime = try HARuntime(configuration: HAConfiguration(serverID: "primary", peers: ["mgmt-b"]), store: store, bootstrapActive: true,
                                    snapshotDirectory: directory.appendingPathComponent("snapshots"),
                                    exportDirectory: directory.appendingPathComponent("exports"), logger: Logger(label: "test"), send: { _ in })
        let bridge = HAWebAPIBridge(runtime: runtime, links: HAPeerLinks(), serverRole: .primary,
                                    activeAddress: { $0.name == "primary" ? "https://192.0.2.11:8443" : nil }, promotionChecks: { checks })
        try await body(bridge, runtime)
    }

    func refusal(_ bridge: HAWebAPIBridge, _ command: String, _ params: [String: JSONValue]) async -> ManagementError? {
        do {
            _ = try await bridge.haCommand(command, params)
            return nil
        } catch {
            return error as? ManagementError
        }
    }

    @Test func badInputNamesTheFieldAndChangesNothing() async throws {
        try await withActive { bridge, runtime in
            let missing = await refusal(bridge, "set-ha-state", [:])
            #expect(missing?.httpStatus == 400 && missing?.message.contains("new-state") == true, "\(String(describing: missing))")
            let wrong = await refusal(bridge, "set-ha-state", ["new-state": "primary"])
            #expect(wrong?.code == "generic_err_invalid_parameter" && wrong?.message.contains("new-state") == true)
            let mode = await refusal(bridge, "ha-set-replication-mode", ["mode": "eventually"])
            #expect(mode?.message.contains("mode") == true)
            let timeout = await refusal(bridge, "ha-set-replication-mode", ["mode": "sync", "timeout-ms": 0])
            #expect(timeout?.message.contains("timeout-ms") == true)
            let keep = await refusal(bridge, "ha-resolve-collision", ["keep": "both"])
            #expect(keep?.message.contains("keep") == true)
            #expect(runtime.status.replicationMode == .async, "nothing changed")
            #expect(runtime.writesEnabled)
        }
    }

    @Test func commandsThatDoNotFitTheStateSayWhy() async throws {
        try await withActive { bridge, runtime in
            let unknownPeer = await refusal(bridge, "ha-full-sync", ["name": "nobody"])
            #expect(unknownPeer?.httpStatus == 404)
            let notInCollision = await refusal(bridge, "ha-export-divergent", [:])
            #expect(notInCollision?.code == "err_ha_invalid_operation")
            let resolve = await refusal(bridge, "ha-resolve-collision", ["keep": "peer"])
            #expect(resolve?.code == "err_ha_invalid_operation" && resolve?.message.contains("not in collision") == true)
            let already = try await bridge.haCommand("set-ha-state", ["new-state": "active"])
            #expect(already["summary"]?.stringValue?.contains("already active") == true)
            let state = try await bridge.haCommand("show-ha-state", [:])
            let servers = state["domains"]?.arrayValue?.first?["servers"]?.arrayValue ?? []
            #expect(servers.compactMap { $0["name"]?.stringValue } == ["primary", "mgmt-b"])
            let mode = try await bridge.haCommand("ha-set-replication-mode", ["mode": "sync", "timeout-ms": 500])
            #expect(mode["summary"]?.stringValue?.contains("sync") == true)
            #expect(runtime.status.replicationMode == .sync(timeoutMilliseconds: 500))
        }
    }

    /// The answers' JSON, pinned: the dry run's report with the trust, clock and version checks, and
    /// show-ha-state's servers.
    @Test func answersKeepTheirKeys() async throws {
        try await withActive(checks: [PromotionCheck(name: "trust", status: .ok, detail: "certificate valid"),
                                      PromotionCheck(name: "clock", status: .warning, detail: "mgmt-b is 7 s ahead")]) { bridge, _ in
            let dryRun = try await bridge.haCommand("ha-promote", ["dry-run": true])
            #expect(dryRun.canonicalString == """
                {"active-reachable":false,"active-server":"primary","checks":[{"detail":"certificate valid","name":"trust","status":"ok"},\
                {"detail":"mgmt-b is 7 s ahead","name":"clock","status":"warning"}],"local-head":1,"may-lose-revisions":false,\
                "path":"already-active","replication-mode":"async","summary":"already active in epoch 1/primary; warning clock: mgmt-b is 7 s ahead"}
                """)
            let state = try await bridge.haCommand("show-ha-state", [:])
            #expect(state.canonicalString == """
                {"domains":[{"domain-type":"domain","name":"SMC User","servers":[\
                {"ha-state":"active","ip-address":"https://192.0.2.11:8443","multi-domain-server":false,"name":"primary"},\
                {"ha-state":"standby","ip-address":"","multi-domain-server":false,"name":"mgmt-b"}],\
                "uid":"41e821a0-3720-11e3-aa6e-0800200c9fde"}]}
                """)
            let already = try await bridge.haCommand("ha-promote", [:])
            #expect(already.canonicalString == #"{"path":"already-active","summary":"already active in epoch 1/primary"}"#)
        }
    }
}
