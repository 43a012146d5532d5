/// What a restore is asked to do.
public struct RestoreRequest: Sendable, Equatable {
    /// The disaster case: every server of the archive's HA group is lost, and this restore makes the
    /// new primary, in a raised epoch.
    public var asNewPrimary: Bool
    /// Replace the management database the target directory already holds (it is kept aside).
    public var replace: Bool

    public init(asNewPrimary: Bool = false, replace: Bool = false) {
        self.asNewPrimary = asNewPrimary
        self.replace = replace
    }
}

/// The facts a restore decision rests on, gathered by the shell.
public struct RestoreSituation: Sendable, Equatable {
    public var dataDirectory: String
    /// The directory's lock is held, or its operator socket answers.
    public var serverRunning: Bool
    /// The head of the database the target already holds; nil when it holds none.
    public var targetHead: ArchiveManifest.Head?
    public var targetHoldsDatabase: Bool
    /// The target joined an HA group as a secondary (DIR/ha.json).
    public var targetIsSecondary: Bool
    /// Other management servers the target's own database records.
    public var targetGroupPeers: [String]
    /// Other management servers the archive's database records.
    public var archiveGroupPeers: [String]
    /// Peers that answered a connection just now, as "name (address)". Probed for --as-new-primary only.
    public var answeringPeers: [String]

    public init(
        dataDirectory: String, serverRunning: Bool = false, targetHead: ArchiveManifest.Head? = nil, targetHoldsDatabase: Bool = false,
        targetIsSecondary: Bool = false, targetGroupPeers: [String] = [], archiveGroupPeers: [String] = [], answeringPeers: [String] = []
    ) {
        self.dataDirectory = dataDirectory
        self.serverRunning = serverRunning
        self.targetHead = targetHead
        self.targetHoldsDatabase = targetHoldsDatabase
        self.targetIsSecondary = targetIsSecondary
        self.targetGroupPeers = targetGroupPeers
        self.archiveGroupPeers = archiveGroupPeers
        self.answeringPeers = answeringPeers
    }
}

/// Decides whether a backup restore may go ahead. Pure: the shell gathers the facts, this says
/// yes or why not. The order matters: the first refusal is the one the operator must fix first.
public enum RestorePolicy {
    public static func refusal(_ situation: RestoreSituation, _ request: RestoreRequest) -> OperationsError? {
        let directory = situation.dataDirectory
        if situation.serverRunning {
            return OperationsError(
                "server-running",
                """
                a Rampart server is running on \(directory) (it holds the directory's lock or answers on rampart.sock): \
                stop it first. A restore under a running server would be overwritten by it, or corrupt what it serves.
                """)
        }
        let groupPeers = situation.targetGroupPeers + situation.archiveGroupPeers.filter { !situation.targetGroupPeers.contains($0) }
        let inGroup = situation.targetIsSecondary || !groupPeers.isEmpty
        if inGroup, !request.asNewPrimary {
            let whose =
                situation.targetIsSecondary
                ? "\(directory) is a secondary of an HA group"
                : "\(situation.targetGroupPeers.isEmpty ? "the backup" : directory) belongs to an HA group (other servers: \(groupPeers.joined(separator: ", ")))"
            return OperationsError(
                "ha-member",
                """
                \(whose). Restoring a member on its own would fork the group's journal. To rebuild a lost member, \
                add it again as a standby: it gets a full sync from the active (README: "Add a standby"). Only if every \
                server of the group is lost, restore with --as-new-primary: the restored server becomes the primary in a raised epoch.
                """)
        }
        if request.asNewPrimary, !situation.answeringPeers.isEmpty {
            return OperationsError(
                "ha-group-alive",
                """
                --as-new-primary refused: \(situation.answeringPeers.joined(separator: ", ")) answer\(situation.answeringPeers.count == 1 ? "s" : "") \
                on the SIC port, so the HA group still has a working server. Promote a standby there (`rampart ha promote`) \
                or add this machine as a standby; a second primary would split the group.
                """)
        }
        if request.asNewPrimary, situation.targetIsSecondary {
            return OperationsError(
                "ha-member",
                """
                \(directory) is a secondary's data directory (ha.json): restore the new primary into a fresh directory instead, \
                so this one stays as evidence and cannot come back as a second member.
                """)
        }
        if situation.targetHoldsDatabase, !request.replace {
            let head = situation.targetHead.map { "revision #\($0.number)" } ?? "no revisions"
            return OperationsError(
                "target-not-empty",
                """
                \(directory) already holds a management database (\(head)). Give --replace to replace it; the current \
                files are moved to \(directory)/before-restore-<time>/ first, not deleted.
                """)
        }
        return nil
    }
}
