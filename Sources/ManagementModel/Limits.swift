/// Every bound of the management model and API in one place (TigerBeetle style: a limit on everything).
public enum Limits {
    public static let requestBodyBytesMax = 1 << 20
    public static let jsonDepthMax = 32
    public static let nameLengthMax = 128
    public static let commentsLengthMax = 4_096
    public static let stringLengthMax = 1_024
    /// Text is bounded in characters (what people count) and in UTF-8 bytes (what is stored and sent):
    /// one character can carry any number of combining marks. A limit of N characters allows 4N bytes,
    /// any N characters of one code point each.
    public static let utf8BytesPerCharacterMax = 4
    public static let nameBytesMax = nameLengthMax * utf8BytesPerCharacterMax
    public static let commentsBytesMax = commentsLengthMax * utf8BytesPerCharacterMax
    public static let stringBytesMax = stringLengthMax * utf8BytesPerCharacterMax

    /// True when `text` has at most `characters` characters and `characters` × 4 UTF-8 bytes (the
    /// byte count is checked first: it is free, the character count is not).
    public static func fits(_ text: String, characters: Int) -> Bool {
        text.utf8.count <= characters * utf8BytesPerCharacterMax && text.count <= characters
    }

    /// `text` cut to what `fits` allows, at a character boundary.
    public static func truncated(_ text: String, characters: Int) -> String {
        if fits(text, characters: characters) { return text }
        var out = ""
        for character in text.prefix(characters) {
            guard out.utf8.count + character.utf8.count <= characters * utf8BytesPerCharacterMax else { break }
            out.append(character)
        }
        return out
    }
    public static let listLengthMax = 10_000
    public static let tagsMax = 64
    public static let pageSizeDefault = 50
    public static let pageSizeMax = 500
    /// The largest `offset` a list takes: beyond any list's length, and far from Int64's end, so
    /// `offset + limit` never overflows.
    public static let pageOffsetMax: Int64 = 2_147_483_647
    public static let sessionsMax = 100
    public static let sessionTimeoutSecondsDefault = 600
    public static let sessionTimeoutSecondsMax = 86_400
    public static let changesPerSessionMax = 100_000
    public static let tasksKeptMax = 10_000
    /// How long `show-task` answers for a finished task (`rampart server --task-retention-seconds`).
    public static let taskRetentionSeconds = 3_600
    public static let taskRetentionSecondsRange = 60...86_400
    public static let groupNestingDepthMax = 64
    /// A compiled policy's rules (all layers, implicit cleanup rules included).
    public static let compiledRulesMax = 20_000
    /// Address ranges or service entries one compiled rule cell may hold after groups are resolved.
    public static let compiledCellEntriesMax = 50_000

    // Gateway clusters (ClusterModel). ClusterXL runs at most 5 members (anchors-wave2 §1.7).
    public static let clusterMembersMax = 5
    /// A cluster's heartbeat key (HMAC-SHA256): 32 random bytes.
    public static let clusterHeartbeatKeyBytes = 32
    /// Interfaces of a cluster, and of each member.
    public static let clusterInterfacesMax = 32
    public static let interfaceNameLengthMax = 15  // Linux IFNAMSIZ - 1
    /// Interface and member keys Rampart keeps as given (topology, anti-spoofing…), each.
    public static let clusterPassThroughBytesMax = 4_096
    /// A higher priority wins an election; the first listed member gets the default first priority.
    public static let clusterPriorityRange: ClosedRange<Int64> = 1...255
    public static let clusterPriorityDefaultFirst: Int64 = 100
    public static let clusterHeartbeatIntervalMillisecondsRange: ClosedRange<Int64> = 20...5_000
    public static let clusterHeartbeatIntervalMillisecondsDefault: Int64 = 200
    public static let clusterDeadTimerMillisecondsRange: ClosedRange<Int64> = 100...60_000
    public static let clusterDeadTimerMillisecondsDefault: Int64 = 1_000
    /// The dead timer spans at least this many heartbeat intervals.
    public static let clusterHeartbeatsPerDeadTimerMin: Int64 = 3
    /// A member's status report: pnotes listed, and the length of a pnote name, an event code, a reason.
    public static let clusterReportPnotesMax = 64
    public static let clusterReportPnoteNameLengthMax = 64
    public static let clusterReportEventCodeLengthMax = 32
    public static let clusterReportReasonLengthMax = 1_000

    // SmartTasks (CHECKPOINT-API.md §3.8).
    /// An action's time-out: a before-publish task holds the publish this long at most.
    public static let smartTaskTimeoutSecondsRange: ClosedRange<Int64> = 1...900
    /// Check Point's examples: 200 s for a web request, 30 s for a script.
    public static let smartTaskWebRequestTimeoutSecondsDefault = 200
    public static let smartTaskScriptTimeoutSecondsDefault = 30
    public static let smartTaskURLBytesMax = 2_048
    public static let smartTaskSecretLengthMax = 256
    /// Custom data: the text of a JSON object, added to every payload of the task.
    public static let smartTaskCustomDataBytesMax = 16 * 1_024
    public static let smartTaskCustomDataDepthMax = 16
    public static let smartTaskTargetsMax = 16
    public static let smartTaskMailRecipientsMax = 50
    public static let smartTaskMailBodyBytesMax = 64 * 1_024
    /// A repository script's body (a script, not a program: it runs as the server's user).
    public static let repositoryScriptBodyBytesMax = 256 * 1_024
}
