import SextantConnectors
import SextantExporters
import SextantPipeline
import SextantProcessors
import SextantReceivers

/// The component types built into this `sextant` binary.
public enum BuiltinComponents {
    public static var registry: ComponentRegistry {
        var r = ComponentRegistry()
        r.register(OTLPReceiverFactory())
        r.register(ZipkinReceiverFactory())
        r.register(JaegerReceiverFactory())
        r.register(BatchProcessorFactory())
        r.register(MemoryLimiterProcessorFactory())
        r.register(AttributesProcessorFactory())
        r.register(ResourceProcessorFactory())
        r.register(FilterProcessorFactory())
        r.register(ProbabilisticSamplerFactory())
        r.register(TailSamplingProcessorFactory())
        r.register(DebugExporterFactory())
        r.register(FileExporterFactory())
        r.register(OTLPExporterFactory())
        r.register(OTLPHTTPExporterFactory())
        r.register(ZipkinExporterFactory())
        r.register(JaegerThriftExporterFactory())
        r.register(NopExporterFactory())
        r.register(JaegerQueryExporterFactory())
        r.register(ForwardConnectorFactory())
        r.register(SpanMetricsConnectorFactory())
        r.register(HealthCheckExtensionFactory())
        return r
    }
}
