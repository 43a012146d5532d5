import Foundation
import ManagementService

/// Every long-lived SIC channel open on this server (HA channels to the other management servers,
/// gateways' channels), by the node uid its peer certificate names. A revocation cuts the node's
/// channels at once (`closeChannels`): a certificate is checked when a channel opens, so without this
/// a revoked standby would keep the channel it had, and every revision published on it.
final class SICChannels: SICChannelCloser, @unchecked Sendable {
    /// One channel's registration: `cutOff` yields the reason once, when the channel must close.
    struct Registration: Sendable {
        fileprivate let token: UInt64
        let cutOff: AsyncStream<String>
    }

    private struct Entry {
        let node: String
        let cut: AsyncStream<String>.Continuation
    }

    private let lock = NSLock()
    private var entries: [UInt64: Entry] = [:]
    private var nextToken: UInt64 = 0

    /// Registers a channel whose peer is node `uid`; `unregister` it when the channel ends.
    func register(node uid: String) -> Registration {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        let token = lock.withLock {
            nextToken += 1
            entries[nextToken] = Entry(node: uid, cut: continuation)
            return nextToken
        }
        return Registration(token: token, cutOff: stream)
    }

    func unregister(_ registration: Registration) {
        lock.withLock { entries.removeValue(forKey: registration.token) }?.cut.finish()
    }

    @discardableResult
    func closeChannels(ofNode uid: String, reason: String) -> Int {
        let cut = lock.withLock { () -> [Entry] in
            let matching = entries.filter { $0.value.node == uid }
            for token in matching.keys { entries.removeValue(forKey: token) }
            return Array(matching.values)
        }
        for entry in cut {
            entry.cut.yield(reason)
            entry.cut.finish()
        }
        return cut.count
    }

    /// Text from a peer, safe to log or show: control characters become `?`.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }

    /// Channels open now to node `uid` (tests, status).
    func openCount(ofNode uid: String) -> Int { lock.withLock { entries.values.filter { $0.node == uid }.count } }
}
