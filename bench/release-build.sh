#!/usr/bin/env bash
# The deployment build the benchmarks measure: release, with the Swift runtime and Foundation linked
# statically (`--static-swift-stdlib`, the Swift on Server guides' advice for deployment; only libc, libm,
# libz and libstdc++ stay dynamic). It lives in its own scratch directory, `.build-deploy`, so it does not
# churn the dynamic `.build/release` the `bench` product uses. Prints the binary's path on stdout.
# SEXTANT_BUILD_LOCK=<file> serialises it with other builds (flock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
${SEXTANT_BUILD_LOCK:+flock "$SEXTANT_BUILD_LOCK"} swift build -c release --product sextant --static-swift-stdlib \
  --scratch-path .build-deploy 2>&1 | tail -1 >&2
echo "$PWD/.build-deploy/release/sextant"
