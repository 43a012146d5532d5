import Testing

@testable import ManagementClient

/// `rampart time`'s local clock line, from the answers chronyc and timedatectl give (no process run).
@Suite("rampart time: the local clock's synchronization")
struct LocalClockSyncTests {
    static let chronyTracking = """
        Reference ID    : C0A80001 (ntp.example.net)
        Stratum         : 3
        Ref time (UTC)  : Sun Dec 06 20:00:00 2026
        System time     : 0.000012345 seconds fast of NTP time
        Last offset     : -0.000004 seconds
        Leap status     : Normal
        """

    @Test func chronyAnswersFirst() {
        let sync = LocalClockSync.interpret(chrony: (0, Self.chronyTracking), timedatectl: (0, "NTP=yes\nNTPSynchronized=yes\n"))
        #expect(sync.source == "chrony" && sync.synchronized == true)
        #expect(sync.detail.contains("System time: 0.000012345 seconds fast of NTP time") && sync.detail.contains("Leap status: Normal"))
        let unsynchronized = LocalClockSync.interpret(
            chrony: (0, Self.chronyTracking.replacingOccurrences(of: "Normal", with: "Not synchronised")), timedatectl: nil)
        #expect(unsynchronized.synchronized == false)
    }

    @Test func timesyncdWhenChronydDoesNotAnswer() {
        let sync = LocalClockSync.interpret(chrony: (1, "506 Cannot talk to daemon\n"), timedatectl: (0, "Timezone=UTC\nNTP=yes\nNTPSynchronized=no\n"))
        #expect(sync.source == "systemd-timesyncd" && sync.synchronized == false && sync.detail.contains("NTP service enabled"))
    }

    @Test func noServiceIsSaidPlainly() {
        let sync = LocalClockSync.interpret(chrony: nil, timedatectl: (1, "System has not been booted with systemd\n"))
        #expect(sync.source == "none" && sync.synchronized == nil && sync.detail.contains("install and start chrony"))
    }

    @Test func controlCharactersInAnAnswerAreDropped() {
        let sync = LocalClockSync.interpret(chrony: (0, "Reference ID : A\u{1B}[31mB\nLeap status : Normal\n"), timedatectl: nil)
        #expect(sync.detail.contains("A[31mB") && !sync.detail.contains("\u{1B}"))
    }
}
