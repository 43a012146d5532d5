import Foundation
import ManagementModel

/// One install task's progress: one entry per gateway (a cluster: per member), in the order of the request.
struct InstallProgress: Sendable {
    struct Gateway: Sendable {
        var uid: String
        var name: String
        /// The member's cluster, for a cluster member.
        var cluster: String?
    }

    /// A cluster installed with install-on-all-cluster-members-or-fail: its members' entries.
    struct AtomicCluster: Sendable {
        var name: String
        var members: [Int]
        /// Every member answered and the rollbacks (if any) were sent.
        var decided = false
        /// The first member that failed, when one did.
        var failedMember: Int?
    }

    enum Rollback: Sendable, Equatable {
        case pending
        case done(String)
        case failed(String)
    }

    var entries: [GatewayPushResult?]
    var gateways: [Gateway]
    /// Where each gateway's entry is (a result finds its entry in O(1), also for 1,000s of gateways).
    var indexByUID: [String: Int]
    var packageName: String
    var revision: UInt64
    var done = 0
    var atomicClusters: [AtomicCluster] = []
    /// Rollbacks sent for members that installed while another member of their cluster failed.
    var rollbacks: [Int: Rollback] = [:]

    init(gateways: [Gateway], packageName: String, revision: UInt64, atomicClusters: [AtomicCluster] = []) {
        self.entries = Array(repeating: nil, count: gateways.count)
        self.gateways = gateways
        self.indexByUID = Dictionary(gateways.enumerated().map { ($1.uid, $0) }, uniquingKeysWith: { first, _ in first })
        self.packageName = packageName
        self.revision = revision
        self.atomicClusters = atomicClusters
    }

    /// Every push answered and every rollback sent answered.
    var isFinished: Bool { done == entries.count && !rollbacks.values.contains(.pending) }
    var percentDone: Int {
        let answered = done + rollbacks.values.filter { $0 != .pending }.count
        return 100 * answered / max(entries.count + rollbacks.count, 1)
    }

    /// After entry `index` answered: the entries to roll back now (its cluster is or-fail, every
    /// member answered, one failed: the members that installed go back to their previous policy).
    mutating func rollbacksDue(after index: Int) -> [Int] {
        guard let at = atomicClusters.firstIndex(where: { $0.members.contains(index) }), !atomicClusters[at].decided else { return [] }
        let members = atomicClusters[at].members
        guard members.allSatisfy({ entries[$0] != nil }) else { return [] }
        atomicClusters[at].decided = true
        atomicClusters[at].failedMember = members.first { entries[$0]?.outcome != .installed }
        guard atomicClusters[at].failedMember != nil else { return [] }
        let due = members.filter { entries[$0]?.outcome == .installed }
        for member in due { rollbacks[member] = .pending }
        return due
    }

    /// The or-fail cluster whose failure undid entry `index`, when one did.
    func failedCluster(of index: Int) -> AtomicCluster? {
        atomicClusters.first { $0.members.contains(index) && $0.failedMember != nil }
    }

    /// The entry counts as installed: it installed and its or-fail cluster (if any) did not fail.
    func succeeded(_ index: Int) -> Bool {
        entries[index]?.outcome == .installed && failedCluster(of: index) == nil
    }

    /// The task's `task-details[]`: gatewayName, gatewayId, statusCode, statusDescription per gateway.
    var details: [JSONValue] { entries.indices.map(detail) }

    func detail(_ index: Int) -> JSONValue {
        let entry = entries[index]
        var code = entry.map { $0.outcome == .installed ? "succeeded" : "failed" } ?? "in progress"
        var description = entry?.message ?? "Installing policy \(packageName) (revision \(revision))"
        var outcome = entry?.outcome.rawValue ?? "pending"
        if let cluster = failedCluster(of: index), let failed = cluster.failedMember, entry?.outcome == .installed {
            let cause = "member \(gateways[failed].name) of cluster \(cluster.name) failed (install-on-all-cluster-members-or-fail)"
            code = "failed"
            switch rollbacks[index] {
            case .pending?: (description, outcome) = ("Installed; rolling back to the previous policy: \(cause)", "rolling-back")
            case .done(let message)?: (description, outcome) = ("Rolled back to the previous policy: \(cause). \(message)", "rolled-back")
            case .failed(let message)?:
                (description, outcome) = ("Installed, and the rollback failed: \(message). It runs the new policy while \(cause)", "rollback-failed")
            case nil: break
            }
        }
        var fields: [String: JSONValue] = [
            "gatewayName": .string(gateways[index].name), "gatewayId": .string(gateways[index].uid),
            "statusCode": .string(code), "statusDescription": .string(description),
            "rampart-outcome": .string(outcome),
        ]
        if let cluster = gateways[index].cluster { fields["rampart-cluster"] = .string(cluster) }
        return .object(fields)
    }

