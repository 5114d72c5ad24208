import ArgumentParser
import SextantDemo
import SextantPipeline

/// `sextant demo`: the embedded default, end to end.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the collector on pipelines/default.yaml with a Bookinfo mesh (gateway + 6 sidecars) and traffic through it.",
        discussion: """
            Proxies send spans and access logs to the collector over OTLP/gRPC; the collector scrapes their Istio
            metrics. Everything listens on 127.0.0.1. Ctrl-C (or --duration) stops it all cleanly.
            """)

    @Option(name: .customLong("collector-config"), help: "Collector config file; repeat to merge several (later wins).")
    var collectorConfig: [String] = ["pipelines/default.yaml"]

    @Option(name: .customLong("mesh"), help: "Directory of Istio resources for the mesh (every *.yaml).")
    var meshDirectory = "pipelines/mesh"

    @Option(name: .long, help: "Directory for the collector's output (SEXTANT_OUT), generated files and access logs.")
    var out = "./out"

    @Option(name: .customLong("base-port"), help: "First port of the mesh: gateway admin; gateway at +80; workload i at +100+10·i (app, inbound, outbound, admin).")
    var basePort = 20000

    @Option(name: .customLong("pod-network"), help: "First three octets of the workloads' loopback addresses (127.x.y): each gets its own, as a pod IP.")
    var podNetwork = "127.0.0"

    @Option(name: .long, help: "Requests per second through the gateway (0: none).")
    var rate = 5.0

    @Option(name: .long, help: "Stop after this long (Go duration, e.g. 2m); default: run until Ctrl-C.")
    var duration: String?

    @Option(name: .customLong("scrape-interval"), help: "How often the collector scrapes the proxies' metrics (Go duration).")
    var scrapeInterval = "5s"

    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard rate >= 0, rate <= 10_000 else { throw ValidationError("--rate must be between 0 and 10000") }
        guard DemoPlan.isPodNetwork(podNetwork) else { throw ValidationError("--pod-network must be three octets of 127.0.0.0/8 such as 127.0.0, found '\(podNetwork)'") }
        guard (1024...65000).contains(basePort) else { throw ValidationError("--base-port must be between 1024 and 65000") }
        if let duration, GoDuration.parse(duration).map({ $0 > .zero }) != true {
            throw ValidationError("--duration must be a duration such as 2m, found '\(duration)'")
        }
        guard GoDuration.parse(scrapeInterval).map({ $0 > .zero }) == true else {
            throw ValidationError("--scrape-interval must be a duration such as 5s, found '\(scrapeInterval)'")
        }
    }

    func run() async throws {
        let logger = logging.bootstrap(configLevel: "warning")
        var options = DemoOptions()
        options.collectorConfigs = collectorConfig
        options.meshDirectory = meshDirectory
        options.outDirectory = out
        options.basePort = basePort
        options.podNetwork = podNetwork
        options.rate = rate
        options.duration = duration.flatMap(GoDuration.parse)
        options.scrapeInterval = scrapeInterval
        options.version = ProxyCommand.buildVersion
        do {
            try await DemoRunner.run(options, logger: logger) { line in printOut(line) }
        } catch let error as ConfigError {
            printError("invalid configuration:\n\(error)")
            throw ExitCode(2)
        } catch let error as DemoError {
            printError("sextant demo: \(error)")
            throw ExitCode(2)
        }
    }
}
