import ManagementModel
import PeerTransport
import Testing

@testable import RampartServer

/// The modules' limits agree (checked when a node starts); a build whose limits contradict each other is
/// told which relation fails and by what figures.
@Suite("RampartServer: the relations between the modules' limits")
struct LimitRelationsTests {
    @Test func theShippedLimitsHold() throws {
        #expect(LimitRelations.violations() == [])
        try LimitRelations.validate()
    }

    @Test func aFrameLimitTooSmallForTheLargestRevisionIsNamed() {
        var limits = LimitSet.shipped
        limits.peer.groupFrameBytesMax = 16 * 1024 * 1024
        let relations = LimitRelations.violations(limits).map(\.relation)
        #expect(relations.contains("PublishLimits.haFrameBytesMax = PeerLimits.groupFrameBytesMax"), "\(relations)")
        #expect(relations.contains("PublishLimits.revisionBytesMax + appendEnvelopeBytesMax ≤ PeerLimits.groupFrameBytesMax"), "\(relations)")
        #expect(throws: LimitRelationsError.self) { try LimitRelations.validate(limits) }
        do {
            try LimitRelations.validate(limits)
        } catch {
            #expect(error.description.contains("67043328 + 65536 = 67108864 vs 16777216"), "\(error)")
            #expect(error.description.hasPrefix("this build's limits are inconsistent, so the server will not start"))
        }
    }

    @Test func aSessionTooLargeForOneRevisionAndAnOverflowAreNamed() {
        var limits = LimitSet.shipped
        limits.changesPerSessionMax = 1_000_000
        #expect(
            LimitRelations.violations(limits).map(\.relation)
                == ["changesPerSessionMax × PublishLimits.ordinaryChangeBytesMax ≤ PublishLimits.revisionBytesMax"])
        limits.changesPerSessionMax = Int.max
        #expect(LimitRelations.violations(limits).first?.figures.contains("overflow") == true)
    }

    @Test func sendingAFrameAtTheLimitMustNotBeRefusedForItsSize() {
        var limits = LimitSet.shipped
        limits.peer.unsentBytesMax = 32 * 1024 * 1024
        #expect(LimitRelations.violations(limits).map(\.relation) == ["PeerLimits.groupFrameBytesMax ≤ PeerLimits.unsentBytesMax"])
    }
}
