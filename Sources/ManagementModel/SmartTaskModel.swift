import Foundation

/// A SmartTask trigger, named as Check Point's API names it (`trigger: "Before Publish"`): Check
/// Point's own (CHECKPOINT-API.md §3.8), and Rampart's HA and operations events in the same style.
public enum SmartTaskTrigger: String, Sendable, CaseIterable, Comparable {
    // Check Point's triggers that Rampart fires.
    case beforePublish = "Before Publish"
    case afterPublish = "After Publish"
    case afterInstallPolicy = "After Install Policy"
    // Check Point's triggers that show-smart-task-triggers lists but Rampart never fires (no
    // approval workflow, no CloudGuard Controller): a task may name them and simply never runs.
    case afterReject = "After Reject"
    case afterSubmit = "After Submit"
    case beforeApprove = "Before Approve"
    case beforeLogin = "Before Login"
    case beforeReject = "Before Reject"
    case beforeSubmit = "Before Submit"
    case cloudGuardControllerEvent = "CloudGuard Controller Event"
    // Rampart's.
    case haStateChanged = "HA State Changed"
    case syncStatusChanged = "Sync Status Changed"
    case syncRecovered = "Sync Recovered"
    case certificateExpiring = "Certificate Expiring"
    case clockSkew = "Clock Skew"
    case backupFinished = "Backup Finished"
    case backupFailed = "Backup Failed"
    case gatewayStatusChanged = "Gateway Status Changed"
    case clusterFailover = "Cluster Failover"

    /// Check Point's name, as tasks and payloads carry it.
    public var name: String { rawValue }

    /// Only Before Publish runs before its operation (and may veto it); every other runs after.
    public var beforeOperation: Bool { self == .beforePublish }

    /// Whether Rampart ever fires it.
    public var isFiredByRampart: Bool {
        switch self {
        case .afterReject, .afterSubmit, .beforeApprove, .beforeLogin, .beforeReject, .beforeSubmit, .cloudGuardControllerEvent: false
        default: true
        }
    }

    /// A fixed uid per trigger, the same on every server (like the predefined objects' uids).
    public var uid: String {
        let index = Self.allCases.firstIndex(of: self) ?? 0
        let suffix = String(index + 1, radix: 16)
        return "5a17a5c0-7e1d-4c1e-9a57-" + String(repeating: "0", count: 12 - suffix.count) + suffix
    }

    /// The trigger by name (case-insensitive, as Check Point matches names) or by uid.
    public static func named(_ key: String) -> SmartTaskTrigger? {
        let wanted = key.lowercased()
        return allCases.first { $0.rawValue.lowercased() == wanted || $0.uid == wanted }
    }

