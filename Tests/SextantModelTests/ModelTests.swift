import SextantModel
import Testing

@Suite struct IdentifierTests {
    @Test func traceIDHexAndBytesRoundTrip() throws {
        let id = try #require(TraceID(hex: "5B8EFFF798038103D269B633813FC60C"))
        #expect(id.hex == "5b8efff798038103d269b633813fc60c")
        #expect(id.high == 0x5b8e_fff7_9803_8103 && id.low == 0xd269_b633_813f_c60c)
        #expect(TraceID(bytes: id.bytes) == id)
        #expect(TraceID(hex: "5b8efff798038103d269b633813fc60") == nil)
        #expect(TraceID(hex: "zz8efff798038103d269b633813fc60c") == nil)
        #expect(TraceID(bytes: [1, 2, 3]) == nil)
        #expect(!TraceID.zero.isValid)
        #expect(TraceID(high: 1, low: 0xabc).hex == "0000000000000001" + "0000000000000abc")
        #expect(SpanID(0xfedc_ba98_7654_3210).hex == "fedcba9876543210")
        #expect(Hex.string(0) == "0000000000000000")
    }

    /// The word-at-a-time digit writer against `String(_:radix:)`, for every digit value in every position and
    /// random values, at an offset inside a larger buffer (the bytes around are left alone).
    @Test func hexWriteAgreesWithStringRadix() {
        var values: [UInt64] = [0, 1, .max, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210, 0x9a9a_9a9a_0f0f_0f0f]
        for shift in stride(from: 0, to: 64, by: 4) {
            for d: UInt64 in 0...15 { values.append(d << UInt64(shift)) }
        }
        var g = SystemRandomNumberGenerator()
        for _ in 0..<1000 { values.append(g.next()) }
        for v in values {
            let expected = String(repeating: "0", count: 16 - String(v, radix: 16).count) + String(v, radix: 16)
            var buffer = [UInt8](repeating: UInt8(ascii: "#"), count: 20)
            buffer.withUnsafeMutableBufferPointer { Hex.write(v, into: $0, at: 3) }
            #expect(String(decoding: buffer, as: UTF8.self) == "###" + expected + "#", "\(v)")
            #expect(Hex.string(v) == expected)
        }
    }

    /// Every byte: exactly `0`–`9`, `a`–`f` and `A`–`F` are digits.
    @Test func hexDigitValues() {
        let digits = Array("0123456789abcdef".utf8)
        for b in UInt8.min...UInt8.max {
            let lower = b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 0x20 : b
            let expected = digits.firstIndex(of: lower).map { UInt8($0) }
            #expect(Hex.value(of: b) == expected, "byte \(b)")
        }
    }

    /// The word-at-a-time parser agrees with the digit-by-digit one: every byte value at every
    /// position of otherwise valid text, and random mixed-case text.
    @Test func parse16MatchesDigitByDigit() {
        func reference(_ bytes: [UInt8]) -> UInt64? {
            var v: UInt64 = 0
            for b in bytes {
                guard let d = Hex.value(of: b) else { return nil }
                v = v << 4 | UInt64(d)
            }
            return v
        }
        func parse(_ bytes: [UInt8]) -> UInt64? { bytes.withUnsafeBytes { Hex.parse16($0.baseAddress!) } }
        let valid = Array("0123456789abcdefABCDEF".utf8)
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let text = (0..<16).map { _ in valid.randomElement(using: &rng)! }
            #expect(parse(text) == reference(text))
        }
        var text = Array("9aF0b1C2d3E4f5A6".utf8)
        #expect(parse(text) == 0x9AF0_B1C2_D3E4_F5A6)
        for position in 0..<16 {
            let saved = text[position]
            for b in 0...255 {
                text[position] = UInt8(b)
                #expect(parse(text) == reference(text), "byte \(b) at \(position)")
            }
            text[position] = saved
        }
    }

    @Test func spanIDHexAndBytesRoundTrip() throws {
        let id = try #require(SpanID(hex: "eee19b7ec3c1b174"))
        #expect(id.value == 0xeee1_9b7e_c3c1_b174)
        #expect(SpanID(bytes: id.bytes) == id)
        #expect(SpanID(hex: "eee19b7ec3c1b17") == nil)
        #expect(!SpanID.zero.isValid)
    }

    @Test func base64() {
        for bytes: [UInt8] in [[], [0], [1, 2], [1, 2, 3], Array(0...255)] {
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.encode(Array("hello".utf8)) == "aGVsbG8=")
        #expect(Base64.decode("aGVsbG8") == Array("hello".utf8))
        #expect(Base64.decode("a$==") == nil)
    }

    @Test func severityNames() {
        #expect(SeverityNumber.info.shortName == "INFO")
        #expect(SeverityNumber(rawValue: 10).shortName == "INFO2")
        #expect(SeverityNumber.unspecified.shortName == "UNSPECIFIED")
    }
}

