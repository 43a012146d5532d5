import Foundation
import HACore
import Logging
import ManagementModel
import ManagementService
import Store
import Synchronization
import Testing

@testable import HARuntime

/// The Web API's HA commands on a real runtime, through the management service that parses them:
/// bad input is refused naming the field and changes nothing; commands that do not fit the server's HA
/// state say why with err_ha_invalid_operation.
@Suite("HARuntime: HA commands of the Web API")
struct HAAdminCommandsTests {
    /// An active runtime with its management service attached, and root's session on it.
    struct Node {
        let service: ManagementService
        let store: ManagementStore
        let runtime: HARuntime
        let bridge: HAManagementBridge
        let sid: String

        func call(_ command: String, _ params: [String: JSONValue] = [:]) async -> APIResponse {
            await service.handle(command: command, body: .object(params), sid: sid, client: ClientInfo(address: "local-socket", isLocalSocket: true))
        }

        /// The body of a command that must succeed.
        func ok(_ command: String, _ params: [String: JSONValue] = [:]) async throws -> JSONValue {
            let reply = await call(command, params)
            guard reply.status == 200 else { throw Failure(reply: reply) }
            return reply.body
        }

        /// A command answered with a task: the task's only detail (its result).
        func taskResult(_ command: String, _ params: [String: JSONValue]) async throws -> JSONValue {
            let id = try #require(try await ok(command, params)["task-id"])
            let task = try await ok("show-task", ["task-id": id, "details-level": "full"])
            return try #require(task["tasks"]?.arrayValue?.first?["task-details"]?.arrayValue?.first)
        }

        /// A command that must be refused: its error body, with the status.
        func refusal(_ command: String, _ params: [String: JSONValue]) async -> (status: Int, code: String, message: String)? {
            let reply = await call(command, params)
            guard reply.status != 200 else { return nil }
            return (reply.status, reply.body["code"]?.stringValue ?? "", reply.body["message"]?.stringValue ?? "")
        }
    }

    struct Failure: Error { let reply: APIResponse }

