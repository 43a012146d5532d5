import Foundation
import Logging
import Synchronization
import Testing

@testable import RampartServer

@Suite("Log escaping")
struct LogEscapingTests {
    @Test func controlCharactersBecomeEscapes() {
        #expect(LogEscaping.escape("plain name-1 é 漢") == "plain name-1 é 漢")
        #expect(LogEscaping.escape("a\nb\rc\td") == #"a\nb\rc\td"#)
        #expect(LogEscaping.escape("\u{1B}[31mred\u{0}\u{7F}\u{85}\u{9B}") == #"\u{1B}[31mred\u{0}\u{7F}\u{85}\u{9B}"#)
        #expect(LogEscaping.escape("line\u{2028}para\u{2029}rtl\u{202E}iso\u{2066}") == #"line\u{2028}para\u{2029}rtl\u{202E}iso\u{2066}"#)
        // A backslash is escaped too, so an escape sequence cannot be forged by sending it literally.
        #expect(LogEscaping.escape(#"a\nb"#) == #"a\\nb"#)
    }

    @Test func metadataAtEveryDepthIsEscaped() {
        let metadata: Logger.Metadata = ["user\n": "x\ny", "nested": ["inner": "a\rb", "list": ["c\u{1B}"]]]
        let escaped = LogEscaping.escape(metadata)
        #expect(escaped[#"user\n"#] == .string(#"x\ny"#))
        guard case .dictionary(let nested)? = escaped["nested"], case .array(let list)? = nested["list"] else {
            Issue.record("shape changed: \(escaped)")
            return
        }
        #expect(nested["inner"] == .string(#"a\rb"#))
        #expect(list == [.string(#"c\u{1B}"#)])
    }

    /// Through the handler: message, call metadata, logger metadata and error, as written.
    @Test func theHandlerWritesOneLinePerEvent() {
        let sink = Sink()
        var logger = Logger(label: "test") { _ in
            EscapingLogHandler(wrapping: StreamLogHandler(label: "test", stream: sink, metadataProvider: nil), metadataProvider: nil)
        }
        logger[metadataKey: "peer"] = "p\nFORGED"
        struct Failure: Error, CustomStringConvertible { var description: String { "bad\nFORGED" } }
        logger.error("login\nFORGED failed", error: Failure(), metadata: ["user": "u\r\nFORGED"])
        let lines = sink.text.split(separator: "\n")
        #expect(lines.count == 1, "\(sink.text)")
        #expect(
            !sink.text.contains("\nFORGED") && sink.text.contains(#"login\nFORGED failed"#) && sink.text.contains(#"u\r\nFORGED"#)
                && sink.text.contains(#"p\nFORGED"#) && sink.text.contains(#"bad\nFORGED"#), "\(sink.text)")
    }
}

final class Sink: TextOutputStream, Sendable {
    private let buffer = Mutex("")
    var text: String { buffer.withLock { $0 } }
    func write(_ string: String) { buffer.withLock { $0 += string } }
}