    /// How show-smart-task-trigger(s) and a task's `trigger` show it.
    public var json: JSONValue {
        .object([
            "uid": .string(uid), "name": .string(name), "type": .string("smart-task-trigger"),
            "before-operation": .bool(beforeOperation), "domain": Renderer.defaultDomain,
        ])
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The settings of a send-mail action (Check Point's `mail-settings` plus `smtp-server`). Rampart
/// sends through the relay the server was started with; `smtpServer` is kept as given.
public struct SmartTaskMail: Sendable, Equatable {
    public var recipients: [String]
    public var senderEmail: String
    public var subject: String
    public var body: String
    public var ccRecipients: [String]
    public var bccRecipients: [String]
    /// "no attachment", "changes report" or "policy installation report".
    public var attachment: String
    public var smtpServer: String

    public init(
        recipients: [String], senderEmail: String, subject: String, body: String, ccRecipients: [String] = [],
        bccRecipients: [String] = [], attachment: String = "no attachment", smtpServer: String = ""
    ) {
        self.recipients = recipients
        self.senderEmail = senderEmail
        self.subject = subject
        self.body = body
        self.ccRecipients = ccRecipients
        self.bccRecipients = bccRecipients
        self.attachment = attachment
        self.smtpServer = smtpServer
    }

    public static let attachments = ["no attachment", "changes report", "policy installation report"]
}

/// What a SmartTask does: exactly one action.
public enum SmartTaskAction: Sendable, Equatable {
    /// POST the payload to `url` (https, or http to loopback only). `fingerprint` pins the server's
    /// certificate (SHA-256, lowercase hex without colons); `sharedSecret` is sent in
    /// `X-chkp-shared-secret` and keys the HMAC signature.
    case webRequest(url: String, fingerprint: String?, sharedSecret: String?, timeoutSeconds: Int)
    /// Run a repository script on this server with the payload (base64 JSON) as its first argument.
    /// `targets` are the uids of the checkpoint-host objects named (empty: the active server).
    case runScript(repositoryScriptUID: String, targets: [String], timeoutSeconds: Int)
    /// Send a mail through the server's SMTP relay (refused at run time when none is configured).
    case sendMail(SmartTaskMail)

    /// The stored key of the action's kind, as Check Point names it.
    public var kind: String {
        switch self {
        case .webRequest: SmartTaskDefinition.webRequestKey
        case .runScript: SmartTaskDefinition.runScriptKey
        case .sendMail: SmartTaskDefinition.sendMailKey
        }
    }

    public var isRunScript: Bool {
        if case .runScript = self { return true }
        return false
    }
}

/// One `smart-task` object as the engine uses it. `init(_:)` is the one parser of the stored object:
/// the command boundary runs it on the object a change would store (Planner.validate), so nothing is
/// stored that the engine cannot read, and the engine reads what a peer synchronized with it.
public struct SmartTaskDefinition: Sendable, Equatable {
    public var uid: String
    public var name: String
    public var trigger: SmartTaskTrigger
    public var action: SmartTaskAction
    /// The task's custom data: a JSON object ("{}" when none was given), added to the payload.
    public var customData: JSONValue
    public var enabled: Bool
    /// When the action fails: true, carry on (a before-publish task does not veto); false, fail.
    public var failOpen: Bool

    public init(
        uid: String, name: String, trigger: SmartTaskTrigger, action: SmartTaskAction, customData: JSONValue = .object([:]),
        enabled: Bool = true, failOpen: Bool = true
    ) {
        self.uid = uid
        self.name = name
        self.trigger = trigger
        self.action = action
        self.customData = customData
        self.enabled = enabled
        self.failOpen = failOpen
    }

    public static let webRequestKey = "send-web-request"
    public static let runScriptKey = "run-script"
    public static let sendMailKey = "send-mail"

    /// Parses a stored smart-task. Every field is checked again (the object may come from a peer or
    /// an older version); errors are `ManagementError`s naming the field, as the API reports them.
    public init(_ object: ManagedObject) throws {
        guard object.type == .smartTask else { throw ManagementError.wrongType("smart-task", "[\(object.name)] is a \(object.type.rawValue)") }
        let f = object.fields
        guard let triggerName = f["trigger"]?.stringValue, !triggerName.isEmpty else { throw ManagementError.missing(["trigger"]) }
        guard let trigger = SmartTaskTrigger.named(triggerName) else {
            throw ManagementError.invalid("trigger", "'\(triggerName.prefix(64))' is not a trigger (show-smart-task-triggers lists them)")
        }
        let secret = f[ManagedObject.smartTaskSecretField]?.stringValue ?? ""
        self.init(
            uid: object.uid, name: object.name, trigger: trigger,
            action: try Self.action(f["action"], sharedSecret: secret.isEmpty ? nil : secret),
            customData: try Self.customData(f["custom-data"]),
            enabled: try f["enabled"].map { try $0.boolean("enabled") } ?? false,
            failOpen: try f["fail-open"].map { try $0.boolean("fail-open") } ?? true)
    }

    // MARK: action

    static func action(_ value: JSONValue?, sharedSecret: String?) throws -> SmartTaskAction {
        guard let value else { throw ManagementError.missing(["action"]) }
        guard let kinds = value.objectValue, kinds.count == 1, let only = kinds.first else {
            throw ManagementError.invalid("action", "exactly one of send-web-request, run-script or send-mail")
        }
        let (kind, settings) = (only.key, only.value)
        guard let fields = settings.objectValue else { throw ManagementError.invalid("action.\(kind)", "expected an object") }
        switch kind {
        case webRequestKey:
            let field = "action.\(kind)"
            if let secret = sharedSecret { try checkSecret(secret) }
            return .webRequest(
                url: try SmartTaskChecks.url(fields["url"], field: "\(field).url"),
                fingerprint: try SmartTaskChecks.fingerprint(fields["fingerprint"], field: "\(field).fingerprint"),
                sharedSecret: sharedSecret,
                timeoutSeconds: try timeout(fields["time-out"], field: "\(field).time-out", default: Limits.smartTaskWebRequestTimeoutSecondsDefault))
        case runScriptKey:
            let field = "action.\(kind)"
            guard let script = fields["repository-script"]?.stringValue, !script.isEmpty else { throw ManagementError.missing(["\(field).repository-script"]) }
            let targets = fields["targets"]?.arrayValue ?? []
            guard targets.count <= Limits.smartTaskTargetsMax else {
                throw ManagementError.invalid("\(field).targets", "at most \(Limits.smartTaskTargetsMax) targets")
            }
            return .runScript(
                repositoryScriptUID: script, targets: try targets.map { try SmartTaskChecks.uidText($0, field: "\(field).targets") },
                timeoutSeconds: try timeout(fields["time-out"], field: "\(field).time-out", default: Limits.smartTaskScriptTimeoutSecondsDefault))
        case sendMailKey:
            return .sendMail(try SmartTaskChecks.mail(fields, field: "action.\(kind)"))
        default:
            throw ManagementError.invalid("action", "'\(kind.prefix(64))' is not an action; use send-web-request, run-script or send-mail")
        }
    }

    static func timeout(_ value: JSONValue?, field: String, default defaultSeconds: Int) throws -> Int {
        guard let value else { return defaultSeconds }
        return Int(try value.integer(field, in: Limits.smartTaskTimeoutSecondsRange))
    }

    static func checkSecret(_ secret: String) throws {
        guard Limits.fits(secret, characters: Limits.smartTaskSecretLengthMax),
            secret.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f })
        else {
            // The value is never repeated: it is a secret.
            throw ManagementError.invalid(
                "action.send-web-request.shared-secret",
                "at most \(Limits.smartTaskSecretLengthMax) characters, no control characters (it is sent as an HTTP header)")
        }
    }

    // MARK: custom data

    /// Custom data as stored: JSON text of an object, "" for none. Parsed to the object (bounded).
    static func customData(_ value: JSONValue?) throws -> JSONValue {
        guard let value, let text = value.stringValue, !text.isEmpty else {
            if let value, value.stringValue == nil { throw ManagementError.invalid("custom-data", "expected JSON text") }
            return .object([:])
        }
        guard text.utf8.count <= Limits.smartTaskCustomDataBytesMax else {
            throw ManagementError.invalid("custom-data", "longer than \(Limits.smartTaskCustomDataBytesMax) bytes")
        }
        guard let parsed = try? JSONValue.parse(Array(text.utf8), maxDepth: Limits.smartTaskCustomDataDepthMax), parsed.objectValue != nil else {
            throw ManagementError.invalid("custom-data", "expected the text of a JSON object, such as {\"ticket\": \"CR-1\"}")
        }
        return parsed
    }
}

/// One `repository-script` object: a script a run-script task runs on this server.
public struct RepositoryScript: Sendable, Equatable {
    public var uid: String
    public var name: String
    public var body: String

