#!/usr/bin/env bash
# The whole test suite, from a fresh clone: creates .venv, installs the service with its test extras,
# installs the real FHIR test server into its own venv (.venv-fhir), as root the PostgreSQL server package
# (scripts/install-postgres.sh) and Chromium, the client libraries of tests/clients (HealthChain in
# .venv-clients, Node >= 22.18 and @medplum/core), lints, and runs pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k feedback).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[test,scale]"
bash scripts/install-java.sh      # Spark's JVM (tests/bulk): skipped with a reason if not installable
bash scripts/install-fhir-server.sh
bash scripts/install-postgres.sh  # PostgreSQL tests: a throwaway local server; skipped if not installable
bash scripts/install-chromium.sh  # CDS Hooks Sandbox tests (tests/sandbox): skipped if not installable
# Third-party CDS Hooks clients (tests/clients): HealthChain in its own .venv-clients, Node >= 22.18 and
# @medplum/core for the Medplum driver. Each test says why it is skipped if its install fails.
bash scripts/install-healthchain.sh || echo "scripts/install-healthchain.sh failed: tests/clients/test_healthchain.py will skip" >&2
bash scripts/install-node.sh || echo "scripts/install-node.sh failed: tests/clients/test_medplum.py will skip" >&2
.venv/bin/ruff check cds_hooks tests
# The architecture's import rules (.importlinter): layers, a pure clinical core, no cycles.
.venv/bin/lint-imports
# Two workers (pytest-xdist) keep the suite within 10 minutes on a 2-core machine; PYTEST_WORKERS=0 runs it
# in one process (e.g. to debug with -x or pdb). --dist loadgroup: the tests marked xdist_group("spark")
# run in one worker, against one SparkSession; every other test is spread as before.
exec .venv/bin/python -m pytest -p no:cacheprovider -n "${PYTEST_WORKERS:-2}" --dist loadgroup "$@"
