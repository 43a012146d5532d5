import ManagementModel

/// Where an installed policy takes effect on a gateway. `apply` is atomic: after it returns the
/// new policy is in force, after it throws the previous one still is.
public protocol PolicyEnforcer: Sendable {
    /// "nftables" or "none", as `--enforce` names it.
    var name: String { get }
    func apply(_ policy: CompiledPolicy) async throws
    /// Puts the initial policy in force: what a gateway enforces before its first install (only its
    /// management channels pass; see `NftablesRenderer.renderInitial`).
    func applyInitialPolicy() async throws
}

/// `--enforce none`: the policy is kept in memory (and on disk by the agent) and answers the
/// matcher, but nothing in the kernel changes.
public struct MemoryEnforcer: PolicyEnforcer {
    public var name: String { "none" }
    public init() {}
    public func apply(_ policy: CompiledPolicy) async throws {}
    public func applyInitialPolicy() async throws {}
}
