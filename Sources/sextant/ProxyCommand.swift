import ArgumentParser
import Logging
import SextantIstio
import SextantPipeline
import SextantProxy
import ServiceLifecycle

/// `sextant proxy`: the Istio-style routing proxy.
struct ProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proxy",
        abstract: "Run the routing proxy, configured with Istio YAML (VirtualService, DestinationRule, ServiceEntry, Gateway).",
        discussion: """
            Reloads the config on SIGHUP or when a file changes (a bad config is rejected and the old one kept).
            Stops on SIGTERM or SIGINT after requests in flight finish.
            """)

    @Option(name: .long, help: "Istio resources (multi-document YAML); repeat for several files.")
    var config: [String]

    @Option(name: .long, help: "Workload name this proxy stands for (source_workload).")
    var workload = "unknown"

    @Option(name: .long, help: "Namespace of the workload; short host names are qualified with it.")
    var namespace = "default"

    @Option(name: .long, parsing: .singleValue, help: "A workload label k=v (e.g. app=reviews, version=v1); repeat.")
    var label: [String] = []

    @Option(name: .long, help: "sidecar or gateway.")
    var mode: String = "sidecar"

    @Option(name: .long, help: "Outbound listener host:port (the workload's own calls).")
    var listen: String?

    @Option(name: .long, help: "Inbound listener host:port (sidecar mode: calls to this workload).")
    var inbound: String?

    @Option(name: .long, help: "The local app behind the inbound listener, host:port.")
    var app: String?

    @Option(name: .long, help: "Admin listener host:port (/ready, /stats/prometheus, /config_dump).")
    var admin: String?

    @Option(name: .long, help: "Event-loop threads.")
    var concurrency = 1

    @Option(name: .customLong("metrics-expiry"), help: "Drop Istio metric series not updated for this long (Go duration).")
    var metricsExpiry = "10m"

    @Option(name: .long, help: "Mesh mTLS: this proxy's SPIFFE certificate chain (PEM), leaf first.")
    var cert: String?

    @Option(name: .long, help: "Mesh mTLS: the private key of --cert (PEM).")
    var key: String?

    @Option(name: .long, help: "Mesh mTLS: the mesh root CA (PEM) that peers' certificates must chain to.")
    var ca: String?

    @Option(name: .customLong("service-account"), help: "Service account of the workload (identity spiffe://cluster.local/ns/NS/sa/SA); default: --workload.")
    var serviceAccount: String?

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard ProxyIdentity.Mode(rawValue: mode) != nil else { throw ValidationError("--mode must be sidecar or gateway") }
        guard listen != nil || inbound != nil else { throw ValidationError("give --listen and/or --inbound") }
        guard (inbound == nil) == (app == nil) else { throw ValidationError("--inbound and --app go together") }
        for (flag, value) in [("--listen", listen), ("--inbound", inbound), ("--app", app), ("--admin", admin)] {
            if let value, HostPort.parse(value) == nil { throw ValidationError("\(flag) must be host:port, found '\(value)'") }
        }
        guard (cert == nil) == (key == nil) && (cert == nil) == (ca == nil) else { throw ValidationError("--cert, --key and --ca go together") }
        for l in label where !l.contains("=") { throw ValidationError("--label must be k=v, found '\(l)'") }
        guard GoDuration.parse(metricsExpiry).map({ $0 > .zero }) == true else {
            throw ValidationError("--metrics-expiry must be a duration such as 10m, found '\(metricsExpiry)'")
        }
    }

    func run() async throws {
        let logger = logging.bootstrap()
        var labels: [String: String] = [:]
        for l in label {
            let kv = l.split(separator: "=", maxSplits: 1).map(String.init)
            labels[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        let identity = ProxyIdentity(workload: workload, namespace: namespace, labels: labels, mode: ProxyIdentity.Mode(rawValue: mode)!)
        var options = ProxyOptions(configPaths: config, identity: identity)
        options.listen = listen.flatMap(HostPort.parse)
        options.inbound = inbound.flatMap(HostPort.parse)
        options.app = app.flatMap(HostPort.parse)
        options.admin = admin.flatMap(HostPort.parse)
        options.threads = concurrency
        options.version = Self.buildVersion
        options.metricExpiry = GoDuration.parse(metricsExpiry) ?? .seconds(600)
        options.certificatePath = cert
        options.keyPath = key
        options.caPath = ca
        options.serviceAccount = serviceAccount
        let server: ProxyServer
        do {
            server = try ProxyServer(options: options, logger: logger)
        } catch {
            printError("invalid proxy configuration:\n\(error)")
            throw ExitCode(2)
        }
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}
