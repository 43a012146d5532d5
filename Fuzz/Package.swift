// swift-tools-version:6.2
// libFuzzer targets for Rampart's decoders of untrusted bytes, outside the main build. Built and run by
// Fuzz/run.sh with `-sanitize=fuzzer` (coverage-guided, over the root package's modules too).
import Foundation
import PackageDescription

// The root package's identity is its directory's name (a path dependency has no other).
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent.lowercased()
let decoders = Target.Dependency.product(name: "RampartDecoders", package: root)

/// One executable per decoder: its main.swift hands its target function to libFuzzer (FuzzDriver).
func fuzzTarget(_ name: String, _ extra: [Target.Dependency] = []) -> Target {
    .executableTarget(name: name, dependencies: [decoders, "FuzzDriver"] + extra, swiftSettings: [.swiftLanguageMode(.v6)])
}

let package = Package(
    name: "rampart-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(name: "FuzzDriver", swiftSettings: [.swiftLanguageMode(.v6)]),
        fuzzTarget("sic-frame", [.product(name: "NIOCore", package: "swift-nio")]),
        fuzzTarget("ha-message"),
        fuzzTarget("revision"),
        fuzzTarget("backup-archive"),
        fuzzTarget("enrolment"),
    ]
)
