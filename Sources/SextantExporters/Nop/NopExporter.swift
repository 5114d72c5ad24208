import SextantModel
import SextantPipeline

/// `nop` exporter (as in the OTel Collector): accepts and discards everything, counting it as sent.
/// For benchmarks and for pipelines whose only purpose is a connector's side effect.
public struct NopExporterFactory: ExporterFactory {
    struct Config: ComponentConfig {}

    public init() {}
    public let type = "nop"
    public let signals: Set<Signal> = [.traces, .metrics, .logs]
    public let summary = "discards everything (benchmarks, connector-only pipelines)"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { Config() }

    public func makeExporter(_ settings: ComponentSettings, config: any ComponentConfig, signals: Set<Signal>) throws
        -> any ConsumingComponent
    {
        HelperBackedExporter(helper: ExporterHelper(.synchronous, component: settings) { _ in }, readsTraceModel: false)
    }
}
