import AsyncHTTPClient
import Logging
import SextantCollector
import SextantExporters
import SextantIstio
import SextantPipeline
import SextantProxy
import SextantReceivers
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// How `sextant demo` runs.
public struct DemoOptions: Sendable {
    /// The collector's config files, merged in order (the embedded default unless told otherwise).
    public var collectorConfigs = ["pipelines/default.yaml"]
    /// Istio resources of the mesh (every `*.yaml` in it): gateway, routing rules, mesh config.
    public var meshDirectory = "pipelines/mesh"
    /// Where the collector's files (`SEXTANT_OUT`) and the demo's generated files and access logs go.
    public var outDirectory = "./out"
    /// First port of the mesh's port plan (`DemoPlan`).
    public var basePort = 20000
    /// First three octets of the workloads' loopback "pod IPs" (`DemoPlan`).
    public var podNetwork = "127.0.0"
    /// Requests per second through the gateway; 0 sends none.
    public var rate = 5.0
    /// How long traffic runs, then everything stops; nil: until SIGINT/SIGTERM.
    public var duration: Duration?
    /// How often the collector scrapes the proxies' Istio metrics.
    public var scrapeInterval = "5s"
    /// `istio_build`'s `tag`.
    public var version = "dev"

    public init() {}
}

/// An error that stops the demo before it starts, with the reason for the user.
public struct DemoError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// `sextant demo`: the collector on its config, a Bookinfo mesh (eight workloads, each an in-process app
/// behind its own sidecar `ProxyServer`, and an ingress gateway), and a traffic generator, all as services
/// of one `ServiceGroup`, so SIGINT/SIGTERM stops them in reverse order (traffic, apps, proxies, then the
/// collector, which drains last).
public enum DemoRunner {
    public static func run(_ options: DemoOptions, logger: Logger, print: @escaping @Sendable (String) -> Void) async throws {
        let plan = DemoPlan(basePort: options.basePort, podNetwork: options.podNetwork)
        let out = options.outDirectory.hasSuffix("/") ? String(options.outDirectory.dropLast()) : options.outDirectory
        let demoDir = "\(out)/demo"
        for dir in [out, demoDir, "\(demoDir)/logs"] where mkdir(dir, 0o755) != 0 && errno != EEXIST {
            throw DemoError("cannot create \(dir): \(FileText.lastErrorDescription())")
        }
        var environment = ProcessEnvironment.current
        environment["SEXTANT_OUT"] = out
        let registry = BuiltinComponents.registry

        // The collector: its own config, plus a generated overlay that scrapes the proxies.
        let base = try CollectorConfig.load(files: options.collectorConfigs, registry: registry, environment: environment)
        guard
            let otlp = base.definitions[.receiver]?.values.sorted(by: { $0.id < $1.id }).first(where: { $0.id.type == "otlp" }),
            let grpc = (otlp.config as? OTLPReceiverConfig)?.grpc
        else {
            throw DemoError("the collector config needs an otlp receiver with protocols.grpc: the proxies send spans and access logs there")
        }
        guard let metrics = base.pipelines.first(where: { $0.id.signal == .metrics }) else {
            throw DemoError("the collector config needs a metrics pipeline: the proxies' Istio metrics are scraped into it")
        }
        let registryPath = "\(demoDir)/services.yaml"
        let overlayPath = "\(demoDir)/collector-mesh.yaml"
        try write(registryPath, plan.registryYAML(otlpGRPC: (grpc.host, grpc.port)))
        try write(
            overlayPath,
            plan.scrapeOverlayYAML(pipeline: metrics.id.description, receivers: metrics.receivers.map(\.description), interval: options.scrapeInterval))
        let config = try CollectorConfig.load(files: options.collectorConfigs + [overlayPath], registry: registry, environment: environment)

        // The mesh, and its CA: a root and one SPIFFE certificate per service account, as istiod would issue.
        let meshFiles = try yamlFiles(in: options.meshDirectory) + [registryPath]
        let certDirs: [String: String]
        do {
            certDirs = try MeshCertificateAuthority.generate(directory: "\(demoDir)/certs", identities: plan.identities)
        } catch {
            throw DemoError("cannot create the mesh CA under \(demoDir)/certs: \(error)")
        }
        func credentials(_ o: inout ProxyOptions, namespace: String, serviceAccount: String) {
            guard let dir = certDirs["spiffe://cluster.local/ns/\(namespace)/sa/\(serviceAccount)"] else { return }
            o.certificatePath = "\(dir)/cert-chain.pem"
            o.keyPath = "\(dir)/key.pem"
            o.caPath = "\(dir)/root-cert.pem"
            o.serviceAccount = serviceAccount
        }
        var proxies: [ProxyServer] = []
        var gatewayOptions = ProxyOptions(
            configPaths: meshFiles,
            identity: ProxyIdentity(
                workload: "istio-ingressgateway", namespace: "istio-system",
                labels: ["istio": "ingressgateway", "app": "istio-ingressgateway"], mode: .gateway))
        gatewayOptions.listen = (plan.host, plan.gatewayPort)
        gatewayOptions.admin = (plan.host, plan.gatewayAdminPort)
        gatewayOptions.accessLogFile = "\(demoDir)/logs/istio-ingressgateway.log"
        gatewayOptions.version = options.version
        credentials(&gatewayOptions, namespace: "istio-system", serviceAccount: DemoPlan.gatewayServiceAccount)
        proxies.append(try ProxyServer(options: gatewayOptions, logger: logger))
        for w in plan.workloads {
            var o = ProxyOptions(
                configPaths: meshFiles,
                identity: ProxyIdentity(workload: w.name, namespace: DemoPlan.namespace, labels: ["app": w.service, "version": w.version]))
            o.listen = (w.ip, w.outboundPort)
            o.inbound = (w.ip, w.inboundPort)
            o.app = (w.ip, w.appPort)
            o.admin = (w.ip, w.adminPort)
            o.accessLogFile = "\(demoDir)/logs/\(w.name).log"
            o.version = options.version
            credentials(&o, namespace: DemoPlan.namespace, serviceAccount: DemoPlan.serviceAccount(w.service))
            proxies.append(try ProxyServer(options: o, logger: logger))
        }

        var clientConfig = HTTPClient.Configuration()
        clientConfig.timeout = .init(connect: .seconds(2), read: .seconds(10))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfig)
        let apps: [any Service] = plan.workloads.map { w in
            w.service == "mongodb" ? MongoStandIn(workload: w) as any Service : BookinfoApp(workload: w, client: client, logger: logger)
        }
        let traffic = TrafficGenerator(
            gateway: "http://\(plan.host):\(plan.gatewayPort)", rate: options.rate, duration: options.duration, client: client,
            logger: logger, print: print)

