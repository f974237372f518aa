#!/usr/bin/env bash
# The benchmark from a fresh clone, in one command: creates .venv (like scripts/test.sh), installs the
# service into it, installs the real FHIR server into .venv-fhir and wrk (apt, as root) when missing, then runs
# `python -m bench` (extra arguments go to it, e.g. bench/run.sh --quick).
# Prints markdown tables; writes bench/results/latest.json (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
bash scripts/install-fhir-server.sh >/dev/null
# wrk sends the HTTP loads (bench/cycle_bodies.lua); without it bench.loadgen sends them from Python.
if ! command -v wrk >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq wrk >/dev/null 2>&1 || echo "wrk not installed: the Python client sends the loads" >&2
fi
exec .venv/bin/python -m bench "$@"
