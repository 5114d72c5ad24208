import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import SextantModel
import SextantPipeline
import SextantPrometheus
import SextantSecurity
import Synchronization

public struct PrometheusReceiverFactory: ReceiverFactory {
    public init() {}
    public let type = "prometheus"
    public let signals: Set<Signal> = [.metrics]
    public let summary = "scrapes Prometheus text 0.0.4 / OpenMetrics 1.0 targets (static_configs, metric_relabel_configs)"

    public func parseConfig(_ r: inout ConfigReader) -> any ComponentConfig { PrometheusReceiverConfig.parse(&r) }

    public func makeReceiver(_ settings: ComponentSettings, config: any ComponentConfig, consumers: [Signal: any Consumer]) throws
        -> any Component
    {
        PrometheusReceiver(config as! PrometheusReceiverConfig, settings: settings, next: consumers[.metrics]!)
    }
}

/// Scrapes every static target of every `scrape_config` on its own loop (one child task each, started at a
/// random offset within the interval so targets do not scrape in lockstep) and sends each scrape downstream
/// as one OTLP batch, assembled by `ScrapeAssembler`. A failed scrape — connection error, timeout, HTTP
/// status other than 200, oversized body, or a malformed exposition (logged with its line number) — sends
/// `up` 0 and staleness markers for that target only.
public final class PrometheusReceiver: Component {
    /// The scope of metrics without `otel_scope_name`, naming this receiver (OTel compatibility spec
    /// § Instrumentation Scope).
    public static let scope = InstrumentationScope(name: "sextant/prometheusreceiver")
    /// Prometheus' `Accept` header: OpenMetrics preferred, then the text format.
    static let accept = "application/openmetrics-text;version=1.0.0;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

    private let config: PrometheusReceiverConfig
    private let next: any Consumer
    private let logger: Logger
    private let metrics: ReceiverMetrics
    private let state = Mutex<(clients: [HTTPClient], task: Task<Void, Never>?)>(([], nil))

    public init(_ config: PrometheusReceiverConfig, settings: ComponentSettings, next: any Consumer) {
        self.config = config
        self.next = next
        self.logger = settings.logger
        self.metrics = ReceiverMetrics(settings, transport: "http")
    }

    public func start() async throws {
        var http = HTTPClient.Configuration()
        let largest = config.scrapeConfigs.map(\.bodySizeLimit).max() ?? (100 << 20)
        http.decompression = .enabled(limit: .size(largest))
        http.redirectConfiguration = .follow(max: 10, allowCycles: false)
        // One client for the scrape configs without `tls_config`, one more per `tls_config` (its CA,
        // client certificate and versions belong to the client), and per target with `server_name`
        // (its DNS override maps the name to that target). Certificate files are read now.
        var clients = [HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)]
        var built: [ScrapeLoop] = []
        do {
            for sc in config.scrapeConfigs {
                var client = clients[0]
                var secured = http
                if let tls = sc.tls {
                    secured.tlsConfiguration = try tls.makeConfiguration()
                    if tls.serverNameOverride == nil {
                        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: secured)
                        clients.append(client)
                    }
                }
                for target in sc.targets {
                    if let name = sc.serverName, let (host, _) = HostPort.parse(target.address) {
                        // The request names `server_name` (SNI and certificate check); the connection goes
                        // to the target (AsyncHTTPClient's `dnsOverride`).
                        var own = secured
                        own.dnsOverride = [name: host]
                        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: own)
                        clients.append(client)
                    }
                    built.append(ScrapeLoop(config: sc, target: target, client: client, next: next, logger: logger, metrics: metrics))
                }
            }
        } catch {
            for c in clients { try? await c.shutdown() }
            throw error
        }
        let loops = built
        let task = Task {
            await withDiscardingTaskGroup { group in
                for loop in loops { group.addTask { await loop.run() } }
            }
        }
        state.withLock { $0 = (clients, task) }
        logger.info(
            "Prometheus receiver scraping",
            metadata: ["targets": "\(loops.map { "\($0.config.jobName)/\($0.target.address)" }.joined(separator: ","))"])
    }

    public func shutdown() async {
        let (clients, task) = state.withLock { s in
            defer { s = ([], nil) }
            return s
        }
        task?.cancel()
        await task?.value
        for c in clients { try? await c.shutdown() }
    }
}

/// Why one scrape failed (the exposition's own errors are `ExpositionError`s).
struct ScrapeError: Error, CustomStringConvertible {
    var description: String
    init(_ message: String) { description = message }
}

/// The scrape loop of one target: fetch, parse, relabel, assemble, send; every `scrape_interval`.
struct ScrapeLoop: Sendable {
    let config: ScrapeConfig
    let target: ScrapeTarget
    let client: HTTPClient
    let next: any Consumer
    let logger: Logger
    let metrics: ReceiverMetrics

