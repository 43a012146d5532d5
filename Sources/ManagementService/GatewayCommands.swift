import Foundation
import ManagementModel

/// One install task's progress: one entry per gateway, in the order of the request.
struct InstallProgress: Sendable {
    var entries: [GatewayPushResult?]
    var gateways: [(uid: String, name: String)]
    /// Where each gateway's entry is (a result finds its entry in O(1), also for 1,000s of gateways).
    var indexByUID: [String: Int]
    var packageName: String
    var revision: UInt64
    var done = 0

    init(gateways: [(uid: String, name: String)], packageName: String, revision: UInt64) {
        self.entries = Array(repeating: nil, count: gateways.count)
        self.gateways = gateways
        self.indexByUID = Dictionary(gateways.enumerated().map { ($1.uid, $0) }, uniquingKeysWith: { first, _ in first })
        self.packageName = packageName
        self.revision = revision
    }

    /// The task's `task-details[]`: gatewayName, gatewayId, statusCode, statusDescription per gateway.
    var details: [JSONValue] { entries.indices.map(detail) }

    func detail(_ index: Int) -> JSONValue {
        let entry = entries[index]
        let code = entry.map { $0.outcome == .installed ? "succeeded" : "failed" } ?? "in progress"
        let description = entry?.message ?? "Installing policy \(packageName) (revision \(revision))"
        return .object([
            "gatewayName": .string(gateways[index].name), "gatewayId": .string(gateways[index].uid),
            "statusCode": .string(code), "statusDescription": .string(description),
            "rampart-outcome": .string(entry?.outcome.rawValue ?? "pending"),
        ])
    }

    /// succeeded / partially succeeded / failed, with a readable summary (what the client shows).
    var verdict: (status: String, comments: String) {
        let results = entries.compactMap { $0 }
        let installed = results.filter { $0.outcome == .installed }.count
        let failed = results.filter { $0.outcome != .installed }
        let status = failed.isEmpty ? "succeeded" : installed == 0 ? "failed" : "partially succeeded"
        var comments = "Policy \(packageName) (revision \(revision)) installed on \(installed) of \(results.count) gateways"
        if !failed.isEmpty {
            comments += "; " + failed.prefix(5).map { "\($0.gatewayName): \($0.message)" }.joined(separator: "; ")
            if failed.count > 5 { comments += "; and \(failed.count - 5) more" }
        }
        return (status, comments)
    }
}

enum InstallLimits {
    /// Targets of one install-policy request.
    static let targetsPerInstallMax = 10_000
}

extension ManagementService {
    /// Connects the gateways' SIC channels: install-policy pushes through it, status reads from it.
    public func attachGateways(_ fleet: any GatewayFleet) { gateways = fleet }

    /// True when `uid` names a simple-gateway that enrolled (its certificate carries that uid): only
    /// such a peer gets a gateway channel. A management server's certificate names a checkpoint-host.
    public nonisolated func isEnrolledGateway(uid: String) -> Bool {
        guard let object = store.reader.object(uid: uid), object.type == .simpleGateway else { return false }
        return object.fields[ManagedObject.sicStateField]?.stringValue == "initialized"
    }

    /// What this server tells its gateways: its epoch and whether it is the active (only the active's
    /// epoch raises a gateway's fence).
    public func gatewayAnnouncement() -> (epoch: RevisionEpoch, isActive: Bool) {
        (currentEpoch, ha.map { $0.writeRefusal == nil } ?? true)
    }

    /// A published object by uid.
    public nonisolated func publishedObject(uid: String) -> ManagedObject? { store.reader.object(uid: uid) }

    // MARK: install-policy

