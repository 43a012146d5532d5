import Foundation
import Logging
import ManagementService
import ServiceLifecycle
import TrustCore

/// The log as one subscriber of the node's events: every event one line, at notice, or at warning when
/// it needs an operator (`ManagementEvent.needsAttention`). Events this subscriber lost (the log fell
/// behind) are counted in a line of their own.
struct EventLog: Service {
    /// Events the log may fall behind by before it loses the oldest.
    static let bufferedEventsMax = 4_096

    let deliveries: AsyncStream<EventBus<ManagementEvent>.Delivery>
    let logger: Logger

    /// Subscribes at once, so events published before `run` starts are logged too.
    init(events: EventBus<ManagementEvent>, logger: Logger) throws {
        deliveries = try events.subscribe(bufferedEventsMax: Self.bufferedEventsMax)
        self.logger = logger
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await delivery in deliveries { log(delivery) }
        }
    }

    func log(_ delivery: EventBus<ManagementEvent>.Delivery) {
        switch delivery {
        case .event(let event, let sequence):
            logger.log(level: event.needsAttention ? .warning : .notice, "event \(event)", metadata: ["event-sequence": "\(sequence)"])
        case .lost(let count):
            logger.warning("event log fell behind: \(count) event(s) not logged")
        }
    }
}

/// Publishes `certificateExpiring` for this node's SIC certificate and the group's Internal CA when they
/// near their end: at start, then every `checkInterval` (a server runs for months).
struct CertificateWatch: Service {
    static let checkInterval = Duration.seconds(12 * 3_600)

    let credentials: NodeCredentials
    let events: EventBus<ManagementEvent>
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                check(now: Date())
                try? await Task.sleep(for: Self.checkInterval)
            }
        }
    }

    func check(now: Date) {
        guard let icaNotValidAfter = credentials.icaNotValidAfter else {
            logger.error("the Internal CA certificate in pki/ does not parse: its expiry cannot be checked")
            return
        }
        let expiring = CertificateLifecycle.expiringCertificates(
            icaNotValidAfter: icaNotValidAfter,
            nodeNotValidAfter: credentials.certificateNotValidAfter, now: now)
        for certificate in expiring {
            events.publish(
                .certificateExpiring(
                    CertificateExpiring(
                        certificate: certificate.which.rawValue, notValidAfter: certificate.notValidAfter,
                        daysLeft: certificate.daysLeft, advice: certificate.advice)))
        }
    }
}

/// Keeps the node's last events for `rampart view` (`ManagementService.recentEvents`): one subscriber
/// of the bus, subscribed at once like the log, so it sees this server's first HA state.
struct RecentEventsFeed: Service {
    /// Events the feed may fall behind by (it only keeps the last few anyway).
    static let bufferedEventsMax = 64

    let deliveries: AsyncStream<EventBus<ManagementEvent>.Delivery>
    let recent: RecentEvents
    let serverName: String

    init(events: EventBus<ManagementEvent>, recent: RecentEvents, serverName: String) throws {
        deliveries = try events.subscribe(bufferedEventsMax: Self.bufferedEventsMax)
        self.recent = recent
        self.serverName = serverName
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            for await delivery in deliveries {
                guard case .event(let event, let sequence) = delivery else { continue }
                recent.record(event, sequence: sequence, atMilliseconds: Int64(Date().timeIntervalSince1970 * 1000), localServer: serverName)
            }
        }
    }
}
