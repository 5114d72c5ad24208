import SextantThrift
import Testing

@Suite("Thrift protocols")
struct ThriftProtocolTests {
    // MARK: Golden vectors from the reference Python library

    @Test(arguments: ThriftProtocolKind.allCases)
    func allTypesGolden(kind: ThriftProtocolKind) throws {
        let golden = try Fixtures.file("all_types.\(kind).thrift")
        #expect(Thrift.encode(Fixtures.allTypes, kind, message: Fixtures.allTypesHeader) == golden)

        let (decoded, remaining) = try Thrift.read(golden, kind) { r in
            let header = try r.readMessageBegin()
            let value = try ThriftValue.read(.struct, &r)
            r.readMessageEnd()
            return (header, value)
        }
        #expect(remaining == 0)
        #expect(decoded.0 == Fixtures.allTypesHeader)
        #expect(decoded.1 == (kind == .compact ? Fixtures.allTypes.compactNormalized : Fixtures.allTypes))
    }

    @Test(arguments: ThriftProtocolKind.allCases)
    func skipsEveryType(kind: ThriftProtocolKind) throws {
        let golden = try Fixtures.file("all_types.\(kind).thrift")
        // Skipping the whole struct, and skipping each field, both land exactly at the end.
        let (_, afterStruct) = try Thrift.read(golden, kind) { r in
            _ = try r.readMessageBegin()
            try r.skip(.struct)
        }
        #expect(afterStruct == 0)
        let (types, afterFields) = try Thrift.read(golden, kind) { r in
            _ = try r.readMessageBegin()
            try r.readStructBegin()
            var types: [ThriftType] = []
            while let field = try r.readFieldBegin() {
                types.append(field.type)
                try r.skip(field.type)
                r.readFieldEnd()
            }
            r.readStructEnd()
            return types
        }
        #expect(afterFields == 0)
        #expect(Set(types) == Set(ThriftType.allCases).subtracting([.stop]))
    }

    // MARK: Round trips

    static let values: [ThriftValue] = [
        .structure([]),
        .structure([ThriftField(1, .bool(false)), ThriftField(2, .bool(true)), ThriftField(300, .bool(false)), ThriftField(299, .bool(true))]),
        .structure([ThriftField(Int16.max, .i16(Int16.min)), ThriftField(Int16.min, .i16(Int16.max)), ThriftField(0, .byte(Int8.min))]),
        .structure([
            ThriftField(1, .i32(Int32.min)), ThriftField(2, .i32(Int32.max)), ThriftField(3, .i64(Int64.min)), ThriftField(4, .i64(Int64.max)),
            ThriftField(5, .i64(0)), ThriftField(6, .i64(-1)),
        ]),
        .structure([
            ThriftField(1, .double(-0.0)), ThriftField(2, .double(.infinity)), ThriftField(3, .double(.leastNonzeroMagnitude)),
            ThriftField(4, .double(.greatestFiniteMagnitude)),
        ]),
        .structure([ThriftField(1, .binary([])), ThriftField(2, .binary(Array(repeating: 0xAB, count: 300)))]),
        .structure([ThriftField(1, .list(.bool, (0..<40).map { .bool($0 % 3 == 0) }))]),
        .structure([ThriftField(1, .set(.double, [.double(1.5), .double(-2)])), ThriftField(16, .list(.struct, [.structure([]), .structure([ThriftField(1, .byte(1))])]))]),
        .structure([ThriftField(1, .map(.i64, .struct, []))]),
        .structure([
            ThriftField(1, .map(.binary, .list, [ThriftPair(.binary([1]), .list(.i32, [.i32(1)])), ThriftPair(.binary([2]), .list(.i32, []))])),
            ThriftField(2, .map(.bool, .bool, [ThriftPair(.bool(true), .bool(false))])),
        ]),
        .structure([ThriftField(1, .structure([ThriftField(20, .structure([ThriftField(1, .bool(true))])), ThriftField(21, .bool(false))])), ThriftField(2, .bool(true))]),
    ]

    @Test(arguments: ThriftProtocolKind.allCases, values.indices)
    func roundTrip(kind: ThriftProtocolKind, index: Int) throws {
        let value = Self.values[index]
        let bytes = Thrift.encode(value, kind)
        let decoded = try Thrift.decode(bytes, kind, as: .struct)
        #expect(decoded == (kind == .compact ? value.compactNormalized : value))
    }

    @Test(arguments: ThriftProtocolKind.allCases, [Int32.min, -1, 0, 1, Int32.max])
    func messageHeaders(kind: ThriftProtocolKind, seqID: Int32) throws {
        for type in [ThriftMessageType.call, .reply, .exception, .oneway] {
            let header = ThriftMessageHeader(name: "m\u{e9}thod", type: type, seqID: seqID)
            let bytes = Thrift.encode(kind) { w in w.writeMessageBegin(header) }
            let (decoded, remaining) = try Thrift.read(bytes, kind) { r in try r.readMessageBegin() }
            #expect(decoded == header)
            #expect(remaining == 0)
        }
    }