    /// install-policy (CHECKPOINT-API.md §3.5): compiles the published package for every target with
    /// this server's epoch and head, and pushes it over each gateway's SIC channel. Returns the task at
    /// once; each gateway's result lands in `task-details[]` as it comes.
    func installPolicy(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        try requireWritable(try session(sessionUID))
        guard let packageKey = params["policy-package"]?.scalarText else { throw ManagementError.missing(["policy-package"]) }
        let reader = store.reader  // published data only: the caller's pending changes are not installed
        guard let package = PolicyCompiler.findPackage(packageKey, reader: reader) else {
            throw ManagementError(code: "generic_err_object_not_found", message: "Policy package [\(packageKey)] not found", httpStatus: 404)
        }
        guard let head = try store.head() else { throw ManagementError.internalError("the database has no published revision") }
        if let wanted = params["revision"]?.scalarText, wanted != head.hash, wanted != String(head.number) {
            throw ManagementError.invalid("revision", "only the latest published revision (\(head.number), \(head.hash)) can be installed")
        }
        let targets = try installTargets(params["targets"], package: package, reader: reader)
        let epoch = currentEpoch
        let compiled = try compileShared(package: package, targets: targets, reader: reader, revision: head, epoch: epoch)
        if try params.flag("prepare-only", default: false) {
            let id = tasks.finished(
                "Policy installation - \(package.name)", status: "succeeded",
                comments: "Prepared (compiled) for \(targets.count) targets; nothing pushed", details: [], nowMilliseconds: now)
            return APIResponse.ok(["task-id": .string(id)])
        }
        let progress = InstallProgress(gateways: targets.map { ($0.uid, $0.name) }, packageName: package.name, revision: head.number)
        let id = tasks.started("Policy installation - \(package.name)", details: progress.details, nowMilliseconds: now)
        installs[id] = progress
        logger.notice(
            "policy installation",
            metadata: [
                "package": "\(package.name)", "revision": "\(head.number)", "targets": "\(targets.count)",
                "epoch": "\(epoch.text)", "task": "\(id)",
            ])
        let pushes = zip(targets, compiled).map { GatewayPush(gatewayUID: $0.uid, gatewayName: $0.name, policy: $1) }
        if let gateways {
            gateways.push(pushes) { [weak self] result in await self?.installResult(id, result) }
        } else {
            for push in pushes {
                installResult(
                    id,
                    GatewayPushResult(
                        gatewayUID: push.gatewayUID, gatewayName: push.gatewayName, outcome: .failed,
                        message: "this server has no SIC channel to gateways"))
            }
        }
        return APIResponse.ok(["task-id": .string(id)])
    }

    /// One gateway's part ended: its task entry, and the task's status once every gateway answered.
    func installResult(_ taskID: String, _ result: GatewayPushResult) {
        guard var progress = installs.removeValue(forKey: taskID) else { return }
        defer { if progress.done < progress.entries.count { installs[taskID] = progress } }
        guard let index = progress.indexByUID[result.gatewayUID], progress.entries[index] == nil else { return }
        progress.entries[index] = result
        progress.done += 1
        tasks.updateDetail(taskID, at: index, progress.detail(index), progress: 100 * progress.done / max(progress.entries.count, 1), nowMilliseconds: now)
        events.publish(
            .policyInstalled(
                PolicyInstalled(
                    taskID: taskID, policyPackage: progress.packageName, revision: progress.revision,
                    target: result.gatewayName, succeeded: result.outcome == .installed,
                    message: result.message)))
        guard progress.done == progress.entries.count else { return }
        let verdict = progress.verdict
        tasks.update(taskID, status: verdict.status, comments: verdict.comments, nowMilliseconds: now)
        logger.notice("policy installation finished", metadata: ["task": "\(taskID)", "status": "\(verdict.status)"])
    }

