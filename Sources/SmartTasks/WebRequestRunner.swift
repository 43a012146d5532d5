import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// The headers of a web request: Check Point's shared secret header as it sends it, and Rampart's
/// event id, timestamp and signature (HMAC-SHA256 keyed by the shared secret over
/// `timestamp + "." + body`), so a receiver can verify the sender and refuse a replay.
public enum WebRequestSigning {
    public static func headers(body: [UInt8], sharedSecret: String?, eventID: String, timestampSeconds: Int64) -> [(String, String)] {
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"), ("User-Agent", "Rampart-SmartTasks"), ("X-Rampart-Event-Id", eventID),
            ("X-Rampart-Timestamp", String(timestampSeconds)),
        ]
        if let sharedSecret, !sharedSecret.isEmpty {
            headers.append(("X-chkp-shared-secret", sharedSecret))
            headers.append(("X-Rampart-Signature", "sha256=" + signature(body: body, secret: sharedSecret, timestampSeconds: timestampSeconds)))
        }
        return headers
    }

    /// Hex HMAC-SHA256(secret, timestamp + "." + body).
    public static func signature(body: [UInt8], secret: String, timestampSeconds: Int64) -> String {
        let message = Array("\(timestampSeconds).".utf8) + body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
        return mac.map { String(format: "%02x", $0) }.joined()
    }
}

/// A pinned certificate fingerprint: SHA-256 (or Check Point's SHA-1) of the leaf's DER, hex, colons allowed.
public struct CertificatePin: Sendable, Equatable {
    public let digest: [UInt8]

    public init?(_ text: String) {
        let hex = text.filter { $0 != ":" && !$0.isWhitespace }.lowercased()
        guard hex.count == 64 || hex.count == 40 else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            guard let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        digest = bytes
    }

    public func matches(der: [UInt8]) -> Bool {
        let actual: [UInt8] = digest.count == 32 ? Array(SHA256.hash(data: der)) : Array(Insecure.SHA1.hash(data: der))
        return actual == digest
    }
}

/// POSTs a payload as JSON to a task's URL (HTTPS; http only to loopback: the shared secret travels in
/// a header). The receiver's certificate is verified against the system trust store, or, when the task pins a
/// fingerprint, must be the pinned leaf. A 2xx answer is success; the answer's status and first
/// bytes are kept. Errors never carry the secret.
public struct WebRequestRunner: Sendable {
    /// One client for the process, never shut down (like `HTTPClient.shared`), so no runner can be
    /// dropped with a client still open. Redirects are not followed: the secret headers would follow them.
    static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration(tlsConfiguration: .makeClientConfiguration(), redirectConfiguration: .disallow)
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }()

    let outputBytesMax: Int

    public init(outputBytesMax: Int = SmartTaskLimits().outputBytesMax) {
        self.outputBytesMax = outputBytesMax
    }

    public func send(_ request: SmartTaskSpec.WebRequest, payload: String, eventID: String, timestampSeconds: Int64, timeoutSeconds: Int) async
        -> ActionOutcome
    {
        guard let url = URL(string: request.url), let host = url.host, !host.isEmpty,
            url.scheme?.lowercased() == "https" || (url.scheme?.lowercased() == "http" && Self.isLoopback(host))
        else {
            return ActionOutcome(succeeded: false, output: "the url must be an https:// URL (http:// only to a loopback address)")
        }
        let body = Array(payload.utf8)
        let headers = WebRequestSigning.headers(body: body, sharedSecret: request.sharedSecret, eventID: eventID, timestampSeconds: timestampSeconds)
        do {
            let (status, answer): (Int, [UInt8])
            if let fingerprint = request.fingerprint, !fingerprint.isEmpty, url.scheme?.lowercased() == "https" {
                guard let pin = CertificatePin(fingerprint) else {
                    return ActionOutcome(succeeded: false, output: "the fingerprint is not a SHA-256 (or SHA-1) hex digest")
                }
                (status, answer) = try await PinnedPost(
                    host: host, port: url.port ?? 443, path: Self.requestTarget(url), pin: pin, headers: headers, body: body, bytesMax: outputBytesMax
                ).send(timeoutSeconds: timeoutSeconds)
            } else {
                (status, answer) = try await post(url: request.url, headers: headers, body: body, timeoutSeconds: timeoutSeconds)
            }
            let text = "HTTP \(status)\n" + String(decoding: answer.prefix(outputBytesMax), as: UTF8.self)
            return ActionOutcome(succeeded: (200..<300).contains(status), output: text)
        } catch {
            return ActionOutcome(succeeded: false, output: "the request to \(Self.redactedURL(url)) failed: \(error)")
        }
    }

    func post(url: String, headers: [(String, String)], body: [UInt8], timeoutSeconds: Int) async throws -> (Int, [UInt8]) {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers = HTTPHeaders(headers)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await Self.client.execute(request, timeout: .seconds(Int64(timeoutSeconds)))
        var answer: [UInt8] = []
        for try await var chunk in response.body where answer.count < outputBytesMax {
            answer += chunk.readBytes(length: min(chunk.readableBytes, outputBytesMax - answer.count)) ?? []
        }
        return (Int(response.status.code), answer)
    }

    /// The URL's path and query, as the request line carries them.
    static func requestTarget(_ url: URL) -> String {
        let path = url.path.isEmpty ? "/" : url.path
        return url.query.map { path + "?" + $0 } ?? path
    }

    /// A secret or payload crosses no network to these (the model's rule for http:// URLs).
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1" || host == "[::1]"
    }

    /// The URL without user information (a URL may carry a password), for errors and history.
    static func redactedURL(_ url: URL) -> String {
        "\(url.scheme ?? "https")://\(url.host ?? "")" + (url.port.map { ":\($0)" } ?? "") + url.path
    }
}

