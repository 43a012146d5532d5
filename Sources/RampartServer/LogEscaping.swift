import Logging

/// Makes a logged text one line of plain characters: a user name, a node name or any other value
/// from a request or a peer cannot start a forged line of its own, nor rewrite the terminal.
/// Control characters (C0, DEL, C1), line and paragraph separators and bidirectional overrides become
/// `\n`, `\r`, `\t` or `\u{XX}`; a backslash becomes `\\`, so an escape cannot be forged either.
public enum LogEscaping {
    public static func escape(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 8)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where needsEscape(scalar): out += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func needsEscape(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        case 0x5C: true  // backslash
        default: false
        }
    }

    public static func escape(_ value: Logger.MetadataValue) -> Logger.MetadataValue {
        switch value {
        case .string(let text): .string(escape(text))
        case .stringConvertible(let convertible): .string(escape(convertible.description))
        case .dictionary(let metadata): .dictionary(escape(metadata))
        case .array(let values): .array(values.map(escape))
        }
    }

    public static func escape(_ metadata: Logger.Metadata) -> Logger.Metadata {
        Dictionary(metadata.map { (escape($0.key), escape($0.value)) }, uniquingKeysWith: { first, _ in first })
    }
}

/// A log handler that escapes control characters (`LogEscaping`) in the message, every metadata key
/// and value (the logger's, the call's and the metadata provider's) and the error, then hands the
/// event to the handler that writes it. Installed for the whole process by `bootstrap`.
public struct EscapingLogHandler: LogHandler {
    private var inner: any LogHandler
    public var metadataProvider: Logger.MetadataProvider?

    public init(wrapping inner: any LogHandler, metadataProvider: Logger.MetadataProvider?) {
        var inner = inner
        inner.metadataProvider = nil  // merged (and escaped) here instead
        self.inner = inner
        self.metadataProvider = metadataProvider
    }

    /// Every `Logger(label:)` of the process writes to stderr through this handler.
    public static func bootstrap() {
        LoggingSystem.bootstrap { label in
            EscapingLogHandler(wrapping: StreamLogHandler.standardError(label: label, metadataProvider: nil), metadataProvider: nil)
        }
    }

    public var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    public var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = LogEscaping.escape(newValue) }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: LogEscaping.escape(key)] }
        set { inner[metadataKey: LogEscaping.escape(key)] = newValue.map(LogEscaping.escape) }
    }

    public func log(event: LogEvent) {
        var event = event
        var metadata = metadataProvider?.get() ?? [:]
        metadata.merge(event.metadata ?? [:]) { _, explicit in explicit }
        if let error = event.error {
            metadata["error.message"] = "\(error)"
            metadata["error.type"] = "\(String(reflecting: type(of: error)))"
            event.error = nil
        }
        event.metadata = metadata.isEmpty ? nil : LogEscaping.escape(metadata)
        event.message = Logger.Message(stringLiteral: LogEscaping.escape(event.message.description))
        inner.log(event: event)
    }
}
