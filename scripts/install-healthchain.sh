#!/usr/bin/env bash
# HealthChain (PyPI `healthchain`, a CDS Hooks client library) for tests/clients/test_healthchain.py, in its
# own virtualenv .venv-clients: it pins fhir.resources < 8.2, FastAPI, Starlette and httpx < 0.28, which
# must not change the service's own environment (.venv). Idempotent; the test runs it itself when needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${CDS_HOOKS_CLIENTS_VENV:-.venv-clients}
REQUIREMENTS=tests/clients/healthchain/requirements.txt
if [ -x "$VENV/bin/python" ] && cmp -s "$REQUIREMENTS" "$VENV/.requirements" 2>/dev/null; then
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
cp "$REQUIREMENTS" "$VENV/.requirements"