    // MARK: Exact encodings (spec examples)

    @Test func binaryStrictMessageHeader() {
        let bytes = Thrift.encode(.binary) { w in w.writeMessageBegin(ThriftMessageHeader(name: "ab", type: .oneway, seqID: 258)) }
        #expect(bytes == [0x80, 0x01, 0x00, 0x04, 0, 0, 0, 2, 0x61, 0x62, 0, 0, 1, 2])
    }

    /// "Message": the old encoding starts with the name length; readers tell them apart by the sign.
    @Test func binaryOldMessageHeader() throws {
        let bytes: [UInt8] = [0, 0, 0, 2, 0x61, 0x62, 0x01, 0, 0, 0, 9]
        let (header, remaining) = try Thrift.read(bytes, .binary) { r in try r.readMessageBegin() }
        #expect(header == ThriftMessageHeader(name: "ab", type: .call, seqID: 9))
        #expect(remaining == 0)
    }

    @Test func compactMessageHeader() {
        let bytes = Thrift.encode(.compact) { w in w.writeMessageBegin(ThriftMessageHeader(name: "ab", type: .oneway, seqID: 300)) }
        #expect(bytes == [0x82, 0x81, 0xAC, 0x02, 0x02, 0x61, 0x62])
    }

    /// "Varint encoding": 50399 is 0xDF 0x89 0x03; i32 values are zigzagged first.
    @Test func compactVarintAndZigzag() {
        #expect(Thrift.encode(.compact) { w in w.writeBinary(Array(repeating: 0, count: 50399)) }.prefix(3) == [0xDF, 0x89, 0x03])
        #expect(Thrift.encode(.compact) { w in w.writeI32(-1) } == [0x01])
        #expect(Thrift.encode(.compact) { w in w.writeI32(1) } == [0x02])
        #expect(Thrift.encode(.compact) { w in w.writeI64(Int64.min) } == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    }

    @Test func compactFieldHeaders() {
        let bytes = Thrift.encode(.compact) { w in
            w.writeStructBegin()
            w.writeFieldBegin(.i32, id: 1)  // delta 1: short form
            w.writeI32(0)
            w.writeFieldBegin(.bool, id: 16)  // delta 15: short form, value in the type nibble
            w.writeBool(true)
            w.writeFieldBegin(.bool, id: 32)  // delta 16: long form
            w.writeBool(false)
            w.writeFieldBegin(.i64, id: 31)  // decreasing: long form
            w.writeI64(0)
            w.writeFieldStop()
            w.writeStructEnd()
        }
        #expect(bytes == [0x15, 0x00, 0xF1, 0x02, 0x40, 0x06, 0x3E, 0x00, 0x00])
    }

    @Test func compactCollectionHeaders() {
        #expect(Thrift.encode(.compact) { w in w.writeListBegin(.i64, count: 14) } == [0xE6])
        #expect(Thrift.encode(.compact) { w in w.writeListBegin(.i64, count: 15) } == [0xF6, 0x0F])
        #expect(Thrift.encode(.compact) { w in w.writeSetBegin(.bool, count: 0) } == [0x01])
        #expect(Thrift.encode(.compact) { w in w.writeMapBegin(keyType: .binary, valueType: .i32, count: 0) } == [0x00])
        #expect(Thrift.encode(.compact) { w in w.writeMapBegin(keyType: .binary, valueType: .i32, count: 200) } == [0xC8, 0x01, 0x85])
    }

    @Test func doubleByteOrder() {
        #expect(Thrift.encode(.binary) { w in w.writeDouble(1.0) } == [0x3F, 0xF0, 0, 0, 0, 0, 0, 0])
        #expect(Thrift.encode(.compact) { w in w.writeDouble(1.0) } == [0, 0, 0, 0, 0, 0, 0xF0, 0x3F])
    }

    /// "Boolean encoding": readers must accept both 1 and 2 as a bool element type, and 0 or 2 as false.
    @Test func compactBoolElementLeniency() throws {
        let value = try Thrift.decode([0x32, 0x01, 0x02, 0x00], .compact, as: .list)
        #expect(value == .list(.bool, [.bool(true), .bool(false), .bool(false)]))
    }

    @Test func invalidUTF8IsRepaired() throws {
        let (text, _) = try Thrift.read([0x02, 0xC3, 0x28], .compact) { r in try r.readString() }
        #expect(text == "\u{FFFD}(")
    }
}
