import SextantPrometheus
import Testing

private func parse(_ text: String, _ format: ExpositionFormat) throws -> [ExpositionFamily] {
    try ExpositionParser.parse(Array(text.utf8), format: format)
}

private func error(_ text: String, _ format: ExpositionFormat) -> ExpositionError? {
    do {
        _ = try ExpositionParser.parse(Array(text.utf8), format: format)
        return nil
    } catch {
        return error
    }
}

@Suite struct PrometheusTextParserTests {
    /// The example from the Prometheus "Exposition formats" documentation, plus escapes and specials.
    static let golden = """
        # HELP http_requests_total The total number of HTTP requests.
        # TYPE http_requests_total counter
        http_requests_total{method="post",code="200"} 1027 1395066363000
        http_requests_total{method="post",code="400"}    3 1395066363000

        # Escaping in label values:
        msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9

        # Minimalistic line:
        metric_without_timestamp_and_labels 12.47

        # A weird metric from before the epoch:
        something_weird{problem="division by zero"} +Inf -3982045

        # A histogram, which has a pretty complex representation in the text format:
        # HELP http_request_duration_seconds A histogram of the request duration.
        # TYPE http_request_duration_seconds histogram
        http_request_duration_seconds_bucket{le="0.05"} 24054
        http_request_duration_seconds_bucket{le="0.1"} 33444
        http_request_duration_seconds_bucket{le="0.2"} 100392
        http_request_duration_seconds_bucket{le="0.5"} 129389
        http_request_duration_seconds_bucket{le="1"} 133988
        http_request_duration_seconds_bucket{le="+Inf"} 144320
        http_request_duration_seconds_sum 53423
        http_request_duration_seconds_count 144320

        # Finally a summary, which has a complex representation, too:
        # HELP rpc_duration_seconds A summary of the RPC duration in seconds.
        # TYPE rpc_duration_seconds summary
        rpc_duration_seconds{quantile="0.01"} 3102
        rpc_duration_seconds{quantile="0.05"} 3272
        rpc_duration_seconds{quantile="0.5"} 4773
        rpc_duration_seconds{quantile="0.9"} 9001
        rpc_duration_seconds{quantile="0.99"} 76656
        rpc_duration_seconds_sum 1.7560473e+07
        rpc_duration_seconds_count 2693
        # HELP help_escapes A \\\\ backslash and a\\nnewline.
        # TYPE untyped_one untyped
        untyped_one{ a = "1" , b="2", } NaN
        neg -Inf
        """

