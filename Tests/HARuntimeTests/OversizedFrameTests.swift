import Foundation
import HACore
import Logging
import ManagementModel
import PeerTransport
import Store
import Testing

@testable import HARuntime

/// A revision whose append frame is larger than the SIC channel carries is never dropped silently: the
/// active does not send it, and says so as its last error (`ha status`, `show-ha-status` `last-error`)
/// and in its log. (The receiving side closes a channel on a frame over its limit, with the reason in
/// an `error` frame and both logs: PeerTransportLiveTests.)
@Suite("HARuntime: an HA frame too large is an error someone sees")
struct OversizedFrameTests {
    /// Two runtimes joined by `HAPeerLinks` routes that carry at most `frameBytesMax` bytes a frame,
    /// encoded and decoded as on a SIC channel.
    @Test func anAppendOverTheChannelsLimitIsNotSentAndBecomesTheLastError() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let primaryStore = try ManagementStore(path: directory.appendingPathComponent("primary.sqlite").path)
        let secondaryStore = try ManagementStore(path: directory.appendingPathComponent("secondary.sqlite").path)
        // The same first revision on both: the standby follows by delta sync (appends) from the start.
        try publishHost(primaryStore, name: "seed")
        try publishHost(secondaryStore, name: "seed")
        let frameBytesMax = 4_096
        let primaryLinks = HAPeerLinks()
        let secondaryLinks = HAPeerLinks()
        func runtime(_ name: ServerID, _ peer: ServerID, _ store: ManagementStore, _ links: HAPeerLinks, active: Bool) throws -> HARuntime {
            try HARuntime(
                configuration: HAConfiguration(serverID: name, peers: [peer]), store: store, bootstrapActive: active,
                snapshotDirectory: directory.appendingPathComponent("\(name)-snapshots"),
                exportDirectory: directory.appendingPathComponent("\(name)-exports"), logger: Logger(label: "test.\(name)"),
                send: { try links.send($0) })
        }
        let primary = try runtime("primary", "secondary", primaryStore, primaryLinks, active: true)
        let secondary = try runtime("secondary", "primary", secondaryStore, secondaryLinks, active: false)
        _ = primaryLinks.attach("secondary", frameBytesMax: frameBytesMax) { frame in
            HAMessageCodec.decode(frame: frame).map { secondary.deliver(from: "primary", $0) }
            return true
        }
        _ = secondaryLinks.attach("primary", frameBytesMax: frameBytesMax) { frame in
            HAMessageCodec.decode(frame: frame).map { primary.deliver(from: "secondary", $0) }
            return true
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await primary.run() }
            group.addTask { await secondary.run() }
            #expect(try await eventually { try secondaryStore.head()?.hash == primaryStore.head()?.hash })

            // A revision that fits travels.
            let small = try nextHostRevision(primaryStore, name: "small")
            _ = try primary.commit(small) { try primaryStore.append(small) }
            #expect(try await eventually { try secondaryStore.head()?.number == small.number })
            #expect(primary.snapshot.lastError == nil)

            // One larger than the channel carries: not sent, and said.
            var object = host("large", uid: "uid-large")
            object.fields["comments"] = .string(String(repeating: "c", count: 2 * frameBytesMax))
            let large = Revision(
                after: (small.number, small.hash), epoch: small.epoch, publishedAtMilliseconds: 11, author: "alice",
                sessionUID: "s", sessionName: "", changes: [.upsert(object)])
            _ = try primary.commit(large) { try primaryStore.append(large) }
            #expect(try await eventually { primary.snapshot.lastError != nil })
            let error = try #require(primary.snapshot.lastError)
            #expect(error.contains("append of revision \(large.number) to secondary was not sent"), "\(error)")
            #expect(error.contains("exceeds the \(frameBytesMax) bytes its SIC channel carries"), "\(error)")
            #expect(primary.snapshot.lastErrorAt != nil)
            #expect(try secondaryStore.head()?.number == small.number, "the standby never got it")
            group.cancelAll()
        }
    }

    @Test func aMessageToAPeerWithoutAChannelIsNoError() throws {
        let links = HAPeerLinks()
        let message = HAMessage(epoch: .initial, body: .promotionPoll)
        try links.send(Envelope(to: "nobody", message: message))
    }
}
