import Foundation
import HACore
import ManagementModel
import ManagementService
import SmartTasks
import Testing

@Suite struct PlannerTests {
    static let web = SmartTaskSpec(
        uid: "task-1", name: "notify", trigger: TriggerName.afterPublish, action: .sendWebRequest(.init(url: "https://127.0.0.1/hook")),
        customData: #"{"ticket":"CR-7"}"#)

    @Test func anEventIDIsTheSameForTheSameTaskTriggerAndEventAndDiffersOtherwise() {
        let id = DeliveryPlanner.eventID(taskUID: "t", trigger: "After Publish", identity: "revision:4:abc")
        #expect(id == DeliveryPlanner.eventID(taskUID: "t", trigger: "After Publish", identity: "revision:4:abc"))
        #expect(id != DeliveryPlanner.eventID(taskUID: "u", trigger: "After Publish", identity: "revision:4:abc"))
        #expect(id != DeliveryPlanner.eventID(taskUID: "t", trigger: "Before Publish", identity: "revision:4:abc"))
        #expect(id != DeliveryPlanner.eventID(taskUID: "t", trigger: "After Publish", identity: "revision:5:abd"))
        #expect(UUID(uuidString: id) != nil)
        #expect(Array(id)[14] == "8")
    }

    @Test func afterPublishOnTwoNodesAtDifferentTimesCarriesTheSameEventID() {
        let published = revision(7, after: nil, changes: [.upsert(host("web", uid: "h-1"))], atMilliseconds: 1_000)
        let firing = DeliveryPlanner.afterPublish(published)
        let onActive = DeliveryPlanner.deliveries(
            for: firing, tasks: [Self.web], server: "primary", nowMilliseconds: 2_000, lastStartMilliseconds: [:], limits: SmartTaskLimits())
        let onStandby = DeliveryPlanner.deliveries(
            for: firing, tasks: [Self.web], server: "secondary", nowMilliseconds: 9_000, lastStartMilliseconds: [:], limits: SmartTaskLimits())
        #expect(onActive.count == 1)
        #expect(onActive.map(\.eventID) == onStandby.map(\.eventID))
    }

    @Test func afterPublishPayloadHasTheChangesInShowChangesFormWithoutSecrets() throws {
        let task = host(
            "web", uid: "h-1",
            extra: ["shared-secret": "hunter2", "heartbeat-key": "cluster-key-9", "nested": .object(["password-hash": "x", "kept": "yes"])])
        let published = revision(3, after: nil, changes: [.upsert(task), .delete(uid: "h-0", type: .host, name: "old")], atMilliseconds: 5_000)
        let planned = DeliveryPlanner.deliveries(
            for: DeliveryPlanner.afterPublish(published), tasks: [Self.web], server: "primary", nowMilliseconds: 6_000, lastStartMilliseconds: [:],
            limits: SmartTaskLimits())
        let payload = try JSONValue.parse(try #require(planned.first).payload)
        #expect(payload["trigger"]?.stringValue == "After Publish")
        #expect(payload["event-id"]?.stringValue == planned.first?.eventID)
        #expect(payload["session"]?["revision-number"]?.intValue == 3)
        #expect(payload["session"]?["user-name"]?.stringValue == "admin")
        #expect(payload["operations"]?["added-or-modified-objects"]?.arrayValue?.first?["name"]?.stringValue == "web")
        #expect(payload["operations"]?["deleted-objects"]?.arrayValue?.first?["name"]?.stringValue == "old")
        #expect(payload["custom-data"]?["ticket"]?.stringValue == "CR-7")
        let text = try #require(planned.first).payload
        #expect(!text.contains("hunter2"))
        #expect(!text.contains("cluster-key-9"), "a cluster's heartbeat key never reaches a receiver")
        #expect(!text.contains("password-hash"))
        #expect(text.contains("kept"))
    }

    @Test func eachEventOfTheBusFiresItsTrigger() {
        var sync = DeliveryPlanner.SyncMemory()
        func triggers(_ event: ManagementEvent) -> [String] {
            DeliveryPlanner.firings(for: event, sync: &sync, observedAtMilliseconds: 1).map(\.trigger)
        }
        let primary = ServerID("primary")
        #expect(
            triggers(
                .haStateChanged(
                    HAStateChanged(
                        server: primary, role: .active, epoch: Epoch(term: 2, server: primary), activeServer: primary, writesEnabled: true, reason: "promoted"))
            )
                == ["HA State Changed"])
        #expect(
            triggers(.policyInstalled(PolicyInstalled(taskID: "t", policyPackage: "Standard", revision: 3, target: "gw-1", succeeded: true, message: "ok")))
                == ["After Install Policy"])
        #expect(
            triggers(.backupFinished(BackupFinished(scheduled: true, succeeded: false, file: nil, headRevision: nil, error: "disk full"))) == ["Backup Failed"])
        #expect(triggers(.backupFinished(BackupFinished(scheduled: true, succeeded: true, file: "b.tar", headRevision: 3, error: nil))) == ["Backup Finished"])
        #expect(triggers(.gatewayStatusChanged(GatewayStatusChanged(gateway: "gw-1", uid: "g", connected: false))) == ["Gateway Status Changed"])
        #expect(triggers(.clockSkew(ClockSkew(peer: "secondary", offsetMilliseconds: 9_000, level: .problem))) == ["Clock Skew"])
        #expect(
            triggers(.certificateExpiring(CertificateExpiring(certificate: "internal-ca", notValidAfter: Date(), daysLeft: 5, advice: "renew")))
                == ["Certificate Expiring"])
        #expect(
            triggers(
                .clusterMemberStateChanged(
                    ClusterMemberStateChanged(cluster: "c", member: "m2", uid: "u", from: "STANDBY", to: "ACTIVE", eventCode: "", reason: "")))
                == ["Cluster Failover"])
        #expect(
            triggers(
                .clusterMemberStateChanged(
                    ClusterMemberStateChanged(cluster: "c", member: "m2", uid: "u", from: "DOWN", to: "STANDBY", eventCode: "", reason: ""))
            )
            .isEmpty)
        #expect(triggers(.revisionPublished(RevisionPublished(number: 1, hash: "h", author: "a", sessionName: "s", changes: 1, bytes: 1))).isEmpty)
        #expect(
            triggers(
                .smartTaskExecuted(
                    SmartTaskExecuted(task: "t", trigger: "After Publish", eventID: "e", result: "succeeded", attempt: 1, durationMilliseconds: 1))
            ).isEmpty)
    }

    @Test func aPeerBackInSyncAfterTroubleFiresSyncRecoveredAndACollisionIsASyncStatus() {
        var sync = DeliveryPlanner.SyncMemory()
        let peer = ServerID("secondary")
        func fire(_ event: ManagementEvent) -> [TriggerFiring] { DeliveryPlanner.firings(for: event, sync: &sync, observedAtMilliseconds: 1) }
        #expect(fire(.syncStatusChanged(SyncStatusChanged(peer: peer, status: .synchronized))).map(\.trigger) == ["Sync Status Changed"])
        #expect(fire(.syncStatusChanged(SyncStatusChanged(peer: peer, status: .communicationError))).map(\.trigger) == ["Sync Status Changed"])
        let recovered = fire(.syncStatusChanged(SyncStatusChanged(peer: peer, status: .synchronized)))
        #expect(recovered.map(\.trigger) == ["Sync Status Changed", "Sync Recovered"])
        #expect(recovered.last?.facts["previous-status"]?.stringValue == "communication-error")
        let collision = fire(.collision(Collision(peer: peer, divergentRevisions: 2)))
        #expect(collision.map(\.trigger) == ["Sync Status Changed"])
        #expect(collision.first?.facts["status"]?.stringValue == "collision")
        #expect(collision.first?.facts["divergent-revisions"]?.intValue == 2)
    }

    @Test func aFailedAttemptIsRetriedWithDoublingJitteredDelaysThenDeadLettered() {
        var limits = SmartTaskLimits()
        limits.attemptsMax = 4
        limits.retryDelayBaseMilliseconds = 1_000
        limits.retryDelayMaxMilliseconds = 3_000
        limits.retryJitterFraction = 0.2
        #expect(DeliveryPlanner.afterFailure(attempt: 1, nowMilliseconds: 0, random: 0.5, limits: limits) == .retry(atMilliseconds: 1_000))
        #expect(DeliveryPlanner.afterFailure(attempt: 2, nowMilliseconds: 0, random: 0.5, limits: limits) == .retry(atMilliseconds: 2_000))
        #expect(DeliveryPlanner.afterFailure(attempt: 3, nowMilliseconds: 0, random: 0.5, limits: limits) == .retry(atMilliseconds: 3_000))
        #expect(DeliveryPlanner.afterFailure(attempt: 1, nowMilliseconds: 0, random: 0, limits: limits) == .retry(atMilliseconds: 800))
        #expect(DeliveryPlanner.afterFailure(attempt: 1, nowMilliseconds: 0, random: 1, limits: limits) == .retry(atMilliseconds: 1_200))
        #expect(DeliveryPlanner.afterFailure(attempt: 4, nowMilliseconds: 0, random: 0.5, limits: limits) == .deadLetter)
    }

    @Test func aTasksDeliveriesStartAtLeastTheMinimumIntervalApart() {
        var limits = SmartTaskLimits()
        limits.taskIntervalMinimumMilliseconds = 500
        #expect(DeliveryPlanner.earliestStart(task: "t", nowMilliseconds: 1_000, lastStartMilliseconds: [:], limits: limits) == 1_000)
        #expect(DeliveryPlanner.earliestStart(task: "t", nowMilliseconds: 1_000, lastStartMilliseconds: ["t": 900], limits: limits) == 1_400)
        #expect(DeliveryPlanner.earliestStart(task: "t", nowMilliseconds: 1_000, lastStartMilliseconds: ["u": 900], limits: limits) == 1_000)
        #expect(DeliveryPlanner.earliestStart(task: "t", nowMilliseconds: 9_000, lastStartMilliseconds: ["t": 900], limits: limits) == 9_000)
    }

    @Test func aDisabledTaskOrAnotherTriggersTaskGetsNothing() {
        var disabled = Self.web
        disabled.enabled = false
        var other = Self.web
        other.trigger = TriggerName.haStateChanged
        let firing = DeliveryPlanner.afterPublish(revision(1, after: nil, changes: [], atMilliseconds: 0))
        #expect(
            DeliveryPlanner.deliveries(
                for: firing, tasks: [disabled, other], server: "p", nowMilliseconds: 0, lastStartMilliseconds: [:], limits: SmartTaskLimits()
            )
            .isEmpty)
    }
}
