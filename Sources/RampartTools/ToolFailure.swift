/// A tool (demo, bench) could not do its work. `isUsage` when the operator's input is wrong: the
/// command then shows its usage, as for a bad flag.
public struct ToolFailure: Error, CustomStringConvertible {
    public let description: String
    public let isUsage: Bool

    public init(_ description: String, isUsage: Bool = false) {
        self.description = description
        self.isUsage = isUsage
    }
}
