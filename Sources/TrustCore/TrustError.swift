/// An operating error from TrustCore: a stable machine-readable `code` and a message for people.
///
/// Messages never contain key material or passwords; they may name files and certificate subjects.
public struct TrustError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Stable identifiers for each kind of failure; callers switch on these, logs print them.
    public enum Code: String, Sendable, Equatable {
        /// A name, address or parameter given to TrustCore is not acceptable (empty, too long, bad characters).
        case invalidArgument = "invalid-argument"
        /// A PEM document could not be parsed, or holds the wrong kind of object.
        case malformedPEM = "malformed-pem"
        /// A private key does not belong to the certificate it was loaded with.
        case keyMismatch = "key-mismatch"
        /// A certificate that must be a CA is not one.
        case notACertificateAuthority = "not-a-certificate-authority"
        /// The data directory holds the ICA certificate but not its key (a secondary's layout, or a damaged one).
        case icaKeyMissing = "ica-key-missing"
        /// A file or directory operation failed; the message names the path and the errno text.
        case fileSystem = "file-system"
        /// Building a TLS configuration or certificate failed inside a library.
        case cryptography = "cryptography"
    }

    /// What went wrong, as a stable code.
    public let code: Code
    /// What went wrong, for a person.
    public let message: String

    /// Creates an error with a code and a human-readable message.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// "code: message", for logs.
    public var description: String { "\(code.rawValue): \(message)" }
}