/// One HTTP/1.1 POST over a TLS connection whose verification is the pin alone: the certificate the
/// receiver presents is accepted only if its leaf hashes to the pinned fingerprint (a self-signed
/// receiver, as Check Point's `fingerprint` allows). The answer is read until the receiver closes.
struct PinnedPost {
    let host: String
    let port: Int
    let path: String
    let pin: CertificatePin
    let headers: [(String, String)]
    let body: [UInt8]
    let bytesMax: Int

    struct PinRefused: Error, CustomStringConvertible {
        var description: String { "the receiver's certificate does not match the pinned fingerprint" }
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String { "the receiver's answer is not HTTP" }
    }

    struct TimedOut: Error, CustomStringConvertible {
        let seconds: Int
        var description: String { "no answer within the time-out of \(seconds) s" }
    }

    /// The exchange within the time-out: connecting, the handshake, the request and the whole answer.
    /// At the deadline the connection is closed, which ends a receiver's silence at once.
    func send(timeoutSeconds: Int) async throws -> (Int, [UInt8]) {
        let deadline = ContinuousClock.now + .seconds(timeoutSeconds)
        let pinRefused = PinVerdict()
        let channel = try await connect(timeoutSeconds: timeoutSeconds, pinRefused: pinRefused)
        let connection = channel.channel
        do {
            return try await withThrowingTaskGroup(of: (Int, [UInt8])?.self) { group in
                group.addTask { try await exchange(channel) }
                group.addTask {
                    try await Task.sleep(until: deadline)
                    connection.close(promise: nil)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let answer = first else { throw TimedOut(seconds: timeoutSeconds) }
                return answer
            }
        } catch  where pinRefused.isSet {
            // The refused handshake closes the channel: a write may fail first, with "I/O on closed channel".
            throw PinRefused()
        } catch  where ContinuousClock.now >= deadline {
            throw TimedOut(seconds: timeoutSeconds)
        }
    }

    /// Set by the verification callback when the receiver's leaf is not the pinned one.
    final class PinVerdict: Sendable {
        private let refused = Mutex(false)
        var isSet: Bool { refused.withLock { $0 } }
        func set() { refused.withLock { $0 = true } }
    }

    func connect(timeoutSeconds: Int, pinRefused: PinVerdict) async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        // Closing at the deadline must not wait the default 5 s for the receiver's close_notify.
        tls.shutdownTimeout = .milliseconds(200)
        let context = try NIOSSLContext(configuration: tls)
        let pin = self.pin
        let sni = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(Int64(timeoutSeconds)))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = try NIOSSLClientHandler(
                        context: context, serverHostname: sni,
                        customVerificationCallback: { certificates, promise in
                            let der = try? certificates.first?.toDERBytes()
                            let matches = der.map(pin.matches(der:)) == true
                            if !matches { pinRefused.set() }
                            promise.succeed(matches ? .certificateVerified : .failed)
                        })
                    try channel.pipeline.syncOperations.addHandler(handler)
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
    }

    func exchange(_ channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws -> (Int, [UInt8]) {
        var received: [UInt8] = []
        do {
            try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(bytes: requestBytes()))
                for try await var chunk in inbound {
                    received += chunk.readBytes(length: chunk.readableBytes) ?? []
                    if received.count > bytesMax + 16_384 { break }
                }
            }
        } catch let error as NIOSSLError where error == .uncleanShutdown && !received.isEmpty {
            // Receivers often close without close_notify after answering: the answer is complete.
        } catch let error as NIOSSLError {
            if case .handshakeFailed = error { throw PinRefused() }
            throw error
        }
        return try Self.parse(received)
    }

    func requestBytes() -> [UInt8] {
        var head = "POST \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\nContent-Length: \(body.count)\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        return Array((head + "\r\n").utf8) + body
    }

    /// The status code and the body of a raw HTTP/1.x answer.
    static func parse(_ bytes: [UInt8]) throws -> (Int, [UInt8]) {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 12, bytes.starts(with: Array("HTTP/1.".utf8)) else { throw Malformed() }
        let statusText = String(decoding: bytes[9..<12], as: UTF8.self)
        guard let status = Int(statusText), (100...599).contains(status) else { throw Malformed() }
        var bodyStart = bytes.count
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4) where Array(bytes[index..<index + 4]) == separator {
                bodyStart = index + 4
                break
            }
        }
        return (status, Array(bytes[bodyStart...]))
    }
}
