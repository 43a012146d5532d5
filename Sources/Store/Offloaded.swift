import Foundation

/// Runs blocking file and database work (a backup, a snapshot copy: seconds on a large database) on a
/// dispatch queue, so the threads that serve requests and carry the network (two on a two-core machine)
/// go on meanwhile.
public func offloaded<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global(qos: .utility).async { continuation.resume(with: Result { try work() }) }
    }
}
