import Foundation
import ManagementService
import Synchronization

/// Every long-lived SIC channel open on this server (HA channels to the other management servers,
/// gateways' channels), by the node uid its peer certificate names. A revocation cuts the node's
/// channels at once (`closeChannels`): a certificate is checked when a channel opens, so without this
/// a revoked standby would keep the channel it had, and every revision published on it.
public final class SICChannels: SICChannelCloser, Sendable {
    /// One channel's registration: `cutOff` yields the reason once, when the channel must close.
    public struct Registration: Sendable {
        fileprivate let token: UInt64
        public let cutOff: AsyncStream<String>
    }

    private struct Entry {
        let node: String
        let cut: AsyncStream<String>.Continuation
    }

    private let state = Mutex<(entries: [UInt64: Entry], nextToken: UInt64)>(([:], 0))

    public init() {}

    /// Registers a channel whose peer is node `uid`; `unregister` it when the channel ends.
    public func register(node uid: String) -> Registration {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self, bufferingPolicy: .bufferingNewest(1))
        let token = state.withLock { state in
            state.nextToken += 1
            state.entries[state.nextToken] = Entry(node: uid, cut: continuation)
            return state.nextToken
        }
        return Registration(token: token, cutOff: stream)
    }

    public func unregister(_ registration: Registration) {
        state.withLock { $0.entries.removeValue(forKey: registration.token) }?.cut.finish()
    }

    @discardableResult
    public func closeChannels(ofNode uid: String, reason: String) -> Int {
        let cut = state.withLock { state -> [Entry] in
            let matching = state.entries.filter { $0.value.node == uid }
            for token in matching.keys { state.entries.removeValue(forKey: token) }
            return Array(matching.values)
        }
        for entry in cut {
            entry.cut.yield(reason)
            entry.cut.finish()
        }
        return cut.count
    }

    /// Text from a peer, safe to log or show: control characters become `?`.
    public static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }

    /// Channels open now to node `uid` (tests, status).
    public func openCount(ofNode uid: String) -> Int { state.withLock { $0.entries.values.filter { $0.node == uid }.count } }
}
