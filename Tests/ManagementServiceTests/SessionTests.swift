import Foundation
import ManagementModel
import ManagementService
import Testing

@Suite("Sessions, locks and publish")
struct SessionTests {
    @Test func loginReturnsSidAndSessionUID() async throws {
        let h = try await Harness()
        let reply = await h.call("login", ["user": "admin", "password": "adminpw"], sid: nil)
        #expect(reply.status == 200)
        #expect(reply.body["sid"]?.stringValue?.isEmpty == false)
        #expect(reply.body["uid"]?.stringValue?.isEmpty == false)
        #expect(reply.body["session-timeout"] == .int(600))
        #expect(reply.body["standby"] == false)
    }

    @Test func wrongPasswordFailsWithoutRevealingWhich() async throws {
        let h = try await Harness()
        let wrong = await h.call("login", ["user": "admin", "password": "nope"], sid: nil)
        let unknown = await h.call("login", ["user": "nobody", "password": "nope"], sid: nil)
        #expect(wrong.status == 400 && unknown.status == 400)
        #expect(wrong.body == unknown.body)
        #expect(!wrong.body.canonicalString.contains("nope"))
    }

    @Test func repeatedFailuresAreThrottled() async throws {
        let h = try await Harness()
        var codes: [String] = []
        for _ in 0..<8 { codes.append(await h.call("login", ["user": "admin", "password": "bad"], sid: nil).body["code"]!.stringValue!) }
        #expect(codes.last == "err_too_many_requests")
        // Even the right password waits until the delay has passed.
        #expect(await h.call("login", ["user": "admin", "password": "adminpw"], sid: nil).body["code"] == "err_too_many_requests")
        h.clock.advance(seconds: 3_600)
        #expect(await h.call("login", ["user": "admin", "password": "adminpw"], sid: nil).status == 200)
    }

    @Test func missingOrUnknownSidIs401() async throws {
        let h = try await Harness()
        let missing = await h.call("show-hosts", sid: nil)
        #expect(missing.status == 401 && missing.body["code"] == "generic_err_missing_session_id")
        let unknown = await h.call("show-hosts", sid: "forged")
        #expect(unknown.status == 401 && unknown.body["code"] == "generic_err_wrong_session_id")
    }

    @Test func changesArePrivateUntilPublishAndLockedForOthers() async throws {
        let h = try await Harness()
        let alice = try await h.login()
        let bob = try await h.login()
        try await h.ok("add-host", ["name": "web-1", "ip-address": "192.0.2.10"], sid: alice)
        #expect(await h.call("show-host", ["name": "web-1"], sid: alice).status == 200)
        #expect(await h.call("show-host", ["name": "web-1"], sid: bob).status == 404)

        let task = try await h.publish(sid: alice)
        #expect(task["status"] == "succeeded")
        #expect(await h.call("show-host", ["name": "web-1"], sid: bob).status == 200)

        try await h.ok("set-host", ["name": "web-1", "color": "red"], sid: alice)
        let locked = await h.call("set-host", ["name": "web-1", "color": "blue"], sid: bob)
        #expect(locked.status == 409)
        #expect(locked.body["code"] == "generic_err_object_locked")
        #expect(locked.body["message"]?.stringValue?.contains("admin") == true)

        let discarded = try await h.ok("discard", sid: alice)
        #expect(discarded["number-of-discarded-changes"] == .int(1))
        try await h.ok("set-host", ["name": "web-1", "color": "blue"], sid: bob)
    }

    /// An object another session deleted is gone from that session's view; the lock error still
    /// names it (Ansible prints this message when a later run hits the lock).
    @Test func lockErrorNamesAnObjectTheOtherSessionDeleted() async throws {
        let h = try await Harness()
        let alice = try await h.login()
        try await h.ok("add-host", ["name": "web-1", "ip-address": "192.0.2.10"], sid: alice)
        _ = try await h.publish(sid: alice)
        try await h.ok("delete-host", ["name": "web-1"], sid: alice)
        let bob = try await h.login()
        let locked = await h.call("set-host", ["name": "web-1", "color": "blue"], sid: bob)
        #expect(locked.status == 409)
        #expect(locked.body["message"]?.stringValue?.contains("Object [web-1] is locked") == true)
    }

