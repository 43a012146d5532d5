import Foundation
import Logging
import ManagementModel
import Store
import Synchronization
import Testing
import TrustCore

@testable import ManagementService

/// Logins cannot be used to lock others out or to guess passwords faster than the throttle allows.
@Suite("Login abuse: session limits and the throttle")
struct LoginAbuseTests {
    static let socket = ClientInfo(address: "local-socket", isLocalSocket: true)

    @Test func oneAdministratorHoldsAtMostItsShareOfSessions() async throws {
        let h = try await Harness()
        let admin = try await h.login()
        try await h.ok("add-administrator", ["name": "auditor", "password": "pw-auditor", "permissions-profile": "read-only"], sid: admin)
        _ = try await h.publish(sid: admin)
        for _ in 0..<SessionLimits.sessionsPerAdministratorMax { _ = try await h.login("auditor", "pw-auditor") }
        let refused = await h.call("login", ["user": "auditor", "password": "pw-auditor"], sid: nil)
        #expect(refused.status == 400 && refused.body["code"] == "err_login_failed_more_than_one_opened_session")
        let message = refused.body["message"]?.stringValue ?? ""
        #expect(message.contains("[auditor]") && message.contains("\(SessionLimits.sessionsPerAdministratorMax)") && message.contains("logout"), "\(message)")
        // Others still log in.
        #expect(await h.call("login", ["user": "admin", "password": "adminpw"], sid: nil).status == 200)
    }

    /// A boolean of another type is refused, never read as its default: `"read-only": 1` opened a
    /// read-write session.
    @Test func aBooleanOfAnotherTypeIsRefusedNotDefaulted() async throws {
        let h = try await Harness()
        for value: JSONValue in [.int(1), .string("yes"), .double(0.5), .array([.string("true")]), .null] {
            let refused = await h.call("login", ["user": "admin", "password": "adminpw", "read-only": value], sid: nil)
            #expect(
                refused.status == 400 && refused.body["code"] == "generic_err_invalid_parameter"
                    && refused.body["message"]?.stringValue?.contains("read-only") == true, "\(value): \(refused.body.canonicalString)")
        }
        let readOnly = await h.call("login", ["user": "admin", "password": "adminpw", "read-only": "true"], sid: nil)
        #expect(readOnly.status == 200 && readOnly.body["read-only"] == true)
    }

    /// The case: sessions fill the API's limit; root on the local socket still gets in.
    @Test func aFullAPINeverLocksRootOut() async throws {
        let h = try await Harness()
        let admin = try await h.login()
        let administrators = Limits.sessionsMax / SessionLimits.sessionsPerAdministratorMax
        for index in 0..<administrators {
            try await h.ok("add-administrator", ["name": .string("reader\(index)"), "password": "pw-reader", "permissions-profile": "read-only"], sid: admin)
        }
        _ = try await h.publish(sid: admin)
        try await h.ok("logout", sid: admin)
        for index in 0..<administrators {
            for _ in 0..<SessionLimits.sessionsPerAdministratorMax { _ = try await h.login("reader\(index)", "pw-reader") }
        }
        let full = await h.call("login", ["user": "admin", "password": "adminpw"], sid: nil)
        #expect(full.status == 400 && full.body["message"]?.stringValue?.contains("\(Limits.sessionsMax)") == true, "\(full.body.canonicalString)")
        let root = await h.service.handle(command: "login", body: ["login-as-root": true], sid: nil, client: Self.socket)
        #expect(root.status == 200, "\(root.body.canonicalString)")
        let sid = try #require(root.body["sid"]?.stringValue)
        // Root can then make room: discard (end) a reader's session.
        let sessions = await h.service.handle(command: "show-sessions", body: ["limit": 1], sid: sid, client: Self.socket)
        #expect(sessions.status == 200)
    }

    @Test func rootOnTheSocketHasABoundOfItsOwn() async throws {
        let h = try await Harness()
        for _ in 0..<SessionLimits.localRootSessionsMax {
            #expect(await h.service.handle(command: "login", body: ["login-as-root": true], sid: nil, client: Self.socket).status == 200)
        }
        let refused = await h.service.handle(command: "login", body: ["login-as-root": true], sid: nil, client: Self.socket)
        #expect(refused.status == 400 && refused.body["message"]?.stringValue?.contains("root") == true)
    }

    /// The case: 50 concurrent wrong passwords from one address were all verified (the
    /// throttle was checked before the hash and recorded after it). The verification is slow, as
    /// PBKDF2 is, so every attempt arrives before the first outcome is known.
    @Test func concurrentWrongPasswordsAreRefusedBeforeTheHash() async throws {
        let verifications = Mutex(0)
        let directory = TestDirectories.make()
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try ManagementStore(path: directory.appendingPathComponent("rampart.sqlite").path)
        let clock = TestClock()
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let service = try ManagementService(
            store: store, identity: ServerIdentity(name: "primary", ipAddress: "127.0.0.1", apiPort: 8443),
            logger: logger, passwordIterations: 1_000, clockMilliseconds: { [clock] in clock.now },
            verifyPassword: { password, hash in
                verifications.withLock { $0 += 1 }
                Thread.sleep(forTimeInterval: 0.05)
                return PasswordHasher.verify(password, against: hash)
            })
        _ = try await service.initializeIfEmpty(adminPassword: "adminpw")
        let client = ClientInfo(address: "198.51.100.7", isLocalSocket: false)
        let codes = await withTaskGroup(of: String.self) { group in
            for _ in 0..<50 {
                group.addTask {
                    await service.handle(command: "login", body: ["user": "admin", "password": "wrong"], sid: nil, client: client).body["code"]?.stringValue
                        ?? "?"
                }
            }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        let budget = 5  // LoginThrottle's default free failures
        #expect(verifications.withLock { $0 } <= budget)
        #expect(codes.filter { $0 == "err_too_many_requests" }.count >= 50 - budget)
        #expect(codes.filter { $0 == "err_login_failed_wrong_username_or_password" }.count <= budget)
    }
}
