import SextantConnectors
import SextantExporters
import SextantPipeline
import SextantProcessors
import SextantReceivers
import SextantSecurity

/// The component types built into this `sextant` binary.
public enum BuiltinComponents {
    public static var registry: ComponentRegistry {
        var r = ComponentRegistry()
        r.telemetryTLSParser = { TLSSettings.parseServer(&$0) }
        r.register(BearerTokenAuthExtensionFactory())
        r.register(BasicAuthExtensionFactory())
        r.register(OTLPReceiverFactory())
        r.register(ZipkinReceiverFactory())
        r.register(JaegerReceiverFactory())
        r.register(FileLogReceiverFactory())
        r.register(SyslogReceiverFactory())
        r.register(PrometheusRemoteWriteReceiverFactory())
        r.register(PrometheusReceiverFactory())
        r.register(FluentForwardReceiverFactory())
        r.register(BatchProcessorFactory())
        r.register(MemoryLimiterProcessorFactory())
        r.register(AttributesProcessorFactory())
        r.register(ResourceProcessorFactory())
        r.register(FilterProcessorFactory())
        r.register(EnvoyAccessLogProcessorFactory())
        r.register(ProbabilisticSamplerFactory())
        r.register(TailSamplingProcessorFactory())
        r.register(CumulativeToDeltaProcessorFactory())
        r.register(DeltaToCumulativeProcessorFactory())
        r.register(CardinalityGuardProcessorFactory())
        r.register(DebugExporterFactory())
        r.register(FileExporterFactory())
        r.register(OTLPExporterFactory())
        r.register(OTLPHTTPExporterFactory())
        r.register(ZipkinExporterFactory())
        r.register(JaegerThriftExporterFactory())
        r.register(NopExporterFactory())
        r.register(JaegerQueryExporterFactory())
        r.register(ElasticsearchExporterFactory())
        r.register(PrometheusExporterFactory())
        r.register(PrometheusRemoteWriteExporterFactory())
        r.register(FluentForwardExporterFactory())
        r.register(ForwardConnectorFactory())
        r.register(SpanMetricsConnectorFactory())
        r.register(HealthCheckExtensionFactory())
        r.register(FileStorageExtensionFactory())
        return r
    }
}
