#!/usr/bin/env python3
"""The rule ids each third-party client received, per example patient, prefetch only and with a fhirServer,
side by side with the manifest's: one markdown table from the last run of tests/clients (its
build/test-artifacts/clients/<client>-received.json files). Run the client tests first:

    .venv/bin/python -m pytest tests/clients -p no:cacheprovider -n 0
    .venv/bin/python scripts/clients_table.py [OUT.md]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "build" / "test-artifacts" / "clients"
CLIENTS = {"healthchain": "HealthChain", "medplum": "Medplum"}
MODES = {"prefetchOnly": "prefetch only", "fhirServer": "fhirServer"}


def cell(rules: list[str] | None) -> str:
    if rules is None:
        return "(no answer)"
    return ", ".join(rules) or "—"


def table() -> str:
    manifest = json.loads((REPO / "examples" / "manifest.json").read_text())
    received = {c: json.loads((ARTIFACTS / f"{c}-received.json").read_text()) for c in CLIENTS}
    header = ["patient", "expected (manifest)"]
    header += [f"{label}, {mode}" for label in CLIENTS.values() for mode in MODES.values()]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    differ = 0
    for example in manifest["examples"]:
        pid, expected = example["patient_id"], sorted(example["expected_rules"])
        got = [received[c][m].get(pid) for c in CLIENTS for m in MODES]
        differ += any(g != expected for g in got)
        lines.append(f"| {pid} | {cell(expected)} | " + " | ".join(cell(g) for g in got) + " |")
    n = len(manifest["examples"])
    lines.append("")
    same = n - differ
    lines.append(f"{n} example patients; {same} with every client and mode as the manifest, {differ} not.")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    text = table()
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
