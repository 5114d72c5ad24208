// swift-tools-version:6.1
import PackageDescription

/// libFuzzer targets for Sextant's pure wire-format decoders (issue 8).
///
/// The decoder modules are the real sources, reached through the relative symlinks under
/// `Sources/` (e.g. `Sources/SextantOTLP -> ../../Sources/SextantOTLP`), so they never drift from
/// the collector. `SextantSyslog` holds symlinks to the two self-contained syslog parser files of
/// `SextantReceivers` (the rest of that module needs SwiftNIO), `SextantJWT` links the proxy's
/// `JWT.swift`, and `SextantHTTP1` the proxy's `HTTP1Parser.swift`. Only the Istio loader, the JWT
/// target and the HTTP/1 target need packages: `SextantPipeline`'s Yams, swift-log,
/// swift-service-lifecycle and NIOPosix (the persistent queue's I/O thread); swift-crypto; NIOCore and
/// NIOHTTP1. Build and run everything with `scripts/fuzz`; see `README.md`.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

/// Each fuzzer is one `main.swift` defining `LLVMFuzzerTestOneInput` and starting libFuzzer's
/// driver on it (see `FuzzSupport/LibFuzzer.swift` for why it is not libFuzzer's own `main`).
func fuzzer(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(name: name, dependencies: dependencies + ["FuzzSupport"], swiftSettings: strict)
}

let package = Package(
    name: "sextant-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
    ],
    targets: [
        .target(name: "SextantModel", swiftSettings: strict),
        .target(name: "SextantOTLP", dependencies: ["SextantModel"], swiftSettings: strict),
        .target(name: "SextantZipkin", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: strict),
        .target(name: "SextantThrift", swiftSettings: strict),
        .target(name: "SextantJaeger", dependencies: ["SextantModel", "SextantThrift"], swiftSettings: strict),
        .target(name: "SextantPrometheus", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: strict),
        .target(name: "SextantSnappy", swiftSettings: strict),
        .target(name: "SextantEnvoyAccessLog", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: strict),
        .target(name: "SextantFluentForward", dependencies: ["SextantModel"], swiftSettings: strict),
        .target(name: "SextantSyslog", dependencies: ["SextantModel"], swiftSettings: strict),
        .target(
            name: "SextantPipeline",
            dependencies: [
                "SextantModel", "SextantOTLP",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict),
        .target(name: "SextantIstio", dependencies: ["SextantModel", "SextantPipeline"], swiftSettings: strict),
        // The proxy's JWT parsing and verification (`Sources/SextantProxy/JWT.swift`) plus the fuzz entry point.
        .target(
            name: "SextantJWT",
            dependencies: [.product(name: "Crypto", package: "swift-crypto"), .product(name: "_CryptoExtras", package: "swift-crypto")],
            swiftSettings: strict),
        // The proxy's HTTP/1 parser (`Sources/SextantProxy/HTTP1Parser.swift`) plus the fuzz entry point.
        .target(
            name: "SextantHTTP1",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio")],
            swiftSettings: strict),
        .systemLibrary(name: "CLibFuzzer"),
        .target(
            name: "FuzzSupport",
            dependencies: ["CLibFuzzer", "SextantModel", "SextantOTLP", "SextantThrift", "SextantJaeger", "SextantZipkin", "SextantPrometheus"],
            swiftSettings: strict),
        fuzzer("FuzzOTLPProtobuf", []),
        fuzzer("FuzzOTLPJSON", []),
        fuzzer("FuzzJaegerThriftBinary", ["SextantThrift"]),
        fuzzer("FuzzJaegerThriftCompact", ["SextantThrift"]),
        fuzzer("FuzzZipkinJSON", []),
        fuzzer("FuzzZipkinProto", []),
        fuzzer("FuzzFluentForward", ["SextantFluentForward"]),
        fuzzer("FuzzPrometheusText", ["SextantPrometheus"]),
        fuzzer("FuzzOpenMetrics", ["SextantPrometheus"]),
        fuzzer("FuzzRemoteWrite", ["SextantPrometheus", "SextantSnappy"]),
        fuzzer("FuzzSyslog", ["SextantSyslog"]),
        fuzzer("FuzzEnvoyAccessLog", ["SextantEnvoyAccessLog"]),
        fuzzer("FuzzIstioConfig", ["SextantIstio", "SextantPipeline"]),
        fuzzer("FuzzJWT", ["SextantJWT"]),
        fuzzer("FuzzHTTP1", ["SextantHTTP1"]),
    ]
)
