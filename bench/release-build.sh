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
#  - the functions the proxy and the collector's trace pipelines run linked first and together
#    (bench/link-order.txt, made by bench/link-order.sh), so the code they touch fills a few MB of pages
#    instead of being spread over all 33 MB.
# Every Swift function is compiled into its own section (`-function-sections`, a frontend flag). The linker
# orders sections, not functions: without it, each object file's code moves as one block, and the functions a
# warm request runs lay spread over 21 MB; with it (and link-order.sh's list), most of them are packed into
# 0.6 MB. The proxy's CPU at 1000 req/s is 7 % lower for that (BENCHMARKS.md, "Function sections").
sections=(-Xswiftc -Xfrontend -Xswiftc -function-sections)
# Compiled without the run-time exclusivity checks (`-enforce-exclusivity=unchecked`; the compile-time ones
# stay): on the proxy's request path they cost 13 % of its instructions, mostly inside NIO's ByteBuffer and
# channel code. The debug build that runs the whole test suite (scripts/test) and the fuzz builds keep them, so
# an overlapping access is still caught there; this build trades the check for speed as C and Rust builds do.
checks=(-Xswiftc -enforce-exclusivity=unchecked)
link=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic
  -Xlinker "--symbol-ordering-file=$PWD/bench/link-order.txt" -Xlinker --no-warn-symbol-ordering)
# SwiftPM does not know the order file is an input of the link: relink when it is newer than the binary.
if [ -e .build-deploy/release/sextant ] && [ bench/link-order.txt -nt .build-deploy/release/sextant ]; then
  rm -f .build-deploy/release/sextant
fi
# Nor does it recompile the objects it has when these compiler flags change (adding `-function-sections` left
# every object as it was): start from scratch when they differ from the ones the build was made with.
flags="${checks[*]} ${sections[*]}"
if [ -d .build-deploy ] && [ "$(cat .build-deploy/sextant-flags 2>/dev/null)" != "$flags" ]; then
  rm -rf .build-deploy
fi
mkdir -p .build-deploy
echo "$flags" > .build-deploy/sextant-flags
${SEXTANT_BUILD_LOCK:+flock "$SEXTANT_BUILD_LOCK"} swift build -c release --product sextant --static-swift-stdlib \
  "${checks[@]}" "${sections[@]}" "${link[@]}" --scratch-path .build-deploy 2>&1 | tail -1 >&2
echo "$PWD/.build-deploy/release/sextant"
