import SextantModel
import SextantPipeline

/// Trace-ID hashing shared by the probabilistic sampler and the tail sampler's probabilistic policy.
///
/// The OTel Collector's `hash_seed` mode: FNV-1a (32-bit) over the seed's four little-endian bytes
/// followed by the 16 trace ID bytes; the low 14 bits pick one of 16384 buckets, and a trace is kept
/// when its bucket is below `percentage × 16384 / 100`. Every collector with the same seed makes the
/// same decision for a trace, so a trace is never half-sampled.
enum TraceIDSampling {
    static let buckets: UInt32 = 0x4000

    static func hash(_ bytes: some Sequence<UInt8>, seed: UInt32) -> UInt32 {
        var h: UInt32 = 0x811C_9DC5
        for i in 0..<4 {
            h ^= (seed >> (8 * UInt32(i))) & 0xFF
            h = h &* 0x0100_0193
        }
        for b in bytes {
            h ^= UInt32(b)
            h = h &* 0x0100_0193
        }
        return h
    }

    static func threshold(percentage: Double) -> UInt32 { UInt32(percentage * Double(buckets) / 100) }

    static func keep(_ id: TraceID, seed: UInt32, threshold: UInt32) -> Bool {
        hash(id.bytes, seed: seed) & (buckets - 1) < threshold
    }
}

/// `probabilistic_sampler` processor (hash_seed mode): keeps a consistent `sampling_percentage` of
/// traces by trace ID. A span's `sampling.priority` attribute overrides: 0 drops it, >0 keeps it.
/// Logs are sampled by their trace ID, or by the `from_attribute` record attribute.
public struct ProbabilisticSamplerFactory: ProcessorFactory {
    struct Config: ComponentConfig {
        var percentage: Double = 0
        var seed: UInt32 = 0
        var fromAttribute: String?
        var attributeSource = "traceID"
        var samplingPriority: String?
    }

    public init() {}
    public let type = "probabilistic_sampler"
    public let signals: Set<Signal> = [.traces, .logs]
    public let summary = "keeps a consistent percentage of traces (and logs) by trace-ID hash"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig {
        var c = Config()
        c.percentage = r.double("sampling_percentage", default: 0, min: 0, max: 100)
        if !r.keys.contains("sampling_percentage") { r.error(nil, "\(r.path)::sampling_percentage is required (0–100)") }
        c.seed = UInt32(r.int("hash_seed", default: 0, min: 0, max: Int(UInt32.max)))
        _ = r.choice("mode", ["hash_seed"], default: "hash_seed")
        c.attributeSource = r.choice("attribute_source", ["traceID", "record"], default: "traceID")
        c.fromAttribute = r.optionalString("from_attribute")
        c.samplingPriority = r.optionalString("sampling_priority")
        if c.attributeSource == "record" && c.fromAttribute == nil {
            r.error("attribute_source", "\(r.path): attribute_source: record needs from_attribute")
        }
        return c
    }

    public func makeProcessor(_ settings: ComponentSettings, config: any ComponentConfig, pipeline: PipelineID, next: any Consumer)
        throws -> any ConsumingComponent
    {
        let c = config as! Config
        let threshold = TraceIDSampling.threshold(percentage: c.percentage)
        return TransformProcessor(settings, pipeline: pipeline, next: next) { batch in
            batch.filtered(
                spans: { span, _, _ in
                    switch span.attributes[key: "sampling.priority"] {
                    case .int(let p)?: return p > 0
                    case .double(let p)?: return p > 0
                    default: return TraceIDSampling.keep(span.traceID, seed: c.seed, threshold: threshold)
                    }
                },
                logs: { log, _ in
                    if let attr = c.samplingPriority, let v = log.attributes[key: attr] {
                        switch v {
                        case .int(let p): return p > 0
                        case .double(let p): return p > 0
                        default: break
                        }
                    }
                    if c.attributeSource == "record", let key = c.fromAttribute {
                        guard let v = log.attributes[key: key] else { return Double.random(in: 0..<100) < c.percentage }
                        return TraceIDSampling.hash(Array(v.asString.utf8), seed: c.seed) & (TraceIDSampling.buckets - 1) < threshold
                    }
                    guard let id = log.traceID else { return Double.random(in: 0..<100) < c.percentage }
                    return TraceIDSampling.keep(id, seed: c.seed, threshold: threshold)
                })
        }
    }
}