@Suite struct BatchingTests {
    func traces(resources: Int, scopes: Int, spans: Int) -> Telemetry {
        var out = TracesData()
        var next: UInt64 = 1
        for r in 0..<resources {
            var rs = ResourceSpans(resource: Resource(attributes: [KeyValue("service.name", .string("svc\(r)"))]))
            for s in 0..<scopes {
                var ss = ScopeSpans(scope: InstrumentationScope(name: "scope\(s)"))
                for _ in 0..<spans {
                    ss.spans.append(Span(traceID: TraceID(high: 0, low: 1), spanID: SpanID(next)))
                    next += 1
                }
                rs.scopeSpans.append(ss)
            }
            out.resourceSpans.append(rs)
        }
        return .traces(out)
    }

    @Test func splitKeepsOrderResourcesAndScopes() {
        let t = traces(resources: 3, scopes: 2, spans: 5)  // 30 spans
        let pieces = t.split(maxItems: 7)
        #expect(pieces.map(\.itemCount) == [7, 7, 7, 7, 2])
        var ids: [UInt64] = []
        for p in pieces {
            guard case .traces(let d) = p else { continue }
            for rs in d.resourceSpans {
                #expect(rs.resource.serviceName != nil)
                for ss in rs.scopeSpans {
                    #expect(!ss.spans.isEmpty)
                    ids += ss.spans.map(\.spanID.value)
                }
            }
        }
        #expect(ids == Array(1...30))
        // A piece that spans two resources keeps each span under its own resource.
        guard case .traces(let second) = pieces[1] else { return }
        #expect(second.resourceSpans.map { $0.resource.serviceName } == ["svc0", "svc1"])
    }

    @Test func splitMetricsAcrossPoints() {
        let points = (0..<10).map { NumberDataPoint(timeUnixNano: UInt64($0), value: .int(Int64($0))) }
        let m = Telemetry.metrics(
            MetricsData(resourceMetrics: [
                ResourceMetrics(scopeMetrics: [
                    ScopeMetrics(metrics: [
                        Metric(name: "a", data: .sum(points, temporality: .cumulative, isMonotonic: true)),
                        Metric(name: "b", data: .gauge(Array(points.prefix(3)))),
                    ])
                ])
            ]))
        let pieces = m.split(maxItems: 4)
        #expect(pieces.map(\.itemCount) == [4, 4, 4, 1])
        guard case .metrics(let third) = pieces[2] else { return }
        let names = third.resourceMetrics.flatMap { $0.scopeMetrics.flatMap { $0.metrics.map(\.name) } }
        #expect(names == ["a", "b"])
        guard case .sum(_, let temporality, let mono) = third.resourceMetrics[0].scopeMetrics[0].metrics[0].data else {
            Issue.record("lost the sum")
            return
        }
        #expect(temporality == .cumulative && mono)
    }

    @Test func appendConcatenates() {
        var a = traces(resources: 1, scopes: 1, spans: 2)
        a.append(traces(resources: 2, scopes: 1, spans: 3))
        #expect(a.itemCount == 8)
        guard case .traces(let d) = a else { return }
        #expect(d.resourceSpans.count == 3)
    }
}
