// swift-tools-version:6.1
import PackageDescription

/// Sextant: a telemetry collector (receivers → processors → exporters) and an Istio-style routing proxy.
///
/// Module layout (see README "Code map"):
/// - `SextantModel`: the dependency-free data model (spans, metrics, logs; OTLP-equivalent).
/// - `SextantOTLP`: the OTLP wire format (protobuf and JSON), pure.
/// - `SextantZipkin`: Zipkin API v2 (JSON and protobuf) and its mapping to the model, pure.
/// - `SextantThrift`, `SextantJaeger`: Thrift binary/compact protocols; jaeger.thrift and its mapping, pure.
/// - `SextantTraceStore`: the bounded in-memory trace store behind the Jaeger query API, pure.
/// - `SextantPrometheus`: OTLP → Prometheus naming and the text exposition format, pure (metrics issue).
/// - `SextantSnappy`: Snappy block compression (remote write's encoding) in pure Swift, so no C library is needed.
/// - `SextantEnvoyAccessLog`: Envoy/Istio access-log formats (default text, Istio text and JSON) → attributes, pure.
/// - `SextantElasticsearch`: OTLP → ECS documents (knows the Envoy attributes), `_bulk` NDJSON and responses, index names, pure.
/// - `SextantFluentForward`: MessagePack and the Fluentd Forward Protocol v1 (modes, acks, handshake) ↔ logs, pure.
/// - `SextantIstio`: Istio resources (VirtualService, DestinationRule, ServiceEntry, Gateway, mesh config) →
///   validated, compiled route table; load balancing and outlier-detection algorithms, pure.
/// - `SextantProxy`: the routing proxy's data plane on SwiftNIO (listeners, upstream pools, retries, faults,
///   proxy-to-proxy mTLS with SPIFFE identities and a local mesh CA).
/// - `SextantPipeline`: config → validated graph → running services; queue/retry/batch helpers.
/// - `SextantHTTP`: small SwiftNIO HTTP/1.1 server plumbing shared by receivers and self-telemetry.
/// - `SextantSecurity`: `tls` settings (OTel's `configtls`) → swift-nio-ssl configurations, and the
///   authenticator protocols (`auth: {authenticator: ...}`, OTel's `configauth`) receivers and exporters use.
/// - `SextantGRPC`: gRPC over HTTP/2 on swift-nio-http2: statuses and a unary client (OTLP exporters, the proxy's telemetry).
/// - `SextantReceivers`, `SextantProcessors`, `SextantExporters`, `SextantConnectors`: components by role.
/// - `SextantCollector`: the registry of built-in components and the collector runtime.
/// - `SextantDemo`: `sextant demo` — the collector, a Bookinfo mesh of in-process apps and sidecars, traffic.
/// - `SextantTesting`: in-memory sinks, a test clock and helpers used by every test target.
/// - `sextant`: the executable; wiring only.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "sextant",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sextant", targets: ["sextant"]),
        .library(name: "SextantModel", targets: ["SextantModel"]),
        .library(name: "SextantOTLP", targets: ["SextantOTLP"]),
        .library(name: "SextantPipeline", targets: ["SextantPipeline"]),
        .library(name: "SextantCollector", targets: ["SextantCollector"]),
        .library(name: "SextantTesting", targets: ["SextantTesting"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.30.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.20.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.0"),
    ],
    targets: [
        .target(name: "SextantModel", swiftSettings: strict),
        .target(name: "SextantOTLP", dependencies: ["SextantModel"], swiftSettings: strict),
        .target(name: "SextantZipkin", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: strict),
        .target(name: "SextantThrift", swiftSettings: strict),
        .target(name: "SextantJaeger", dependencies: ["SextantModel", "SextantThrift"], swiftSettings: strict),
        .target(name: "SextantTraceStore", dependencies: ["SextantModel"], swiftSettings: strict),
        .target(name: "SextantPrometheus", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: strict),
        .target(name: "SextantSnappy", swiftSettings: strict),
        .target(name: "SextantEnvoyAccessLog", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: strict),
        .target(name: "SextantElasticsearch", dependencies: ["SextantModel", "SextantOTLP", "SextantEnvoyAccessLog"], swiftSettings: strict),
        .target(name: "SextantFluentForward", dependencies: ["SextantModel"], swiftSettings: strict),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "SextantIstio", dependencies: ["SextantModel", "SextantPipeline"], swiftSettings: strict),
        .target(
            name: "SextantProxy",
            dependencies: [
                "SextantIstio", "SextantPipeline", "SextantHTTP", "SextantOTLP", "SextantZipkin", "SextantModel",
                "SextantPrometheus", "SextantGRPC", "SextantFluentForward", "SextantExporters",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantPipeline",
            dependencies: [
                "SextantModel",
                "SextantOTLP",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantHTTP",
            dependencies: [
                "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantSecurity",
            dependencies: [
                "SextantPipeline",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantGRPC",
            dependencies: [
                "SextantModel", "SextantHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantReceivers",
            dependencies: ["SextantModel", "SextantOTLP", "SextantZipkin", "SextantJaeger", "SextantThrift", "SextantPipeline", "SextantHTTP",
                "SextantPrometheus", "SextantSnappy",
                "SextantFluentForward", "SextantSecurity", "SextantGRPC",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantProcessors",
            dependencies: ["SextantModel", "SextantPipeline", "SextantEnvoyAccessLog"],
            swiftSettings: strict
        ),
        .target(
            name: "SextantExporters",
            dependencies: [
                "SextantModel", "SextantOTLP", "SextantZipkin", "SextantJaeger", "SextantTraceStore", "SextantPipeline",
                "SextantHTTP", "SextantGRPC", "SextantPrometheus", "SextantSnappy", "SextantElasticsearch",
                "SextantFluentForward", "SextantSecurity",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantConnectors",
            dependencies: ["SextantModel", "SextantPipeline"],
            swiftSettings: strict
        ),
        .target(
            name: "SextantCollector",
            dependencies: [
                "SextantModel", "SextantPipeline", "SextantHTTP", "SextantSecurity",
                "SextantReceivers", "SextantProcessors", "SextantExporters", "SextantConnectors",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "SextantTesting",
            dependencies: ["SextantModel", "SextantPipeline"],
            swiftSettings: strict
        ),
        .target(
            name: "SextantDemo",
            dependencies: [
                "SextantCollector", "SextantPipeline", "SextantIstio", "SextantProxy", "SextantReceivers", "SextantExporters", "SextantHTTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sextant",
            dependencies: [
                "SextantCollector", "SextantPipeline", "SextantIstio", "SextantProxy", "SextantDemo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SextantModelTests", dependencies: ["SextantModel"], swiftSettings: strict),
        .testTarget(
            name: "SextantDemoTests",
            dependencies: [
                "SextantDemo", "SextantHTTP", "SextantIstio", "SextantPipeline", "SextantProxy",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SextantIstioTests", dependencies: ["SextantIstio", "SextantPipeline"], swiftSettings: strict),
        .testTarget(
            name: "SextantProxyTests",
            dependencies: [
                "SextantProxy", "SextantEnvoyAccessLog", "SextantIstio", .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict),
        .testTarget(
            name: "SextantOTLPTests", dependencies: ["SextantOTLP", "SextantModel"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(
            name: "SextantJaegerTests", dependencies: ["SextantJaeger", "SextantThrift", "SextantModel"],
            exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(name: "SextantTraceStoreTests", dependencies: ["SextantTraceStore", "SextantModel"], swiftSettings: strict),
        .testTarget(name: "SextantPrometheusTests", dependencies: ["SextantPrometheus", "SextantModel", "SextantSnappy"], swiftSettings: strict),
        .testTarget(
            name: "SextantGRPCTests",
            dependencies: [
                "SextantGRPC", "SextantHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        .testTarget(name: "SextantSnappyTests", dependencies: ["SextantSnappy"], swiftSettings: strict),
        .testTarget(
            name: "SextantFluentForwardTests",
            dependencies: [
                "SextantFluentForward", "SextantModel", "SextantReceivers", "SextantExporters", "SextantTesting", "SextantPipeline",
                "SextantHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SextantElasticsearchTests", dependencies: ["SextantElasticsearch", "SextantEnvoyAccessLog", "SextantModel", "SextantOTLP"],
            swiftSettings: strict),
        .testTarget(
            name: "SextantZipkinTests", dependencies: ["SextantZipkin", "SextantModel"], exclude: ["Fixtures"], swiftSettings: strict),
        .testTarget(
            name: "SextantPipelineTests",
            dependencies: ["SextantPipeline", "SextantTesting", "SextantModel"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SextantProcessorsTests",
            dependencies: ["SextantProcessors", "SextantTesting", "SextantModel", "SextantPipeline"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SextantSecurityTests",
            dependencies: [
                "SextantSecurity", "SextantPipeline", "SextantCollector", "SextantHTTP", "SextantTesting", "SextantModel",
                "SextantReceivers",
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SextantComponentsTests",
            dependencies: [
                "SextantCollector", "SextantTesting", "SextantReceivers", "SextantProcessors",
                "SextantExporters", "SextantConnectors", "SextantOTLP", "SextantHTTP", "SextantPipeline", "SextantModel",
                "SextantPrometheus", "SextantSnappy", "SextantSecurity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)
