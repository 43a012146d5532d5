import Foundation
import NIOSSL
import X509

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `pki/` folder of a data directory (DESIGN.md §6) on every management server: the group's Internal
/// CA (the primary creates it; a secondary receives its key when it joins) and the Web API's HTTPS
/// certificate, issued by that CA on every server, so a client that trusts `ica.pem` reaches any of them.
///
/// | file | content | mode |
/// |---|---|---|
/// | `ica.key` | ICA private key | 0600 |
/// | `ica.pem` | ICA certificate (what clients trust) | 0644 |
/// | `api.key` | Web API private key | 0600 |
/// | `api.pem` | Web API certificate, issued by the ICA | 0644 |
///
/// Every file is written with `DurableFile` (atomic and fsynced); the folder itself is 0700.
public struct PKIDirectory: Sendable {
    /// What `loadOrCreate` did with one part, with the reason when it replaced something: the server
    /// logs it (DESIGN.md §5: every decision has a human-readable reason).
    public enum Outcome: Sendable, Equatable {
        /// Nothing was there; it was created.
        case created
        /// It was there and valid; it was loaded as it is.
        case loaded
        /// It was there but unusable for the stated reason, and was replaced.
        case reissued(reason: String)
    }

    /// File names inside `pki/`.
    public enum FileName {
        /// The ICA private key (0600).
        public static let icaKey = "ica.key"
        /// The ICA certificate.
        public static let icaCertificate = "ica.pem"
        /// The Web API private key (0600).
        public static let apiKey = "api.key"
        /// The Web API certificate.
        public static let apiCertificate = "api.pem"
    }

    /// The `pki/` folder.
    public let directory: URL
    /// The Internal CA, with its key.
    public let internalCA: InternalCA
    /// The Web API's certificate, key and chain.
    public let apiIdentity: IssuedIdentity
    /// What happened to the ICA: `.created` on a first start, else `.loaded`.
    public let icaOutcome: Outcome
    /// What happened to the API certificate.
    public let apiCertificateOutcome: Outcome

    /// Path of `ica.pem`: what a client (`rampart mgmt`, Ansible, curl --cacert) trusts to reach the API.
    public var icaCertificatePath: String { directory.appendingPathComponent(FileName.icaCertificate).path }
    /// Path of `api.pem`.
    public var apiCertificatePath: String { directory.appendingPathComponent(FileName.apiCertificate).path }
    /// Path of `api.key`.
    public var apiKeyPath: String { directory.appendingPathComponent(FileName.apiKey).path }

    /// Opens `dataDirectory/pki/`, creating what is missing. `dataDirectory` must exist.
    ///
    /// - On a first start (no ICA yet) creates the ICA, named after `serverName`, and the API certificate.
    /// - Later, loads them; the API certificate is reissued when it is unreadable, not from this ICA, not
    ///   yet valid, expired or within `TrustLimits.serverCertificateRenewalMarginDays` of expiry, or when
    ///   its names do not cover `serverName`, `localhost`, 127.0.0.1, ::1 and every address in
    ///   `listenAddresses` (wildcards 0.0.0.0 and :: excepted: pass the host's names and addresses too
    ///   when listening on every interface).
    /// - Throws `.icaKeyMissing` when `ica.pem` exists without `ica.key`: that is not a primary's
    ///   directory, and a new ICA must never silently replace one that others trust.
    public static func loadOrCreate(
        dataDirectory: URL, serverName: String, listenAddresses: [String], now: Date
    ) throws -> PKIDirectory {
        var required = SubjectNames()
        try required.add(serverName)
        try required.addDNSName("localhost")
        try required.addIPAddress("127.0.0.1")
        try required.addIPAddress("::1")
        for address in listenAddresses {
            if let bytes = SubjectNames.ipAddressBytes(address), SubjectNames.isUnspecified(bytes) { continue }
            try required.add(address)
        }

        let directory = dataDirectory.appendingPathComponent("pki", isDirectory: true)
        try DurableFile.ensureDirectory(directory, mode: 0o700)
        try DurableFile.removeStaleTemporaryFiles(in: directory)
        let file = { (name: String) in directory.appendingPathComponent(name) }

        // The ICA. The key is written before the certificate, so an existing ica.pem means a complete ICA;
        // a lone ica.key is the trace of a crash during the first start, before anything was signed.
        let icaOutcome: Outcome
        let internalCA: InternalCA
        let icaCertificateText = try readIfPresent(file(FileName.icaCertificate))
        if let icaCertificateText {
            guard let icaKeyText = try readIfPresent(file(FileName.icaKey)) else {
                throw TrustError(
                    .icaKeyMissing,
                    "\(file(FileName.icaCertificate).path) exists but \(FileName.icaKey) does not: "
                        + "this data directory is not a primary's, or its ICA key was lost"
                )
            }
            try restrictToOwner(file(FileName.icaKey))
            internalCA = try InternalCA(certificatePEM: icaCertificateText, privateKeyPEM: icaKeyText)
            icaOutcome = .loaded
        } else {
            internalCA = try InternalCA.create(name: String(serverName.prefix(TrustLimits.icaNameLengthMax)), now: now)
            try DurableFile.write(Array(internalCA.privateKeyPEM.utf8), to: file(FileName.icaKey), mode: 0o600)
            try DurableFile.write(Array(internalCA.certificatePEM.utf8), to: file(FileName.icaCertificate), mode: 0o644)
            icaOutcome = .created
        }

        // The API certificate. Written key first: a crash in between leaves a key that does not match the
        // certificate, which the next start detects and repairs.
        var apiOutcome: Outcome
        var apiIdentity: IssuedIdentity?
        if icaOutcome == .created {
            apiOutcome = .created
        } else {
            let keyText = try readIfPresent(file(FileName.apiKey))
            let certificateText = try readIfPresent(file(FileName.apiCertificate))
            switch (keyText, certificateText) {
            case (nil, nil):
                apiOutcome = .created
            case (let keyText?, let certificateText?):
                if let reason = reissueReason(
                    certificatePEM: certificateText, privateKeyPEM: keyText, ica: internalCA, required: required,
                    now: now)
                {
                    apiOutcome = .reissued(reason: reason)
                } else {
                    try restrictToOwner(file(FileName.apiKey))
                    apiOutcome = .loaded
                    apiIdentity = IssuedIdentity(
                        certificatePEM: certificateText, privateKeyPEM: keyText, chainPEM: internalCA.certificatePEM)
                }
            case (nil, _):
                apiOutcome = .reissued(reason: "\(FileName.apiKey) is missing")
            case (_, nil):
                apiOutcome = .reissued(reason: "\(FileName.apiCertificate) is missing")
            }
        }
        if apiIdentity == nil {
            let identity = try internalCA.issueTLSServerCertificate(
                commonName: String(serverName.prefix(TrustLimits.commonNameLengthMax)),
                dnsNames: required.dnsNames,
                ipAddresses: required.ipAddresses.map(SubjectNames.ipText),
                now: now
            )
            try DurableFile.write(Array(identity.privateKeyPEM.utf8), to: file(FileName.apiKey), mode: 0o600)
            try DurableFile.write(Array(identity.certificatePEM.utf8), to: file(FileName.apiCertificate), mode: 0o644)
            apiIdentity = identity
        }
        return PKIDirectory(
            directory: directory, internalCA: internalCA, apiIdentity: apiIdentity!,
            icaOutcome: icaOutcome, apiCertificateOutcome: apiOutcome)
    }

