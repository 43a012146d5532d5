import ManagementModel
import ManagementService

/// `rampart mgmt <command> --help` and `rampart mgmt show-commands`, from the server's command
/// catalog (the same list the server serves and authorizes by). Lines are not wrapped here: the
/// terminal wraps a long line once.
public enum MgmtHelp {
    /// What a command needs, in words.
    static func requirement(_ spec: CommandSpec) -> String {
        switch spec.permission {
        case .readOnly: spec.changes ? "a read-write session" : "any session"
        case .readWrite: "a read-write session of a read-write administrator or a super-user"
        case .superUser: "a read-write session of a super-user"
        case .ownSessionOrSuperUser: (spec.changes ? "a read-write session; " : "any session; ") + "another administrator's session (uid) needs a super-user"
        }
    }

    /// One command's help: what it does, what it needs, and its parameters (name, type, required, description).
    public static func text(for spec: CommandSpec) -> String {
        var lines = ["\(spec.name): \(spec.summary)", ""]
        lines.append(
            "Changes anything: \(spec.changes ? "yes" : "no")\(spec.draftsChanges ? " (a draft in the session, published by rampart mgmt unless -s is given)" : "")"
        )
        lines.append("Session: \(spec.needsSession ? "needed; permission \(spec.permission.rawValue): \(requirement(spec))" : "not needed")")
        lines.append("")
        if spec.parameters.isEmpty {
            lines.append("PARAMETERS: none")
        } else {
            lines.append("PARAMETERS")
            let nameWidth = spec.parameters.map(\.name.count).max() ?? 0
            let typeWidth = min(spec.parameters.map(\.type.text.count).max() ?? 0, 24)
            for parameter in spec.parameters {
                let name = parameter.name.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                let type =
                    parameter.type.text.count > typeWidth ? parameter.type.text : parameter.type.text.padding(toLength: typeWidth, withPad: " ", startingAt: 0)
                lines.append("  \(name)  \(type)  \(parameter.required ? "required" : "        ")  \(parameter.summary)")
            }
        }
        lines.append("")
        lines.append("USAGE: rampart mgmt \(spec.name) [key=value ...] [-s SESSIONFILE | -u USER | -r true --data DIR]")
        lines.append("Nested keys: key.sub=value, lists: key.1=a key.2=b (rampart mgmt --help). Every command: rampart mgmt show-commands")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `rampart mgmt show-commands`: every command, one a line.
    public static func commandList() -> String {
        let width = CommandCatalog.all.map(\.name.count).max() ?? 0
        let permissionWidth = CommandPermission.allCases.map(\.rawValue.count).max() ?? 0
        var lines = [
            "\("COMMAND".padding(toLength: width, withPad: " ", startingAt: 0))  \("PERMISSION".padding(toLength: permissionWidth, withPad: " ", startingAt: 0))  CHANGES  SUMMARY"
        ]
        for spec in CommandCatalog.all {
            let permission = spec.needsSession ? spec.permission.rawValue : "no session"
            lines.append(
                "\(spec.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(permission.padding(toLength: permissionWidth, withPad: " ", startingAt: 0))  \(spec.changes ? "yes    " : "no     ")  \(spec.summary)"
            )
        }
        lines.append("")
        lines.append("A command's parameters: rampart mgmt COMMAND --help")
        return lines.joined(separator: "\n") + "\n"
    }

    /// The catalog as JSON (`show-commands --format json`).
    public static var commandListJSON: JSONValue {
        .object([
            "commands": .array(
                CommandCatalog.all.map { spec in
                    .object([
                        "name": .string(spec.name), "summary": .string(spec.summary), "changes": .bool(spec.changes),
                        "needs-session": .bool(spec.needsSession), "permission": .string(spec.permission.rawValue),
                        "parameters": .array(
                            spec.parameters.map { parameter in
                                .object([
                                    "name": .string(parameter.name), "type": .string(parameter.type.text),
                                    "required": .bool(parameter.required), "description": .string(parameter.summary),
                                ])
                            }),
                    ])
                })
        ])
    }
}
