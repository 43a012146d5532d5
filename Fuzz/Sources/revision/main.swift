import FuzzDriver
import ManagementModel

/// The revision decoder on bytes read back from the journal or a peer: JSON parsed with the core's
/// depth limit, then a revision (or nil); a decoded revision encodes again.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRevision(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard let json = try? JSONValue.parse(UnsafeBufferPointer(start: data, count: count)) else { return 0 }
    if let revision = Revision(json: json) {
        _ = revision.json.canonicalBytes
    }
    return 0
}

runFuzzer(fuzzRevision)