    /// True when `text` can be a name of the API certificate (an IP address or a DNS name; wildcards never).
    public static func isCertificateName(_ text: String) -> Bool {
        var names = SubjectNames()
        return (try? names.add(text)) != nil
    }

    /// The TLS configuration of the HTTPS Web API: the API certificate and key; TLS 1.2 at least, because
    /// Ansible's and other Python clients may still speak it (TLS 1.3 is negotiated whenever the client can).
    /// Clients are not asked for certificates: administrators log in with passwords.
    public func makeServerTLSConfiguration() throws -> TLSConfiguration {
        try apiIdentity.makeServerTLSConfiguration()
    }

    /// A client TLS configuration that trusts only the ICA in `icaCertificatePEM` (not the system's roots)
    /// and checks the server's name or address against its certificate: what `rampart mgmt` and tests use.
    public static func makeClientTLSConfiguration(icaCertificatePEM: String) throws -> TLSConfiguration {
        try wrapCryptographyErrors("load the ICA certificate into NIOSSL") {
            let roots = try NIOSSLCertificate.fromPEMBytes(Array(icaCertificatePEM.utf8))
            guard !roots.isEmpty else { throw TrustError(.malformedPEM, "no certificate in the ICA PEM") }
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.trustRoots = .certificates(roots)
            configuration.certificateVerification = .fullVerification
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        }
    }

    /// Why the stored API certificate must be replaced, or nil when it is fine.
    static func reissueReason(
        certificatePEM: String, privateKeyPEM: String, ica: InternalCA, required: SubjectNames, now: Date
    ) -> String? {
        guard let certificate = try? Certificate(pemEncoded: certificatePEM) else {
            return "\(FileName.apiCertificate) cannot be parsed"
        }
        guard let key = try? Certificate.PrivateKey(pemEncoded: privateKeyPEM) else {
            return "\(FileName.apiKey) cannot be parsed"
        }
        guard key.publicKey == certificate.publicKey else {
            return "\(FileName.apiKey) does not belong to \(FileName.apiCertificate)"
        }
        guard certificate.issuer == ica.certificate.subject,
            ica.certificate.publicKey.isValidSignature(certificate.signature, for: certificate)
        else {
            return "\(FileName.apiCertificate) was not issued by this ICA"
        }
        if now < certificate.notValidBefore {
            return "\(FileName.apiCertificate) is not valid before \(certificate.notValidBefore) (clock moved back?)"
        }
        let renewalMargin = Double(TrustLimits.serverCertificateRenewalMarginDays) * 86_400
        if now.addingTimeInterval(renewalMargin) >= certificate.notValidAfter {
            return "\(FileName.apiCertificate) expires at \(certificate.notValidAfter), "
                + "within \(TrustLimits.serverCertificateRenewalMarginDays) days of now"
        }
        guard let present = try? SubjectNames(certificate: certificate) else {
            return "\(FileName.apiCertificate) has unreadable subject alternative names"
        }
        if !present.covers(required) {
            return "\(FileName.apiCertificate) does not cover "
                + present.missing(from: required).joined(separator: ", ")
        }
        return nil
    }

    /// The text of a file, or nil if it does not exist.
    static func readIfPresent(_ url: URL) throws -> String? {
        do {
            let data = try Data(contentsOf: url)
            return String(decoding: data, as: UTF8.self)
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile {
            return nil
        } catch {
            if access(url.path, F_OK) != 0 && errno == ENOENT { return nil }
            throw TrustError(.fileSystem, "cannot read \(url.path): \(error)")
        }
    }

    /// Takes group and other permissions away from a key file if someone widened them.
    static func restrictToOwner(_ url: URL) throws {
        var info = stat()
        guard stat(url.path, &info) == 0 else { throw DurableFile.posixError("stat", url.path) }
        if info.st_mode & 0o077 != 0 {
            guard chmod(url.path, 0o600) == 0 else { throw DurableFile.posixError("set mode of", url.path) }
        }
    }
}