    /// succeeded / partially succeeded / failed, with a readable summary (what the client shows).
    var verdict: (status: String, comments: String) {
        let installed = entries.indices.filter(succeeded).count
        var failures: [String] = []
        for cluster in atomicClusters {
            guard let failed = cluster.failedMember else { continue }
            let undone = cluster.members.filter { rollbacks[$0] != nil }
            let rollbackFailed = undone.filter {
                if case .failed? = rollbacks[$0] { return true }
                return false
            }
            var text = "cluster \(cluster.name): member \(gateways[failed].name) failed: \(entries[failed]?.message ?? "")"
            if !undone.isEmpty { text += "; \(undone.count - rollbackFailed.count) of \(undone.count) members that installed were rolled back" }
            if !rollbackFailed.isEmpty { text += " (not: \(rollbackFailed.map { gateways[$0].name }.joined(separator: ", ")))" }
            failures.append(text)
        }
        let inClusters = Set(atomicClusters.filter { $0.failedMember != nil }.flatMap(\.members))
        failures += entries.indices.filter { !inClusters.contains($0) && entries[$0].map { $0.outcome != .installed } == true }
            .map { "\(gateways[$0].name): \(entries[$0]?.message ?? "")" }
        let status = failures.isEmpty ? "succeeded" : installed == 0 ? "failed" : "partially succeeded"
        var comments = "Policy \(packageName) (revision \(revision)) installed on \(installed) of \(entries.count) gateways"
        if !failures.isEmpty {
            comments += "; " + failures.prefix(5).joined(separator: "; ")
            if failures.count > 5 { comments += "; and \(failures.count - 5) more" }
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

    /// True when `uid` names a simple-gateway or a cluster member that enrolled (its certificate
    /// carries that uid): only such a peer gets a gateway channel. A management server's certificate
    /// names a checkpoint-host.
    public nonisolated func isEnrolledGateway(uid: String) -> Bool {
        guard let object = store.reader.object(uid: uid), ObjectType.gatewayNodes.contains(object.type) else { return false }
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
        let orFail = try params.flag("install-on-all-cluster-members-or-fail", default: true)
        let clusterNames = Dictionary(
            targets.compactMap { target in target.clusterUID.map { ($0, reader.object(uid: $0)?.name ?? $0) } },
            uniquingKeysWith: { first, _ in first })
        let entries = targets.map { InstallProgress.Gateway(uid: $0.uid, name: $0.name, cluster: $0.clusterUID.flatMap { clusterNames[$0] }) }
        let progress = InstallProgress(
            gateways: entries, packageName: package.name, revision: head.number,
            atomicClusters: orFail ? Self.atomicClusters(targets, names: clusterNames) : [])
        let id = tasks.started("Policy installation - \(package.name)", details: progress.details, nowMilliseconds: now)
        installs[id] = progress
        installedPolicies[id] = (package.uid, epoch)
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

    /// One gateway's part ended: its task entry, the rollbacks its cluster now needs, and the task's
    /// status once every gateway (and every rollback) answered.
    func installResult(_ taskID: String, _ result: GatewayPushResult) {
        guard var progress = installs[taskID] else { return }
        guard let index = progress.indexByUID[result.gatewayUID], progress.entries[index] == nil else { return }
        progress.entries[index] = result
        progress.done += 1
        let due = progress.rollbacksDue(after: index)
        installs[taskID] = progress
        for changed in [index] + due { tasks.updateDetail(taskID, at: changed, progress.detail(changed), progress: progress.percentDone, nowMilliseconds: now) }
        events.publish(
            .policyInstalled(
                PolicyInstalled(
                    taskID: taskID, policyPackage: progress.packageName, revision: progress.revision,
                    target: result.gatewayName, succeeded: result.outcome == .installed,
                    message: result.message)))
        if !due.isEmpty, let gateways, let (packageUID, epoch) = installedPolicies[taskID] {
            let rollbacks = due.map {
                GatewayRollback(
                    gatewayUID: progress.gateways[$0].uid, gatewayName: progress.gateways[$0].name,
                    packageUID: packageUID, revision: progress.revision, epoch: epoch)
            }
            logger.notice("policy installation: rolling cluster members back", metadata: ["task": "\(taskID)", "members": "\(rollbacks.map(\.gatewayName))"])
            gateways.rollback(rollbacks) { [weak self] result in await self?.rollbackResult(taskID, result) }
        }
        finishIfDone(taskID)
    }

    /// A member's rollback ended.
    func rollbackResult(_ taskID: String, _ result: GatewayPushResult) {
        guard var progress = installs[taskID], let index = progress.indexByUID[result.gatewayUID], progress.rollbacks[index] == .pending else { return }
        progress.rollbacks[index] = result.outcome == .installed ? .done(result.message) : .failed(result.message)
        installs[taskID] = progress
        tasks.updateDetail(taskID, at: index, progress.detail(index), progress: progress.percentDone, nowMilliseconds: now)
        events.publish(
            .policyInstalled(
                PolicyInstalled(
                    taskID: taskID, policyPackage: progress.packageName, revision: progress.revision,
                    target: result.gatewayName, succeeded: false,
                    message: (result.outcome == .installed ? "rolled back: " : "rollback failed: ") + result.message)))
        finishIfDone(taskID)
    }

    func finishIfDone(_ taskID: String) {
        guard let progress = installs[taskID], progress.isFinished else { return }
        installs[taskID] = nil
        installedPolicies[taskID] = nil
        let verdict = progress.verdict
        tasks.update(taskID, status: verdict.status, comments: verdict.comments, nowMilliseconds: now)
        logger.notice("policy installation finished", metadata: ["task": "\(taskID)", "status": "\(verdict.status)"])
    }

    /// The or-fail groups of an install: each cluster's member entries.
    static func atomicClusters(_ targets: [PolicyTarget], names: [String: String]) -> [InstallProgress.AtomicCluster] {
        var order: [String] = []
        var members: [String: [Int]] = [:]
        for (index, target) in targets.enumerated() {
            guard let cluster = target.clusterUID else { continue }
            if members[cluster] == nil { order.append(cluster) }
            members[cluster, default: []].append(index)
        }
        return order.map { InstallProgress.AtomicCluster(name: names[$0] ?? $0, members: members[$0] ?? []) }
    }

    /// The gateways an install goes to: `targets` (names or uids of gateways and clusters, which must
    /// be among the package's installation targets), or the package's own targets. A cluster installs
    /// on each of its members (cluster-member objects, in member-id order).
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
                let members = Renderer(reader: reader).clusterMembers(of: object)
                guard !members.isEmpty else {
                    throw ManagementError.invalid("targets", "cluster [\(object.name)] has no members to install on")
                }
                targets += members.map { PolicyTarget(uid: $0.uid, name: $0.name, alsoNamedBy: [object.uid], clusterUID: object.uid) }
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
        (try? store.objects(types: [.simpleGateway, .simpleCluster], offset: 0, limit: InstallLimits.targetsPerInstallMax, nameFilter: nil).objects.map(\.uid))
            ?? []
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
            if let clusterUID = target.clusterUID, let cluster = reader.object(uid: clusterUID) {
                policy.cluster = ClusterPolicyBuilder.section(cluster: cluster, member: target.uid, reader: reader)
            }
            policy.targetName = ""
            policy.targetUID = ""
            return SharedPolicyBytes(encoded: Array(try encoder.encode(policy)))
        }
        return try targets.map { target in
            // A member's policy names the member in its cluster section: never shared.
            if target.clusterUID != nil { return try compile(target) }
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
    func gatewayStatusFields(_ object: ManagedObject, reader: (any ObjectReader)? = nil) -> [String: JSONValue] {
        if object.type == .simpleCluster { return clusterStatusFields(object, reader: reader ?? store.reader) }
        guard ObjectType.gatewayNodes.contains(object.type) else { return [:] }
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
        if let clock = live.flatMap({ ClockMeasurement($0.clock, thresholds: clockThresholds) }) { status["clock"] = clock.json }
        var fields: [String: JSONValue] = ["sic-state": .string(sic.sicState), "gateway-status": .object(status), "policy-status": .string(policy)]
        if object.type == .clusterMember { fields["cluster-member-status"] = clusterMemberStatus(report: report, connected: live?.connected == true) }
        return fields
    }

    /// A member's cluster state as its agent last reported it: the report's fields, or state
    /// "unknown" (no report from a connected member yet) / "not-responding" (no channel).
    func clusterMemberStatus(report: GatewayReport?, connected: Bool) -> JSONValue {
        guard connected else { return ["state": "not-responding"] }
        guard var fields = report?.cluster?.json.objectValue else { return ["state": "unknown"] }
        if let at = report?.cluster?.lastChange?.timeMilliseconds, case .object(var change)? = fields["last-change"] {
            change["time"] = Renderer.timestamp(at)
            fields["last-change"] = .object(change)
        }
        return .object(fields)
    }

    /// A cluster's members with their live status, and which member is active.
    func clusterStatusFields(_ cluster: ManagedObject, reader: any ObjectReader) -> [String: JSONValue] {
        let renderer = Renderer(reader: reader)
        var active: [String] = []
        let members: [JSONValue] = renderer.clusterMembers(of: cluster).map { member in
            let live = gatewayStatusFields(member)
            if let state = live["cluster-member-status"]?["state"]?.stringValue, state.hasPrefix("ACTIVE") { active.append(member.name) }
            return renderer.render(member, level: .standard, extra: live)
        }
        let state = active.count == 1 ? "ok" : active.isEmpty ? "no-active-member" : "more-than-one-active-member"
        return [
            "members": .array(members),
            "cluster-status": ["state": .string(state), "active-members": .array(active.map(JSONValue.string))],
        ]
    }

    /// show-gateways-and-servers: gateways, clusters and management servers, with their status.
    func showGatewaysAndServers(_ params: [String: JSONValue], _ sessionUID: String) throws -> APIResponse {
        try listObjects(
            [.simpleGateway, .simpleCluster, .checkpointHost], params, sessionUID: sessionUID,
            level: try DetailsLevel.parse(params["details-level"]))
    }
}
