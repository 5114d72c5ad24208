/// The invariant every fuzzer checks beyond "no crash, no leak, no hang": bytes a decoder
/// accepted, once re-encoded, are accepted again. `decode` gets the re-encoded bytes; if it
/// throws, the process traps (libFuzzer then saves the original input as a crash artifact).
public func reDecode<T>(_ step: @autoclosure () -> String, _ encoded: [UInt8], _ decode: ([UInt8]) throws -> T) -> T {
    do {
        return try decode(encoded)
    } catch {
        roundTripFailed(step(), error, encoded)
    }
}

private func roundTripFailed(_ step: String, _ error: any Error, _ encoded: [UInt8]) -> Never {
    let shown = encoded.prefix(4096).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    let more = encoded.count > 4096 ? "… (\(encoded.count) bytes)" : ""
    // fatalError writes to stderr unbuffered, so the message survives the trap.
    fatalError("ROUND TRIP FAILED: \(step): \(error)\nre-encoded bytes (hex): \(shown)\(more)")
}

/// Traps with `ROUND TRIP FAILED` when `holds` is false: for invariants that compare values rather
/// than re-decode bytes (e.g. re-encoding what decoded from re-encoded bytes gives the same bytes).
public func roundTripCheck(_ holds: Bool, _ step: @autoclosure () -> String, _ detail: @autoclosure () -> String = "") {
    if !holds { fatalError("ROUND TRIP FAILED: \(step())\n\(detail())") }
}

/// Hex of at most the first 4096 bytes, for failure messages.
public func hexDump(_ bytes: [UInt8]) -> String {
    let shown = bytes.prefix(4096).map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    return bytes.count > 4096 ? shown + "… (\(bytes.count) bytes)" : shown
}
