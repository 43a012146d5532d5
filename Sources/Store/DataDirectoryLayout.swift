/// Names inside a management server's data directory (DESIGN.md §6), in one place for every module
/// that reads or writes them: the server, the operations tools, the HA runtime, the CLI's clients.
public enum DataDirectoryLayout {
    /// The management database and revision journal (WAL).
    public static let database = "rampart.sqlite"
    /// This node's logs; never synchronized.
    public static let logs = LogStore.fileName
    /// Node-local settings (addresses, ports, backup schedule), written by the server once it listens.
    public static let nodeSettings = "node.json"
    /// A secondary's membership of its HA group.
    public static let haMembership = "ha.json"
    /// This node's key and certificate, the Internal CA's certificate (and, where held, its key).
    public static let pki = "pki"
    /// A secondary's node-local API CA, while it serves HTTPS without the group CA's key.
    public static let apiTLS = "api-tls"
    /// The local operator socket (0600).
    public static let socket = "rampart.sock"
    /// Held by the process that runs on the directory (a server, a restore).
    public static let lock = "rampart.lock"
    /// The first administrator's generated password (0600, first start only).
    public static let initialAdminPassword = "initial-admin-password"
    /// Full-sync snapshots the HA runtime streams and receives.
    public static let haSnapshots = "ha-snapshots"
    /// Divergent revisions exported after a collision.
    public static let haExports = "ha-exports"
    public static let backups = "backups"
    public static let snapshots = "snapshots"
    public static let lastBackupStatus = "last-backup.json"
}
