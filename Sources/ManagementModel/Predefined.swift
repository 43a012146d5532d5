/// Objects every Check Point database has and nobody creates: Any, the rule actions, the track types,
/// and "Policy Targets". Their uids are fixed so that every server agrees on them.
public enum Predefined {
    static func make(_ uid: String, _ type: ObjectType, _ name: String) -> ManagedObject {
        ManagedObject(
            uid: uid, type: type, name: name, fields: ["color": .string("black"), "comments": .string("")],
            meta: MetaInfo(creator: "System", creationTimeMilliseconds: 0, lastModifier: "System", lastModifyTimeMilliseconds: 0))
    }

    public static let anyUID = "97aeb369-9aea-11d5-bd16-0090272ccb30"
    public static let acceptUID = "6c488338-8eec-4103-ad21-cd461ac2c472"
    public static let dropUID = "6c488338-8eec-4103-ad21-cd461ac2c473"
    public static let noneTrackUID = "29e53e3d-23bf-48fe-b6b1-d59bd88036f9"
    public static let logTrackUID = "598ead32-aa42-4615-90ed-f51a5928d41d"
    public static let policyTargetsUID = "6c488338-8eec-4103-ad21-cd461ac2c476"
    public static let innerLayerUID = "6c488338-8eec-4103-ad21-cd461ac2c47a"

    public static let all: [ManagedObject] = [
        make(anyUID, .any, "Any"),
        make(acceptUID, .action, "Accept"),
        make(dropUID, .action, "Drop"),
        make("6c488338-8eec-4103-ad21-cd461ac2c474", .action, "Reject"),
        make("6c488338-8eec-4103-ad21-cd461ac2c477", .action, "Ask"),
        make("6c488338-8eec-4103-ad21-cd461ac2c478", .action, "Inform"),
        make("6c488338-8eec-4103-ad21-cd461ac2c479", .action, "User Auth"),
        make("6c488338-8eec-4103-ad21-cd461ac2c47b", .action, "Client Auth"),
        make(innerLayerUID, .action, "Inner Layer"),
        make(noneTrackUID, .track, "None"),
        make(logTrackUID, .track, "Log"),
        make("598ead32-aa42-4615-90ed-f51a5928d41e", .track, "Extended Log"),
        make("598ead32-aa42-4615-90ed-f51a5928d41f", .track, "Detailed Log"),
        make(policyTargetsUID, .policyTargets, "Policy Targets"),
    ]

    public static let byUID: [String: ManagedObject] = Dictionary(uniqueKeysWithValues: all.map { ($0.uid, $0) })

    /// Predefined objects by name; actions and tracks match case-insensitively, and "Apply Layer"
    /// is Check Point's input name for the stored "Inner Layer".
    public static func named(_ name: String) -> ManagedObject? {
        let wanted = name.lowercased() == "apply layer" ? "inner layer" : name.lowercased()
        return all.first { $0.name.lowercased() == wanted }
    }

    /// Colours Check Point accepts.
    public static let colors: [String] = [
        "aquamarine", "black", "blue", "crete blue", "burlywood", "cyan", "dark green", "khaki", "orchid",
        "dark orange", "dark sea green", "pink", "turquoise", "dark blue", "firebrick", "brown", "forest green",
        "gold", "dark gold", "gray", "dark gray", "light green", "lemon chiffon", "coral", "sea green", "sky blue",
        "magenta", "purple", "slate blue", "violet red", "navy blue", "olive", "orange", "red", "sienna", "yellow",
    ]
}
