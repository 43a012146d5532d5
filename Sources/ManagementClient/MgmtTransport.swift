import AsyncHTTPClient
import Foundation
import ManagementModel
import NIOCore
import NIOSSL
import Operations
import TrustCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failure `rampart mgmt` reports itself (not a server reply): its text goes to stderr, its
/// exit code is 2 for a usage error and 1 for everything else.
public struct MgmtFailure: Error, CustomStringConvertible {
    public let description: String
    public let exitCode: Int32
    public static func usage(_ text: String) -> MgmtFailure { MgmtFailure(description: text, exitCode: 2) }
    public static func runtime(_ text: String) -> MgmtFailure { MgmtFailure(description: text, exitCode: 1) }
}

/// Where the server is and how to reach it: HTTPS to an address, or plain HTTP over the local
/// operator socket in the data directory (the `-r true` path, as on a Check Point box).
public struct MgmtEndpoint: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case https(host: String, port: Int)
        case unixSocket(path: String)
    }

    public var target: Target
    /// The PEM file of the CA to trust (the server's Internal CA); nil means the system's roots.
    public var caFile: String?
    /// No certificate verification at all.
    public var unsafe: Bool
    /// `--api-version`: calls go to `/web_api/v<version>/<command>` (never for login and logout).
    public var apiVersion: String?

    public var description: String {
        switch target {
        case .https(let host, let port): return "https://\(Self.hostInURL(host)):\(port)"
        case .unixSocket(let path): return "the local socket \(path)"
        }
    }

    public static func hostInURL(_ host: String) -> String { host.contains(":") ? "[\(host)]" : host }

    public func url(for command: String) throws(MgmtFailure) -> String {
        let versioned = apiVersion.map { command == "login" || command == "logout" ? command : "v\($0)/\(command)" } ?? command
        switch target {
        case .https(let host, let port):
            return "https://\(Self.hostInURL(host)):\(port)/web_api/\(versioned)"
        case .unixSocket(let path):
            guard let url = URL(httpURLWithSocketPath: path, uri: "/web_api/\(versioned)") else {
                throw .runtime("cannot form a URL for the socket path \(path)")
            }
            return url.absoluteString
        }
    }

    /// What goes into a session file, so later `-s FILE` calls reach the same server the same way.
    public var json: JSONValue {
        var fields: [String: JSONValue] = ["unsafe": .bool(unsafe)]
        switch target {
        case .https(let host, let port):
            fields["url"] = .string("https://\(Self.hostInURL(host)):\(port)/web_api")
            fields["server"] = .string(host)
            fields["port"] = .int(Int64(port))
        case .unixSocket(let path):
            fields["socket"] = .string(path)
            fields["server"] = .string(path)
        }
        if let caFile { fields["ca-file"] = .string(caFile) }
        if let apiVersion { fields["api-version"] = .string(apiVersion) }
        return .object(fields)
    }

    public init(target: Target, caFile: String?, unsafe: Bool, apiVersion: String?) {
        self.target = target
        self.caFile = caFile
        self.unsafe = unsafe
        self.apiVersion = apiVersion
    }

    public init?(sessionFile fields: [String: JSONValue]) {
        if let socket = fields["socket"]?.stringValue {
            target = .unixSocket(path: socket)
        } else if let host = fields["server"]?.stringValue, let port = fields["port"]?.intValue, (1...65535).contains(port) {
            target = .https(host: host, port: Int(port))
        } else {
            return nil
        }
        caFile = fields["ca-file"]?.stringValue
        unsafe = fields["unsafe"]?.boolValue ?? false
        apiVersion = fields["api-version"]?.stringValue
    }
}

/// One reply of the Web API: its HTTP status and its JSON body (an object on success and on error).
public struct MgmtReply: Sendable {
    public let status: Int
    public let body: JSONValue
    public var ok: Bool { status == 200 }
    public var code: String { body["code"]?.stringValue ?? "http_\(status)" }
    public var message: String { body["message"]?.stringValue ?? "the server answered HTTP \(status)" }
}

