import Crypto
import Foundation
import Logging
import NIOCore
import NIOPosix
import SwiftASN1
import Testing
import X509

@testable import PeerTransport
@testable import TrustCore

/// A fixed instant all certificates and verdicts are judged at: no test depends on the wall clock.
let testNow = Date(timeIntervalSince1970: 1_900_000_000)

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// A small stand-in for TrustCore's real SIC verifier: the leaf must be signed by `ca`, valid at `now`,
/// and carry `urn:rampart:node:<uid>` (and its name as a DNS name) in its SAN.
struct TestVerifier: PeerCertificateVerifier {
    let ca: Certificate

    func verify(leafDER: [UInt8], expected: NodeIdentity?, now: Date) -> Result<NodeIdentity, PeerTrustFailure> {
        let leaf: Certificate
        do {
            leaf = try Certificate(derEncoded: leafDER)
        } catch {
            return .failure(.malformed("\(error)"))
        }
        guard leaf.issuer == ca.subject, ca.publicKey.isValidSignature(leaf.signature, for: leaf) else {
            return .failure(.otherCA(issuer: "\(leaf.issuer)"))
        }
        guard now >= leaf.notValidBefore else { return .failure(.notYetValid(notValidBefore: leaf.notValidBefore)) }
        guard now <= leaf.notValidAfter else { return .failure(.expired(notValidAfter: leaf.notValidAfter)) }
        var uid: String?
        var name: String?
        for entry in (try? leaf.extensions.subjectAlternativeNames) ?? SubjectAlternativeNames([]) {
            switch entry {
            case .uniformResourceIdentifier(let uri) where uri.hasPrefix("urn:rampart:node:"):
                uid = String(uri.dropFirst("urn:rampart:node:".count))
            case .dnsName(let dns):
                name = dns
            default:
                continue
            }
        }
        guard let uid, let name else { return .failure(.malformed("no node identity in the SAN")) }
        let found = NodeIdentity(uid: uid, name: name)
        if let expected, expected.uid != uid {
            return .failure(.wrongIdentity(expected: expected, found: found.description))
        }
        return .success(found)
    }
}

/// A minted PKI: an ICA created a year before `testNow`.
struct TestPKI {
    let ca: InternalCA

    init(name: String = "test") throws {
        ca = try InternalCA.create(name: name, now: testNow.addingTimeInterval(-365 * 86_400))
    }

    var verifier: TestVerifier { TestVerifier(ca: ca.certificate) }

    /// A node certificate for `identity`, issued at `issuedAt` for `validityDays`.
    func node(_ identity: NodeIdentity, issuedAt: Date = testNow.addingTimeInterval(-86_400), validityDays: Int = 365)
        throws -> IssuedIdentity
    {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName(InternalCA.organization)
            CommonName(identity.name)
        }
        let certificate = try ca.issueCertificate(
            publicKey: Certificate.PublicKey(key.publicKey),
            subject: subject,
            subjectAlternativeNames: [
                .dnsName(identity.name), .uniformResourceIdentifier("urn:rampart:node:\(identity.uid)"),
            ],
            extendedKeyUsage: [.serverAuth, .clientAuth],
            now: issuedAt,
            validityDays: validityDays)
        return IssuedIdentity(
            certificatePEM: try certificate.serializeAsPEM().pemString,
            privateKeyPEM: key.pemRepresentation,
            chainPEM: ca.certificatePEM)
    }
}

let serverIdentity = NodeIdentity(uid: "0f1e2d3c-0000-4000-8000-000000000001", name: "primary")
let clientIdentity = NodeIdentity(uid: "0f1e2d3c-0000-4000-8000-000000000002", name: "secondary")

struct TimedOut: Error, CustomStringConvertible {
    let seconds: Double
    var description: String { "no result within \(seconds) s" }
}

/// Runs `body` with an upper bound on its duration: a hung test fails instead of hanging. Never a
/// stand-in for a condition; the body waits for the condition itself.
func withTimeout<T: Sendable>(seconds: Double = 120, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimedOut(seconds: seconds)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// What the listener saw, in order.
enum ServerEvent: Sendable {
    case connected(PeerConnectionKind)
    case inboundEnded(PeerTransportError?)
    case handshakeFailed(PeerTransportError)
}

/// One event loop group per side, so that client and server really run on different event loops.
struct Loops {
    let server = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let client = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func shutdown() async throws {
        try await server.shutdownGracefully()
        try await client.shutdownGracefully()
    }
}

/// Starts a listener on 127.0.0.1 with an ephemeral port that runs `serve` for each connection (after
/// reporting it) and reports what it sees; runs `body` with the port and the event stream; then cancels
/// the listener and waits for `run` to return (graceful shutdown is part of every test).
func withListener(
    pki: TestPKI,
    identity: IssuedIdentity,
    loops: Loops,
    acceptsEnrolment: Bool = true,
    limits: PeerLimits = .patientDeadline,
    isGroupMember: @escaping PeerGroupMembership = { _ in false },
    serve: @escaping @Sendable (PeerConnection) async throws -> Void = echo,
    _ body: @escaping @Sendable (Int, AsyncStream<ServerEvent>) async throws -> Void
) async throws {
    let (events, continuation) = AsyncStream.makeStream(of: ServerEvent.self)
    let listener = try await PeerListener.bind(
        PeerListenerConfiguration(
            host: "127.0.0.1", port: 0, identity: identity, verifier: pki.verifier, acceptsEnrolment: acceptsEnrolment,
            limits: limits, isGroupMember: isGroupMember, now: { testNow }),
        eventLoopGroup: loops.server, logger: quietLogger)
    #expect(listener.port > 0)
    try await withTimeout {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await listener.run(
                    onConnection: { connection in
                        continuation.yield(.connected(connection.kind))
                        do {
                            try await serve(connection)
                            continuation.yield(.inboundEnded(nil))
                        } catch let error as PeerTransportError {
                            continuation.yield(.inboundEnded(error))
                        }
                    },
                    onHandshakeFailure: { failure in continuation.yield(.handshakeFailed(failure.error)) })
            }
            try await body(listener.port, events)
            group.cancelAll()
            try await group.waitForAll()
        }
    }
    continuation.finish()
}

/// Server behaviour: answers every frame with "echo:" + payload, until the client closes.
@Sendable func echo(_ connection: PeerConnection) async throws {
    for try await frame in connection.inbound {
        try await connection.send(bytes: Array("echo:".utf8) + frame.payloadBytes)
    }
}

extension PeerFrame {
    var text: String { String(decoding: payloadBytes, as: UTF8.self) }
}

/// Reads the server's first two events, the connection and then its end, and checks the error it ended with.
func expectServerEnd(
    _ events: inout AsyncStream<ServerEvent>.Iterator, with code: PeerTransportError.Code,
    sourceLocation: SourceLocation = #_sourceLocation
) async {
    guard case .connected = await events.next(), case .inboundEnded(let serverError) = await events.next() else {
        Issue.record("the server did not report the connection and its end", sourceLocation: sourceLocation)
        return
    }
    #expect(serverError?.code == code, sourceLocation: sourceLocation)
}

extension PeerLimits {
    /// The default limits with a deadline for unauthenticated connections no loaded machine reaches:
    /// for tests that are not about the deadline (a handshake on a busy CI machine can take seconds).
    static var patientDeadline: PeerLimits {
        var limits = PeerLimits.default
        limits.unauthenticatedTimeoutMilliseconds = 120_000
        return limits
    }
}