    public init(uid: String, name: String, body: String) {
        self.uid = uid
        self.name = name
        self.body = body
    }

    /// The one parser of a stored repository-script (also run on what a change would store).
    public init(_ object: ManagedObject) throws {
        guard object.type == .repositoryScript else {
            throw ManagementError.wrongType("repository-script", "[\(object.name)] is a \(object.type.rawValue)")
        }
        guard let body = object.fields["script-body"]?.stringValue, !body.isEmpty else { throw ManagementError.missing(["script-body"]) }
        guard body.utf8.count <= Limits.repositoryScriptBodyBytesMax else {
            throw ManagementError.invalid("script-body", "longer than \(Limits.repositoryScriptBodyBytesMax) bytes")
        }
        guard !body.unicodeScalars.contains("\0") else { throw ManagementError.invalid("script-body", "contains a NUL character") }
        self.init(uid: object.uid, name: object.name, body: body)
    }
}

/// The checks of single smart-task values, shared by the parser and the request normalizer.
public enum SmartTaskChecks {
    /// A web request's URL: https to any host, or http to a loopback address only (a secret or a
    /// payload never crosses a network in clear). No credentials in it, no control characters.
    public static func url(_ value: JSONValue?, field: String) throws -> String {
        guard let text = value?.stringValue, !text.isEmpty else { throw ManagementError.missing([field]) }
        guard text.utf8.count <= Limits.smartTaskURLBytesMax else { throw ManagementError.invalid(field, "longer than \(Limits.smartTaskURLBytesMax) bytes") }
        guard text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f }) else {
            throw ManagementError.invalid(field, "a URL has no spaces, control or non-ASCII characters (percent-encode them)")
        }
        guard let parts = URLComponents(string: text), let scheme = parts.scheme?.lowercased(), let host = parts.host, !host.isEmpty else {
            throw ManagementError.invalid(field, "'\(text.prefix(128))' is not a URL like https://receiver.example.com/hook")
        }
        guard parts.user == nil, parts.password == nil else {
            throw ManagementError.invalid(field, "the URL must not carry credentials; use shared-secret")
        }
        if let port = parts.port, !(1...65535).contains(port) { throw ManagementError.invalid(field, "port \(port) is out of range") }
        switch scheme {
        case "https": return text
        case "http" where isLoopback(host): return text
        case "http": throw ManagementError.invalid(field, "http is allowed only to a loopback address (127.0.0.1, ::1, localhost); use https")
        default: throw ManagementError.invalid(field, "the scheme must be https (or http to a loopback address)")
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare.lowercased() == "localhost" { return true }
        guard let address = IPAddress.parse(bare) else { return false }
        return address.family == 4 ? address.text.hasPrefix("127.") : address.text == "::1"
    }

