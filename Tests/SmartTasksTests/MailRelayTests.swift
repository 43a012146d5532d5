import Foundation
import ManagementModel
import SmartTasks
import Testing

/// The send-mail relay client against a real SMTP server: Python's aiosmtpd (PyPI; .ci/run installs
/// it), started by the test on 127.0.0.1 and stopped after it.
@Suite("Mail relay client")
struct MailRelayTests {
    /// An SMTP server on 127.0.0.1: writes its port to argv[1] once it listens and every message it
    /// accepts, as a JSON line, to argv[2]. Mode "refuse" refuses recipients at refused.example;
    /// mode "silent" accepts connections and never answers.
    static let relayScript = #"""
        import asyncio, json, os, socket, sys, time
        port_file, messages, mode = sys.argv[1], sys.argv[2], sys.argv[3]
        def announce(port):
            with open(port_file + ".tmp", "w") as f:
                f.write(str(port))
            os.rename(port_file + ".tmp", port_file)
        if mode == "silent":
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(8)
            announce(listener.getsockname()[1])
            held = []
            end = time.time() + 300
            while time.time() < end:
                connection, _ = listener.accept()
                held.append(connection)
        from aiosmtpd.smtp import SMTP
        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, options):
                if mode == "refuse" and address.endswith("@refused.example"):
                    return "550 5.1.1 no such mailbox here"
                envelope.rcpt_tos.append(address)
                return "250 OK"
            async def handle_DATA(self, server, session, envelope):
                with open(messages, "a") as f:
                    f.write(json.dumps({"from": envelope.mail_from, "to": envelope.rcpt_tos,
                                        "data": envelope.content.decode("utf-8", "replace")}) + "\n")
                return "250 OK queued"
        async def main():
            server = await asyncio.get_running_loop().create_server(lambda: SMTP(Handler()), "127.0.0.1", 0)
            announce(server.sockets[0].getsockname()[1])
            await asyncio.sleep(300)
        asyncio.run(main())
        """#

    /// A running relay and where its messages go.
    final class Relay {
        let process: Process
        let directory: URL
        let address: MailRelayAddress

        private init(directory: URL, address: MailRelayAddress, process: Process) {
            self.directory = directory
            self.address = address
            self.process = process
        }

        static func start(mode: String = "accept") async throws -> Relay {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-smtp-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let portFile = directory.appendingPathComponent("port")
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", MailRelayTests.relayScript, portFile.path, directory.appendingPathComponent("messages").path, mode]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            for _ in 0..<600 {  // 60 s at most, for a loaded machine
                if let port = (try? String(contentsOf: portFile, encoding: .utf8)).flatMap({ Int($0) }) {
                    return Relay(directory: directory, address: MailRelayAddress(host: "127.0.0.1", port: port), process: process)
                }
                guard process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            kill(process.processIdentifier, SIGKILL)
            throw MailRelayError("the test relay did not start (is aiosmtpd installed? pip install aiosmtpd)")
        }

        func messages() -> [JSONValue] {
            let text = (try? String(contentsOf: directory.appendingPathComponent("messages"), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { try? JSONValue.parse(String($0)) }
        }

        /// Kills the relay (no waitUntilExit: on Linux it spins a run loop a test thread may not have).
        func stop() {
            kill(process.processIdentifier, SIGKILL)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    @Test(.timeLimit(.minutes(2))) func aMessageReachesTheRelayDotStuffedAndWhole() async throws {
        let relay = try await Relay.start()
        defer { relay.stop() }
        let body = "HA state changed.\n.hidden line\n.\nlast line"
        try await MailRelayClient(relay: relay.address).send(
            from: "rampart@example.com", to: ["ops@example.com"], cc: ["cc@example.com"], bcc: ["audit@example.com"],
            subject: "Failover on primary", body: body)
        let messages = relay.messages()
        #expect(messages.count == 1)
        let message = messages.first
        #expect(message?["from"] == "rampart@example.com")
        #expect(message?["to"] == ["ops@example.com", "cc@example.com", "audit@example.com"])
        let data = message?["data"]?.stringValue ?? ""
        #expect(data.contains("Subject: Failover on primary") && data.contains("Cc: cc@example.com") && !data.contains("audit@example.com"))
        // The relay undoes the dot-stuffing: the body arrives as written, a lone dot included.
        #expect(
            data.replacingOccurrences(of: "\r\n", with: "\n").hasSuffix("\n\n" + body + "\n")
                || data.replacingOccurrences(of: "\r\n", with: "\n").contains("\n\n" + body))
    }

    @Test(.timeLimit(.minutes(2))) func aRefusedRecipientIsAClearError() async throws {
        let relay = try await Relay.start(mode: "refuse")
        defer { relay.stop() }
        let mail = SmartTaskMail(recipients: ["nobody@refused.example"], senderEmail: "rampart@example.com", subject: "s", body: "b")
        do {
            try await MailRelayClient(relay: relay.address).send(mail)
            Issue.record("a refused recipient was accepted")
        } catch let error as MailRelayError {
            #expect(error.message.contains("550") && error.message.contains("nobody@refused.example"), "\(error.message)")
        }
        #expect(relay.messages().isEmpty)
    }

    @Test(.timeLimit(.minutes(2))) func aRelayThatNeverAnswersTimesOut() async throws {
        let relay = try await Relay.start(mode: "silent")
        defer { relay.stop() }
        do {
            try await MailRelayClient(relay: relay.address, timeoutSeconds: 1).send(from: "a@b.example", to: ["c@d.example"], subject: "s", body: "b")
            Issue.record("a silent relay did not time out")
        } catch let error as MailRelayError {
            #expect(error.message.contains("within 1 s"), "\(error.message)")
        }
    }

    @Test func withoutARelaySendMailIsRefused() throws {
        #expect(throws: MailRelayError.self) { try MailRelayClient.configured(nil) }
        #expect(MailRelayClient.notConfigured.message.contains("--smtp-relay"))
        #expect(try MailRelayClient.configured(MailRelayAddress(host: "127.0.0.1", port: 25)).relay.port == 25)
    }

    @Test func relayAddresses() {
        #expect(MailRelayAddress.parse("127.0.0.1:25") == MailRelayAddress(host: "127.0.0.1", port: 25))
        #expect(MailRelayAddress.parse("[::1]:587") == MailRelayAddress(host: "::1", port: 587))
        #expect(MailRelayAddress.parse("mail.example.com:2525")?.host == "mail.example.com")
        for bad in ["127.0.0.1", "host:0", "host:70000", ":25", "host:2x5", "ho st:25"] { #expect(MailRelayAddress.parse(bad) == nil, "\(bad)") }
    }

    @Test func headersCannotBeInjected() async {
        let client = MailRelayClient(relay: MailRelayAddress(host: "127.0.0.1", port: 9))
        await #expect(throws: MailRelayError.self) {
            try await client.send(from: "a@b.example", to: ["c@d.example"], subject: "hi\r\nBcc: evil@x.example", body: "b")
        }
        await #expect(throws: MailRelayError.self) {
            try await client.send(from: "a@b.example>\r\nRCPT TO:<evil@x.example", to: ["c@d.example"], subject: "s", body: "b")
        }
    }
}