    @Test func documentationExample() throws {
        let f = try parse(Self.golden, .prometheusText)
        #expect(f.map(\.name) == [
            "http_requests_total", "msdos_file_access_time_seconds", "metric_without_timestamp_and_labels", "something_weird",
            "http_request_duration_seconds", "rpc_duration_seconds", "help_escapes", "untyped_one", "neg",
        ])
        #expect(f.map(\.type) == [.counter, .unknown, .unknown, .unknown, .histogram, .summary, .unknown, .unknown, .unknown])
        #expect(f[0].help == "The total number of HTTP requests.")
        #expect(f[0].samples[1] == ExpositionSample(
            name: "http_requests_total", labels: [.init("method", "post"), .init("code", "400")], value: 3,
            timestampNanos: 1_395_066_363_000_000_000, line: 4))
        #expect(f[1].samples[0].labels == [.init("path", #"C:\DIR\FILE.TXT"#), .init("error", "Cannot find file:\n\"FILE.TXT\"")])
        #expect(f[1].samples[0].value == 1.458255915e9)
        #expect(f[3].samples[0].value == .infinity)
        #expect(f[3].samples[0].timestampNanos == -3_982_045_000_000)
        #expect(f[4].samples.count == 8)
        #expect(f[4].samples[5].labels == [.init("le", "+Inf")])
        #expect(f[5].samples[5].value == 1.7560473e7)
        #expect(f[6].help == "A \\ backslash and a\nnewline.")
        #expect(f[7].typeDeclared && f[7].samples[0].value.isNaN)
        #expect(f[7].samples[0].labels == [.init("a", "1"), .init("b", "2")])
        #expect(f[8].samples[0].value == -.infinity)
        #expect(f[7].samples[0].line == 39)
    }

    @Test func valuesAndNumbers() throws {
        let text = "a 1\nb -0.5\nc 1e3\nd .5\ne 1.5E-3\nf +inf\ng Infinity\nh 123456789012345678901234\ni 0.1\nj 5e-324\nk 00012\n"
        let v = try parse(text, .prometheusText).map { $0.samples[0].value }
        #expect(v == [1, -0.5, 1000, 0.5, 0.0015, .infinity, .infinity, 123456789012345678901234.0, 0.1, Double.leastNonzeroMagnitude, 12])
    }

    /// The scanner reads names, values and comparisons eight bytes at a time: escapes, quotes and
    /// differences at every offset of a word, and at the very end of the exposition, are found.
    @Test func wordAtATimeScansFindEveryOffset() throws {
        for n in 0..<20 {
            let base = String(repeating: "v", count: n)
            // An escaped quote, backslash or newline after n bytes, then more text.
            for (escape, unescaped) in [("\\\"", "\""), ("\\\\", "\\"), ("\\n", "\n")] {
                let f = try parse("m{a=\"\(base)\(escape)x\"} 1\n", .prometheusText)
                #expect(f[0].samples[0].label("a") == base + unescaped + "x", "n = \(n)")
            }
            // Names and values differing in their last byte only: distinct series, also in the last line.
            let text = "metric_\(base)a{l_\(base)=\"\(base)a\"} 1\nmetric_\(base)a{l_\(base)=\"\(base)b\"} 2\nmetric_\(base)b{l_\(base)=\"\(base)b\"} 3"
            let families = try parse(text, .prometheusText)
            #expect(families.map(\.name) == ["metric_\(base)a", "metric_\(base)b"], "n = \(n)")
            #expect(families[0].samples.map { $0.label("l_\(base)") } == ["\(base)a", "\(base)b"], "n = \(n)")
            #expect(families[1].samples[0].value == 3)
            // The same series twice, the second time as the exposition's last bytes: a duplicate.
            #expect(error("metric_\(base){l=\"\(base)\"} 1\nmetric_\(base){l=\"\(base)\"} 2", .prometheusText)?.code == .duplicateSeries)
        }
    }

    /// A parse given the previous scrape's strings gives what a fresh parse gives, reusing the strings
    /// whose bytes are unchanged (escaped values included) and making the others.
    @Test func previousScrapeStringsAreReused() throws {
        func parse(_ text: String, _ strings: inout ExpositionStrings) throws -> [ExpositionFamily] {
            try Array(text.utf8).withUnsafeBytes { raw in
                try Result { () throws(ExpositionError) in try ExpositionParser.parse(raw, format: .prometheusText, strings: &strings) }.get()
            }
        }
        func text(_ fs: [ExpositionFamily]) -> [String] {
            fs.flatMap { f in ["\(f.name) \(f.type) \(f.help ?? "-")"] + f.samples.map { "\($0.name)\($0.labels) \($0.value)" } }
        }
        /// Where a native string's bytes are: equal for the same storage.
        func storage(_ s: String) -> UnsafePointer<UInt8>? {
            var s = s
            return s.withUTF8 { $0.baseAddress }
        }
        func exposition(_ item: String, _ value: Int) -> String {
            "# HELP a_long_metric_name_total Requests \\\\ served.\n# TYPE a_long_metric_name_total counter\n"
                + "a_long_metric_name_total{handler=\"/api/v1/items/\(item)\",quote=\"say \\\"hi\\\" twice, please\"} \(value)\n"
        }
        let first = exposition("12345", 1)
        let second = exposition("67890", 2)
        var strings = ExpositionStrings()
        let a = try parse(first, &strings)
        #expect(strings.count == 5)  // the family name, two label names and two values (HELP texts are not interned)
        let b = try parse(second, &strings)
        #expect(text(a) == text(try PrometheusTextParserTests.parseFresh(first)))
        #expect(text(b) == text(try PrometheusTextParserTests.parseFresh(second)))
        #expect(b[0].samples[0].label("quote") == "say \"hi\" twice, please")
        #expect(b[0].samples[0].label("handler") == "/api/v1/items/67890")
        #expect(storage(b[0].name) == storage(a[0].name))
        #expect(storage(b[0].samples[0].label("quote")!) == storage(a[0].samples[0].label("quote")!))
        #expect(storage(b[0].samples[0].label("handler")!) != storage(a[0].samples[0].label("handler")!))
        // A failed parse leaves the strings as they were.
        #expect(throws: ExpositionError.self) { try parse("a{x=\"1\" 2\n", &strings) }
        #expect(strings.count == 5)
    }

    static func parseFresh(_ text: String) throws -> [ExpositionFamily] { try parse(text, .prometheusText) }

    @Test func noTrailingNewlineAndCRLessLines() throws {
        #expect(try parse("a 1", .prometheusText)[0].samples[0].value == 1)
        #expect(try parse("", .prometheusText).isEmpty)
        #expect(try parse("# just a comment\n\n   \n", .prometheusText).isEmpty)
    }

    static let errors: [(text: String, line: Int, code: ExpositionError.Code, reason: String)] = [
        ("a 1\nb{x=\"1\" 2\n", 2, .syntax, "expected ',' or '}'"),
        ("a 1\n{x=\"1\"} 2\n", 2, .syntax, "expected a metric name"),
        ("a\n", 1, .syntax, "a: missing value"),
        ("a one\n", 1, .syntax, "invalid value 'one'"),
        ("a 1 12.5\n", 1, .syntax, "invalid timestamp '12.5'"),
        ("a 1 12 junk\n", 1, .syntax, "unexpected text after the timestamp"),
        ("a{x=\"\\t\"} 1\n", 1, .syntax, "invalid escape sequence '\\t'"),
        ("a{x=\"1\",x=\"2\"} 1\n", 1, .syntax, "duplicate label name x"),
        ("a{x=\"1} 1\n", 1, .syntax, "unterminated value of label x"),
        ("a{1x=\"1\"} 1\n", 1, .syntax, "expected a label name"),
        ("# TYPE a counter\n# TYPE a counter\n", 2, .metadata, "second # TYPE line for a"),
        ("# HELP a x\n# HELP a y\n", 2, .metadata, "second # HELP line for a"),
        ("a 1\n# TYPE a gauge\n", 2, .metadata, "# TYPE line for a after its samples"),
        ("# TYPE a gauge\na 1\nb 1\na{x=\"1\"} 2\n", 4, .metadata, "metric family a appears again (first at line 1)"),
        ("# TYPE a timer\n", 1, .syntax, "unknown metric type 'timer' for a"),
        ("# TYPE a gaugehistogram\n", 1, .syntax, "unknown metric type 'gaugehistogram'"),
        ("a{x=\"1\"} 1\na{x=\"1\"} 2\n", 2, .duplicateSeries, "duplicate series a{x=\"1\"} (first at line 1)"),
        ("a{x=\"1\",y=\"2\"} 1\na{y=\"2\",x=\"1\"} 2\n", 2, .duplicateSeries, "duplicate series"),
        ("# TYPE h histogram\nh{le=\"1\"} 1\n", 2, .typeMismatch, "sample h does not fit # TYPE h histogram (line 1)"),
        ("# TYPE h histogram\nh_bucket 1\n", 2, .typeMismatch, "histogram bucket without an le label"),
        ("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n", 2, .invalidValue, "le=\"x\" is not a number"),
        ("# TYPE h histogram\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"1\"} 1\n", 3, .invalidValue, "le=\"1\" is not greater"),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 5\nh_bucket{le=\"+Inf\"} 4\n", 3, .invalidValue, "bucket counts decrease"),
        ("# TYPE s summary\ns 1\n", 2, .typeMismatch, "summary sample without a quantile label"),
        ("# TYPE s summary\ns{quantile=\"2\"} 1\n", 2, .invalidValue, "not a number between 0 and 1"),
        ("# TYPE s summary\ns_bucket{le=\"1\"} 1\n", 2, .typeMismatch, "sample s_bucket does not fit # TYPE s summary"),
        ("a{x=\"\u{FF}\"} 1\n", 1, .invalidUTF8, ""),
    ]

    @Test(arguments: errors.indices)
    func errorsCarryLineAndReason(_ i: Int) {
        let c = Self.errors[i]
        var text = c.text
        if c.code == .invalidUTF8 {
            // A lone 0xFF byte cannot be written in a Swift string literal.
            var bytes = Array("a{x=\"".utf8)
            bytes += [0xFF] + Array("\"} 1\n".utf8)
            text = ""
            do {
                _ = try ExpositionParser.parse(bytes, format: .prometheusText)
                Issue.record("no error")
            } catch {
                #expect(error.code == .invalidUTF8)
                #expect(error.line == 1)
                #expect(error.reason == "label value is not valid UTF-8")
            }
            return
        }
        guard let e = error(text, .prometheusText) else {
            Issue.record("no error for case \(i)")
            return
        }
        #expect(e.line == c.line, "case \(i): \(e)")
        #expect(e.code == c.code, "case \(i): \(e)")
        #expect(e.reason.contains(c.reason), "case \(i): \(e)")
    }

    @Test func manyLabelsAndDuplicateAmongThem() throws {
        let labels = (0..<5000).map { "l\($0)=\"v\"" }.joined(separator: ",")
        #expect(try parse("m{\(labels)} 1\n", .prometheusText)[0].samples[0].labels.count == 5000)
        let e = error("m{\(labels),l4321=\"w\"} 1\n", .prometheusText)
        #expect(e?.reason == "duplicate label name l4321")
    }

    @Test func contentType() {
        #expect(ExpositionFormat(contentType: "application/openmetrics-text; version=1.0.0; charset=utf-8") == .openMetrics)
        #expect(ExpositionFormat(contentType: "text/plain; version=0.0.4") == .prometheusText)
        #expect(ExpositionFormat(contentType: nil) == .prometheusText)
    }
}

