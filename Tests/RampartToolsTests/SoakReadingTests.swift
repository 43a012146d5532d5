import Foundation
import Testing

@testable import RampartTools

@Suite("bench soak: reading a process's memory")
struct SoakReadingTests {
    /// The kernel's own split of resident memory: anonymous (what a leak grows) and file-backed (code
    /// and mapped files), read from /proc/PID/status lines.
    @Test func residentMemoryIsSplitAsTheKernelCountsIt() {
        let status = """
            Name:\trampart
            VmRSS:\t   65432 kB
            RssAnon:\t   40000 kB
            RssFile:\t   25000 kB
            RssShmem:\t     432 kB
            Threads:\t8
            """
        let kilobytes = SoakLoop.statusKilobytes(status)
        #expect(kilobytes["VmRSS"] == 65_432)
        #expect(kilobytes["RssAnon"] == 40_000)
        #expect(kilobytes["RssFile"] == 25_000)
        #expect(kilobytes["RssShmem"] == 432)
        #expect(kilobytes["Threads"] == nil, "a count, not kB")
    }

    @Test func thisProcessReadsConsistently() throws {
        let reading = SoakLoop.reading(pid: getpid(), directory: "/nonexistent", minute: 0)
        #expect(reading.residentKilobytes > 0)
        #expect(reading.anonymousKilobytes > 0 && reading.fileBackedKilobytes > 0)
        #expect(reading.anonymousKilobytes + reading.fileBackedKilobytes <= reading.residentKilobytes + 1_024)
    }
}