    /// A certificate fingerprint: SHA-256 as 64 hex digits, colons between byte pairs allowed;
    /// stored lowercase without colons. Empty or absent: none (the system trust store decides).
    public static func fingerprint(_ value: JSONValue?, field: String) throws -> String? {
        guard let value else { return nil }
        guard let text = value.stringValue else { throw ManagementError.invalid(field, "expected text") }
        if text.isEmpty { return nil }
        guard text.utf8.count <= 95 else { throw ManagementError.invalid(field, "expected a SHA-256 fingerprint: 64 hex digits, colons allowed") }
        let digits = text.lowercased().filter { $0 != ":" }
        guard digits.count == 64, digits.allSatisfy(\.isHexDigit), digits.allSatisfy(\.isASCII) else {
            throw ManagementError.invalid(field, "expected a SHA-256 fingerprint: 64 hex digits, colons allowed (SHA-1 fingerprints are not accepted)")
        }
        return digits
    }

    /// A stored uid: bounded text without control characters.
    static func uidText(_ value: JSONValue, field: String) throws -> String {
        guard let text = value.stringValue, !text.isEmpty, Limits.fits(text, characters: Limits.nameLengthMax) else {
            throw ManagementError.invalid(field, "expected an object name or uid")
        }
        return text
    }

    /// A mail header value: bounded, one line (a CR or LF would let it add headers of its own).
    static func headerText(_ value: JSONValue?, field: String, required: Bool) throws -> String {
        guard let value else {
            if required { throw ManagementError.missing([field]) }
            return ""
        }
        guard let text = value.stringValue else { throw ManagementError.invalid(field, "expected text") }
        if required, text.isEmpty { throw ManagementError.missing([field]) }
        guard Limits.fits(text, characters: Limits.stringLengthMax) else {
            throw ManagementError.invalid(field, "longer than \(Limits.stringLengthMax) characters")
        }
        guard !text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw ManagementError.invalid(field, "contains a control character (a mail header is one line)")
        }
        return text
    }

    /// Addresses as Check Point takes them: one text, separated by commas or semicolons.
    public static func addresses(_ value: JSONValue?, field: String, required: Bool) throws -> [String] {
        let text = try headerText(value, field: field, required: required)
        let list = text.split(whereSeparator: { $0 == "," || $0 == ";" }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        if required, list.isEmpty { throw ManagementError.missing([field]) }
        guard list.count <= Limits.smartTaskMailRecipientsMax else {
            throw ManagementError.invalid(field, "at most \(Limits.smartTaskMailRecipientsMax) addresses")
        }
        for address in list { try mailAddress(address, field: field) }
        return list
    }

    /// A plain address (local@domain): what SMTP's MAIL FROM and RCPT TO carry, nothing around it.
    static func mailAddress(_ address: String, field: String) throws {
        let parts = address.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, address.utf8.count <= 254,
            address.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7f && !"<>()[]\\\",:;".unicodeScalars.contains($0) })
        else {
            throw ManagementError.invalid(field, "'\(address.prefix(64))' is not a mail address like ops@example.com")
        }
    }

    static func mail(_ fields: [String: JSONValue], field: String) throws -> SmartTaskMail {
        guard let settings = fields["mail-settings"]?.objectValue else { throw ManagementError.missing(["\(field).mail-settings"]) }
        let prefix = "\(field).mail-settings"
        let sender = try headerText(settings["sender-email"], field: "\(prefix).sender-email", required: true)
        try mailAddress(sender, field: "\(prefix).sender-email")
        guard let body = settings["body"]?.stringValue, !body.isEmpty else { throw ManagementError.missing(["\(prefix).body"]) }
        guard body.utf8.count <= Limits.smartTaskMailBodyBytesMax else {
            throw ManagementError.invalid("\(prefix).body", "longer than \(Limits.smartTaskMailBodyBytesMax) bytes")
        }
        let attachment = settings["attachment"]?.stringValue ?? "no attachment"
        guard SmartTaskMail.attachments.contains(attachment) else {
            throw ManagementError.invalid("\(prefix).attachment", "expected one of: \(SmartTaskMail.attachments.joined(separator: ", "))")
        }
        return SmartTaskMail(
            recipients: try addresses(settings["recipients"], field: "\(prefix).recipients", required: true),
            senderEmail: sender, subject: try headerText(settings["subject"], field: "\(prefix).subject", required: true), body: body,
            ccRecipients: try addresses(settings["cc-recipients"], field: "\(prefix).cc-recipients", required: false),
            bccRecipients: try addresses(settings["bcc-recipients"], field: "\(prefix).bcc-recipients", required: false),
            attachment: attachment, smtpServer: try headerText(fields["smtp-server"], field: "\(field).smtp-server", required: false))
    }
}

