import ManagementModel

/// The gateway's fencing rule, pure: accept policy (and the list of management servers) only from an
/// epoch at least as high as the highest one seen, and remember the highest. Epochs order by
/// (term, server), as management HA orders them, so an old active — whatever it believes — can never
/// overwrite what a newer one installed.
public struct EpochFence: Sendable, Equatable {
    public private(set) var highest: RevisionEpoch?

    public init(highest: RevisionEpoch?) { self.highest = highest }

    public enum Decision: Sendable, Equatable {
        /// Accept; `raised` when the epoch is new (persist it before acting on it).
        case accept(raised: Bool)
        case refuse(reason: String)
    }

    /// Decides about something from `epoch`, and raises the fence when it is higher.
    public mutating func admit(_ epoch: RevisionEpoch) -> Decision {
        if let highest {
            if epoch < highest { return .refuse(reason: "refused: gateway has seen epoch \(highest.text), this push is from epoch \(epoch.text)") }
            if epoch == highest { return .accept(raised: false) }
        }
        highest = epoch
        return .accept(raised: true)
    }
}
