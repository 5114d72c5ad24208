import AsyncHTTPClient
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import SextantHTTP
import ServiceLifecycle

/// One Bookinfo application (Istio's sample: productpage → details, productpage → reviews, reviews v2/v3 →
/// ratings, ratings v2 → MongoDB) as a small in-process HTTP server. Like the real sample it knows nothing
/// of tracing: it calls
/// other services by name through its sidecar's outbound listener and copies only the headers Istio asks
/// applications to propagate (plus Bookinfo's `end-user`), so the trace is stitched by the proxies.
public final class BookinfoApp: Service, Sendable {
    /// The headers Istio's docs ask applications to forward (istio.io "Distributed tracing" overview), and
    /// Bookinfo's own `end-user` (the logged-in user, which routing rules match on) and `user-agent`.
    public static let propagatedHeaders = [
        "x-request-id", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "x-b3-sampled",
        "x-b3-flags", "b3", "x-ot-span-context", "end-user", "user-agent",
    ]

    let workload: DemoWorkload
    let client: HTTPClient
    let logger: Logger

    public init(workload: DemoWorkload, client: HTTPClient, logger: Logger) {
        self.workload = workload
        self.client = client
        self.logger = logger
    }

    var host: String { workload.ip }

    public func run() async throws {
        let server = try await HTTPServer.start(
            HTTPServerConfiguration(host: host, port: workload.appPort, maxRequestBodySize: 1 << 16), logger: logger
        ) { [self] request in await respond(request) }
        try? await gracefulShutdown()
        await server.shutdown()
    }

    func respond(_ request: HTTPRequest) async -> HTTPResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        if parts.first == "health" { return .text(.ok, "ok\n") }
        switch (workload.service, parts.first ?? "") {
        case ("productpage", "productpage"):
            return await productPage(request)
        case ("productpage", "api"):
            // Bookinfo's API: /api/v1/products and /api/v1/products/<id>; there is one product, id 0.
            guard parts.count >= 3, parts[1] == "v1", parts[2] == "products" else { break }
            if parts.count == 3 { return json(.ok, #"[{"id":0,"title":"The Comedy of Errors"}]"#) }
            if parts[3] == "0" { return json(.ok, Self.detailsJSON(id: "0")) }
            return json(.notFound, #"{"error":"Product not found"}"#)
        case ("details", "details"):
            return json(.ok, Self.detailsJSON(id: parts.count > 1 ? parts[1] : "0"))
        case ("reviews", "reviews"):
            return await reviews(request, id: parts.count > 1 ? parts[1] : "0")
        case ("ratings", "ratings"):
            let id = Int(parts.count > 1 ? parts[1] : "0") ?? 0
            if workload.version == "v1" { return json(.ok, #"{"id":\#(id),"ratings":{"Reviewer1":5,"Reviewer2":4}}"#) }
            // v2 reads the ratings from MongoDB (Bookinfo's ratings-v2 with DB_TYPE=mongodb).
            guard let stored = await queryMongo("find ratings \(id)") else {
                return json(.serviceUnavailable, #"{"error":"could not connect to ratings database"}"#)
            }
            return json(.ok, #"{"id":\#(id),"ratings":\#(stored)}"#)
        default:
            break
        }
        return .text(.notFound, "\(workload.service) has no \(request.path)\n")
    }

    private func productPage(_ request: HTTPRequest) async -> HTTPResponse {
        async let details = call("details", "/details/0", request.head.headers)
        async let reviews = call("reviews", "/reviews/0", request.head.headers)
        let (d, r) = await (details, reviews)
        let user = request.head.headers.first(name: "end-user") ?? "anonymous"
        var page = "<html><head><title>Simple Bookstore App</title></head><body>\n<h1>The Comedy of Errors</h1>\n"
        page += "<p>user: \(user)</p>\n"
        page += d.status == 200 ? "<pre id=\"details\">\(d.body)</pre>\n" : "<p>Error fetching product details (\(d.status))</p>\n"
        page += r.status == 200 ? "<pre id=\"reviews\">\(r.body)</pre>\n" : "<p>Error fetching product reviews (\(r.status))</p>\n"
        page += "</body></html>\n"
        var body = ByteBuffer()
        body.writeString(page)
        return HTTPResponse(status: .ok, headers: ["content-type": "text/html; charset=utf-8"], body: body)
    }

    private func reviews(_ request: HTTPRequest, id: String) async -> HTTPResponse {
        // v1 shows no stars, v2 black stars, v3 red stars (both fetched from ratings).
        var ratings: [String: Int]?
        var ratingsError = false
        if workload.version != "v1" {
            let r = await call("ratings", "/ratings/\(id)", request.head.headers)
            if r.status == 200 {
                ratings = ["Reviewer1": r.body.contains("\"Reviewer1\":5") ? 5 : 0, "Reviewer2": r.body.contains("\"Reviewer2\":4") ? 4 : 0]
            } else {
                ratingsError = true
            }
        }
        let color = workload.version == "v3" ? "red" : "black"
        func rating(_ who: String) -> String {
            if workload.version == "v1" { return "" }
            if ratingsError { return #","rating":{"error":"Ratings service is currently unavailable"}"# }
            return #","rating":{"stars":\#(ratings?[who] ?? 0),"color":"\#(color)"}"#
        }
        let text1 = "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"
        let text2 = "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."
        return json(
            .ok,
            #"{"id":"\#(id)","podname":"\#(workload.name)","clustername":"null","reviews":["#
                + #"{"reviewer":"Reviewer1","text":"\#(text1)"\#(rating("Reviewer1"))},"#
                + #"{"reviewer":"Reviewer2","text":"\#(text2)"\#(rating("Reviewer2"))}]}"#)
    }

    static func detailsJSON(id: String) -> String {
        #"{"id":\#(Int(id) ?? 0),"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"#
            + #""publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#
    }

    private func json(_ status: HTTPResponseStatus, _ text: String) -> HTTPResponse {
        var body = ByteBuffer()
        body.writeString(text)
        return HTTPResponse(status: status, headers: ["content-type": "application/json"], body: body)
    }

    /// One query to MongoDB through this workload's sidecar: a plain TCP connection to the service port
    /// on the workload's own address (where Istio's iptables would have captured it), one line out, one
    /// line back. nil on any failure.
    private func queryMongo(_ line: String) async -> String? {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(2))
                .connect(host: host, port: DemoPlan.mongoPort) { ch in
                    ch.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch) }
                }
            let deadline = channel.channel.eventLoop.scheduleTask(in: .seconds(5)) { channel.channel.close(promise: nil) }
            defer { deadline.cancel() }
            return try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: line + "\n"))
                var answer = ByteBuffer()
                for try await var chunk in inbound {
                    answer.writeBuffer(&chunk)
                    if let nl = answer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                        return String(decoding: answer.readableBytesView[..<nl], as: UTF8.self)
                    }
                }
                return nil
            }
        } catch {
            logger.debug("mongodb query failed", metadata: ["from": "\(workload.name)", "error": "\(error)"])
            return nil
        }
    }

