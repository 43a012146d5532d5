import Foundation
import ManagementModel
import Store

/// Local operator access: root over the server's Unix socket in its data directory (the file's
/// permissions are the authority, as root on a Check Point box).
public enum LocalOperator {
    /// Runs one command as root on the local server (a new session, logged out after) and gives its answer.
    public static func runAsRoot(dataDirectory: String, _ command: String, _ body: [String: JSONValue] = [:]) async throws -> JSONValue {
        try await withRootSession(dataDirectory: dataDirectory) { transport, sid in
            try await call(transport, command, body, sid: sid)
        }
    }

    /// Prints a command's answer: its JSON with `json`, else its summary sentence.
    public static func printAnswer(_ reply: JSONValue, json: Bool) {
        print(json ? reply.canonicalString : reply["summary"]?.stringValue ?? reply.canonicalString)
    }

    public static func withRootSession<T: Sendable>(dataDirectory: String, _ body: (MgmtTransport, String) async throws -> T) async throws -> T {
        let socket = (dataDirectory as NSString).appendingPathComponent(DataDirectoryLayout.socket)
        guard FileManager.default.fileExists(atPath: socket) else {
            throw MgmtFailure.runtime("No server socket at \(socket): is `rampart server --data \(dataDirectory)` running?")
        }
        let endpoint = MgmtEndpoint(target: .unixSocket(path: socket), caFile: nil, unsafe: false, apiVersion: nil)
        return try await MgmtTransport.with(endpoint) { transport in
            let login = try await transport.call("login", ["login-as-root": true], sid: nil)
            guard login.ok, let sid = login.body["sid"]?.stringValue else { throw MgmtFailure.runtime("root login failed: \(login.message)") }
            let result: Result<T, any Error>
            do { result = .success(try await body(transport, sid)) } catch { result = .failure(error) }
            _ = try? await transport.call("logout", [:], sid: sid)
            return try result.get()
        }
    }

    /// Calls a command that must succeed and returns its reply.
    public static func call(_ transport: MgmtTransport, _ command: String, _ body: [String: JSONValue], sid: String) async throws -> JSONValue {
        let reply = try await transport.call(command, body, sid: sid)
        guard reply.ok else { throw MgmtFailure.runtime("\(command): \(reply.code): \(reply.message)") }
        return reply.body
    }
}
