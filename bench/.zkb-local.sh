#!/usr/bin/env bash
# Benchmark: the Zipkin v2 JSON codec on its own (issue 3's Zipkin pipeline is mostly this): decoding a
# 100-span request (bench/gen_payloads.py, the payload of bench/traces_pipelines.sh's steady phase) into the
# model, and encoding it back. Release build of the pure modules only, run-time exclusivity checks off as in
# the deployment build; one core. The machine is noisy, so INSTRUCTIONS=1 also counts instructions per request
# with callgrind, which does not vary from run to run.
# Usage: bench/zipkin_codec.sh [seconds_per_case]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"
seconds="${1:-3}"
scripts/python-env.sh
py="${SEXTANT_VENV:-$PWD/.venv}/bin/python"
tmp=/tmp/zkb; rm -rf /tmp/zkb/Sources /tmp/zkb/payload

mkdir -p "$tmp/Sources/bench" "$tmp/payload"
"$py" bench/gen_payloads.py "$tmp/payload" 100
for m in SextantModel SextantOTLP SextantZipkin; do ln -s "$root/Sources/$m" "$tmp/Sources/$m"; done
cp bench/Measure.swift "$tmp/Sources/bench/"
cat > "$tmp/Package.swift" <<'SWIFT'
// swift-tools-version:6.1
import PackageDescription
let unchecked: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
let package = Package(
    name: "zipkin-codec-bench",
    targets: [
        .target(name: "SextantModel", swiftSettings: unchecked),
        .target(name: "SextantOTLP", dependencies: ["SextantModel"], swiftSettings: unchecked),
        .target(name: "SextantZipkin", dependencies: ["SextantModel", "SextantOTLP"], swiftSettings: unchecked),
        .executableTarget(name: "bench", dependencies: ["SextantModel", "SextantZipkin"], swiftSettings: unchecked),
    ]
)
SWIFT
cat > "$tmp/Sources/bench/main.swift" <<'SWIFT'
#if canImport(Glibc)
import Glibc
#endif
import SextantModel
import SextantZipkin

/// The file's bytes, without Foundation.
func read(_ path: String) -> [UInt8] {
    guard let f = fopen(path, "rb") else { fatalError("cannot open \(path)") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&chunk, 1, chunk.count, f)
        if n <= 0 { break }
        out += chunk[0..<n]
    }
    return out
}

let args = CommandLine.arguments
let json = read(args[1])
let traces = try! ZipkinV2.decodeJSON(json).data
func decode() -> Int { (try! ZipkinV2.decodeJSON(json)).data.spanCount }
func encode() -> Int { ZipkinV2.encodeJSON(traces).count }
/// One decimal, without Foundation.
func f(_ x: Double) -> String { String((x * 10).rounded() / 10) }
if args.count > 3 {
    // A fixed number of calls of one case, for callgrind.
    var sink = 0
    for _ in 0..<Int(args[3])! { sink &+= args[2] == "decode" ? decode() : encode() }
    print(sink)
} else {
    let seconds = Double(args[2])!
    let d = measure(seconds, decode)
    let e = measure(seconds, encode)
    let spans = Double(traces.spanCount)
    print("request: \(traces.spanCount) spans, \(json.count) bytes of Zipkin JSON")
    print("decode  \(f(d)) µs/request  (\(f(d * 1000 / spans)) ns/span)")
    print("encode  \(f(e)) µs/request  (\(f(e * 1000 / spans)) ns/span)")
}
SWIFT
(cd "$tmp" && ${SEXTANT_BUILD_LOCK:+flock "$SEXTANT_BUILD_LOCK"} swift build -c release --product bench 2>&1 | grep -E "error|Build complete" || true)
bin="$tmp/.build/release/bench"
"$bin" "$tmp/payload/zipkin.json" "$seconds"
if [ -n "${INSTRUCTIONS:-}" ]; then
  count() {  # case calls → instructions
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$tmp/payload/zipkin.json" "$1" "$2" 2>&1 | awk '/Collected/ {print $4}'
  }
  base=$(count decode 0)
  for c in decode encode; do
    n=$(count "$c" 100)
    echo "$c: $(( (n - base) / 100 )) instructions/request (callgrind, 100 calls less start-up)"
  done
fi
