#!/usr/bin/env bash
# Creates (once) the Python venv used by tests/interop and installs its pinned requirements.
# Re-running is cheap: pip runs only when tests/interop/requirements*.txt change (hash stamp).
#   SEXTANT_VENV  venv location (default: <repo>/.venv)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${SEXTANT_VENV:-$repo_root/.venv}"
requirements="$repo_root/tests/interop/requirements.txt"
# Packages whose declared dependencies cannot be resolved with the pins (see the file's comment).
requirements_nodeps="$repo_root/tests/interop/requirements-nodeps.txt"
stamp="$venv/.sextant-requirements.sha256"

if ! command -v python3 >/dev/null 2>&1; then
  echo "python-env: python3 not found; install it first (apt-get install -y python3)" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian ships venv/ensurepip separately, in python3-venv; we run as root on CI and dev machines.
    rm -rf "$venv"
    if [ "$(id -u)" -ne 0 ]; then
      echo "python-env: 'python3 -m venv' failed; install python3-venv (needs root)" >&2
      exit 1
    fi
    echo "python-env: installing python3-venv" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  rm -f "$stamp"
fi

wanted="$(cat "$requirements" "$requirements_nodeps" | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$requirements_nodeps"
echo "$wanted" > "$stamp"
echo "python-env: ready at $venv" >&2