    func withActive(checks: [PromotionCheck] = [], peers: [ServerID] = ["mgmt-b"], _ body: (Node) async throws -> Void) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        try publishHost(store, name: "seed")
        let runtime = try HARuntime(
            configuration: HAConfiguration(serverID: "primary", peers: peers), store: store, bootstrapActive: true,
            snapshotDirectory: directory.appendingPathComponent("snapshots"),
            exportDirectory: directory.appendingPathComponent("exports"), logger: Logger(label: "test"), send: { _ in })
        let bridge = HAManagementBridge(
            runtime: runtime, links: HAPeerLinks(), serverRole: .primary,
            activeAddress: { $0.name == "primary" ? "https://192.0.2.11:8443" : nil }, promotionChecks: { checks })
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = try ManagementService(
            store: store, identity: ServerIdentity(name: "primary", ipAddress: "192.0.2.11", apiPort: 8443),
            logger: logger, passwordIterations: 1_000)
        await service.attachHA(bridge)
        let login = await service.handle(
            command: "login", body: ["login-as-root": true], sid: nil,
            client: ClientInfo(address: "local-socket", isLocalSocket: true))
        let sid = try #require(login.body["sid"]?.stringValue)
        try await body(Node(service: service, store: store, runtime: runtime, bridge: bridge, sid: sid))
    }

    @Test func badInputNamesTheFieldAndChangesNothing() async throws {
        try await withActive { node in
            let missing = await node.refusal("set-ha-state", [:])
            #expect(missing?.status == 400 && missing?.message.contains("new-state") == true, "\(String(describing: missing))")
            let wrong = await node.refusal("set-ha-state", ["new-state": "primary"])
            #expect(wrong?.code == "generic_err_invalid_parameter" && wrong?.message.contains("new-state") == true)
            let mode = await node.refusal("ha-set-replication-mode", ["mode": "eventually"])
            #expect(mode?.message.contains("mode") == true)
            let timeout = await node.refusal("ha-set-replication-mode", ["mode": "sync", "timeout-ms": 0])
            #expect(timeout?.message.contains("timeout-ms") == true)
            let keep = await node.refusal("ha-resolve-collision", ["keep": "both"])
            #expect(keep?.message.contains("keep") == true)
            #expect(node.runtime.status.replicationMode == .async, "nothing changed")
            #expect(node.runtime.writesEnabled)
        }
    }

    @Test func commandsThatDoNotFitTheStateSayWhy() async throws {
        try await withActive { node in
            let unknownPeer = await node.refusal("ha-full-sync", ["name": "nobody"])
            #expect(unknownPeer?.status == 404)
            let notInCollision = await node.refusal("ha-export-divergent", [:])
            #expect(notInCollision?.code == "err_ha_invalid_operation")
            let resolve = await node.refusal("ha-resolve-collision", ["keep": "peer"])
            #expect(resolve?.code == "err_ha_invalid_operation" && resolve?.message.contains("not in collision") == true)
            let already = try await node.taskResult("set-ha-state", ["new-state": "active"])
            #expect(already["summary"]?.stringValue?.contains("already active") == true)
            let state = try await node.ok("show-ha-state")
            let servers = state["domains"]?.arrayValue?.first?["servers"]?.arrayValue ?? []
            #expect(servers.compactMap { $0["name"]?.stringValue } == ["primary", "mgmt-b"])
            let mode = try await node.ok("ha-set-replication-mode", ["mode": "sync", "timeout-ms": 500])
            #expect(mode["summary"]?.stringValue?.contains("sync") == true)
            #expect(node.runtime.status.replicationMode == .sync(timeoutMilliseconds: 500))
        }
    }

    /// The answers' JSON, pinned: the dry run's report with the trust, clock and version checks, and
    /// show-ha-state's servers.
    @Test func answersKeepTheirKeys() async throws {
        try await withActive(checks: [
            PromotionCheck(name: "trust", status: .ok, detail: "certificate valid"),
            PromotionCheck(name: "clock", status: .warning, detail: "mgmt-b is 7 s ahead"),
        ]) { node in
            let dryRun = try await node.ok("ha-promote", ["dry-run": true])
            #expect(
                dryRun.canonicalString == """
                    {"active-reachable":false,"active-server":"primary","checks":[{"detail":"certificate valid","name":"trust","status":"ok"},\
                    {"detail":"mgmt-b is 7 s ahead","name":"clock","status":"warning"}],"local-head":1,"may-lose-revisions":false,\
                    "path":"already-active","replication-mode":"async","summary":"already active in epoch 1/primary; warning clock: mgmt-b is 7 s ahead"}
                    """)
            let state = try await node.ok("show-ha-state")
            #expect(
                state.canonicalString == """
                    {"domains":[{"domain-type":"domain","name":"SMC User","servers":[\
                    {"ha-state":"active","ip-address":"https://192.0.2.11:8443","multi-domain-server":false,"name":"primary"},\
                    {"ha-state":"standby","ip-address":"","multi-domain-server":false,"name":"mgmt-b"}],\
                    "uid":"41e821a0-3720-11e3-aa6e-0800200c9fde"}]}
                    """)
            let already = try await node.ok("ha-promote")
            #expect(already.canonicalString == #"{"path":"already-active","summary":"already active in epoch 1/primary"}"#)
        }
    }

    /// The HA port itself speaks types: refusals say their kind, outcomes carry the core's figures.
    @Test func thePortAnswersInTypes() async throws {
        try await withActive { node in
            #expect(throws: HACommandRefusal(.unknownServer("nobody"), "no server nobody in the HA group")) {
                try node.bridge.requestFullSync(standby: "nobody")
            }
            #expect(throws: HACommandRefusal.self) { try node.bridge.divergentRevisions() }
            let already = try await node.bridge.promote(dryRun: false, force: false)
            #expect(already.completion == .alreadyActive(epoch: node.runtime.status.epoch))
            let dryRun = try await node.bridge.promote(dryRun: true, force: false)
            #expect(dryRun.completion == .dryRun && dryRun.report?.path == .alreadyActive)
            #expect(
                node.bridge.serverStates() == [
                    HAServerState(name: "primary", address: "https://192.0.2.11:8443", isActive: true),
                    HAServerState(name: "mgmt-b", address: nil, isActive: false),
                ])
            let stopped = try node.bridge.stop()
            #expect(!stopped.summary.isEmpty)
            do throws(HACommandRefusal) {
                _ = try node.bridge.stop()
                Issue.record("a second ha stop is refused")
            } catch {
                #expect(error.kind == .invalidOperation && error.message.contains("already stopped"), "\(error)")
            }
            #expect(HAManagementBridge.refusalKind(.mayLoseRevisions) == .mayLoseRevisions)
            #expect(HAManagementBridge.refusalKind(.peersUnconfirmed) == .invalidOperation)
        }
    }

    /// A clock check at `problem` (a peer's offset beyond the problem threshold) refuses a promotion
    /// unless forced; the refusal names the skew, the fix, and how to force it.
    @Test func aClockProblemRefusesThePromotionUnlessForced() async throws {
        let detail = "mgmt-b +400.0 s (ahead); set the clocks right and keep every server on NTP"
        try await withActive(checks: [PromotionCheck(name: "clock", status: .problem, detail: detail)]) { node in
            _ = try node.bridge.demote()
            do throws(HACommandRefusal) {
                _ = try await node.bridge.promote(dryRun: false, force: false)
                Issue.record("a promotion with a peer's clock 400 s off is refused")
            } catch {
                #expect(error.kind == .clockSkew && error.message.contains(detail), "\(error)")
            }
            let refused = await node.refusal("ha-promote", [:])
            #expect(refused?.code == "err_ha_invalid_operation", "\(String(describing: refused))")
            #expect(refused?.message.contains("+400.0 s") == true && refused?.message.contains("NTP") == true)
            #expect(refused?.message.contains("--force") == true, "the refusal says how to force it")
            #expect(!node.runtime.writesEnabled, "nothing was promoted")
            let dryRun = try await node.ok("ha-promote", ["dry-run": true])
            #expect(dryRun["checks"]?.arrayValue?.first?["status"] == "problem", "a dry run reports, never refuses")
        }
    }

    /// A publish HA does not take is refused in types too: the service turns it into 403 naming the active.
    @Test func aCommitWithoutWritesIsRefusedNamingTheActive() async throws {
        try await withActive { node in
            _ = try node.bridge.demote()
            let revision = try nextHostRevision(node.store, name: "late")
            var appended = false
            do {
                _ = try node.bridge.commit(revision, payload: Array(revision.json.canonicalBytes)) { appended = true }
                Issue.record("a demoted active commits nothing")
            } catch let error as HACommitError {
                guard case .notTakingWrites(let message) = error else {
                    Issue.record("\(error)")
                    return
                }
                #expect(message.contains("Make changes on the active server primary at https://192.0.2.11:8443"), "\(message)")
            }
            #expect(!appended)
        }
    }

    /// Found by the contract fuzz (seed 10938): in sync mode with HA stopped, a publish never got an
    /// answer (a stopped server ignores acknowledgements, and its timers did not expire the wait).
    /// Now it is answered at once: published, not confirmed by a standby.
    @Test func aSyncPublishWithHAStoppedIsAnsweredAtOnceUnconfirmed() async throws {
        try await withActive { node in
            _ = try await node.ok("ha-set-replication-mode", ["mode": "sync", "timeout-ms": 600_000])
            _ = try await node.ok("ha-stop")
            try await expectAnsweredAtOnceUnconfirmed(node, saying: "HA is stopped here")
        }
    }

    /// Nor does a publish wait in a group with no standby: nothing could ever confirm it.
    @Test func aSyncPublishWithoutAStandbyIsAnsweredAtOnceUnconfirmed() async throws {
        try await withActive(peers: []) { node in
            _ = try await node.ok("ha-set-replication-mode", ["mode": "sync", "timeout-ms": 600_000])
            try await expectAnsweredAtOnceUnconfirmed(node, saying: "the HA group has no standby")
        }
    }

    /// Publishes a host; the publish must be answered well before the mode's ten minutes, its task
    /// `partially succeeded` with a comment that says why.
    func expectAnsweredAtOnceUnconfirmed(_ node: Node, saying why: String) async throws {
        _ = try await node.ok("add-host", ["name": "unconfirmed", "ip-address": "192.0.2.40"])
        let answer = Answer()
        let publish = Task {
            let reply = await node.call("publish")
            answer.set(reply)
        }
        defer { publish.cancel() }
        // The wait it had was the mode's timeout, ten minutes: a minute's bound tells the two apart.
        #expect(try await eventually(seconds: 60) { answer.get() != nil }, "the publish is answered")
        let reply = try #require(answer.get())
        #expect(reply.status == 200, "\(reply.body)")
        let id = try #require(reply.body["task-id"])
        let task = try await node.ok("show-task", ["task-id": id, "details-level": "full"])
        #expect(task["tasks"]?.arrayValue?.first?["status"]?.stringValue == "partially succeeded", "\(task)")
        #expect(task["tasks"]?.arrayValue?.first?["comments"]?.stringValue?.contains(why) == true, "\(task)")
        #expect(try node.store.head()?.number == 2)
    }

    /// The publish's answer, set by the task that waits for it.
    final class Answer: Sendable {
        private let reply = Mutex<APIResponse?>(nil)
        func set(_ value: APIResponse) { reply.withLock { $0 = value } }
        func get() -> APIResponse? { reply.withLock { $0 } }
    }
}
