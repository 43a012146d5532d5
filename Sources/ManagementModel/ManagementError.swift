/// An operating error with a stable Check Point error `code`, a message for people, and the HTTP
/// status the Web API answers with (CHECKPOINT-API.md §4).
public struct ManagementError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String
    public let httpStatus: Int
    public var details: [String: JSONValue]

    public init(code: String, message: String, httpStatus: Int, details: [String: JSONValue] = [:]) {
        self.code = code
        self.message = message
        self.httpStatus = httpStatus
        self.details = details
    }

    public var description: String { "\(code): \(message)" }

    public var body: JSONValue {
        var fields = details
        fields["code"] = .string(code)
        fields["message"] = .string(message)
        return .object(fields)
    }

    public static func notFound(_ what: String) -> ManagementError {
        .init(code: "generic_err_object_not_found", message: "Requested object [\(what)] not found", httpStatus: 404)
    }
    public static func invalid(_ field: String, _ reason: String) -> ManagementError {
        .init(code: "generic_err_invalid_parameter", message: "Invalid parameter for [\(field)]. \(reason)", httpStatus: 400)
    }
    public static func missing(_ fields: [String]) -> ManagementError {
        .init(
            code: "generic_err_missing_required_parameters",
            message: "Missing parameter: [\(fields.joined(separator: ", "))]", httpStatus: 400)
    }
    public static func unknownParameter(_ field: String) -> ManagementError {
        .init(
            code: "generic_err_invalid_parameter_name",
            message: "Unrecognized parameter [\(field)]", httpStatus: 400)
    }
    public static func notUnique(_ field: String, _ value: String) -> ManagementError {
        .init(
            code: "generic_err_object_field_not_unique",
            message: "More than one object have the same \(field) [\(value)]", httpStatus: 400)
    }
    public static func wrongType(_ field: String, _ reason: String) -> ManagementError {
        .init(code: "generic_err_object_type_wrong", message: "Invalid object type in [\(field)]. \(reason)", httpStatus: 400)
    }
    public static func noPermissions(_ reason: String) -> ManagementError {
        .init(code: "generic_err_no_permissions", message: reason, httpStatus: 403)
    }
    public static func rulebase(_ reason: String) -> ManagementError {
        .init(code: "err_rulebase_invalid_operation", message: reason, httpStatus: 400)
    }
    public static func internalError(_ reason: String) -> ManagementError {
        .init(code: "generic_internal_error", message: reason, httpStatus: 500)
    }
}
