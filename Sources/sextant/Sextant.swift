import ArgumentParser
import Logging
import SextantCollector
import SextantIstio
import SextantPipeline

#if canImport(Glibc)
import Glibc
#endif

@main
struct Sextant: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sextant",
        abstract: "A telemetry collector for service meshes (receivers → processors → exporters) and an Istio-style routing proxy.",
        version: CollectorRunner.version,
        subcommands: [Collector.self, DemoCommand.self, ProxyCommand.self, CACommand.self, Validate.self, Components.self]
    )
}

/// Options shared by the commands that log.
struct LoggingOptions: ParsableArguments {
    @Option(
        name: .long,
        help: "Log level: trace, debug, info, notice, warning, error, critical (default: service.telemetry.logs.level, else info).")
    var logLevel: Logger.Level?

    /// Bootstraps swift-log to stderr; the flag wins over the config's `service.telemetry.logs.level`.
    func bootstrap(configLevel: String? = nil) -> Logger {
        let fromConfig: Logger.Level? = configLevel.flatMap { $0 == "warn" ? .warning : Logger.Level(rawValue: $0) }
        let level = logLevel ?? fromConfig ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
        return Logger(label: "sextant")
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

struct Collector: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the collector until SIGTERM or SIGINT, then drain and exit 0.")

    @Option(name: .long, help: "A config file (YAML); repeat to merge several, later files win.")
    var config: [String] = ["pipelines/default.yaml"]

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        HeapTuning.keepBatchBuffers()
        do {
            let loaded = try CollectorConfig.load(files: config, registry: BuiltinComponents.registry)
            let logger = logging.bootstrap(configLevel: loaded.telemetry.logLevel)
            try await CollectorRunner.run(loaded, logger: logger)
        } catch let error as ConfigError {
            printError("invalid configuration:\n\(error)")
            throw ExitCode(2)
        } catch let error as GraphStartError {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check config files and report every error with file:line:column.")

    @Option(name: .long, help: "A config file (YAML); repeat to merge several.")
    var config: [String] = []

    @Option(name: .customLong("proxy-config"), help: "Istio resources for `sextant proxy` (YAML); repeat for several files.")
    var proxyConfig: [String] = []

    func run() async throws {
        if !proxyConfig.isEmpty {
            do {
                let (resources, warnings) = try IstioConfigLoader.load(paths: proxyConfig)
                for w in warnings { printError("\(w)") }
                print(
                    "proxy configuration is valid: \(resources.virtualServices.count) VirtualService(s), "
                        + "\(resources.destinationRules.count) DestinationRule(s), \(resources.serviceEntries.count) ServiceEntry(s), "
                        + "\(resources.gateways.count) Gateway(s)")
            } catch {
                printError("\(error)")
                printError("\(error.diagnostics.count) error(s)")
                throw ExitCode(2)
            }
            if config.isEmpty { return }
        }
        do {
            let c = try CollectorConfig.load(files: config, registry: BuiltinComponents.registry)
            for w in c.warnings { printError("\(w)") }
            print("configuration is valid: \(c.pipelines.count) pipeline(s)")
        } catch let error as ConfigError {
            printError("\(error)")
            printError("\(error.diagnostics.count) error(s)")
            throw ExitCode(2)
        }
    }
}

struct Components: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the component types built into this binary.")

    func run() throws {
        let rows = BuiltinComponents.registry.listing()
        let w1 = rows.map(\.kind.rawValue.count).max() ?? 0
        let w2 = rows.map(\.type.count).max() ?? 0
        let w3 = rows.map(\.signals.count).max() ?? 0
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        print("\(pad("KIND", w1))  \(pad("TYPE", w2))  \(pad("SIGNALS", w3))  DESCRIPTION")
        for r in rows { print("\(pad(r.kind.rawValue, w1))  \(pad(r.type, w2))  \(pad(r.signals, w3))  \(r.summary)") }
    }
}

/// Writes a line to standard output at once (no stdio buffering, so a pipe sees it immediately).
func printOut(_ s: String) {
    let bytes = Array((s + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(1, $0.baseAddress, $0.count) }
}

/// Writes a line to standard error.
func printError(_ s: String) {
    let bytes = Array((s + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

extension ProxyCommand {
    /// `istio_build`'s `tag`.
    static let buildVersion = CollectorRunner.version
}
