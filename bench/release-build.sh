#!/usr/bin/env bash
# The deployment build the benchmarks measure: release, with the Swift runtime and Foundation linked
# statically (`--static-swift-stdlib`, the Swift on Server guides' advice for deployment; only libc, libm,
# libz and libstdc++ stay dynamic). It lives in its own scratch directory, `.build-deploy`, so it does not
# churn the dynamic `.build/release` the `bench` product uses. Prints the binary's path on stdout.
# SEXTANT_BUILD_LOCK=<file> serialises it with other builds (flock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# Linked by the toolchain's lld instead of the default gold, for three things that keep the proxy's resident
# memory down (BENCHMARKS.md, "The deployment build's linking"):
#  - packed relative relocations (`-z pack-relative-relocs`, DT_RELR): the 3.3 MB `.rela.dyn` table the loader
#    reads at every start shrinks to ~50 kB. It needs glibc >= 2.36 where the binary runs (lld records the
#    requirement as the GLIBC_ABI_DT_RELR version, so an older glibc refuses to load it instead of misbehaving);
#  - no dynamic symbol table of the executable's own symbols (`--no-export-dynamic`, overriding the static
#    runtime's `-export-dynamic`): nothing here is found by name through dlsym, and the 2.5 MB table was read
#    page by page while the loader resolved libc's symbols;
#  - the functions the proxy runs linked first and together (bench/link-order.txt, made by
#    bench/link-order.sh), so the code it touches fills ~2 MB of pages instead of being spread over all 33 MB.
link=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic
  -Xlinker "--symbol-ordering-file=$PWD/bench/link-order.txt" -Xlinker --no-warn-symbol-ordering)
${SEXTANT_BUILD_LOCK:+flock "$SEXTANT_BUILD_LOCK"} swift build -c release --product sextant --static-swift-stdlib \
  "${link[@]}" --scratch-path .build-deploy 2>&1 | tail -1 >&2
echo "$PWD/.build-deploy/release/sextant"
