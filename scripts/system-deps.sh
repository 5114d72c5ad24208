#!/usr/bin/env bash
# Installs the Debian packages the tests use as independent peers, when missing:
#   prometheus — for `promtool check metrics` (and, with the metrics issue, a real Prometheus server).
#   bsdutils — util-linux `logger`, a real syslog client (RFC 5424/3164, TCP/UDP) for the syslog receiver.
# Needs root (as on CI and the dev machines); idempotent and quiet when everything is present.
set -euo pipefail
missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v logger >/dev/null 2>&1 || missing+=(bsdutils)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: please install: ${missing[*]} (needs root)" >&2
  exit 1
fi
echo "system-deps: installing ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's package may start a Prometheus service on :9090; the tests start their own.
(command -v systemctl >/dev/null && systemctl stop prometheus) >/dev/null 2>&1 || true
pkill -x prometheus >/dev/null 2>&1 || true