    /// Calls `service` on Bookinfo's port through this workload's sidecar (outbound listener), forwarding
    /// only the propagated headers. A failure is a status 0 answer, shown on the page as Bookinfo does.
    private func call(_ service: String, _ path: String, _ incoming: HTTPHeaders) async -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: "http://\(host):\(workload.outboundPort)\(path)")
        request.headers.add(name: "host", value: "\(service):\(DemoPlan.servicePort)")
        for name in Self.propagatedHeaders {
            for value in incoming[name] { request.headers.add(name: name, value: value) }
        }
        do {
            let response = try await client.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: body))
        } catch {
            logger.debug("call failed", metadata: ["from": "\(workload.name)", "to": "\(service)", "error": "\(error)"])
            return (0, "")
        }
    }
}

/// Bookinfo's MongoDB, reduced to what ratings v2 asks of it: a TCP server answering the line
/// `find ratings <id>` with the ratings document as one JSON line. Not the MongoDB wire protocol: what the
/// demo needs is a plain TCP service behind a sidecar (Istio's `istio_tcp_*` metrics, TCP sniffing).
public final class MongoStandIn: Service, Sendable {
    let workload: DemoWorkload

    public init(workload: DemoWorkload) { self.workload = workload }

    public func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: workload.ip, port: workload.appPort) { ch in
                ch.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: ch) }
            }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await connection in connections {
                        group.addTask { try? await Self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    static func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var pending = ByteBuffer()
            for try await var chunk in inbound {
                pending.writeBuffer(&chunk)
                while let nl = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending.readableBytesView[..<nl], as: UTF8.self)
                    pending.moveReaderIndex(to: nl + 1)
                    let answer = line.hasPrefix("find ratings ") ? #"{"Reviewer1":5,"Reviewer2":4}"# : #"{"error":"unknown command"}"#
                    try await outbound.write(ByteBuffer(string: answer + "\n"))
                }
                if pending.readableBytes > 1 << 16 { return }
            }
        }
    }
}
