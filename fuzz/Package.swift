// swift-tools-version:6.1
import PackageDescription

/// libFuzzer targets for Sextant's pure wire-format decoders (issue 8).
///
/// The decoder modules are the real sources, reached through the relative symlinks under
/// `Sources/` (e.g. `Sources/SextantOTLP -> ../../Sources/SextantOTLP`), so this package needs
/// no dependency and never drifts from the collector. Build and run everything with
/// `scripts/fuzz`; see `README.md`.
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
    targets: [
        .target(name: "SextantModel", swiftSettings: strict),
        .target(name: "SextantOTLP", dependencies: ["SextantModel"], swiftSettings: strict),
        .target(name: "SextantZipkin", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: strict),
        .target(name: "SextantThrift", swiftSettings: strict),
        .target(name: "SextantJaeger", dependencies: ["SextantModel", "SextantThrift"], swiftSettings: strict),
        .systemLibrary(name: "CLibFuzzer"),
        .target(
            name: "FuzzSupport",
            dependencies: ["CLibFuzzer", "SextantModel", "SextantOTLP", "SextantThrift", "SextantJaeger", "SextantZipkin"],
            swiftSettings: strict),
        fuzzer("FuzzOTLPProtobuf", []),
        fuzzer("FuzzOTLPJSON", []),
        fuzzer("FuzzJaegerThriftBinary", ["SextantThrift"]),
        fuzzer("FuzzJaegerThriftCompact", ["SextantThrift"]),
        fuzzer("FuzzZipkinJSON", []),
        fuzzer("FuzzZipkinProto", []),
    ]
)
