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
}