@Suite struct OpenMetricsParserTests {
    /// Every family type of OpenMetrics 1.0, with exemplars, timestamps, `_created` and UNIT.
    static let golden = """
        # TYPE acme_http_router_request_seconds summary
        # UNIT acme_http_router_request_seconds seconds
        # HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.
        acme_http_router_request_seconds_sum{path="/api/v1",method="GET"} 9036.32
        acme_http_router_request_seconds_count{path="/api/v1",method="GET"} 807283.0
        acme_http_router_request_seconds_created{path="/api/v1",method="GET"} 1605281325.0
        # TYPE foo counter
        # HELP foo A counter with \\"quotes\\".
        foo_total{a="b"} 17.0 1520879607.789 # {trace_id="KOO5S4vxi0o"} 0.67
        foo_created{a="b"} 1520430000.123
        # TYPE hist histogram
        hist_bucket{le="0.01"} 0
        hist_bucket{le="0.1"} 8 # {} 0.054
        hist_bucket{le="1.0"} 11 # {trace_id="KOO5S4vxi0o"} 0.67 1520879607.7
        hist_bucket{le="+Inf"} 17
        hist_count 17
        hist_sum 324789.3
        hist_created 1520430000.123
        # TYPE gh gaugehistogram
        gh_bucket{le="0.01"} 20.0
        gh_bucket{le="+Inf"} 22.0
        gh_gcount 22.0
        gh_gsum 2.0
        # TYPE enabled stateset
        enabled{enabled="a"} 1
        enabled{enabled="b"} 0
        # TYPE build info
        build_info{name="sextant",version="1.0"} 1
        # TYPE temp_celsius gauge
        # UNIT temp_celsius celsius
        temp_celsius -3.5
        # TYPE mystery unknown
        mystery NaN
        plain 1
        # EOF

        """