extension ManagedObject {
    /// A web-request task's shared secret: an internal field (never rendered), kept beside `action`.
    public static let smartTaskSecretField = "shared-secret"

    /// Stored fields that are secrets or verifiers of secrets: never rendered, in no revision view.
    public static let secretFields: Set<String> = ["password-hash", activationKeyField, ClusterModel.heartbeatKeyField, smartTaskSecretField]

    /// The stored form without its secrets, a shared secret replaced by whether one is set: what
    /// show-changes and show-revisions show (the journal and the peers keep them: the engine sends the
    /// shared secret, logins check the hash, cluster members sign with the key).
    public var jsonWithoutSecrets: JSONValue {
        guard fields.keys.contains(where: Self.secretFields.contains) else { return json }
        var copy = self
        for field in Self.secretFields { copy.fields[field] = nil }
        if let secret = fields[Self.smartTaskSecretField] {
            copy.fields["shared-secret-set"] = .bool(!(secret.stringValue ?? "").isEmpty)
        }
        return copy.json
    }
}

// MARK: - request to stored form

extension Normalizer {
    /// A smart-task's request fields in their stored form: the trigger by its name, custom data as
    /// JSON text, the action with references as uids and defaults filled in, the shared secret moved
    /// out of it into its internal field. Values are checked again by `SmartTaskDefinition` on the
    /// object the change would store.
    func normalizeSmartTask(_ p: inout [String: JSONValue], existing: ManagedObject?) throws {
        if let trigger = p["trigger"] {
            guard let key = trigger.stringValue ?? trigger["name"]?.stringValue ?? trigger["uid"]?.stringValue, !key.isEmpty,
                Limits.fits(key, characters: Limits.nameLengthMax)
            else { throw ManagementError.invalid("trigger", "expected a trigger name or uid") }
            guard let found = SmartTaskTrigger.named(key) else {
                throw ManagementError(
                    code: "generic_err_object_not_found",
                    message: "Requested object [\(key)] not found (in field trigger); show-smart-task-triggers lists the triggers", httpStatus: 404)
            }
            p["trigger"] = .string(found.name)
        }
        if let customData = p["custom-data"], customData.objectValue != nil {
            // Check Point takes JSON text; a JSON object given as such is kept as its text.
            p["custom-data"] = .string(customData.canonicalString)
        }
        if let customData = p["custom-data"] { _ = try SmartTaskDefinition.customData(customData) }
        if let action = p["action"] {
            let (stored, secret) = try smartTaskAction(action, existing: existing)
            p["action"] = stored
            p[ManagedObject.smartTaskSecretField] = .string(secret)
        }
    }

