/// A fact about this server that matters when it is promoted, beside what the HA core decides (path,
/// lag, loss): its trust (SIC certificate, the Internal CA it needs to sign and revoke), its clock
/// against its peers', and versions. The dry run and the promotion report them; none refuses a
/// promotion (that is the core's call, on loss alone): they say what to fix, before or after.
public struct PromotionCheck: Sendable, Equatable {
    public enum Status: String, Sendable, Comparable {
        case ok, warning, problem

        public static func < (lhs: Status, rhs: Status) -> Bool { lhs.rank < rhs.rank }
        var rank: Int { self == .ok ? 0 : self == .warning ? 1 : 2 }
    }

    /// "trust", "clock" or "versions".
    public var name: String
    public var status: Status
    public var detail: String

    public init(name: String, status: Status, detail: String) {
        self.name = name
        self.status = status
        self.detail = detail
    }
}