    @Test func publishMakesOneContiguousRevisionPerPublish() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-host", ["name": "a", "ip-address": "192.0.2.1"], sid: sid)
        try await h.ok("add-host", ["name": "b", "ip-address": "192.0.2.2"], sid: sid)
        _ = try await h.publish(sid: sid)
        try await h.ok("delete-host", ["name": "a"], sid: sid)
        _ = try await h.publish(sid: sid)
        let empty = try await h.publish(sid: sid)
        #expect(empty["status"] == "succeeded")
        let revisions = try await h.ok("show-revisions", sid: sid)
        #expect(revisions["total"] == .int(3))
        #expect(revisions["objects"]![0]!["number"] == .int(3))
        #expect(revisions["objects"]![0]!["author"] == "admin")
        let third = try await h.ok("show-revisions", ["number": 3], sid: sid)
        #expect(third["operations"]?["deleted-objects"]?.arrayValue?.count == 1)
        #expect(try h.store.verifyJournal() == nil)
    }

    @Test func addThenDeleteInOneSessionPublishesNothing() async throws {
        let h = try await Harness()
        let sid = try await h.login()
        try await h.ok("add-host", ["name": "tmp", "ip-address": "192.0.2.1"], sid: sid)
        try await h.ok("delete-host", ["name": "tmp"], sid: sid)
        let task = try await h.publish(sid: sid)
        #expect(task["task-details"]![0]!["publishResponse"]?["numberOfPublishedChanges"] == .int(0))
    }

    @Test func idleSessionsExpireAndReleaseTheirLocks() async throws {
        let h = try await Harness()
        let alice = try await h.login(extra: ["session-timeout": 60])
        let bob = try await h.login(extra: ["session-timeout": 3600])
        try await h.ok("add-host", ["name": "h", "ip-address": "192.0.2.1"], sid: bob)
        _ = try await h.publish(sid: bob)
        try await h.ok("set-host", ["name": "h", "color": "red"], sid: alice)
        h.clock.advance(seconds: 30)
        try await h.ok("keepalive", sid: alice)
        h.clock.advance(seconds: 45)
        #expect(await h.call("show-hosts", sid: alice).status == 200)
        h.clock.advance(seconds: 61)
        #expect(await h.call("show-hosts", sid: alice).status == 401)
        try await h.ok("set-host", ["name": "h", "color": "blue"], sid: bob)
    }

    @Test func logoutKeepsPendingWorkAsADisconnectedSession() async throws {
        let h = try await Harness()
        let alice = try await h.login()
        try await h.ok("add-host", ["name": "h", "ip-address": "192.0.2.1"], sid: alice)
        let aliceUID = try await h.ok("show-session", sid: alice)["uid"]!
        try await h.ok("logout", sid: alice)
        #expect(await h.call("show-hosts", sid: alice).status == 401)
        let bob = try await h.login()
        let sessions = try await h.ok("show-sessions", sid: bob)
        #expect(sessions["objects"]?.arrayValue?.contains { $0["uid"] == aliceUID && $0["state"] == "disconnected" } == true)
        try await h.ok("publish", ["uid": aliceUID], sid: bob)
        #expect(await h.call("show-host", ["name": "h"], sid: bob).status == 200)
    }

    @Test func readOnlyAdministratorsReadButCannotChange() async throws {
        let h = try await Harness()
        let admin = try await h.login()
        try await h.ok("add-administrator", ["name": "auditor", "password": "pw-auditor", "permissions-profile": "read-only"], sid: admin)
        _ = try await h.publish(sid: admin)
        let auditor = try await h.login("auditor", "pw-auditor")
        #expect(await h.call("show-hosts", sid: auditor).status == 200)
        let denied = await h.call("add-host", ["name": "x", "ip-address": "192.0.2.1"], sid: auditor)
        #expect(denied.status == 403 && denied.body["code"] == "generic_err_no_permissions")
        let readOnlyLogin = try await h.login(extra: ["read-only": true])
        #expect(await h.call("add-host", ["name": "x", "ip-address": "192.0.2.1"], sid: readOnlyLogin).status == 403)
    }

    @Test func sessionsSurviveARestart() async throws {
        let first = try await Harness()
        let sid = try await first.login()
        try await first.ok("add-host", ["name": "pending", "ip-address": "192.0.2.1"], sid: sid)
        let second = try await Harness(directory: first.directory, clock: first.clock)
        #expect(await second.call("show-host", ["name": "pending"], sid: sid).status == 200)
        _ = try await second.publish(sid: sid)
        #expect(try second.store.head()?.number == 2)
    }

    @Test func tasksAreReadableFromAnotherSession() async throws {
        let h = try await Harness()
        let a = try await h.login()
        let b = try await h.login()
        let taskID = try await h.ok("publish", sid: a)["task-id"]!
        let tasks = try await h.ok("show-task", ["task-id": taskID], sid: b)
        #expect(tasks["tasks"]![0]!["status"] == "succeeded")
        #expect(await h.call("show-task", ["task-id": "nope"], sid: b).status == 404)
    }
}