    static let webRequestAliases = ["send-web-request", "web-request"]

    func smartTaskAction(_ value: JSONValue, existing: ManagedObject?) throws -> (action: JSONValue, secret: String) {
        guard let kinds = value.objectValue else {
            throw ManagementError.invalid("action", "expected an object with send-web-request, run-script or send-mail")
        }
        guard kinds.count == 1, let only = kinds.first else {
            throw ManagementError.invalid(
                "action", "exactly one of send-web-request, run-script or send-mail (given: \(kinds.keys.sorted().joined(separator: ", ")))")
        }
        let kind = Self.webRequestAliases.contains(only.key) ? SmartTaskDefinition.webRequestKey : only.key
        let field = "action.\(kind)"
        guard let settings = only.value.objectValue else { throw ManagementError.invalid(field, "expected an object") }
        switch kind {
        case SmartTaskDefinition.webRequestKey:
            return try webRequest(settings, field: field, existing: existing)
        case SmartTaskDefinition.runScriptKey:
            try onlyKeys(settings, ["repository-script", "targets", "time-out"], field: field)
            guard let script = settings["repository-script"] else { throw ManagementError.missing(["\(field).repository-script"]) }
            var stored: [String: JSONValue] = [
                "repository-script": .string(try resolve("\(field).repository-script", script, allowed: [.repositoryScript])),
                "targets": .array(
                    try settings["targets"].map { try resolveList("\(field).targets", $0, allowed: [.checkpointHost], existing: nil) }?.map(JSONValue.string)
                        ?? []),
            ]
            stored["time-out"] = .int(
                Int64(try SmartTaskDefinition.timeout(settings["time-out"], field: "\(field).time-out", default: Limits.smartTaskScriptTimeoutSecondsDefault)))
            return (.object([kind: .object(stored)]), "")
        case SmartTaskDefinition.sendMailKey:
            try onlyKeys(settings, ["mail-settings", "smtp-server"], field: field)
            try onlyKeys(
                settings["mail-settings"]?.objectValue ?? [:],
                ["recipients", "sender-email", "subject", "body", "attachment", "cc-recipients", "bcc-recipients"], field: "\(field).mail-settings")
            _ = try SmartTaskChecks.mail(settings, field: field)
            return (.object([kind: .object(settings)]), "")
        default:
            throw ManagementError.invalid("action", "'\(only.key.prefix(64))' is not an action; use send-web-request, run-script or send-mail")
        }
    }

