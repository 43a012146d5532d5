// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]
let crossModule: [SwiftSetting] = [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]

let package = Package(
    name: "rampart",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rampart", targets: ["rampart"]),
        .library(name: "HACore", targets: ["HACore"]),
        .library(name: "SimulationKit", targets: ["SimulationKit"]),
        // The decoders of untrusted bytes, for the libFuzzer targets in Fuzz/ (a package of its own).
        .library(name: "RampartDecoders", targets: ["ManagementModel", "PeerTransport", "TrustCore", "HARuntime", "Operations"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
    ],
    targets: [
        // Pure: objects, validation, sessions overlay, revisions and their hash chain.
        .target(
            name: "ManagementModel",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto")
            ], swiftSettings: strict),
        // Pure: the HA state machine. No Foundation I/O, no clocks, no randomness.
        // Its bodies go into its module (cross-module optimization), so the simulator and the runtime
        // inline and specialize the core's small accessors instead of calling them opaquely.
        .target(name: "HACore", swiftSettings: strict + crossModule),
        // The HA driver: carries out HACore's outputs in contract order over a storage, a transport and
        // a host; the runtime and the simulator both run it.
        .target(name: "HADriverKit", dependencies: ["HACore"], swiftSettings: strict + crossModule),
        // Seeded simulation kit: RNG, clock, a generic faulty network, the HA simulation over the shared
        // driver, and the gateway-cluster simulation over ClusterCore; shipped beside the product like
        // HummingbirdTesting.
        .target(
            name: "SimulationKit", dependencies: ["HACore", "HADriverKit", "ClusterCore"],
            swiftSettings: strict + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        // Pure: the gateway-cluster (ClusterXL High Availability) state machine. No I/O, clocks, randomness.
        .target(name: "ClusterCore", swiftSettings: strict),
        .target(
            name: "TrustCore",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ], swiftSettings: strict),
        // SIC transport: mutual TLS 1.3 (SwiftNIO + NIOSSL) with length-prefixed, versioned frames.
        .target(
            name: "PeerTransport",
            dependencies: [
                "TrustCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .target(
            name: "Store",
            dependencies: [
                "ManagementModel",
                .product(name: "GRDB", package: "GRDB.swift"),
            ], swiftSettings: strict),
        // The management service: sessions, locks, publish, tasks, the command table and its handlers,
        // ports to HA, operations and gateways. No HTTP: errors carry their status as numbers.
        .target(
            name: "ManagementService",
            dependencies: [
                "ManagementModel", "Store", "TrustCore", "HACore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ], swiftSettings: strict),
        // Monitoring: the node's Prometheus registry (/metrics, filled at scrape time from the service's
        // state and by counters at the call sites) and the health answers for load balancers. No HTTP.
        .target(
            name: "Monitoring",
            dependencies: [
                "ManagementService", "ManagementModel",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // The Web API over HTTP (Hummingbird only here): /web_api routes, JSON bodies, connection limits,
        // and routers mounted beside /web_api.
        .target(
            name: "WebAPI",
            dependencies: [
                "ManagementService", "ManagementModel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ], swiftSettings: strict),
        // The gateway agent: enrolment, installed policy, enforcement (nftables), packet matcher, log shipping.
        .target(
            name: "Gateway",
            dependencies: [
                "ManagementModel", "TrustCore", "PeerTransport", "Store",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // The gateway-cluster runtime: the I/O shell around ClusterCore in the agent (UDP heartbeats, the
        // virtual address with ip and arping, link state, the member's operator socket).
        .target(
            name: "ClusterRuntime",
            dependencies: [
                "ClusterCore", "Gateway", "ManagementModel", "TrustCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // Backup, snapshot, migrate export/import, scheduled backups (I/O shells over pure decisions), and
        // the server's operations worker.
        .target(
            name: "Operations",
            dependencies: [
                "ManagementModel", "Store", "TrustCore", "ManagementService",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // The HA shell: one actor per server that drives HACore and carries out its outputs on the store,
        // and the node's HA services: the mesh of channels, membership, ICA state sync, promotion checks.
        .target(
            name: "HARuntime",
            dependencies: [
                "HACore", "HADriverKit", "Store", "ManagementModel", "ManagementService", "PeerTransport", "TrustCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // The SIC port: its demultiplexer (enrolment, HA channels, gateways' channels), the gateway hub,
        // and the node side of a channel.
        .target(
            name: "SICPort",
            dependencies: [
                "HARuntime", "ManagementService", "ManagementModel", "PeerTransport", "TrustCore", "Store", "Gateway", "HACore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // SmartTasks: which tasks an event fires, the durable delivery queue (node-local SQLite), the
        // runners (repository scripts as child processes, signed web requests, mail through a relay).
        .target(
            name: "SmartTasks",
            dependencies: [
                "ManagementModel", "ManagementService", "Store",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ], swiftSettings: strict),
        // One management server composed from the modules above: RampartNode(ServerConfiguration).
        .target(
            name: "RampartServer",
            dependencies: [
                "ManagementModel", "Store", "TrustCore", "ManagementService", "WebAPI", "HACore", "PeerTransport", "HARuntime", "Gateway", "Operations",
                "SICPort", "Monitoring", "SmartTasks",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ], swiftSettings: strict),
        // The `rampart mgmt` client (mgmt_cli): transport, key=value parameters, secrets, help, rendering.
        .target(
            name: "ManagementClient",
            dependencies: [
                "ManagementService", "ManagementModel", "Operations", "Store", "TrustCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ], swiftSettings: strict),
        // What demo and bench run: one child-process supervisor, the demo's orchestration, the figures.
        .target(
            name: "RampartTools",
            dependencies: [
                "ManagementClient", "ManagementService", "ManagementModel", "Operations", "Store", "TrustCore", "HARuntime", "Gateway",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ], swiftSettings: strict),
        // The one executable: argument-parser commands and their options.
        .executableTarget(
            name: "rampart",
            dependencies: [
                "ManagementModel", "Store", "TrustCore", "HACore", "ClusterCore", "ClusterRuntime", "SimulationKit", "PeerTransport", "HARuntime", "Gateway",
                "Operations",
                "SICPort", "RampartServer", "ManagementClient", "RampartTools", "SmartTasks",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ], swiftSettings: strict),
        .testTarget(name: "ManagementModelTests", dependencies: ["ManagementModel"], swiftSettings: strict),
        .testTarget(
            name: "SmartTasksTests",
            dependencies: [
                "SmartTasks", "ManagementModel", "ManagementService", "Store", "HACore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ], exclude: ["receiver.py"], swiftSettings: strict),
        .testTarget(
            name: "HARuntimeTests",
            dependencies: [
                "HARuntime", "HACore", "Store", "ManagementModel", "ManagementService", "PeerTransport", "TrustCore",
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(
            name: "OperationsTests",
            dependencies: [
                "Operations", "Store", "ManagementModel", "TrustCore", "HARuntime", "HACore",
            ], swiftSettings: strict),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "ManagementModel", "Store", .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(name: "HACoreTests", dependencies: ["HACore", "HADriverKit", "SimulationKit"], swiftSettings: strict),
        .testTarget(
            name: "ClusterRuntimeTests",
            dependencies: ["ClusterRuntime", "ClusterCore", "Gateway", "ManagementModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict),
        .testTarget(name: "ClusterCoreTests", dependencies: ["ClusterCore", "SimulationKit"], swiftSettings: strict),
        .testTarget(
            name: "TrustCoreTests",
            dependencies: [
                "TrustCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ], swiftSettings: strict),
        .testTarget(
            name: "PeerTransportTests",
            dependencies: [
                "PeerTransport", "TrustCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(
            name: "StoreTests",
            dependencies: [
                "Store", "ManagementModel", .product(name: "GRDB", package: "GRDB.swift"),
            ], swiftSettings: strict),
        .testTarget(
            name: "ManagementServiceTests",
            dependencies: [
                "ManagementService", "Store", "ManagementModel", "TrustCore", "HACore",
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(
            name: "MonitoringTests",
            dependencies: [
                "Monitoring", "ManagementService", "ManagementModel",
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ], swiftSettings: strict),
        .testTarget(
            name: "WebAPITests",
            dependencies: [
                "WebAPI", "ManagementService", "Store", "ManagementModel", "TrustCore",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ], swiftSettings: strict),
        .testTarget(
            name: "GatewayAgentTests",
            dependencies: [
                "Gateway", "ManagementModel", .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(name: "ManagementClientTests", dependencies: ["ManagementClient", "ManagementModel", "ManagementService"], swiftSettings: strict),
        .testTarget(name: "RampartToolsTests", dependencies: ["RampartTools"], swiftSettings: strict),
        .testTarget(
            name: "RampartServerTests",
            dependencies: [
                "RampartServer", "ManagementClient", "ManagementModel", "PeerTransport", "TrustCore", "ManagementService", "Store", "HACore",
                .product(name: "Logging", package: "swift-log"),
            ], swiftSettings: strict),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "rampart", "Gateway", "ManagementModel", "Operations", "TrustCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ], swiftSettings: strict),
    ]
)
