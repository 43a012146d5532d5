import Foundation
import X509

/// A node waiting to enrol: the identity the server will write into its certificate (its management
/// object's uid and name), and its activation key record.
public struct PendingEnrolment: Sendable, Equatable {
    public let identity: NodeIdentity
    public let record: ActivationKeyRecord

    public init(identity: NodeIdentity, record: ActivationKeyRecord) {
        self.identity = identity
        self.record = record
    }
}

/// What the server decided about one enrolment request.
public enum EnrolmentDecision: Sendable, Equatable {
    /// Enrolled. Persist `record` (now marked used) and `certificate` (its serial, for revocation)
    /// durably **before** sending `response` (DESIGN.md §2): a key must never be usable twice.
    case enrolled(response: EnrolmentResponse, record: ActivationKeyRecord, certificate: IssuedNodeCertificate)
    /// Refused. Send `refusal`; nothing to persist. When `isFailedProof`, the attempt was a wrong key or
    /// an unknown node: record it in the caller's `LoginThrottle` (key: `EnrolmentServer.throttleKey`)
    /// and log it.
    case refused(refusal: EnrolmentRefusal, isFailedProof: Bool)

    /// The message to send.
    public var message: EnrolmentMessage {
        switch self {
        case .enrolled(let response, _, _): .response(response)
        case .refused(let refusal, _): .refusal(refusal)
        }
    }
}

/// The server's side of enrolment, pure apart from the ECDSA signature randomness: the caller looks up
/// the pending node by `request.nodeName`, draws the server nonce, reads the clock, and carries out the
/// decision.
///
/// Checks, in order: a pending node of that name; the activation key (used, expired, wrong proof); the
/// clock skew between node and server; the CSR. A key is marked used only when a certificate was issued,
/// so a refusal for skew or a bad CSR leaves it usable after the operator fixes the cause.
public struct EnrolmentServer: Sendable {
    /// The ICA that signs node certificates.
    public let ica: InternalCA
    /// Largest accepted |node clock − server clock| (the server's `--clock-problem-ms`), unless the
    /// request allows a larger skew (the node's operator forced it).
    public var clockSkewMillisecondsMax: Int64
    /// Lifetime of issued node certificates.
    public var certificateValidityDays: Int

    public init(
        ica: InternalCA, clockSkewMillisecondsMax: Int64 = Int64(TrustLimits.enrolmentClockSkewSecondsMax) * 1000,
        certificateValidityDays: Int = TrustLimits.nodeCertificateValidityDays
    ) {
        precondition(clockSkewMillisecondsMax > 0 && certificateValidityDays > 0)
        self.ica = ica
        self.clockSkewMillisecondsMax = clockSkewMillisecondsMax
        self.certificateValidityDays = certificateValidityDays
    }

    /// The `LoginThrottle` key for enrolment attempts of `nodeName` from `address`; prefixed so that it
    /// never collides with an administrator's name when one throttle serves both.
    public static func throttleKey(nodeName: String, address: String) -> LoginThrottle.Key {
        LoginThrottle.Key(user: "sic-enrolment:" + nodeName, address: address)
    }