    /// A web request in its stored form, and its secret: the one given, or for the same URL the one
    /// kept (a secret never follows a task to another receiver unless given again; "" clears it).
    func webRequest(_ settings: [String: JSONValue], field: String, existing: ManagedObject?) throws -> (action: JSONValue, secret: String) {
        try onlyKeys(settings, ["url", "fingerprint", "shared-secret", "shared-secret-set", "time-out", "override-proxy", "proxy-url"], field: field)
        if try settings.flag("override-proxy", default: false) || !(settings["proxy-url"]?.stringValue ?? "").isEmpty {
            throw ManagementError.invalid("\(field).override-proxy", "Rampart sends web requests directly; a proxy is not supported")
        }
        let url = try SmartTaskChecks.url(settings["url"], field: "\(field).url")
        var secret = ""
        if let given = settings["shared-secret"] {
            guard let text = given.stringValue else { throw ManagementError.invalid("\(field).shared-secret", "expected text") }
            if !text.isEmpty { try SmartTaskDefinition.checkSecret(text) }
            secret = text
        } else if let existing, existing.fields["action"]?[SmartTaskDefinition.webRequestKey]?["url"]?.stringValue == url {
            secret = existing.fields[ManagedObject.smartTaskSecretField]?.stringValue ?? ""
        }
        let stored: [String: JSONValue] = [
            "url": .string(url),
            "fingerprint": .string(try SmartTaskChecks.fingerprint(settings["fingerprint"], field: "\(field).fingerprint") ?? ""),
            "time-out": .int(
                Int64(
                    try SmartTaskDefinition.timeout(settings["time-out"], field: "\(field).time-out", default: Limits.smartTaskWebRequestTimeoutSecondsDefault))
            ),
        ]
        return (.object([SmartTaskDefinition.webRequestKey: .object(stored)]), secret)
    }

    func onlyKeys(_ settings: [String: JSONValue], _ allowed: Set<String>, field: String) throws {
        if let unknown = settings.keys.sorted().first(where: { !allowed.contains($0) }) { throw ManagementError.unknownParameter("\(field).\(unknown)") }
    }

    /// A repository script's body: `script-body`, or `script-body-base64` decoded (one of them).
    func normalizeRepositoryScript(_ p: inout [String: JSONValue]) throws {
        guard let encoded = p.removeValue(forKey: "script-body-base64") else { return }
        guard p["script-body"] == nil else { throw ManagementError.invalid("script-body-base64", "give script-body or script-body-base64, not both") }
        guard let text = encoded.stringValue, text.utf8.count <= Limits.repositoryScriptBodyBytesMax * 4 / 3 + 4,
            let data = Data(base64Encoded: text), let body = String(data: data, encoding: .utf8)
        else { throw ManagementError.invalid("script-body-base64", "expected base64 of a UTF-8 script") }
        p["script-body"] = .string(body)
    }
}

// MARK: - rendering

extension SmartTaskDefinition {
    /// A stored smart-task's `action` as shows render it: references as small objects, the
    /// shared secret replaced by `shared-secret-set` (true when one is stored; its value is never shown).
    public static func renderedAction(_ object: ManagedObject, renderer: Renderer) -> JSONValue {
        guard let action = object.fields["action"]?.objectValue, let only = action.first, var settings = only.value.objectValue else {
            return object.fields["action"] ?? .null
        }
        switch only.key {
        case webRequestKey:
            settings["shared-secret-set"] = .bool(!(object.fields[ManagedObject.smartTaskSecretField]?.stringValue ?? "").isEmpty)
        case runScriptKey:
            if let script = settings["repository-script"]?.stringValue { settings["repository-script"] = renderer.reference(script, level: .standard) }
            settings["targets"] = .array((settings["targets"]?.arrayValue ?? []).compactMap(\.stringValue).map { renderer.reference($0, level: .standard) })
        default: break
        }
        return .object([only.key: .object(settings)])
    }
}
