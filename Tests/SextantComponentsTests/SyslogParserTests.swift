import NIOCore
import SextantModel
import SextantReceivers
import Testing

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }
private let bom = "\u{FEFF}"

@Suite struct SyslogRFC5424Tests {
    /// RFC 5424 §6.5, example 1 (no structured data, BOM before MSG).
    @Test func example1() throws {
        let m = try SyslogParser.parse5424(bytes("<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \(bom)'su root' failed for lonvick on /dev/pts/8"))
        #expect(m.priority == 34 && m.facility == 4 && m.severity == 2 && m.version == 1)
        #expect(m.timestamp == 1_065_910_455_003_000_000)
        #expect(m.hostname == "mymachine.example.com" && m.appName == "su" && m.procID == nil && m.msgID == "ID47")
        #expect(m.structuredData == nil)
        #expect(m.message == "'su root' failed for lonvick on /dev/pts/8")
    }

    /// Example 2: microseconds and a negative offset; no MSGID or SD.
    @Test func example2() throws {
        let m = try SyslogParser.parse5424(bytes("<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."))
        #expect(m.timestamp == 1_061_727_255_000_003_000)
        #expect(m.hostname == "192.0.2.1" && m.appName == "myproc" && m.procID == "8710" && m.msgID == nil)
        #expect(m.message == "%% It's time to make the do-nuts.")
    }