    @Test func allTypes() throws {
        let f = try parse(Self.golden, .openMetrics)
        #expect(f.map(\.name) == ["acme_http_router_request_seconds", "foo", "hist", "gh", "enabled", "build", "temp_celsius", "mystery", "plain"])
        #expect(f.map(\.type) == [.summary, .counter, .histogram, .gaugehistogram, .stateset, .info, .gauge, .unknown, .unknown])
        #expect(f[0].unit == "seconds")
        #expect(f[0].help == "Latency though all of ACME's HTTP request router.")
        #expect(f[1].help == "A counter with \"quotes\".")
        let foo = f[1].samples[0]
        #expect(foo.timestampNanos == 1_520_879_607_789_000_000)
        #expect(foo.exemplar == ExpositionExemplar(labels: [.init("trace_id", "KOO5S4vxi0o")], value: 0.67))
        #expect(f[1].samples[1].name == "foo_created" && f[1].samples[1].value == 1520430000.123)
        #expect(f[2].samples[1].exemplar == ExpositionExemplar(labels: [], value: 0.054))
        #expect(f[2].samples[2].exemplar?.timestampNanos == 1_520_879_607_700_000_000)
        #expect(f[2].samples.count == 7)
        #expect(f[6].samples[0].value == -3.5)
        #expect(f[7].typeDeclared && !f[8].typeDeclared)
    }

