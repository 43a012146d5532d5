import HARuntime
import Testing

@Suite("Sync scope")
struct SyncScopeTests {
    /// Gateways send logs to every management server; HA must never carry them.
    @Test func logsAreNeverSynchronized() {
        #expect(SyncScope.nodeLocal.contains { $0.hasPrefix("logs") })
        #expect(!SyncScope.synchronized.contains { $0.contains("log") })
    }
}