    /// Examples 3 and 4: structured data, one and two elements; example 4 has no MSG.
    @Test func structuredDataExamples() throws {
        let m3 = try SyslogParser.parse5424(bytes(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \(bom)An application event log entry..."))
        let sd = try #require(m3.structuredData)
        #expect(sd.count == 1 && sd[0].id == "exampleSDID@32473")
        #expect(sd[0].params.map(\.name) == ["iut", "eventSource", "eventID"] && sd[0].params.map(\.value) == ["3", "Application", "1011"])
        #expect(m3.message == "An application event log entry...")
        let m4 = try SyslogParser.parse5424(bytes(
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"]"))
        #expect(m4.structuredData?.map(\.id) == ["exampleSDID@32473", "examplePriority@32473"])
        #expect(m4.structuredData?[1].params.first?.value == "high")
        #expect(m4.message == nil)
    }

    /// §6.3.3: `\"`, `\\` and `\]` are escapes; a backslash before anything else stays.
    @Test func paramValueEscapes() throws {
        let m = try SyslogParser.parse5424(bytes(#"<13>1 - - - - - [x@1 a="q\"b\\c\]d" b="\n" c=""] m"#))
        let p = try #require(m.structuredData?.first?.params)
        #expect(p.map(\.value) == [#"q"b\c]d"#, #"\n"#, ""])
        #expect(m.timestamp == nil && m.hostname == nil && m.message == "m")
    }

    @Test func nilValuesAndEmptyMessage() throws {
        let m = try SyslogParser.parse5424(bytes("<0>1 - - - - - -"))
        #expect(m.priority == 0 && m.message == nil && m.structuredData == nil)
        let r = m.logRecord(observedTimeUnixNano: 5)
        #expect(r.severityNumber.rawValue == 21 && r.severityText == "emerg" && r.body == nil)
        #expect(r.attributes.map(\.key) == ["facility", "priority", "version"])
    }

    @Test func recordMapping() throws {
        let m = try SyslogParser.parse5424(bytes("<190>1 2003-10-11T22:14:15Z host app 42 MID [a@1 k=\"v\"] hello"))
        let r = m.logRecord(observedTimeUnixNano: 7)
        #expect(r.severityNumber.rawValue == 9 && r.severityText == "info" && r.body == .string("hello"))
        #expect(r.timeUnixNano == 1_065_910_455_000_000_000 && r.observedTimeUnixNano == 7)
        #expect(r.attributes[key: "appname"] == .string("app") && r.attributes[key: "hostname"] == .string("host"))
        #expect(r.attributes[key: "proc_id"] == .string("42") && r.attributes[key: "msg_id"] == .string("MID"))
        #expect(r.attributes[key: "facility"] == .int(23) && r.attributes[key: "priority"] == .int(190) && r.attributes[key: "version"] == .int(1))
        #expect(r.attributes[key: "structured_data"] == .kvlist([KeyValue("a@1", .kvlist([KeyValue("k", .string("v"))]))]))
    }

    @Test func severities() throws {
        let expected: [Int32] = [21, 19, 18, 17, 13, 10, 9, 5]
        for s in 0..<8 {
            let r = try SyslogParser.parse5424(bytes("<\(8 + s)>1 - - - - - -")).logRecord(observedTimeUnixNano: 0)
            #expect(r.severityNumber.rawValue == expected[s])
        }
    }

    @Test(arguments: [
        ("<192>1 - - - - - -", "PRI"),
        ("<01>1 - - - - - -", "PRI"),
        ("<13 1 - - - - - -", "'>'"),
        ("13>1 - - - - - -", "'<'"),
        ("<13>0 - - - - - -", "VERSION"),
        ("<13>1 2003-13-11T22:14:15Z - - - - -", "out of range"),
        ("<13>1 2003-02-29T22:14:15Z - - - - -", "out of range"),
        ("<13>1 2003-10-11T22:14:60Z - - - - -", "out of range"),
        ("<13>1 2003-10-11 22:14:15Z - - - - -", "'T'"),
        ("<13>1 2003-10-11T22:14:15.1234567Z - - - - -", "fraction"),
        ("<13>1 2003-10-11T22:14:15 - - - - -", "offset"),
        ("<13>1 - - - - -", "space"),
        ("<13>1 - - - - - [a b=\"c\"", "']'"),
        ("<13>1 - - - - - [a b=c]", "'\"'"),
        ("<13>1 - - - - - [a=\"x\"]", "']'"),
        ("<13>1 - - - - - [a b=\"x", "unterminated"),
        ("<13>1 - - - - - x", "STRUCTURED-DATA"),
        ("<13>1 - - abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij - - -", "APP-NAME"),
        // Found by fuzz/FuzzSyslog: years past 2554 overflowed the UInt64 nanoseconds and trapped.
        ("<165>1 4006-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 - x", "2554"),
        ("<13>1 2554-07-21T23:34:33.709552Z - - - - -", "2554"),
    ])
    func rejects(_ input: String, _ reason: String) {
        #expect(throws: SyslogParseError.self) { try SyslogParser.parse5424(bytes(input)) }
        do { _ = try SyslogParser.parse5424(bytes(input)) } catch { #expect(error.reason.contains(reason), "\(error)") }
    }

    /// The last representable instant (UInt64.max ns is 2554-07-21T23:34:33.709551615Z) still parses.
    @Test func latestTimestamp() throws {
        #expect(try SyslogParser.parse5424(bytes("<13>1 2554-07-21T23:34:33.709551Z - - - - -")).timestamp == 18_446_744_073_709_551_000)
    }

    @Test func invalidUTF8BecomesReplacement() throws {
        let m = try SyslogParser.parse5424(bytes("<13>1 - - - - - - ab") + [0xFF, 0x63])
        #expect(m.message == "ab\u{FFFD}c")
    }
}

@Suite struct SyslogRFC3164Tests {
    // 2024-11-25T12:00:00Z
    let now: UInt64 = 1_732_536_000 * 1_000_000_000

    /// RFC 3164 §5.4 example 1.
    @Test func rfcExample() throws {
        let m = try SyslogParser.parse3164(bytes("<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8"), now: now)
        #expect(m.priority == 34 && m.version == nil)
        #expect(m.timestamp == 1_728_684_855 * 1_000_000_000)  // 2024-10-11T22:14:15Z
        #expect(m.hostname == "mymachine" && m.appName == "su" && m.procID == nil)
        #expect(m.message == "'su root' failed for lonvick on /dev/pts/8")
    }

    @Test func pidAndSpacePaddedDay() throws {
        let m = try SyslogParser.parse3164(bytes("<30>Nov  5 01:02:03 host sshd[1234]: Accepted key"), now: now)
        #expect(m.timestamp == 1_730_768_523 * 1_000_000_000)  // 2024-11-05T01:02:03Z
        #expect(m.appName == "sshd" && m.procID == "1234" && m.message == "Accepted key")
    }

    /// §5.4 example 2: no TAG, the rest is the message.
    @Test func noTag() throws {
        let m = try SyslogParser.parse3164(bytes("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!"), now: now)
        #expect(m.hostname == "10.0.0.99" && m.appName == nil && m.message == "Use the BFG!")
    }

    /// §4.3.2: without a valid TIMESTAMP, everything after PRI is the message.
    @Test func noTimestamp() throws {
        let m = try SyslogParser.parse3164(bytes("<14>hello world"), now: now)
        #expect(m.priority == 14 && m.timestamp == nil && m.hostname == nil && m.message == "hello world")
        let bad = try SyslogParser.parse3164(bytes("<14>Foo 11 22:14:15 host x: y"), now: now)
        #expect(bad.timestamp == nil && bad.message == "Foo 11 22:14:15 host x: y")
    }

    @Test func location() throws {
        let berlin = try #require(SyslogTimeZone(identifier: "Europe/Berlin"))
        let summer = try SyslogParser.parse3164(bytes("<13>Jul 11 12:00:00 h a: b"), location: berlin, now: now)
        #expect(summer.timestamp == (1_720_699_200 - 7200) * 1_000_000_000)  // CEST, +02:00
        let winter = try SyslogParser.parse3164(bytes("<13>Jan  2 12:00:00 h a: b"), location: berlin, now: now)
        // Jan 2 is more than a week ahead of Nov 25, 2024, so it is Jan 2, 2024 (CET, +01:00).
        #expect(winter.timestamp == (1_704_196_800 - 3600) * 1_000_000_000)
        #expect(SyslogTimeZone(identifier: "Mars/Olympus") == nil)
    }

    @Test func yearRollover() throws {
        // On Jan 1, 2025 00:30 UTC a "Dec 31 23:59:00" message is from 2024.
        let jan1: UInt64 = 1_735_691_400 * 1_000_000_000
        let m = try SyslogParser.parse3164(bytes("<13>Dec 31 23:59:00 h a: b"), now: jan1)
        #expect(m.timestamp == 1_735_689_540 * 1_000_000_000)
    }

    @Test func badPRIIsAnError() {
        #expect(throws: SyslogParseError.self) { try SyslogParser.parse3164(bytes("Oct 11 22:14:15 host x: y")) }
        #expect(throws: SyslogParseError.self) { try SyslogParser.parse3164(bytes("<999>x")) }
    }
}

@Suite struct SyslogFramingTests {
    func frames(_ chunks: [[UInt8]], max: Int = 1024) throws -> [SyslogFrameDecoder.Event] {
        var d = SyslogFrameDecoder(maxMessageSize: max)
        var buf = ByteBuffer()
        var out: [SyslogFrameDecoder.Event] = []
        for c in chunks {
            buf.writeBytes(c)
            while let e = try d.next(&buf) { out.append(e) }
            buf.discardReadBytes()
        }
        return out
    }

    let stream = bytes("11 <13>1 - - -\n<14>1 - - - - - - lf\r\n5 <1>2 <2>3 - - - - - - nul\u{0}\n")

    @Test func mixedFramingAtEverySplit() throws {
        let expected: [SyslogFrameDecoder.Event] = [
            .message(bytes("<13>1 - - -")), .message(bytes("<14>1 - - - - - - lf")), .message(bytes("<1>2 ")),
            .message(bytes("<2>3 - - - - - - nul")),
        ]
        #expect(try frames([stream]) == expected)
        for i in 0...stream.count {
            #expect(try frames([Array(stream[..<i]), Array(stream[i...])]) == expected)
        }
        #expect(try frames(stream.map { [$0] }) == expected)
    }

    @Test func octetCountKeepsNewlinesInMessage() throws {
        #expect(try frames([bytes("6 <1>a\nb")]) == [.message(bytes("<1>a\nb"))])
    }

    @Test func malformedOctetCountIsFatal() {
        #expect(throws: SyslogFrameDecoder.FramingError.self) { try frames([bytes("12x <13>1 - - -")]) }
        #expect(throws: SyslogFrameDecoder.FramingError.self) { try frames([bytes("0 <13>")]) }
        // Larger than the limit: rejected from the digits alone, before any allocation.
        #expect(throws: SyslogFrameDecoder.FramingError.self) { try frames([bytes("99999999999999999999 ")], max: 100) }
        #expect(throws: SyslogFrameDecoder.FramingError.self) { try frames([bytes("101 ")], max: 100) }
    }

    @Test func oversizedLFFrameIsSkipped() throws {
        let long = Array(repeating: UInt8(ascii: "a"), count: 50)
        let got = try frames([bytes("<1>") + long, long + bytes("\n<2>ok\n")], max: 40)
        #expect(got.count == 2)
        if case .oversized = got[0] {} else { Issue.record("expected oversized, got \(got[0])") }
        #expect(got[1] == .message(bytes("<2>ok")))
    }

    @Test func waitsForIncompleteFrames() throws {
        #expect(try frames([bytes("20 <13>1")]).isEmpty)
        #expect(try frames([bytes("<13>1 - no trailer")]).isEmpty)
        #expect(try frames([bytes("12")]).isEmpty)
    }
}