    /// Decides about `request`. `pending` is the node waiting under `request.nodeName` (nil if none);
    /// `revocations`, when given, travels to the node; `serverNonce` is `TrustLimits.enrolmentNonceByteCount`
    /// fresh random bytes.
    public func handle(
        _ request: EnrolmentRequest, pending: PendingEnrolment?, revocations: RevocationList? = nil,
        serverNonce: [UInt8], now: Date
    ) -> EnrolmentDecision {
        precondition(serverNonce.count == TrustLimits.enrolmentNonceByteCount, "server nonce must be 32 bytes")
        guard let pending, pending.identity.name == request.nodeName, pending.record.nodeName == request.nodeName else {
            return .refused(
                refusal: EnrolmentRefusal(
                    .unknownNode,
                    "no node named '\(request.nodeName.prefix(TrustLimits.commonNameLengthMax))' is waiting for "
                        + "enrolment; create it on the active server with a one-time password, and start this node "
                        + "with exactly that name"),
                isFailedProof: true)
        }
        var record = pending.record
        do {
            try record.check(proof: request.proof, transcript: request.transcript, now: now)
        } catch {
            let code: EnrolmentRefusal.Code
            switch error {
            case .wrongKey: code = .wrongKey
            case .expired: code = .keyExpired
            case .alreadyUsed: code = .keyUsed
            }
            return .refused(refusal: EnrolmentRefusal(code, error.description), isFailedProof: error == .wrongKey)
        }
        // The node's time is trusted for this check only now: the proof covers it.
        let serverTimeMilliseconds = milliseconds(now)
        let skewMilliseconds = request.nodeTimeMilliseconds.subtractingReportingOverflow(serverTimeMilliseconds)
        // magnitude: no overflow even at Int64.min.
        let skewTooLarge = skewMilliseconds.overflow || skewMilliseconds.partialValue.magnitude > clockSkewMillisecondsMax.magnitude
        if skewTooLarge, !request.allowsClockSkew {
            return .refused(
                refusal: EnrolmentRefusal(
                    .clockSkew,
                    Self.skewMessage(
                        skewMilliseconds: skewMilliseconds.overflow ? Int64.max : skewMilliseconds.partialValue,
                        limitMilliseconds: clockSkewMillisecondsMax)),
                isFailedProof: false)
        }
        guard now >= ica.certificate.notValidBefore, now < ica.certificate.notValidAfter else {
            return .refused(
                refusal: EnrolmentRefusal(
                    .unavailable,
                    "the management server's Internal CA is not valid now (valid \(ica.certificate.notValidBefore) "
                        + "to \(ica.certificate.notValidAfter)); check the server's clock, or replace the ICA"),
                isFailedProof: false)
        }
        let issued: IssuedNodeCertificate
        do {
            issued = try ica.issueNodeCertificate(
                csrDER: request.csrDER, identity: pending.identity, now: now, validityDays: certificateValidityDays)
        } catch let error as TrustError where error.code == .invalidArgument {
            return .refused(refusal: EnrolmentRefusal(.badRequest, error.message), isFailedProof: false)
        } catch {
            return .refused(
                refusal: EnrolmentRefusal(.unavailable, "cannot issue a certificate: \(error)"), isFailedProof: false)
        }
        record.markUsed(now: now)
        let icaDER: [UInt8]
        do { icaDER = try NodeCertificate.derBytes(ica.certificate) } catch {
            preconditionFailure("a loaded ICA certificate always encodes: \(error)")
        }
        let unsigned = EnrolmentResponse(
            identity: pending.identity, certificateDER: issued.certificateDER, icaDER: icaDER,
            revocationJSON: revocations?.jsonText, serverNonce: serverNonce,
            serverTimeMilliseconds: serverTimeMilliseconds, proof: [])
        let proof = EnrolmentProof.server(
            verifierKey: [UInt8](record.verifierKey), transcript: unsigned.transcript(request: request))
        let response = EnrolmentResponse(
            identity: unsigned.identity, certificateDER: unsigned.certificateDER, icaDER: unsigned.icaDER,
            revocationJSON: unsigned.revocationJSON, serverNonce: serverNonce,
            serverTimeMilliseconds: serverTimeMilliseconds, proof: proof)
        return .enrolled(response: response, record: record, certificate: issued)
    }

    /// "this node's clock is N seconds ahead of the management server's (at most M allowed: ...); enable
    /// NTP ... or --force" — the skew rounded to whole seconds.
    static func skewMessage(skewMilliseconds: Int64, limitMilliseconds: Int64) -> String {
        let seconds = (skewMilliseconds.magnitude / 2 + 250) / 500
        let direction = skewMilliseconds > 0 ? "ahead of" : "behind"
        let limit = limitMilliseconds % 1000 == 0 ? "\(limitMilliseconds / 1000) seconds" : "\(limitMilliseconds) ms"
        return "clock skew too large: this node's clock is \(seconds) seconds \(direction) the management "
            + "server's (at most \(limit) are allowed: the server's --clock-problem-ms). Enable NTP on both machines "
            + "and check them with `rampart time`, then retry; the activation key was not used. To enrol "
            + "anyway (certificates may then look not yet valid to the other side), start again with --force."
    }
}

/// The node's side of enrolment, pure apart from key generation: it makes the request and checks the
/// answer. The node trusts the ICA in the answer only because the answer proves knowledge of the
/// activation key (no trust on first use).
public struct EnrolmentClient: Sendable {
    /// The name this node claims: its management object's name.
    public let nodeName: String
    /// This node's key pair; the certificate will be for its public key.
    public let keyPair: NodeKeyPair
    /// Derived from the activation key; the key itself is not kept.
    private let verifierKey: [UInt8]

    /// Prepares enrolment as `nodeName` with the activation key `activationKey`. Slow by design: derives
    /// the verifier key with PBKDF2 (`iterations` must be the server's; the default is the protocol's).
    public init(
        nodeName: String, activationKey: String, keyPair: NodeKeyPair = .generate(),
        iterations: Int = TrustLimits.activationKeyIterations
    ) throws(EnrolmentError) {
        do {
            try ActivationKey.checkSecret(activationKey)
            try InternalCA.checkPrintable(nodeName, field: "node name", lengthMax: TrustLimits.commonNameLengthMax)
            try ActivationKey.checkIterations(iterations)
        } catch {
            throw EnrolmentError(.invalidArgument, messageOf(error))
        }
        self.nodeName = nodeName
        self.keyPair = keyPair
        self.verifierKey = ActivationKey.verifierKey(secret: activationKey, nodeName: nodeName, iterations: iterations)
    }