    var url: String { url(host: target.address) }

    /// The URL requested: the target's, or with `server_name` in its place (the client's DNS override
    /// connects to the target); `Host` stays the target's address either way.
    var requestURL: String {
        guard let name = config.serverName, let (_, port) = HostPort.parse(target.address) else { return url }
        return url(host: "\(name):\(port)")
    }

    private func url(host: String) -> String {
        var u = "\(config.scheme)://\(host)\(config.metricsPath)"
        let query = config.params.flatMap { (k, vs) in vs.map { "\(Self.percentEncode(k))=\(Self.percentEncode($0))" } }
        if !query.isEmpty { u += (u.contains("?") ? "&" : "?") + query.joined(separator: "&") }
        return u
    }

    /// `job`, `instance`, then the static labels (Prometheus' target labels).
    var targetLabels: [ExpositionLabel] {
        var labels = [ExpositionLabel("job", config.jobName), ExpositionLabel("instance", target.address)]
        for (k, v) in target.labels where k != "job" && k != "instance" { labels.append(ExpositionLabel(k, v)) }
        for (k, v) in target.labels where k == "job" || k == "instance" { labels[k == "job" ? 0 : 1].value = v }
        return labels
    }

    func run() async {
        let interval = config.scrapeInterval
        let offset = Duration.nanoseconds(Int64.random(in: 0..<max(1, Self.nanos(interval))))
        do { try await Task.sleep(for: offset) } catch { return }
        let labels = targetLabels
        let job = labels[0].value
        let instance = labels[1].value
        var assembler = ScrapeAssembler(
            resource: ScrapeAssembler.targetResource(job: job, instance: instance, scheme: config.scheme),
            defaultScope: PrometheusReceiver.scope)
        // The previous scrape's strings, which the next parse reuses (`ExpositionStrings`).
        var strings = ExpositionStrings()
        let clock = ContinuousClock()
        var due = clock.now
        while !Task.isCancelled {
            await scrape(&assembler, strings: &strings, targetLabels: labels)
            due += interval
            let now = clock.now
            while due <= now { due += interval }  // skip scrapes missed while a slow one ran
            do { try await Task.sleep(until: due, clock: clock) } catch { return }
        }
    }

    /// One scrape; never throws — failures become `up` 0.
    func scrape(_ assembler: inout ScrapeAssembler, strings: inout ExpositionStrings, targetLabels: [ExpositionLabel]) async {
        let startNanos = SystemTime.nowNanos()
        let clock = ContinuousClock()
        let started = clock.now
        var data: MetricsData
        var up = 1.0
        var scraped = 0
        var kept = 0
        do {
            let (body, contentType) = try await fetch()
            let format = ExpositionFormat(contentType: contentType)
            let families = try body.withUnsafeReadableBytes { raw in
                Result { () throws(ExpositionError) in try ExpositionParser.parse(raw, format: format, strings: &strings) }
            }.get()
            scraped = families.reduce(0) { $0 + $1.samples.count }
            var relabeled = ScrapeLabeling.apply(
                families, targetLabels: targetLabels, honorLabels: config.honorLabels, rules: config.metricRelabelConfigs)
            kept = relabeled.reduce(0) { $0 + $1.samples.count }
            if !config.honorTimestamps {
                for i in relabeled.indices { for j in relabeled[i].samples.indices { relabeled[i].samples[j].timestampNanos = nil } }
            }
            data = assembler.assemble(relabeled, at: startNanos)
        } catch {
            if Task.isCancelled { return }  // shutting down: no failure to report
            up = 0
            logger.warning(
                "scrape failed",
                metadata: ["job": "\(config.jobName)", "target": "\(url)", "reason": "\(error)"])
            data = assembler.markStale(at: startNanos)
        }
        let elapsed = clock.now - started
        let attrs = targetLabels.dropFirst(2).map { KeyValue($0.name, .string($0.value)) }
        func gauge(_ name: String, _ value: Double, _ help: String) -> Metric {
            Metric(
                name: name, description: help,
                data: .gauge([NumberDataPoint(attributes: attrs, timeUnixNano: startNanos, value: .double(value))]),
                metadata: [KeyValue("prometheus.type", .string("gauge"))])
        }
        assembler.appendSynthetic(
            [
                gauge("up", up, "1 if the target was scraped successfully, else 0."),
                gauge("scrape_duration_seconds", Double(Self.nanos(elapsed)) / 1e9, "Duration of the scrape in seconds."),
                gauge("scrape_samples_scraped", Double(scraped), "Samples the target exposed."),
                gauge("scrape_samples_post_metric_relabeling", Double(kept), "Samples left after metric relabeling."),
                gauge("scrape_series_added", Double(assembler.seriesAdded), "Series seen for the first time in this scrape."),
            ], to: &data)
        let points = data.dataPointCount
        do {
            try await next.consume(.metrics(data))
            metrics.accepted(.metrics, points)
        } catch {
            metrics.refused(.metrics, points)
            logger.warning("scraped metrics refused downstream", metadata: ["job": "\(config.jobName)", "error": "\(error)"])
        }
    }