/// The HTTP side of `rampart mgmt`: one AsyncHTTPClient for the whole run, shut down at the end.
public struct MgmtTransport: Sendable {
    static let replyBytesMax = 256 << 20
    static let requestTimeoutSeconds: Int64 = 120

    public let endpoint: MgmtEndpoint
    let http: HTTPClient

    /// Runs `body` with a transport whose client is shut down afterwards, whatever happens.
    public static func with<T: Sendable>(_ endpoint: MgmtEndpoint, _ body: (MgmtTransport) async throws -> T) async throws -> T {
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .seconds(15), read: .seconds(requestTimeoutSeconds)))
        // A refused connection is reported at once instead of being retried until the connect timeout.
        configuration.connectionPool.retryConnectionEstablishment = false
        if case .https = endpoint.target { configuration.tlsConfiguration = try tlsConfiguration(endpoint) }
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let result: Result<T, any Error>
        do { result = .success(try await body(MgmtTransport(endpoint: endpoint, http: http))) } catch { result = .failure(error) }
        try? await http.shutdown()
        return try result.get()
    }

    static func tlsConfiguration(_ endpoint: MgmtEndpoint) throws -> TLSConfiguration {
        if endpoint.unsafe {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return configuration
        }
        guard let caFile = endpoint.caFile else { return TLSConfiguration.makeClientConfiguration() }
        guard let pem = FileManager.default.contents(atPath: caFile) else {
            throw MgmtFailure.runtime("cannot read the CA certificate \(caFile) (--ca-file, or DIR/pki/ica.pem with --data DIR)")
        }
        do {
            return try PKIDirectory.makeClientTLSConfiguration(icaCertificatePEM: String(decoding: pem, as: UTF8.self))
        } catch {
            throw MgmtFailure.runtime("cannot use \(caFile) as the CA certificate: \(error)")
        }
    }

    /// POSTs `body` to `/web_api/<command>`. A reply that is not JSON becomes an error reply, so
    /// callers only ever see `{code, message}` on failure.
    public func call(_ command: String, _ body: [String: JSONValue], sid: String?) async throws -> MgmtReply {
        var request = HTTPClientRequest(url: try endpoint.url(for: command))
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "rampart-mgmt")
        if let sid { request.headers.add(name: "X-chkp-sid", value: sid) }
        request.body = .bytes(JSONValue.object(body).canonicalBytes)
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .seconds(Self.requestTimeoutSeconds))
            bytes = try await response.body.collect(upTo: Self.replyBytesMax)
        } catch {
            throw MgmtFailure.runtime(Self.explain(error, endpoint: endpoint))
        }
        let status = Int(response.status.code)
        let data = Array(bytes.readableBytesView)
        if data.allSatisfy({ [0x20, 0x0A, 0x0D, 0x09].contains($0) }) { return MgmtReply(status: status, body: .object([:])) }
        guard let body = try? JSONValue.parse(data, maxDepth: 256) else {
            return MgmtReply(
                status: status == 200 ? 502 : status,
                body: .object([
                    "code": .string("rampart_cli_invalid_reply"),
                    "message": .string("the server's reply to \(command) is not JSON (HTTP \(status)): \(String(decoding: data.prefix(200), as: UTF8.self))"),
                ]))
        }
        return MgmtReply(status: status, body: body)
    }

    /// Connection failures in words a person can act on.
    static func explain(_ error: any Error, endpoint: MgmtEndpoint) -> String {
        let text = String(describing: error)
        var hint = ""
        if text.contains("handshake") || text.contains("certificate") || text.contains("CERTIFICATE") || text.contains("NIOSSL") {
            hint = "; TLS verification failed: pass --ca-file with the server's Internal CA (DIR/pki/ica.pem) or --data DIR, or --unsafe to skip verification"
        } else if text.contains("connectTimeout") || text.contains("onnection refused") || text.contains("connect(descriptor") {
            hint = "; is the server running there? (rampart server --data DIR)"
        }
        return "cannot talk to the server at \(endpoint.description): \(text)\(hint)"
    }
}

// MARK: - Files and secrets

public enum MgmtFiles {
    static let passwordBytesMax = 4096
    static let sessionFileBytesMax = 64 * 1024

