import Logging
import SextantPipeline
import SextantSecurity
import ServiceLifecycle

/// Builds and runs a collector from config files until SIGTERM/SIGINT, then drains and returns.
public enum CollectorRunner {
    /// Self-telemetry build information.
    public static let version = "0.1.0"

    public static func run(configFiles: [String], registry: ComponentRegistry = BuiltinComponents.registry, logger: Logger) async throws {
        try await run(CollectorConfig.load(files: configFiles, registry: registry), registry: registry, logger: logger)
    }

    /// Runs an already loaded config (the CLI loads first to pick the log level from it).
    public static func run(_ config: CollectorConfig, registry: ComponentRegistry = BuiltinComponents.registry, logger: Logger) async throws {
        var groupConfig = ServiceGroupConfiguration(
            services: try services(config, registry: registry, logger: logger), gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = config.shutdownTimeout + .seconds(2)
        let group = ServiceGroup(configuration: groupConfig)
        try await group.run()
    }

    /// The collector as services for a `ServiceGroup` (`sextant demo` runs them beside its mesh). A
    /// `ServiceGroup` shuts services down in reverse order: the collector first (receivers, then the rest
    /// drain), the self-telemetry endpoint last so the drain stays observable.
    public static func services(_ config: CollectorConfig, registry: ComponentRegistry = BuiltinComponents.registry, logger: Logger) throws
        -> [ServiceGroupConfiguration.ServiceConfiguration]
    {
        for w in config.warnings { logger.warning("\(w)") }
        let telemetry = SelfTelemetry()
        telemetry.gauge("sextant_build_info", help: "Sextant build information.", labels: [("version", version)]).set(1)
        let readiness = Readiness()
        let graph = try CollectorGraph.build(config, registry: registry, telemetry: telemetry, logger: logger, readiness: readiness)
        let collector = CollectorService(graph: graph, shutdownTimeout: config.shutdownTimeout, readiness: readiness, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let address = config.telemetry.metricsAddress, let hp = HostPort.parse(address) {
            let server = TelemetryServer(
                host: hp.host, port: hp.port, tls: config.telemetry.metricsTLS as? TLSSettings, telemetry: telemetry, readiness: readiness,
                logger: logger)
            services.append(.init(service: server))
        }
        services.append(.init(service: collector, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        return services
    }
}