    /// GET with Prometheus' headers; the whole exchange (body included) is bounded by `scrape_timeout`.
    ///
    /// The body is gathered on the connection's event loop and handed to this task once, and the timeout
    /// is a timer on that loop: the streaming API resumed the scrape task for every chunk read, and a
    /// racing sleep task cost a timer thread wake-up per scrape — thread switches that showed up as a
    /// few per cent of the receiver's CPU.
    func fetch() async throws -> (ByteBuffer, String?) {
        var request = try HTTPClient.Request(url: requestURL, method: .GET)
        if config.serverName != nil { request.headers.replaceOrAdd(name: "Host", value: target.address) }
        request.headers.add(name: "Accept", value: PrometheusReceiver.accept)
        request.headers.add(name: "Accept-Encoding", value: "gzip")
        request.headers.add(name: "User-Agent", value: "sextant")
        request.headers.add(name: "X-Prometheus-Scrape-Timeout-Seconds", value: "\(Double(Self.nanos(config.scrapeTimeout)) / 1e9)")
        if let authorization = config.authorization { request.headers.add(name: "Authorization", value: try authorization.headerValue()) }
        let timeout = config.scrapeTimeout
        let limit = config.bodySizeLimit
        let collector = ScrapeResponse(limit: limit)
        let task = client.execute(request: request, delegate: collector)
        let timedOut = TimeoutFlag()
        let timer = task.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            timedOut.fired.store(true, ordering: .relaxed)
            task.cancel()
        }
        task.futureResult.whenComplete { _ in timer.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await task.futureResult.get()
            } onCancel: {
                task.cancel()
            }
        } catch let error as ScrapeError {
            throw error
        } catch {
            if timedOut.fired.load(ordering: .relaxed) { throw ScrapeError("scrape timed out after \(GoDuration.format(timeout))") }
            // Once the head is in, a failure is the body's: a gzip body that inflates beyond the limit (the
            // client's decompression limit) or a connection lost mid-body.
            if collector.headReceived.load(ordering: .acquiring) {
                throw ScrapeError("reading the body failed (body_size_limit \(limit) bytes): \(error)")
            }
            throw ScrapeError("GET \(url) failed: \(error)")
        }
    }

    static func nanos(_ d: Duration) -> Int64 {
        let (s, atto) = d.components
        return s * 1_000_000_000 + atto / 1_000_000_000
    }

    /// RFC 3986 query component encoding (unreserved characters kept).
    static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(decoding: [hex[Int(b >> 4)], hex[Int(b & 15)]], as: UTF8.self)
            }
        }
        return out
    }
}

/// Whether a scrape's timer went off (so that the request's cancellation reads as a timeout).
private final class TimeoutFlag: Sendable {
    let fired = Atomic(false)
}

/// A scrape's response, gathered on the connection's event loop: any status but 200 fails it at the
/// head, and a body past `body_size_limit` bytes (after decompression) fails it as soon as it gets there.
private final class ScrapeResponse: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = (ByteBuffer, String?)

    private let limit: Int
    /// Set on the event loop; read by the scrape once the request has failed.
    let headReceived = Atomic(false)
    // Touched only on the request's event loop, one callback at a time (the delegate contract).
    private var body = ByteBuffer()
    private var contentType: String?

    init(limit: Int) { self.limit = limit }

    func didReceiveHead(task: HTTPClient.Task<Response>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        headReceived.store(true, ordering: .releasing)
        guard head.status == .ok else {
            return task.eventLoop.makeFailedFuture(
                ScrapeError("server returned HTTP status \(head.status.code) \(head.status.reasonPhrase)"))
        }
        contentType = head.headers.first(name: "content-type")
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Response>, _ part: ByteBuffer) -> EventLoopFuture<Void> {
        guard body.readableBytes + part.readableBytes <= limit else {
            return task.eventLoop.makeFailedFuture(ScrapeError("body exceeds body_size_limit (\(limit) bytes)"))
        }
        if body.readableBytes == 0 {
            body = part  // the usual single part is kept without a copy
        } else {
            var part = part
            body.writeBuffer(&part)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didFinishRequest(task: HTTPClient.Task<Response>) throws -> Response { (body, contentType) }
}