    /// The request to send. `nodeNonce` is `TrustLimits.enrolmentNonceByteCount` fresh random bytes; `now`
    /// is this node's clock (the server measures the skew from it).
    public func makeRequest(nodeNonce: [UInt8], now: Date, allowsClockSkew: Bool = false) throws(EnrolmentError) -> EnrolmentRequest {
        precondition(nodeNonce.count == TrustLimits.enrolmentNonceByteCount, "node nonce must be 32 bytes")
        let csrDER: [UInt8]
        do {
            // The uid is the server's to decide; the CSR's subject is informative only.
            csrDER = try keyPair.makeCSR(identity: NodeIdentity(uid: "pending", name: nodeName))
        } catch {
            throw EnrolmentError(.invalidArgument, "cannot make a certificate signing request: \(error)")
        }
        let nodeTime = milliseconds(now)
        let transcript = EnrolmentRequest.transcript(
            nodeName: nodeName, csrDER: csrDER, nodeNonce: nodeNonce, nodeTimeMilliseconds: nodeTime, allowsClockSkew: allowsClockSkew)
        return EnrolmentRequest(
            nodeName: nodeName, csrDER: csrDER, nodeNonce: nodeNonce, nodeTimeMilliseconds: nodeTime,
            proof: EnrolmentProof.client(verifierKey: verifierKey, transcript: transcript), allowsClockSkew: allowsClockSkew)
    }

    /// Checks the server's answer (encoded) to `request`: a refusal becomes an `.refused` error; a
    /// response must prove the activation key, carry a CA certificate and a certificate that it signed,
    /// valid at `now`, for this node's key and name.
    public func accept(answer: [UInt8], to request: EnrolmentRequest, now: Date) throws(EnrolmentError)
        -> NodeCredentials
    {
        switch try EnrolmentMessage.decode(answer) {
        case .response(let response): return try accept(response, to: request, now: now)
        case .refusal(let refusal):
            throw EnrolmentError(
                .refused, "the management server refused enrolment: \(refusal.message)", refusal: refusal)
        case .request:
            throw EnrolmentError(.malformedMessage, "the server answered with a request")
        }
    }

    /// Checks a decoded response; see `accept(answer:to:now:)`.
    public func accept(_ response: EnrolmentResponse, to request: EnrolmentRequest, now: Date) throws(EnrolmentError)
        -> NodeCredentials
    {
        let expected = EnrolmentProof.server(
            verifierKey: verifierKey, transcript: response.transcript(request: request))
        guard EnrolmentProof.isValid(response.proof, expected: expected) else {
            throw EnrolmentError(
                .serverProofInvalid,
                "the server did not prove it holds this node's activation key: it is not the management server "
                    + "that issued the key (or the key was mistyped); nothing from it was trusted")
        }
        let ica: Certificate
        do {
            ica = try NodeCertificate.parse(der: response.icaDER)
        } catch {
            throw EnrolmentError(.certificateRejected, "the ICA certificate in the response: \(messageOf(error))")
        }
        guard case .isCertificateAuthority = try? ica.extensions.basicConstraints, ica.issuer == ica.subject,
            ica.publicKey.isValidSignature(ica.signature, for: ica)
        else {
            throw EnrolmentError(.certificateRejected, "the ICA certificate in the response is not a self-signed CA")
        }
        var revocations = RevocationList()
        if let json = response.revocationJSON {
            do { revocations = try RevocationList(jsonText: json) } catch {
                throw EnrolmentError(.malformedMessage, "the revocation list in the response: \(messageOf(error))")
            }
        }
        let verifier = SICVerifier(icaCertificate: ica, revocations: revocations)
        let identity: NodeIdentity
        switch verifier.verify(leafDER: response.certificateDER, expected: response.identity, now: now) {
        case .success(let found): identity = found
        case .failure(let failure):
            throw EnrolmentError(
                .certificateRejected, "the issued certificate is not usable: \(failure)", trustFailure: failure)
        }
        let certificate: Certificate
        do { certificate = try NodeCertificate.parse(der: response.certificateDER) } catch {
            throw EnrolmentError(.certificateRejected, messageOf(error))
        }
        guard certificate.publicKey == keyPair.publicKey else {
            throw EnrolmentError(.certificateRejected, "the issued certificate is not for this node's key")
        }
        guard identity.name == nodeName, response.identity.name == nodeName else {
            let failure = PeerTrustFailure.wrongIdentity(
                expected: NodeIdentity(uid: identity.uid, name: nodeName), found: identity.description)
            throw EnrolmentError(
                .certificateRejected, "the issued certificate is for another name: \(failure)", trustFailure: failure)
        }
        do {
            return NodeCredentials(
                identity: identity, privateKeyPEM: keyPair.privateKeyPEM,
                certificatePEM: try certificate.serializeAsPEM().pemString,
                icaPEM: try ica.serializeAsPEM().pemString,
                revocations: revocations)
        } catch {
            throw EnrolmentError(.certificateRejected, "cannot encode the certificates: \(error)")
        }
    }
}

/// The message of a `TrustError`, or the description of any other error.
func messageOf(_ error: any Error) -> String {
    (error as? TrustError)?.message ?? "\(error)"
}
