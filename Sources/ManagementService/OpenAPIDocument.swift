import ManagementModel

/// The Web API as an OpenAPI 3 document, generated from the command table: one `POST /web_api/<command>`
/// per command the dispatcher serves, with its parameters (types, required) as the catalog knows them
/// and the common error shape. Served at `/web_api/openapi.json`; a test keeps it equal to the table,
/// and the contract fuzz (Tests/contract) drives the server from it.
public enum OpenAPIDocument {
    /// The whole document (built once: the table never changes while the server runs).
    public static let json: JSONValue = build(CommandTable.entries.values.map(\.spec).sorted { $0.name < $1.name })

    static func build(_ specs: [CommandSpec]) -> JSONValue {
        var paths: [String: JSONValue] = [:]
        for spec in specs { paths["/web_api/\(spec.name)"] = ["post": operation(spec)] }
        return [
            "openapi": "3.0.3",
            "info": [
                "title": "Rampart Web API",
                "version": .string(APIVersions.current),
                "description":
                    "Check Point's management Web API as Rampart serves it: every command is a POST of a JSON object; a session's sid from login goes in X-chkp-sid.",
            ],
            "paths": .object(paths),
            "components": [
                "securitySchemes": ["sid": ["type": "apiKey", "in": "header", "name": "X-chkp-sid"]],
                "schemas": ["Error": errorSchema],
            ],
        ]
    }

    /// Every error body: a code and a message, sometimes with details beside them.
    static let errorSchema: JSONValue = [
        "type": "object",
        "required": ["code", "message"],
        "properties": ["code": ["type": "string"], "message": ["type": "string"]],
    ]

    static func operation(_ spec: CommandSpec) -> JSONValue {
        var properties: [String: JSONValue] = [:]
        for parameter in spec.parameters {
            var schema = schema(parameter.type).objectValue ?? [:]
            schema["description"] = .string(parameter.summary)
            properties[parameter.name] = .object(schema)
        }
        var body: [String: JSONValue] = ["type": "object", "properties": .object(properties)]
        let required = spec.parameters.filter(\.required).map(\.name)
        if !required.isEmpty { body["required"] = .array(required.map(JSONValue.string)) }
        let error: JSONValue = [
            "description": "Refused: a Check Point error body.", "content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]],
        ]
        var operation: [String: JSONValue] = [
            "operationId": .string(spec.name),
            "summary": .string(spec.summary),
            "requestBody": ["required": false, "content": ["application/json": ["schema": .object(body)]]],
            "responses": [
                "200": ["description": "Done.", "content": ["application/json": ["schema": ["type": "object"]]]],
                "default": error,
            ],
            "x-rampart-permission": .string(spec.permission.rawValue),
            "x-rampart-changes": .bool(spec.changes),
        ]
        operation["security"] = spec.needsSession ? [["sid": []]] : []
        return .object(operation)
    }

    /// A parameter's JSON Schema, as close as the catalog's type says.
    static func schema(_ type: ParameterType) -> JSONValue {
        let names: JSONValue = ["type": "array", "items": ["type": "string"]]
        switch type {
        case .string, .reference: return ["type": "string"]
        case .integer: return ["type": "integer"]
        case .boolean: return ["type": "boolean"]
        case .choice(let words): return ["type": "string", "enum": .array(words.map(JSONValue.string))]
        case .ipv4Address: return ["type": "string", "format": "ipv4"]
        case .ipv6Address: return ["type": "string", "format": "ipv6"]
        case .ipAddress: return ["type": "string", "anyOf": [["format": "ipv4"], ["format": "ipv6"]]]
        case .port: return ["type": "string", "pattern": "^([0-9]+(-[0-9]+)?|[<>][0-9]+)$"]
        // In set-<type> also {"add": [...]} or {"remove": [...]}.
        case .references: return ["anyOf": [names, ["type": "object"]]]
        case .position: return ["anyOf": [["type": "integer"], ["type": "string"], ["type": "object"]]]
        case .object: return ["type": "object"]
        case .list: return ["type": "array"]
        case .stringOrList: return ["anyOf": [["type": "string"], names]]
        }
    }
}
