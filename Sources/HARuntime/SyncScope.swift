/// What Management HA keeps identical on every server of the group, and what each server keeps for
/// itself (DESIGN.md §3). The README and `rampart ha --help` show these lists.
public enum SyncScope {
    /// Synchronized: through the revision journal (delta and full sync), except the ICA state, which
    /// the active sends over each SIC channel.
    public static let synchronized: [String] = [
        "every published revision: objects, rules, layers, packages, services, groups (the revision journal, hash-chained)",
        "administrators and their password hashes (administrator objects)",
        "management servers: checkpoint-host objects with their SIC state and addresses",
        "the replication mode (async or sync), from the active's heartbeats",
        "the Internal CA's certificate, private key and revocation list (sent by the active over mutual TLS; stored 0600)",
    ]

    /// Never synchronized: each server's own.
    public static let nodeLocal: [String] = [
        "unpublished sessions and their drafts and locks",
        "logs (logs.sqlite: gateways send their logs to every management server, each stores its own)",
        "node settings: listen address, ports, server name, data paths (node.json, ha.json)",
        "this server's SIC key and certificate (pki/node.key, node.pem) and its API certificate",
        "HA hard state: epoch seen, role, full-sync progress; divergent-revision exports (ha-exports/)",
    ]

    public static var text: String {
        "Synchronized:\n" + synchronized.map { "  - \($0)" }.joined(separator: "\n")
            + "\nNot synchronized (each server's own):\n" + nodeLocal.map { "  - \($0)" }.joined(separator: "\n")
    }
}
