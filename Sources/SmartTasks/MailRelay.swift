import Foundation
import ManagementModel
import NIOCore
import NIOPosix
import Synchronization

/// The SMTP relay `rampart server --smtp-relay HOST:PORT` names: where send-mail tasks go.
public struct MailRelayAddress: Sendable, Equatable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// "HOST:PORT", "[IPv6]:PORT"; the port is required (25 or 587 are both common).
    public static func parse(_ text: String) -> MailRelayAddress? {
        guard text.utf8.count <= 300, let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let portText = text[text.index(after: colon)...]
        guard !host.isEmpty, host.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && $0 != "/" }),
            (1...5).contains(portText.count), portText.allSatisfy(\.isASCII), let port = Int(portText), (1...65535).contains(port)
        else { return nil }
        return MailRelayAddress(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Bounds of a relay conversation.
public enum MailRelayLimits {
    /// One reply (all its lines): a relay that talks on is cut off.
    public static let replyBytesMax = 16 * 1_024
    public static let timeoutSecondsDefault: Int64 = 30
}

/// Why a mail was not sent: the relay's reply (code and text, bounded) or what failed before it.
public struct MailRelayError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A plain SMTP client (RFC 5321: HELO, MAIL, RCPT, DATA, QUIT) for a relay on a trusted network,
/// such as the local MTA: no TLS, no authentication. Replies are bounded, the body is dot-stuffed,
/// the whole conversation has one time-out.
public struct MailRelayClient: Sendable {
    public let relay: MailRelayAddress
    /// The name HELO gives.
    public let heloName: String
    public let timeoutSeconds: Int64

    public init(relay: MailRelayAddress, heloName: String = "rampart", timeoutSeconds: Int64 = MailRelayLimits.timeoutSecondsDefault) {
        self.relay = relay
        self.heloName = heloName
        self.timeoutSeconds = timeoutSeconds
    }

    /// Sends one message. Addresses and the subject are checked as SmartTaskChecks checks a task's
    /// (one line each, no angle brackets), so nothing in them can add a command or a header.
    public func send(from sender: String, to recipients: [String], cc: [String] = [], bcc: [String] = [], subject: String, body: String) async throws {
        let everyone = recipients + cc + bcc
        guard !everyone.isEmpty else { throw MailRelayError("no recipients") }
        do {
            _ = try SmartTaskChecks.addresses(.string(everyone.joined(separator: ",")), field: "recipients", required: true)
            _ = try SmartTaskChecks.addresses(.string(sender), field: "sender", required: true)
        } catch let error as ManagementError {
            throw MailRelayError(error.message)
        }
        guard !subject.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { throw MailRelayError("the subject is not one line") }
        let message = Self.message(from: sender, to: recipients, cc: cc, subject: subject, body: body)
        let channel = try await connect()
        // One deadline for the conversation: when it passes, closing the channel ends any read.
        let timedOut = DeadlineFlag()
        let (seconds, relay) = (timeoutSeconds, relay)
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await converse(channel, sender: sender, recipients: everyone, message: message) }
                group.addTask {
                    try await Task.sleep(for: .seconds(seconds))
                    timedOut.set()
                    channel.channel.close(promise: nil)
                }
                defer { group.cancelAll() }
                _ = try await group.next()
            }
        } catch {
            if timedOut.isSet { throw MailRelayError("the relay \(relay) did not finish within \(seconds) s") }
            throw error
        }
        if timedOut.isSet { throw MailRelayError("the relay \(relay) did not finish within \(seconds) s") }
    }

    /// The message as DATA carries it: headers, a blank line, the body with CRLF line ends and every
    /// line that starts with a dot doubled (RFC 5321 §4.5.2), then the lone dot.
    static func message(from sender: String, to recipients: [String], cc: [String], subject: String, body: String) -> String {
        var headers = ["From: \(sender)", "To: \(recipients.joined(separator: ", "))"]
        if !cc.isEmpty { headers.append("Cc: \(cc.joined(separator: ", "))") }
        headers += [
            "Subject: \(subject)", "Date: \(rfc5322Date(Date()))", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit", "X-Mailer: Rampart SmartTasks",
        ]
        let lines = body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n").split(
            separator: "\n", omittingEmptySubsequences: false)
        let stuffed = lines.map { $0.hasPrefix(".") ? "." + $0 : String($0) }
        return (headers + [""] + stuffed).joined(separator: "\r\n") + "\r\n.\r\n"
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    func connect() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        do {
            return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(timeoutSeconds))
                .connect(host: relay.host, port: relay.port) { channel in
                    channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
                }
        } catch {
            throw MailRelayError("cannot connect to the relay \(relay): \(error)")
        }
    }

    func converse(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, sender: String, recipients: [String], message: String) async throws {
        let relay = relay
        let heloName = heloName
        try await channel.executeThenClose { inbound, outbound in
            var replies = ReplyReader(inbound.makeAsyncIterator())
            func command(_ line: String?, expect: Int, _ what: String, lineEnd: String = "\r\n") async throws {
                if let line { try await outbound.write(ByteBuffer(string: line + lineEnd)) }
                let reply = try await replies.next()
                guard reply.code == expect else { throw MailRelayError("the relay \(relay) refused \(what): \(reply.code) \(reply.text)") }
            }
            try await command(nil, expect: 220, "the connection")
            try await command("HELO \(heloName)", expect: 250, "HELO")
            try await command("MAIL FROM:<\(sender)>", expect: 250, "the sender")
            for recipient in recipients { try await command("RCPT TO:<\(recipient)>", expect: 250, "the recipient \(recipient)") }
            try await command("DATA", expect: 354, "DATA")
            try await command(message, expect: 250, "the message", lineEnd: "")
            try? await command("QUIT", expect: 221, "QUIT")
        }
    }
}