    /// Reads a password file: its first line, without the line end.
    public static func readPassword(file path: String) throws(MgmtFailure) -> String {
        try readSecret(file: path, what: "password")
    }

    /// Reads a file holding a secret (`what` names it in errors): its first line, without the line end.
    public static func readSecret(file path: String, what: String) throws(MgmtFailure) -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .runtime("cannot read the \(what) file \(path)")
        }
        guard data.count <= passwordBytesMax else { throw .runtime("the \(what) file \(path) is larger than \(passwordBytesMax) bytes") }
        let text = String(decoding: data, as: UTF8.self)
        let line = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        let secret = line.hasSuffix("\r") ? String(line.dropLast()) : line
        guard !secret.isEmpty else { throw .runtime("the \(what) file \(path) is empty") }
        return secret
    }

    /// Asks for a password on the controlling terminal with echo off, as `ssh` and `sudo` do.
    public static func promptPassword(user: String) throws(MgmtFailure) -> String {
        try promptSecret(label: "Password for \(user)", missingHint: "give --password-file FILE or set RAMPART_PASSWORD")
    }

    /// Asks for a secret (`label: `) on the controlling terminal with echo off.
    public static func promptSecret(label: String, missingHint: String) throws(MgmtFailure) -> String {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else {
            throw .usage("no \(label): \(missingHint) (there is no terminal to ask on)")
        }
        defer { close(fd) }
        let prompt = Array("\(label): ".utf8)
        _ = prompt.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var saved = termios()
        let isTerminal = tcgetattr(fd, &saved) == 0
        if isTerminal {
            var silent = saved
            silent.c_lflag &= ~tcflag_t(ECHO)
            _ = tcsetattr(fd, TCSAFLUSH, &silent)
        }
        defer {
            if isTerminal { _ = tcsetattr(fd, TCSAFLUSH, &saved) }
            _ = write(fd, "\n", 1)
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while bytes.count < passwordBytesMax, read(fd, &byte, 1) == 1, byte != 0x0A {
            bytes.append(byte)
        }
        if bytes.last == 0x0D { bytes.removeLast() }
        guard !bytes.isEmpty else { throw .runtime("no \(label) given") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Writes `value` to `path` atomically with mode 0600: a session file holds a live sid.
    public static func writePrivate(_ value: JSONValue, to path: String) throws(MgmtFailure) {
        let bytes = Array(MgmtRendering.json(value).utf8)
        let temporary = "\(path).tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .runtime("cannot create the session file \(path): \(String(cString: strerror(errno)))") }
        _ = fchmod(fd, 0o600)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                close(fd)
                unlink(temporary)
                throw .runtime("cannot write the session file \(path): \(String(cString: strerror(errno)))")
            }
            written += n
        }
        _ = fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw .runtime("cannot write the session file \(path): \(reason)")
        }
    }

    public static func readSessionFile(_ path: String) throws(MgmtFailure) -> (sid: String, endpoint: MgmtEndpoint) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw .runtime("cannot read the session file \(path); create it with: rampart mgmt login ... -s \(path)")
        }
        guard data.count <= sessionFileBytesMax, let value = try? JSONValue.parse(Array(data)), let fields = value.objectValue,
            let sid = fields["sid"]?.stringValue, let endpoint = MgmtEndpoint(sessionFile: fields)
        else {
            throw .runtime("\(path) is not a session file written by rampart mgmt login")
        }
        return (sid, endpoint)
    }

    /// `DIR/node.json`, written by the server once its listeners are bound (read with the server's own
    /// `NodeSettings`); a port out of range is left out, as if not given.
    public static func readNode(dataDirectory: String) throws(MgmtFailure) -> (listen: String, apiPort: Int?) {
        let path = NodeSettings.file(dataDirectory: dataDirectory).path
        let loaded: NodeSettings?
        do { loaded = try NodeSettings.load(dataDirectory: dataDirectory) } catch {
            throw .runtime("\(path) is not a node.json written by a Rampart server: \(error)")
        }
        guard let node = loaded else { throw .runtime("cannot read \(path): is \(dataDirectory) the data directory of a started server?") }
        return (node.listen, (1...65535).contains(node.apiPort) ? node.apiPort : nil)
    }
}
