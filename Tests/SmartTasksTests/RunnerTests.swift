import Foundation
import ManagementModel
import SmartTasks
import Testing

@Suite struct ScriptRunnerTests {
    @Test func theScriptGetsThePayloadAsBase64JSONInItsFirstArgument() async throws {
        let script = SmartTaskSpec.Script(name: "decode", body: "#!/bin/sh\nprintf '%s' \"$1\" | base64 -d\n")
        let outcome = await ScriptRunner().run(script, payload: #"{"trigger":"After Publish"}"#, timeoutSeconds: 30)
        #expect(outcome.succeeded)
        #expect(outcome.output == #"{"trigger":"After Publish"}"#)
    }

    @Test func aScriptWithoutAnInterpreterLineRunsWithShAndItsExitCodeAndStderrAreKept() async throws {
        let script = SmartTaskSpec.Script(name: "refuse", body: "echo 'change window closed' >&2\nexit 3\n")
        let outcome = await ScriptRunner().run(script, payload: "{}", timeoutSeconds: 30)
        #expect(!outcome.succeeded)
        #expect(outcome.output.contains("exited with 3"))
        #expect(outcome.output.contains("change window closed"))
    }

    @Test func aTimeOutKillsTheWholeProcessGroupChildrenIncluded() async throws {
        let directory = try temporaryDirectory("script")
        defer { try? FileManager.default.removeItem(at: directory) }
        let pidFile = directory.appendingPathComponent("child.pid").path
        let script = SmartTaskSpec.Script(name: "hang", body: "sleep 300 &\necho $! > \(pidFile)\nwait\n")
        let started = ContinuousClock.now
        let outcome = await ScriptRunner().run(script, payload: "{}", timeoutSeconds: 1)
        #expect(!outcome.succeeded)
        #expect(outcome.output.contains("time-out of 1 s"))
        #expect(ContinuousClock.now - started < .seconds(60))
        let child = try #require(Int32(try String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        let gone = await eventually(seconds: 10) { kill(child, 0) != 0 }
        #expect(gone, "the script's child \(child) outlived the time-out")
    }

    @Test func outputBeyondTheBoundIsCutAndMarked() async throws {
        let script = SmartTaskSpec.Script(name: "loud", body: "head -c 200000 /dev/zero | tr '\\0' 'a'\n")
        let outcome = await ScriptRunner(outputBytesMax: 1_000).run(script, payload: "{}", timeoutSeconds: 30)
        #expect(outcome.succeeded)
        #expect(outcome.output.utf8.count < 1_200)
        #expect(outcome.output.contains("[output truncated at 1000 bytes; 199000 more]"))
    }
}

@Suite(.serialized) struct WebRequestTests {
    @Test func aPinnedReceiverVerifiesTheSignatureAndRefusesAReplayedEventID() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let runner = WebRequestRunner()
        let request = SmartTaskSpec.WebRequest(url: receiver.url, fingerprint: receiver.fingerprint, sharedSecret: receiver.secret)
        let now = Int64(Date().timeIntervalSince1970)
        let first = await runner.send(request, payload: #"{"trigger":"After Publish"}"#, eventID: "event-1", timestampSeconds: now, timeoutSeconds: 30)
        #expect(first.succeeded, "\(first.output)")
        #expect(first.output.hasPrefix("HTTP 200"))
        let replay = await runner.send(request, payload: #"{"trigger":"After Publish"}"#, eventID: "event-1", timestampSeconds: now, timeoutSeconds: 30)
        #expect(!replay.succeeded)
        #expect(replay.output.hasPrefix("HTTP 409"))
        let stale = await runner.send(request, payload: "{}", eventID: "event-2", timestampSeconds: now - 3_600, timeoutSeconds: 30)
        #expect(stale.output.hasPrefix("HTTP 401"))
        #expect(receiver.received().map { $0["trigger"]?.stringValue } == ["After Publish"])
    }

    @Test func aReceiverWhoseCertificateIsNotThePinnedOneGetsNothing() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let runner = WebRequestRunner()
        let request = SmartTaskSpec.WebRequest(url: receiver.url, fingerprint: String(repeating: "ab", count: 32), sharedSecret: receiver.secret)
        let outcome = await runner.send(request, payload: "{}", eventID: "e", timestampSeconds: Int64(Date().timeIntervalSince1970), timeoutSeconds: 30)
        #expect(!outcome.succeeded)
        #expect(outcome.output.contains("pinned fingerprint"))
        #expect(receiver.received().isEmpty)
    }

    @Test func withoutAPinASelfSignedReceiverIsRefusedByTheSystemTrustStore() async throws {
        let receiver = try await Receiver()
        defer { receiver.stop() }
        let runner = WebRequestRunner()
        let outcome = await runner.send(
            SmartTaskSpec.WebRequest(url: receiver.url, sharedSecret: receiver.secret), payload: "{}", eventID: "e",
            timestampSeconds: Int64(Date().timeIntervalSince1970), timeoutSeconds: 30)
        #expect(!outcome.succeeded)
        #expect(receiver.received().isEmpty)
        #expect(!outcome.output.contains(receiver.secret))
    }

    @Test func aReceiverThatNeverAnswersTimesOut() async throws {
        let receiver = try await Receiver(mode: "hang")
        defer { receiver.stop() }
        let runner = WebRequestRunner()
        let started = ContinuousClock.now
        let outcome = await runner.send(
            SmartTaskSpec.WebRequest(url: receiver.url, fingerprint: receiver.fingerprint, sharedSecret: receiver.secret), payload: "{}", eventID: "e",
            timestampSeconds: Int64(Date().timeIntervalSince1970), timeoutSeconds: 1)
        #expect(!outcome.succeeded)
        #expect(outcome.output.contains("time-out of 1 s"))
        #expect(ContinuousClock.now - started < .seconds(30))
    }

    @Test func theSignatureIsHMACSHA256OfTimestampDotBody() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac key
        #expect(
            WebRequestSigning.signature(body: Array(#"{"a":1}"#.utf8), secret: "key", timestampSeconds: 1_700_000_000)
                == "a438e398bfafc57e4396bb7fc2304422f0f768e965d073ca313cb52e22e6ad03")
    }
}
