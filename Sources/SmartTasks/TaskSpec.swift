import ManagementModel

/// The trigger names, as Check Point's API names them (`trigger: "Before Publish"`), and Rampart's.
public enum TriggerName {
    public static let beforePublish = "Before Publish"
    public static let afterPublish = "After Publish"
    public static let afterInstallPolicy = "After Install Policy"
    public static let haStateChanged = "HA State Changed"
    public static let syncStatusChanged = "Sync Status Changed"
    public static let syncRecovered = "Sync Recovered"
    public static let certificateExpiring = "Certificate Expiring"
    public static let clockSkew = "Clock Skew"
    public static let backupFinished = "Backup Finished"
    public static let backupFailed = "Backup Failed"
    public static let gatewayStatusChanged = "Gateway Status Changed"
    public static let clusterFailover = "Cluster Failover"
}

/// What the delivery engine needs of one smart-task: read from the published objects at each delivery
/// (so a changed URL or secret applies to deliveries still queued, and secrets never enter the queue).
public struct SmartTaskSpec: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case sendWebRequest(WebRequest)
        case runScript(Script)
        case sendMail(Mail)
    }

    public struct WebRequest: Sendable, Equatable {
        public var url: String
        /// SHA-256 (or Check Point's SHA-1) of the receiver's leaf certificate, hex with or without colons.
        public var fingerprint: String?
        public var sharedSecret: String?
        public var timeoutSeconds: Int?

        public init(url: String, fingerprint: String? = nil, sharedSecret: String? = nil, timeoutSeconds: Int? = nil) {
            self.url = url
            self.fingerprint = fingerprint
            self.sharedSecret = sharedSecret
            self.timeoutSeconds = timeoutSeconds
        }
    }

    public struct Script: Sendable, Equatable {
        public var name: String
        public var body: String
        public var timeoutSeconds: Int?

        public init(name: String, body: String, timeoutSeconds: Int? = nil) {
            self.name = name
            self.body = body
            self.timeoutSeconds = timeoutSeconds
        }
    }

    public struct Mail: Sendable, Equatable {
        public var recipients: String
        public var sender: String
        public var subject: String
        public var body: String
        public var smtpServer: String

        public init(recipients: String, sender: String, subject: String, body: String, smtpServer: String) {
            self.recipients = recipients
            self.sender = sender
            self.subject = subject
            self.body = body
            self.smtpServer = smtpServer
        }
    }

    public var uid: String
    public var name: String
    public var trigger: String
    public var action: Action
    public var enabled: Bool
    public var failOpen: Bool
    /// Custom data: a JSON text joined to the trigger's payload under `custom-data`.
    public var customData: String?

    public init(uid: String, name: String, trigger: String, action: Action, enabled: Bool = true, failOpen: Bool = true, customData: String? = nil) {
        self.uid = uid
        self.name = name
        self.trigger = trigger
        self.action = action
        self.enabled = enabled
        self.failOpen = failOpen
        self.customData = customData
    }

    /// The action's time-out, bounded.
    public func timeoutSeconds(limits: SmartTaskLimits) -> Int {
        let given: Int? =
            switch action {
            case .sendWebRequest(let request): request.timeoutSeconds
            case .runScript(let script): script.timeoutSeconds
            case .sendMail: nil
            }
        let range = SmartTaskLimits.actionTimeoutSecondsRange
        return min(max(given ?? limits.actionTimeoutDefaultSeconds, range.lowerBound), range.upperBound)
    }

    public var actionName: String {
        switch action {
        case .sendWebRequest: "send-web-request"
        case .runScript: "run-script"
        case .sendMail: "send-mail"
        }
    }
}

/// Where the engine reads the published smart-tasks (the composition root adapts the management service).
public protocol SmartTaskCatalog: Sendable {
    /// The enabled tasks of `trigger`, in a stable order.
    func tasks(for trigger: String) async -> [SmartTaskSpec]
    /// One task by uid (nil: deleted since it was queued).
    func task(uid: String) async -> SmartTaskSpec?
}
