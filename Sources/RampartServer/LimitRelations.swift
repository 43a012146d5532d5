import HACore
import ManagementModel
import ManagementService
import PeerTransport
import TrustCore

/// The limits of the modules that must agree with each other, in one value: each module keeps its own
/// limits in its own Limits type, and none of them sees the others' (ManagementService does not depend
/// on PeerTransport). `shipped` is what a server runs with.
public struct LimitSet: Sendable, Equatable {
    public var peer: PeerLimits
    public var ha: HALimits
    /// `PublishLimits`: what ManagementService believes the HA frame limit is, and what it derives.
    public var publishFrameBytesMax: Int
    public var appendEnvelopeBytesMax: Int
    public var revisionBytesMax: Int
    public var ordinaryChangeBytesMax: Int
    /// `ManagementModel.Limits`.
    public var changesPerSessionMax: Int
    public var requestBodyBytesMax: Int

    public static let shipped = LimitSet(
        peer: .default, ha: .overNetwork, publishFrameBytesMax: PublishLimits.haFrameBytesMax,
        appendEnvelopeBytesMax: PublishLimits.appendEnvelopeBytesMax, revisionBytesMax: PublishLimits.revisionBytesMax,
        ordinaryChangeBytesMax: PublishLimits.ordinaryChangeBytesMax, changesPerSessionMax: Limits.changesPerSessionMax,
        requestBodyBytesMax: Limits.requestBodyBytesMax)
}

/// One relation between limits that does not hold: the relation as written in `LimitRelations`, and the
/// figures that break it.
public struct LimitRelationViolation: Sendable, Equatable, CustomStringConvertible {
    public let relation: String
    public let figures: String
    public var description: String { "\(relation) does not hold: \(figures)" }
}

/// A build whose limits contradict each other refuses to start, naming each relation that fails.
public struct LimitRelationsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let violations: [LimitRelationViolation]
    public var description: String {
        "this build's limits are inconsistent, so the server will not start: " + violations.map(\.description).joined(separator: "; ")
    }
}

/// The relations between the modules' limits, checked once when a node starts (as etcd's
/// `Config.validate()`): a frame too large for its channel would otherwise surface only when a large
/// publish cannot reach the standbys.
public enum LimitRelations {
    /// Every relation that fails for `limits` (none for the shipped limits).
    public static func violations(_ limits: LimitSet = .shipped) -> [LimitRelationViolation] {
        var found: [LimitRelationViolation] = []
        func require(_ relation: String, _ left: [Int], _ op: Comparison, _ right: Int, combine: Combination = .sum) {
            let total = combine.apply(left)
            if let total, op.holds(total, right) { return }
            let shown = left.map(String.init).joined(separator: combine.symbol)
            found.append(LimitRelationViolation(relation: relation, figures: "\(shown) = \(total.map(String.init) ?? "overflow") vs \(right)"))
        }
        let peer = limits.peer
        require("PublishLimits.haFrameBytesMax = PeerLimits.groupFrameBytesMax", [limits.publishFrameBytesMax], .equal, peer.groupFrameBytesMax)
        require("PeerLimits.frameBytesMax ≤ PeerLimits.groupFrameBytesMax", [peer.frameBytesMax], .atMost, peer.groupFrameBytesMax)
        // One revision travels alone in one append frame, its JSON header (the envelope) before it.
        require(
            "PublishLimits.revisionBytesMax + appendEnvelopeBytesMax ≤ PeerLimits.groupFrameBytesMax",
            [limits.revisionBytesMax, limits.appendEnvelopeBytesMax], .atMost, peer.groupFrameBytesMax)
        // A batch of several revisions stops at appendBatchPayloadBytesMax; its headers fit the envelope's room.
        require(
            "HALimits.appendBatchPayloadBytesMax + appendEnvelopeBytesMax ≤ PeerLimits.groupFrameBytesMax",
            [limits.ha.appendBatchPayloadBytesMax, limits.appendEnvelopeBytesMax], .atMost, peer.groupFrameBytesMax)
        require(
            "HALimits.snapshotChunkBytesMax + appendEnvelopeBytesMax ≤ PeerLimits.groupFrameBytesMax",
            [limits.ha.snapshotChunkBytesMax, limits.appendEnvelopeBytesMax], .atMost, peer.groupFrameBytesMax)
        // A full session of ordinary changes publishes as one revision.
        require(
            "changesPerSessionMax × PublishLimits.ordinaryChangeBytesMax ≤ PublishLimits.revisionBytesMax",
            [limits.changesPerSessionMax, limits.ordinaryChangeBytesMax], .atMost, limits.revisionBytesMax, combine: .product)
        // One request's change (an object of a whole request body) fits a revision.
        require("Limits.requestBodyBytesMax ≤ PublishLimits.revisionBytesMax", [limits.requestBodyBytesMax], .atMost, limits.revisionBytesMax)
        // sendNow refuses a frame while more than this waits: a frame at the limit must always be accepted.
        require("PeerLimits.groupFrameBytesMax ≤ PeerLimits.unsentBytesMax", [peer.groupFrameBytesMax], .atMost, peer.unsentBytesMax)
        require("PeerLimits.unauthenticatedFrameBytesMax ≤ PeerLimits.frameBytesMax", [peer.unauthenticatedFrameBytesMax], .atMost, peer.frameBytesMax)
        require(
            "TrustLimits.enrolmentRequestBytesMax ≤ PeerLimits.unauthenticatedFrameBytesMax",
            [TrustLimits.enrolmentRequestBytesMax], .atMost, peer.unauthenticatedFrameBytesMax)
        require("PeerLimits.enrolmentAnswerFrameBytesMax ≤ PeerLimits.frameBytesMax", [peer.enrolmentAnswerFrameBytesMax], .atMost, peer.frameBytesMax)
        require(
            "TrustLimits.enrolmentMessageBytesMax ≤ PeerLimits.enrolmentAnswerFrameBytesMax",
            [TrustLimits.enrolmentMessageBytesMax], .atMost, peer.enrolmentAnswerFrameBytesMax)
        return found
    }

    /// Throws, naming every relation that fails.
    public static func validate(_ limits: LimitSet = .shipped) throws(LimitRelationsError) {
        let found = violations(limits)
        if !found.isEmpty { throw LimitRelationsError(violations: found) }
    }

    enum Comparison {
        case atMost, equal
        func holds(_ left: Int, _ right: Int) -> Bool { self == .atMost ? left <= right : left == right }
    }

    /// How the left side's figures combine; nil on overflow (which fails the relation).
    enum Combination {
        case sum, product
        var symbol: String { self == .sum ? " + " : " × " }
        func apply(_ figures: [Int]) -> Int? {
            var total = self == .sum ? 0 : 1
            for figure in figures {
                let (result, overflow) = self == .sum ? total.addingReportingOverflow(figure) : total.multipliedReportingOverflow(by: figure)
                if overflow { return nil }
                total = result
            }
            return total
        }
    }
}
