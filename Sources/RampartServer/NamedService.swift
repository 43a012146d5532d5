import Logging
import ServiceLifecycle

/// One of a node's services under its name, whose stop is logged: a shutdown that does not finish says
/// which service it still waits for (the group stops them one at a time, the last started first).
struct NamedService: Service {
    let name: String
    let base: any Service
    let logger: Logger

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await base.run()
        } onGracefulShutdown: {
            logger.info("stopping \(name)")
        }
        logger.debug("\(name) stopped")
    }
}

extension RampartNode {
    /// The longest a graceful shutdown may take before the services still running are cancelled.
    static let gracefulShutdownSecondsMax: Int64 = 60
}
