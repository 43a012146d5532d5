import Store

extension HardStateStore {
    /// Raises the HA epoch in a staged database (a restore as new primary, a migrate import): this
    /// server becomes the primary in a term above `floor`, recorded in its settings. Returns the term.
    public static func raiseEpoch(databasePath: String, server: String, above floor: UInt64) throws -> UInt64 {
        let store = try ManagementStore(path: databasePath)
        let term = try HardStateStore(store: store).restoreAsNewPrimary(server: server, above: floor)
        try store.setSetting("epoch-term", String(term))
        return term
    }
}