/// Whether a deadline passed, shared by the conversation and its timer.
final class DeadlineFlag: Sendable {
    private let passed = Mutex(false)
    func set() { passed.withLock { $0 = true } }
    var isSet: Bool { passed.withLock { $0 } }
}

/// Reads SMTP replies ("250-first line", "250 last line") from a byte stream, bounded.
struct ReplyReader {
    var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    var pending: [UInt8] = []

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) { self.iterator = iterator }

    mutating func next() async throws -> (code: Int, text: String) {
        var lines: [String] = []
        var consumed = 0
        while true {
            if let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<end], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                pending.removeSubrange(...end)
                lines.append(line)
                let bytes = Array(line.utf8)
                guard bytes.count >= 3, let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)), (200...599).contains(code) else {
                    throw MailRelayError("the relay sent a line that is not an SMTP reply: \(Self.printable(line))")
                }
                if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") {
                    return (code, Self.printable(lines.map { String($0.dropFirst(4)) }.joined(separator: " ")))
                }
                continue
            }
            guard pending.count + consumed <= MailRelayLimits.replyBytesMax else {
                throw MailRelayError("the relay's reply is longer than \(MailRelayLimits.replyBytesMax) bytes")
            }
            guard let buffer = try await iterator.next() else { throw MailRelayError("the relay closed the connection") }
            consumed += buffer.readableBytes
            guard consumed <= MailRelayLimits.replyBytesMax else {
                throw MailRelayError("the relay's reply is longer than \(MailRelayLimits.replyBytesMax) bytes")
            }
            pending.append(contentsOf: buffer.readableBytesView)
        }
    }

    /// Reply text as errors show it: control characters escaped, bounded.
    static func printable(_ text: String) -> String {
        String(
            String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? "?" : Character($0) }).prefix(512))
    }
}

extension MailRelayClient {
    /// What a send-mail task fails with on a server started without `--smtp-relay`.
    public static let notConfigured = MailRelayError(
        "send-mail needs an SMTP relay, and this server has none: start it with --smtp-relay HOST:PORT")

    /// The client for the server's relay, or `notConfigured`.
    public static func configured(_ relay: MailRelayAddress?, timeoutSeconds: Int64 = MailRelayLimits.timeoutSecondsDefault) throws -> MailRelayClient {
        guard let relay else { throw notConfigured }
        return MailRelayClient(relay: relay, timeoutSeconds: timeoutSeconds)
    }

    /// Sends a send-mail task's message (its body as the task gives it; the engine may append the payload).
    public func send(_ mail: SmartTaskMail, body: String? = nil) async throws {
        try await send(
            from: mail.senderEmail, to: mail.recipients, cc: mail.ccRecipients, bcc: mail.bccRecipients, subject: mail.subject,
            body: body ?? mail.body)
    }
}
