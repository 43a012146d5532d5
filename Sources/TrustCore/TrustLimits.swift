/// Every default and bound of TrustCore in one place (DESIGN.md §2: "Keep limits in one place").
///
/// Units are last in names, as everywhere in Rampart.
public enum TrustLimits {
    /// Lifetime of a newly created Internal CA certificate: ten years.
    public static let icaValidityDays = 3650
    /// Default lifetime of a TLS server certificate; 825 days is the longest that Apple platforms accept.
    public static let serverCertificateValidityDays = 825
    /// A server certificate is reissued at start when fewer than this many days remain.
    public static let serverCertificateRenewalMarginDays = 30
    /// Certificates are backdated by this much so that a peer whose clock is a little behind still accepts
    /// them (clock skew is a common cause of broken trust; DESIGN.md §1 SIC).
    public static let certificateBackdateSeconds = 3600
    /// Longest name accepted for an Internal CA: "Rampart Internal CA " (20) + 44 = 64, the X.520 bound on CN.
    public static let icaNameLengthMax = 44
    /// Longest common name of an issued certificate (X.520 upper bound).
    public static let commonNameLengthMax = 64
    /// Longest DNS name in a subject alternative name (RFC 1035).
    public static let dnsNameLengthMax = 253
    /// Most subject alternative names in one certificate.
    public static let subjectAlternativeNamesMax = 64

    /// PBKDF2-HMAC-SHA256 iterations for new password hashes. swift-crypto's checked API refuses fewer than
    /// 210,000; OWASP recommends more for SHA-256, at a CPU cost paid on every login on a 2-core machine.
    public static let passwordHashIterations = 210_000
    /// Stored hashes with more iterations than this are refused (a tampered database must not make a
    /// login burn minutes of CPU).
    public static let passwordHashIterationsMax = 10_000_000
    /// Random salt per password hash.
    public static let passwordSaltByteCount = 16
    /// Derived key length of a password hash (the SHA-256 output size).
    public static let passwordHashByteCount = 32
    /// Longest encoded hash string accepted by `PasswordHasher.verify` (a bound on parsing work).
    public static let encodedPasswordHashLengthMax = 512

    /// Longest token or password `SecureRandom` will make, in bytes or characters.
    public static let randomLengthMax = 4096
    // SIC (DESIGN.md §1): node certificates, revocation, activation keys, enrolment.

    /// Default lifetime of a SIC node certificate; it renews itself at two thirds of it.
    public static let nodeCertificateValidityDays = 365
    /// Longest node uid (a UUID is 36).
    public static let nodeUIDLengthMax = 64
    /// Largest DER certificate accepted for parsing (Rampart's are under 1 KiB).
    public static let certificateBytesMax = 16 * 1024
    /// Largest DER certificate signing request accepted for parsing.
    public static let certificateSigningRequestBytesMax = 8 * 1024
    /// Most entries in a revocation list.
    public static let revocationEntriesMax = 10_000
    /// Largest revocation list as JSON text (about 170 bytes an entry with its node's uid).
    public static let revocationListBytesMax = 2 * 1024 * 1024
    /// Longest node uid a revocation entry records (uids are UUIDs).
    public static let revocationNodeLengthMax = 128
    /// Default lifetime of a one-time activation key (Check Point's one-time password): 24 hours.
    public static let activationKeyLifetimeSeconds = 24 * 3600
    /// Longest lifetime an activation key may be given: 30 days.
    public static let activationKeyLifetimeSecondsMax = 30 * 24 * 3600
    /// Length of a generated activation key, from `SecureRandom.passwordAlphabet` (~116 bits).
    public static let activationKeyGeneratedLength = 20
    /// Shortest and longest activation key an administrator may choose.
    public static let activationKeyLengthMin = 8
    public static let activationKeyLengthMax = 128
    /// PBKDF2 rounds that turn an activation key into its verifier key. A protocol parameter: the node
    /// and the server must use the same count. It slows guessing of a captured proof or a leaked record
    /// when an administrator chose a weak key.
    public static let activationKeyIterations = 210_000
    /// Bytes of each side's nonce in an enrolment exchange.
    public static let enrolmentNonceByteCount = 32
    /// Largest encoded enrolment message (a response may carry the revocation list).
    public static let enrolmentMessageBytesMax = revocationListBytesMax + 64 * 1024
    /// Largest encoded enrolment request `EnrolmentMessage.decode` accepts: its header and every field at
    /// its bound (4-byte length prefixes included). The SIC listener reads no larger frame from a client
    /// it has not verified. A real request (a P-256 CSR) is under 1 KiB.
    public static let enrolmentRequestBytesMax =
        6 + (4 + commonNameLengthMax * 4) + (4 + certificateSigningRequestBytesMax) + (4 + enrolmentNonceByteCount)
        + 8 + (4 + enrolmentProofByteCount)
    /// Bytes of an enrolment proof (an HMAC-SHA256).
    public static let enrolmentProofByteCount = 32
    /// Longest refusal message.
    public static let enrolmentRefusalMessageLengthMax = 1024
    /// Largest clock difference between a node and its server at enrolment. Certificates are backdated
    /// by `certificateBackdateSeconds`, but a larger skew breaks trust later (expiry, renewal), so it is
    /// refused early with a message that says how to fix it.
    public static let enrolmentClockSkewSecondsMax = 300
    /// Warn this many days before a node certificate expires (it should have renewed at two thirds).
    public static let nodeCertificateExpiryWarningDays = 30
    /// Warn this many days before the ICA expires (replacing it means enrolling every node again).
    public static let icaExpiryWarningDays = 180
}
