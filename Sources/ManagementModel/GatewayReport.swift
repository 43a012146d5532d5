/// An epoch as it travels and is stored: "term/server".
extension RevisionEpoch {
    public var text: String { "\(term)/\(server)" }

    public var json: JSONValue { ["term": .int(Int64(clamping: term)), "server": .string(server)] }

    public init?(json: JSONValue?) {
        guard let term = json?["term"]?.intValue, term >= 0, let server = json?["server"]?.stringValue else { return nil }
        self.init(term: UInt64(term), server: server)
    }
}

/// What the agent reports about itself: the policy in force, the fence, the last refusal.
/// Agent → server on every channel (hello, heartbeat, install result); the server shows it as the
/// gateway's status.
public struct GatewayReport: Sendable, Equatable {
    /// Longest refusal text kept.
    public static let textLengthMax = 1_000

    public var name: String
    public var enforcement: String
    public var installedPackage: String?
    public var installedRevision: UInt64?
    public var installedEpoch: RevisionEpoch?
    public var installedAtMilliseconds: Int64?
    public var highestEpoch: RevisionEpoch?
    public var lastRefusal: String?

    public init(
        name: String, enforcement: String, installedPackage: String? = nil, installedRevision: UInt64? = nil,
        installedEpoch: RevisionEpoch? = nil, installedAtMilliseconds: Int64? = nil, highestEpoch: RevisionEpoch? = nil,
        lastRefusal: String? = nil
    ) {
        self.name = name
        self.enforcement = enforcement
        self.installedPackage = installedPackage
        self.installedRevision = installedRevision
        self.installedEpoch = installedEpoch
        self.installedAtMilliseconds = installedAtMilliseconds
        self.highestEpoch = highestEpoch
        self.lastRefusal = lastRefusal
    }

    public var json: JSONValue {
        var fields: [String: JSONValue] = ["name": .string(name), "enforcement": .string(enforcement)]
        if let installedPackage { fields["installed-package"] = .string(installedPackage) }
        if let installedRevision { fields["installed-revision"] = .int(Int64(clamping: installedRevision)) }
        if let installedEpoch { fields["installed-epoch"] = installedEpoch.json }
        if let installedAtMilliseconds { fields["installed-at"] = .int(installedAtMilliseconds) }
        if let highestEpoch { fields["highest-epoch"] = highestEpoch.json }
        if let lastRefusal { fields["last-refusal"] = .string(lastRefusal) }
        return .object(fields)
    }

    public init?(json: JSONValue?) {
        guard let json, let name = json["name"]?.stringValue else { return nil }
        self.init(
            name: name, enforcement: json["enforcement"]?.stringValue ?? "unknown",
            installedPackage: json["installed-package"]?.stringValue,
            installedRevision: json["installed-revision"]?.intValue.flatMap { $0 >= 0 ? UInt64($0) : nil },
            installedEpoch: RevisionEpoch(json: json["installed-epoch"]), installedAtMilliseconds: json["installed-at"]?.intValue,
            highestEpoch: RevisionEpoch(json: json["highest-epoch"]),
            lastRefusal: json["last-refusal"]?.stringValue.map { String($0.prefix(GatewayReport.textLengthMax)) })
    }
}
