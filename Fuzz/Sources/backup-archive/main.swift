import Foundation
import FuzzDriver

import Operations

/// The backup archive reader on a file from disk (a backup is untrusted until verified): the manifest
/// is read and, when it reads, the archive is verified as `rampart backup verify` does (every part;
/// unencrypted, the database too); errors are fine, traps are not. The input goes to one scratch file
/// per process.
enum Scratch {
    static let file = FileManager.default.temporaryDirectory.appendingPathComponent("rampart-fuzz-archive-\(getpid()).rbk")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBackupArchive(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    guard (try? Data(UnsafeBufferPointer(start: data, count: count)).write(to: Scratch.file)) != nil else { return 0 }
    if (try? ArchiveFile.readManifest(Scratch.file)) != nil {
        _ = try? Backups.verify(Scratch.file, passphrase: nil, scratchParent: FileManager.default.temporaryDirectory)
    }
    return 0
}

runFuzzer(fuzzBackupArchive)
