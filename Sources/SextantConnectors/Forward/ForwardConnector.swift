import SextantModel
import SextantPipeline

/// The `forward` connector (as in the OTel Collector): passes data unchanged from the pipelines that
/// export to it into the pipelines of the same signal that receive from it, so several pipelines can
/// share processors or fan out with different processing.
public struct ForwardConnectorFactory: ConnectorFactory {
    struct Config: ComponentConfig {}

    public init() {}
    public let type = "forward"
    public let routes: Set<ConnectorRoute> = [
        ConnectorRoute(from: .traces, to: .traces), ConnectorRoute(from: .metrics, to: .metrics),
        ConnectorRoute(from: .logs, to: .logs),
    ]
    public let summary = "joins pipelines of the same signal"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { Config() }

    public func makeConnector(_ settings: ComponentSettings, config: any ComponentConfig, outputs: [Signal: any Consumer]) throws
        -> any ConsumingComponent
    {
        ForwardConnector(outputs: outputs)
    }
}

/// Forwards each batch to the output pipelines of its signal.
public struct ForwardConnector: ConsumingComponent {
    let outputs: [Signal: any Consumer]

    public func start() async throws {}
    public func shutdown() async {}

    public func consume(_ telemetry: Telemetry) async throws {
        guard let out = outputs[telemetry.signal] else {
            throw ConsumerError.permanent("forward connector has no \(telemetry.signal) output pipeline")
        }
        try await out.consume(telemetry)
    }
}
