import Foundation
import FuzzDriver
import TrustCore

/// The enrolment messages a gateway and the management server exchange before either trusts the
/// other: decoded or refused with an EnrolmentError, never trapped on; what decodes encodes again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnrolment(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    if let message = try? EnrolmentMessage.decode(Array(UnsafeBufferPointer(start: data, count: count))) {
        _ = message.encoded()
    }
    return 0
}

/// RAMPART_FUZZ_WRITE_SEEDS=DIR: write a request, a response and every refusal there (how
/// Fuzz/corpus/enrolment was made), then fuzz as usual.
@_cdecl("LLVMFuzzerInitialize")
public func writeEnrolmentSeeds(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    guard let directory = ProcessInfo.processInfo.environment["RAMPART_FUZZ_WRITE_SEEDS"] else { return 0 }
    let bytes = { (count: Int, seed: Int) in (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed) } }
    var messages: [String: EnrolmentMessage] = [
        "request": .request(
            EnrolmentRequest(nodeName: "gw-1", csrDER: bytes(120, 1), nodeNonce: bytes(32, 2), nodeTimeMilliseconds: 1_800_000_000_000, proof: bytes(32, 3))),
        "response": .response(
            EnrolmentResponse(
                identity: NodeIdentity(uid: "4f1c2b9e-0000-4000-8000-000000000001", name: "gw-1"), certificateDER: bytes(200, 4), icaDER: bytes(180, 5),
                revocationJSON: #"{"revoked":[]}"#, serverNonce: bytes(32, 6), serverTimeMilliseconds: 1_800_000_000_001, proof: bytes(32, 7))),
    ]
    for code in EnrolmentRefusal.Code.allCases { messages["refusal-\(code.rawValue)"] = .refusal(EnrolmentRefusal(code, "refused: \(code.rawValue)")) }
    for (name, message) in messages {
        try? Data(message.encoded()).write(to: URL(fileURLWithPath: directory).appendingPathComponent("\(name).bin"))
    }
    return 0
}

runFuzzer(fuzzEnrolment)