    @Test func eofVariants() throws {
        #expect(try parse("a 1\n# EOF", .openMetrics).count == 1)
        #expect(try parse("# EOF\n", .openMetrics).isEmpty)
    }

    static let errors: [(text: String, line: Int, code: ExpositionError.Code, reason: String)] = [
        ("a 1\n", 1, .eof, "missing # EOF"),
        ("", 1, .eof, "missing # EOF"),
        ("a 1\n# EOF\n\n", 3, .eof, "content after # EOF"),
        ("# EOF\na 1\n", 2, .eof, "content after # EOF"),
        ("a 1\n\n# EOF\n", 2, .syntax, "empty line"),
        ("# random comment\n# EOF\n", 1, .syntax, "unknown comment"),
        ("a  1\n# EOF\n", 1, .syntax, "a: missing value"),
        ("a{x=\"1\",} 1\n# EOF\n", 1, .syntax, "trailing ','"),
        ("a{x = \"1\"} 1\n# EOF\n", 1, .syntax, "expected '=' after label name x"),
        ("a 1 1520879607789x\n# EOF\n", 1, .syntax, "invalid timestamp"),
        ("# TYPE c counter\nc 1\n# EOF\n", 2, .typeMismatch, "sample c does not fit # TYPE c counter"),
        ("# TYPE c counter\nc_bucket{le=\"1\"} 1\n# EOF\n", 2, .typeMismatch, "sample c_bucket does not fit"),
        ("# TYPE c counter\nc_total -1\n# EOF\n", 2, .invalidValue, "counter value -1.0 must be non-negative"),
        ("# TYPE g gauge\ng 1 # {a=\"b\"} 1\n# EOF\n", 2, .syntax, "exemplars are only allowed"),
        ("# TYPE c counter\nc_total 1 # {a=\"b\"}\n# EOF\n", 2, .syntax, "expected a space before the exemplar value"),
        ("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n# EOF\n", 2, .invalidValue, "no le=\"+Inf\" bucket"),
        ("# TYPE i info\ni_info 2\n# EOF\n", 2, .invalidValue, "info value must be 1"),
        ("# TYPE s stateset\ns{x=\"a\"} 1\n# EOF\n", 2, .typeMismatch, "needs the label s"),
        ("# TYPE s stateset\ns{s=\"a\"} 2\n# EOF\n", 2, .invalidValue, "must be 0 or 1"),
        ("# TYPE a_seconds gauge\n# UNIT a_seconds bytes\n# EOF\n", 2, .metadata, "must end with _bytes"),
        ("# TYPE a gauge\na 1\n# HELP a late\n# EOF\n", 3, .metadata, "# HELP line for a after its samples"),
        ("# TYPE a gauge\n# TYPE a gauge\n# EOF\n", 2, .metadata, "second # TYPE"),
        ("# TYPE a untyped\n# EOF\n", 1, .syntax, "unknown metric type 'untyped'"),
        ("a 1\na 2\n# EOF\n", 2, .duplicateSeries, "duplicate series a"),
    ]

    @Test(arguments: errors.indices)
    func errorsCarryLineAndReason(_ i: Int) {
        let c = Self.errors[i]
        guard let e = error(c.text, .openMetrics) else {
            Issue.record("no error for case \(i)")
            return
        }
        #expect(e.line == c.line, "case \(i): \(e)")
        #expect(e.code == c.code, "case \(i): \(e)")
        #expect(e.reason.contains(c.reason), "case \(i): \(e)")
    }

    @Test func exemplarLabelLimit() {
        let long = String(repeating: "x", count: 121)
        let e = error("# TYPE c counter\nc_total 1 # {trace_id=\"\(long)\"} 1\n# EOF\n", .openMetrics)
        #expect(e?.line == 2 && e?.reason.contains("limit is 128") == true)
    }
}
