import ManagementModel

/// The trigger names, as Check Point's API names them (`trigger: "Before Publish"`), and Rampart's
/// (the model's `SmartTaskTrigger` is the one list).
public enum TriggerName {
    public static let beforePublish = SmartTaskTrigger.beforePublish.name
    public static let afterPublish = SmartTaskTrigger.afterPublish.name
    public static let afterInstallPolicy = SmartTaskTrigger.afterInstallPolicy.name
    public static let haStateChanged = SmartTaskTrigger.haStateChanged.name
    public static let syncStatusChanged = SmartTaskTrigger.syncStatusChanged.name
    public static let syncRecovered = SmartTaskTrigger.syncRecovered.name
    public static let certificateExpiring = SmartTaskTrigger.certificateExpiring.name
    public static let clockSkew = SmartTaskTrigger.clockSkew.name
    public static let backupFinished = SmartTaskTrigger.backupFinished.name
    public static let backupFailed = SmartTaskTrigger.backupFailed.name
    public static let gatewayStatusChanged = SmartTaskTrigger.gatewayStatusChanged.name
    public static let clusterFailover = SmartTaskTrigger.clusterFailover.name
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

    public typealias Mail = SmartTaskMail

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

extension SmartTaskSpec {
    /// The engine's view of a published task; a run-script task needs its repository script's body
    /// (nil: the script was deleted, the task fails with that).
    public init(_ definition: SmartTaskDefinition, script: RepositoryScript?) {
        let action: Action
        switch definition.action {
        case .webRequest(let url, let fingerprint, let sharedSecret, let timeoutSeconds):
            action = .sendWebRequest(WebRequest(url: url, fingerprint: fingerprint, sharedSecret: sharedSecret, timeoutSeconds: timeoutSeconds))
        case .runScript(let scriptUID, _, let timeoutSeconds):
            action = .runScript(
                Script(name: script?.name ?? "\(scriptUID) (no longer exists)", body: script?.body ?? "exit 1", timeoutSeconds: timeoutSeconds))
        case .sendMail(let mail):
            action = .sendMail(mail)
        }
        let custom = definition.customData.objectValue.map { $0.isEmpty } ?? true ? nil : definition.customData.canonicalString
        self.init(
            uid: definition.uid, name: definition.name, trigger: definition.trigger.name, action: action, enabled: definition.enabled,
            failOpen: definition.failOpen, customData: custom)
    }
}