    /// The gateways an install goes to: `targets` (names or uids of gateways and clusters, which must
    /// be among the package's installation targets), or the package's own targets. A cluster stands
    /// for its members: the gateway objects named like them.
    func installTargets(_ given: JSONValue?, package: ManagedObject, reader: any ObjectReader) throws -> [PolicyTarget] {
        let normalizer = Normalizer(reader: reader, passwords: passwords)
        let allowed = package.fields["installation-targets"]?.arrayValue?.compactMap(\.stringValue)
        var uids: [String]
        if let given {
            let items = given.arrayValue ?? [given]
            guard items.count <= InstallLimits.targetsPerInstallMax else {
                throw ManagementError.invalid("targets", "at most \(InstallLimits.targetsPerInstallMax) targets")
            }
            uids = try items.map { try normalizer.resolve("targets", $0, allowed: ObjectType.installable) }
            if let allowed = allowed.map(Set.init), let outside = uids.first(where: { !allowed.contains($0) }) {
                throw ManagementError.invalid(
                    "targets", "[\(reader.object(uid: outside)?.name ?? outside)] is not an installation target of package [\(package.name)]")
            }
        } else if let allowed {
            uids = allowed
        } else {
            uids = allPolicyTargets()
        }
        var targets: [PolicyTarget] = []
        for uid in uids {
            guard let object = reader.object(uid: uid) else { continue }
            if object.type == .simpleCluster {
                let members = object.fields["members"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
                for name in members {
                    guard let member = reader.objects(named: name).first(where: { $0.type == .simpleGateway }) else {
                        throw ManagementError.invalid(
                            "targets", "cluster [\(object.name)] member [\(name)] has no simple-gateway object of that name to install on")
                    }
                    targets.append(PolicyTarget(uid: member.uid, name: member.name, alsoNamedBy: [object.uid]))
                }
            } else {
                targets.append(PolicyTarget(uid: object.uid, name: object.name))
            }
        }
        targets = Self.mergingDuplicates(targets)
        guard !targets.isEmpty else {
            throw ManagementError(
                code: "err_policy_installation_failed",
                message:
                    "No installation targets: give targets, or add simple-gateway objects (package [\(package.name)] installs on \(allowed == nil ? "all gateways" : "its installation-targets"))",
                httpStatus: 400)
        }
        return targets
    }

    /// One target per gateway, in first-seen order; a gateway given directly and through a cluster
    /// keeps every name that reaches it.
    static func mergingDuplicates(_ targets: [PolicyTarget]) -> [PolicyTarget] {
        var out: [PolicyTarget] = []
        var index: [String: Int] = [:]
        for target in targets {
            if let at = index[target.uid] {
                out[at].alsoNamedBy += target.alsoNamedBy.filter { !out[at].alsoNamedBy.contains($0) }
            } else {
                index[target.uid] = out.count
                out.append(target)
            }
        }
        return out
    }

    /// Every simple-gateway object, by name.
    func allPolicyTargets() -> [String] {
        (try? store.objects(types: [.simpleGateway], offset: 0, limit: InstallLimits.targetsPerInstallMax, nameFilter: nil).objects.map(\.uid)) ?? []
    }

    /// Compiles the package once per distinct rule set and serializes each once: gateways that no rule
    /// names in its install-on all get the same rules (only the target differs, see `SharedPolicyBytes`).
    func compileShared(
        package: ManagedObject, targets: [PolicyTarget], reader: any ObjectReader,
        revision: (number: UInt64, hash: String), epoch: RevisionEpoch
    ) throws -> [SharedPolicyBytes] {
        var shared: SharedPolicyBytes?
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func compile(_ target: PolicyTarget) throws -> SharedPolicyBytes {
            var policy = try PolicyCompiler.compile(
                package: package.uid, target: target, reader: reader, revision: revision.number,
                revisionHash: revision.hash, epochTerm: epoch.term, epochServer: epoch.server,
                nowMilliseconds: now)
            policy.targetName = ""
            policy.targetUID = ""
            return SharedPolicyBytes(encoded: Array(try encoder.encode(policy)))
        }
        return try targets.map { target in
            let namedByARule = target.namedBy.contains { uid in reader.referrers(of: uid).contains { $0.type == .accessRule } }
            if namedByARule { return try compile(target) }
            if let shared { return shared }
            let compiled = try compile(target)
            shared = compiled
            return compiled
        }
    }

    // MARK: verify-policy

    /// verify-policy: compiles the package for its targets (or for none) and reports every problem.
    func verifyPolicy(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        guard let packageKey = params["policy-package"]?.scalarText else { throw ManagementError.missing(["policy-package"]) }
        let reader = store.reader
        guard let package = PolicyCompiler.findPackage(packageKey, reader: reader) else {
            throw ManagementError(code: "generic_err_object_not_found", message: "Policy package [\(packageKey)] not found", httpStatus: 404)
        }
        let targets = try installTargets(params["targets"], package: package, reader: reader)
        let problems = PolicyVerifier.verify(package: package.uid, targets: targets, reader: reader)
        let errors = problems.filter { $0.severity == .error }
        let comments =
            errors.isEmpty
            ? "Policy \(package.name) verified for \(targets.count) targets" + (problems.isEmpty ? "" : " with \(problems.count) warnings")
            : errors.prefix(5).map(\.message).joined(separator: "; ")
        let id = tasks.finished(
            "Verify policy - \(package.name)", status: errors.isEmpty ? (problems.isEmpty ? "succeeded" : "succeeded with warnings") : "failed",
            comments: comments,
            details: [
                .object([
                    "statusCode": .string(errors.isEmpty ? "succeeded" : "failed"), "statusDescription": .string(comments),
                    "problems": .array(problems.map(\.json)),
                ])
            ],
            nowMilliseconds: now)
        return APIResponse.ok(["task-id": .string(id)])
    }

    // MARK: status

    /// Live fields of a gateway object: SIC state as Check Point names it, Rampart's gateway status
    /// (ok / untrusted / not-responding) and policy status (installed / not-installed / may-be-out-of-date).
    func gatewayStatusFields(_ object: ManagedObject) -> [String: JSONValue] {
        guard object.type == .simpleGateway else { return [:] }
        let sic = sicNodeStatus(object)
        let live = gateways?.status(ofGateway: object.uid)
        let state =
            switch sic.state {
            case .uninitialized: "untrusted"
            case .communicating: "ok"
            case .notCommunicating: "not-responding"
            }
        var policy = "not-installed"
        var status: [String: JSONValue] = ["state": .string(state)]
        let report = live?.report
        if let revision = report?.installedRevision {
            let head = (try? store.head())?.number ?? revision
            policy = revision < head ? "may-be-out-of-date" : "installed"
            status["installed-revision"] = .int(Int64(revision))
            status["installed-package"] = .string(report?.installedPackage ?? "")
            if let epoch = report?.installedEpoch { status["installed-epoch"] = .string(epoch.text) }
            if let at = report?.installedAtMilliseconds { status["installed-time"] = Renderer.timestamp(at) }
        }
        status["policy"] = .string(policy)
        if let epoch = report?.highestEpoch { status["highest-epoch-seen"] = .string(epoch.text) }
        if let refusal = report?.lastRefusal { status["last-refusal"] = .string(refusal) }
        if let enforcement = report?.enforcement {
            status["enforcement"] = .string(enforcement)
            if enforcement == "none" {
                status["warning"] = "enforcement is off (--enforce none): this gateway enforces nothing; run its agent with --enforce nftables"
            }
        }
        if let seen = live?.lastContactMilliseconds { status["last-contact"] = Renderer.timestamp(seen) }
        return ["sic-state": .string(sic.sicState), "gateway-status": .object(status), "policy-status": .string(policy)]
    }

    /// show-gateways-and-servers: gateways, clusters and management servers, with their status.
    func showGatewaysAndServers(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        try listObjects(
            [.simpleGateway, .simpleCluster, .checkpointHost], params, sessionUID: sessionUID,
            level: try DetailsLevel.parse(params["details-level"]))
    }
}