        var services = try CollectorRunner.services(config, registry: registry, logger: logger)
        services += proxies.map { .init(service: $0) }
        services += apps.map { .init(service: $0) }
        services.append(.init(service: traffic, successTerminationBehavior: options.duration == nil ? .ignore : .gracefullyShutdownGroup))
        var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = config.shutdownTimeout + .seconds(5)

        print(banner(plan, options: options, config: config, demoDir: demoDir, out: out))
        do {
            try await ServiceGroup(configuration: groupConfig).run()
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
        print("sextant demo stopped: \(traffic.statusCounts.values.reduce(0, +)) requests answered")
    }

    /// Where to look, printed once everything is set up.
    static func banner(_ plan: DemoPlan, options: DemoOptions, config: CollectorConfig, demoDir: String, out: String) -> String {
        func endpoint<C>(_ type: String, _ get: (C) -> String) -> String? {
            config.definitions[.exporter]?.values.sorted(by: { $0.id < $1.id }).first { $0.id.type == type }.flatMap { ($0.config as? C).map(get) }
        }
        let jaeger = endpoint("jaeger_query") { (c: JaegerQueryExporterConfig) in "http://\(c.host):\(c.port)" }
        let prometheus = endpoint("prometheus") { (c: PrometheusExporterConfig) in "http://\(c.host):\(c.port)/metrics" }
        let admins = plan.adminTargets.joined(separator: ", ")
        var lines = [
            "sextant demo: the Bookinfo mesh (ingress gateway + 8 sidecars) and the collector (\(options.collectorConfigs.joined(separator: " + ")))",
            "  gateway       http://\(plan.host):\(plan.gatewayPort)/productpage   (header `end-user: jason` → reviews v2)",
            options.rate > 0
                ? "  traffic       \(options.rate) req/s through the gateway\(options.duration.map { " for \($0)" } ?? " until Ctrl-C"), every 4th as jason"
                : "  traffic       none (--rate 0): send your own requests to the gateway",
        ]
        if let jaeger {
            lines.append("  traces        \(jaeger)/api/services — Jaeger's query API; Grafana: a Jaeger data source at \(jaeger)")
        }
        if let prometheus {
            lines.append("  metrics       \(prometheus) — Istio metrics of every proxy, scraped by the collector every \(options.scrapeInterval)")
            lines.append("                Prometheus: scrape_configs: [{job_name: sextant, static_configs: [{targets: ['\(prometheus.dropFirst(7).dropLast(8))']}]}]")
            lines.append("                Grafana: dashboards/grafana (provisioning in dashboards/README.md)")
        }
        lines += [
            "  proxies       /stats/prometheus, /config_dump, /ready at \(admins) (gateway first)",
            "  access logs   \(demoDir)/logs/<workload>.log (Istio JSON, one file per proxy)",
            "                \(out)/logs.ecs.ndjson — the same requests as ECS documents (sent by the proxies over OTLP); Kibana: dashboards/README.md",
            "  mesh config   \(options.meshDirectory)/*.yaml + \(demoDir)/services.yaml — edit and save: the proxies reload",
            "Ctrl-C stops everything.",
        ]
        return lines.joined(separator: "\n")
    }

    static func yamlFiles(in directory: String) throws -> [String] {
        guard let dir = opendir(directory) else {
            throw DemoError("cannot read the mesh directory \(directory): \(FileText.lastErrorDescription())")
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name.hasSuffix(".yaml") || name.hasSuffix(".yml") { names.append("\(directory)/\(name)") }
        }
        if names.isEmpty { throw DemoError("no *.yaml files in the mesh directory \(directory)") }
        return names.sorted()
    }

    static func write(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DemoError("cannot write \(path): \(FileText.lastErrorDescription())") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            guard n > 0 else { throw DemoError("cannot write \(path): \(FileText.lastErrorDescription())") }
            offset += n
        }
    }
}
